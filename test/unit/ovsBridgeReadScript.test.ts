// The bridge read script itself, run by dash and by BusyBox sh (the shells of Debian and Alpine
// boxes) against a test double of ovs-vsctl (test/fakes/ovs-vsctl.fake.sh, named as a fake: Open
// vSwitch does not run on this machine; the lab runs the same script against the real one,
// test/lab/parallel.test.ts). What it must tell apart: a bridge that is not there (a refresh drops
// it, a delete skips it) from a database that does not answer (neither may happen: the bridge is
// still there). CI once saw a destroy report a bridge removed and leave it on a loaded box.
import * as assert from "assert";
import { spawnSync } from "child_process";
import * as path from "path";
import { boxShells, fakeCommandsDir, fakeOvsVsctl, shellName } from "../fakes/shells";
import { bridgeReadScript } from "../../provider/resources/ovsBridge";

/** Each shell by its absolute path: one test runs with a PATH that finds nothing. */
const shells = boxShells();

describe("OvsBridge read script against a fake ovs-vsctl", () => {
    const fakes = fakeCommandsDir({ "ovs-vsctl": fakeOvsVsctl });

    function read(shell: string[], mode: string, withOvs = true) {
        const r = spawnSync(shell[0], [...shell.slice(1), "-c", bridgeReadScript, "baremetal-ovs-read", "bmpar2"], {
            encoding: "utf8",
            env: { PATH: withOvs ? `${fakes.dir()}:/usr/bin:/bin` : "/nonexistent", FAKE_OVS: mode },
            timeout: 20_000,
        });
        return { code: r.status, stdout: r.stdout, stderr: r.stderr };
    }

    for (const shell of shells) {
        describe(shellName(shell), () => {
            it("a bridge that is there: its label and ports", () => {
                const r = read(shell, "present");
                assert.strictEqual(r.code, 0, r.stderr);
                assert.deepStrictEqual(r.stdout.split("\n").filter((l) => /^(network=|port )/.test(l)), ["network=parallel-test", "port eth1", "port vm5254007e0001"]);
            });

            it("a bridge that is not there (br-exists says 2): exit 3, the one answer that means absent", () => {
                assert.strictEqual(read(shell, "absent").code, 3);
            });

            it("ovs-vsctl killed by its own --timeout (SIGALRM): exit 4 and a message naming the command, not absent", () => {
                const r = read(shell, "timeout");
                assert.strictEqual(r.code, 4);
                assert.match(r.stderr, /Open vSwitch did not answer `ovs-vsctl br-exists bmpar2` \(no answer in 30 s\): is ovsdb-server stuck or the box overloaded\?/);
            });

            it("a database that hangs after br-exists answered: exit 4 from the next call, not a bridge without ports", () => {
                const r = read(shell, "timeout-after-exists");
                assert.strictEqual(r.code, 4);
                assert.match(r.stderr, /`ovs-vsctl br-get-external-id bmpar2` \(no answer in 30 s\)/);
                assert.doesNotMatch(r.stdout, /network=/);
            });

            it("ovsdb-server not running (no one at its socket): exit 5 with ovs-vsctl's own words", () => {
                const r = read(shell, "stopped");
                assert.strictEqual(r.code, 5);
                assert.match(r.stderr, /database connection failed \(No such file or directory\)/);
            });

            it("no ovs-vsctl at all: exit 127 (Open vSwitch not installed: no bridge)", () => {
                assert.strictEqual(read(shell, "present", false).code, 127);
            });
        });
    }

    it("runs under both shells here (dash and BusyBox), so neither path is skipped", () => {
        assert.deepStrictEqual(shells.map((s) => path.basename(s[0])), ["dash", "busybox"]);
    });
});
