// The Ceph client the CephOsd reads run on the box (provider/resources/cephOsd/client.ts):
// its shell and Python run here for real, against a FAKE rados module
// (test/fakes/python/rados.py, named as a fake: this machine runs no cluster and its
// python3 has no rados). What is checked is the contract the provider reads back as it
// read the `ceph` CLI's: one document a line on stdout, Ceph's words on stderr as
// "Error EBUSY: ...", and the failing command's errno as the exit code. The lab proves
// the client on a real cluster (test/lab/ceph.test.ts, ceph1FaultsOsd.test.ts).
import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { clientArgv, clientInput, probeScript, readCommands } from "../../provider/resources/cephOsd";
import { parseRead } from "../../provider/resources/cephOsd/read";

const fakes = path.join(__dirname, "../../../test/fakes/python");
const fixture = (name: string) => fs.readFileSync(path.join(__dirname, "../../../test/unit/fixtures/ceph", name), "utf8");

interface Answer {
    [command: string]: [number, string, string];
}

function runClient(stdin: string, answers: Answer, connect?: string) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bm-ceph-client-"));
    const calls = path.join(dir, "calls");
    const [cmd, ...args] = clientArgv("ceph");
    const r = spawnSync(cmd, args, {
        input: stdin,
        encoding: "utf8",
        env: { ...process.env, PYTHONPATH: fakes, FAKE_RADOS: JSON.stringify({ answers, ...(connect ? { connect } : {}) }), FAKE_RADOS_CALLS: calls },
    });
    const seen = fs.existsSync(calls) ? fs.readFileSync(calls, "utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>) : [];
    fs.rmSync(dir, { recursive: true, force: true });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr, seen };
}

describe("the CephOsd client (a FAKE rados module, the real shell and python3)", function () {
    this.timeout(20_000);
    const maps = fixture("read-maps.txt").split("\n").filter((l) => l.startsWith("{"));

    it("reads both maps in one connection, to the monitors, one document a line, as parseRead takes them", () => {
        const r = runClient(clientInput(readCommands), { "mon osd dump": [0, maps[0], ""], "mon osd tree": [0, maps[1], ""] });
        assert.strictEqual(r.code, 0, r.stderr);
        assert.deepStrictEqual(r.seen.map((c) => c.call), ["init", "connect", "mon", "mon", "shutdown"]);
        assert.deepStrictEqual(r.seen[0], { call: "init", clustername: "ceph", conffile: "/etc/ceph/ceph.conf" });
        assert.deepStrictEqual(r.seen[1], { call: "connect", timeout: 120 });
        assert.deepStrictEqual(r.seen[2].cmd, { prefix: "osd dump", format: "json" });
        const lines = r.stdout.split("\n");
        assert.deepStrictEqual([lines.length, lines[2]], [3, ""], "one line per document");
        assert.deepStrictEqual(lines.slice(0, 2).map((l) => JSON.parse(l) as unknown), maps.map((l) => JSON.parse(l) as unknown), "the documents as Ceph gave them");
        assert.ok(parseRead(r.stdout, parseRead(r.stdout, "x").dump.osds[0].uuid).entry, "parseRead finds an OSD in what the client printed");
    });

    it("sends safe-to-destroy to the manager; EBUSY: the answer on stdout, Ceph's words on stderr, exit 16 (as the CLI)", () => {
        const busy = '{"safe_to_destroy":[],"active":[0],"missing_stats":[],"stored_pgs":[]}';
        const r = runClient(clientInput([{ prefix: "osd safe-to-destroy", ids: ["osd.0"], format: "json" }]), {
            // the manager's JSON as it sends it, pretty-printed in part (as `pg stat` came from ceph1's)
            "mgr osd safe-to-destroy": [-16, busy.replace(/\}$/, "\n}\n"), "OSD(s) 0 have 8 pgs currently mapped to them."],
        });
        assert.strictEqual(r.code, 16);
        assert.strictEqual(r.stdout, `${busy}\n`);
        assert.strictEqual(r.stderr, "Error EBUSY: OSD(s) 0 have 8 pgs currently mapped to them.\n");
        assert.deepStrictEqual(r.seen[2], { call: "mgr", cmd: { prefix: "osd safe-to-destroy", ids: ["osd.0"], format: "json" }, timeout: 120 });
    });

    it("stops at the first failing command and sends nothing after it", () => {
        const r = runClient(clientInput(readCommands), { "mon osd dump": [-11, "", "1 pgs have unknown state"], "mon osd tree": [0, maps[1], ""] });
        assert.strictEqual(r.code, 11);
        assert.strictEqual(r.stderr, "Error EAGAIN: 1 pgs have unknown state\n");
        assert.deepStrictEqual(r.seen.map((c) => c.call), ["init", "connect", "mon", "shutdown"]);
    });

    it("a cluster it cannot reach fails with exit 1, naming the cluster and the timeout", () => {
        const r = runClient(clientInput(readCommands), {}, "[errno 110] RADOS timed out (error connecting to the cluster)");
        assert.strictEqual(r.code, 1);
        assert.match(r.stderr, /error connecting to cluster ceph within 120s: \[errno 110\] RADOS timed out/);
        assert.strictEqual(r.stdout, "");
    });

    it("without python3-rados it says which module is missing (exit 1), not a Python traceback", () => {
        const [cmd, ...args] = clientArgv("ceph");
        const r = spawnSync(cmd, args, { input: clientInput(readCommands), encoding: "utf8", env: { ...process.env, PYTHONPATH: "" } });
        assert.strictEqual(r.status, 1);
        assert.match(r.stderr, /^python3 cannot import rados \(python3-rados, which the ceph CLI runs on\): No module named 'rados'/);
    });

    it("the create probe runs the same client for its OSD map (shell syntax checked by sh -n)", () => {
        assert.ok(probeScript.includes(`| python3 -c 'import errno, json, sys`), "the probe reads the map through the client");
        const r = spawnSync("sh", ["-n", "-c", probeScript], { encoding: "utf8" });
        assert.strictEqual(r.status, 0, r.stderr);
    });
});
