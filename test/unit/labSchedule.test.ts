// The lab tier's schedule (test/lab/schedule.ts): every lab test file is in it, and the
// schedule never runs two files that hold a common part of the lab at once.
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { parseChildTimes, parsePidStat, parseProcStat } from "../lab/cpuAccount";
import { fileFor, LabTestFile, labTestFiles, nextToStart, plan, vmsNoLongerNeeded } from "../lab/schedule";

const labDir = path.join(__dirname, "../../../test/lab");

function overlaps(a: { startSeconds: number; endSeconds: number }, b: { startSeconds: number; endSeconds: number }): boolean {
    return a.startSeconds < b.endSeconds && b.startSeconds < a.endSeconds;
}

describe("the lab tier's schedule", () => {
    it("lists every lab test file but smoke (which runs alone, last), and no file that is gone", () => {
        const files = fs.readdirSync(labDir).filter((f) => f.endsWith(".test.ts") && f !== "smoke.test.ts").map((f) => f.replace(/\.test\.ts$/, "")).sort();
        assert.deepStrictEqual(labTestFiles.map((f) => f.name).sort(), files);
    });

    it("refuses a lab test file it does not list, saying where to add it", () => {
        assert.throws(() => fileFor("dist/test/lab/newThing.test.js"), /test\/lab\/newThing\.test\.ts is not in test\/lab\/schedule\.ts: add it with the lab parts it holds/);
    });

    for (const lanes of [1, 2, 3, 5]) {
        it(`with ${lanes} lane(s): every file runs once, never beside one holding a common part, never more than ${lanes} at once`, () => {
            const runs = plan(labTestFiles, lanes);
            assert.deepStrictEqual(runs.map((r) => r.name).sort(), labTestFiles.map((f) => f.name).sort());
            const holds = new Map(labTestFiles.map((f) => [f.name, f.holds]));
            for (const a of runs) {
                const atItsStart = runs.filter((b) => b.startSeconds <= a.startSeconds && a.startSeconds < b.endSeconds);
                assert.ok(atItsStart.length <= lanes, `${atItsStart.map((b) => b.name).join(", ")} run at once`);
                const beside = runs.filter((b) => b !== a && overlaps(a, b));
                for (const b of beside) {
                    const common = holds.get(a.name)!.filter((p) => holds.get(b.name)!.includes(p));
                    assert.deepStrictEqual(common, [], `${a.name} and ${b.name} both hold ${common.join(", ")}`);
                }
            }
        });
    }

    it("one lane runs the files one after another; more lanes end sooner", () => {
        const end = (lanes: number) => Math.max(...plan(labTestFiles, lanes).map((r) => r.endSeconds));
        assert.strictEqual(end(1), labTestFiles.reduce((s, f) => s + f.measuredSeconds, 0));
        assert.ok(end(3) < end(1), `3 lanes: ${end(3)}s, 1 lane: ${end(1)}s`);
    });

    it("runs the OpenRC file beside the svc1 files that look only at their own objects, never beside discover's survey of all of them", () => {
        const runs = plan(labTestFiles, 2);
        const at = (name: string) => runs.find((r) => r.name === name)!;
        const openrc = at("openrc");
        assert.ok(!overlaps(openrc, at("discover")), "openrc beside discover");
        const svc1Files = labTestFiles.filter((f) => f.holds.includes("svc1") && !f.holds.includes("svc1:ovs")).map((f) => f.name);
        assert.ok(svc1Files.includes("guests") && svc1Files.includes("datacenter"), svc1Files.join(", "));
        assert.deepStrictEqual(nextToStart([labTestFiles.find((f) => f.name === "openrc")!], labTestFiles.filter((f) => f.name === "guests"))?.name, "openrc");
        assert.strictEqual(nextToStart([labTestFiles.find((f) => f.name === "openrc")!], labTestFiles.filter((f) => f.name === "discover")), undefined);
    });

    it("never runs the OpenRC file (its bridge and tunnel on svc1) beside a file that stops or freezes svc1's Open vSwitch", () => {
        // parallel freezes ovsdb-server, then stops Open vSwitch; faultsGuests stops it when it leaves no bridge
        const openrc = labTestFiles.find((f) => f.name === "openrc")!;
        for (const name of ["parallel", "faultsGuests", "discover"]) {
            const other = labTestFiles.find((f) => f.name === name)!;
            assert.strictEqual(nextToStart([openrc], [other]), undefined, `openrc would start beside ${name}`);
            assert.strictEqual(nextToStart([other], [openrc]), undefined, `${name} would start beside openrc`);
        }
        for (const lanes of [2, 3]) {
            const runs = plan(labTestFiles, lanes);
            const at = (name: string) => runs.find((r) => r.name === name)!;
            for (const name of ["parallel", "faultsGuests"]) assert.ok(!overlaps(at("openrc"), at(name)), `${lanes} lanes: openrc beside ${name}`);
        }
    });

    it("starts the file on the longest chain for one part first, and one that holds nothing in use", () => {
        const f = (name: string, holds: LabTestFile["holds"], measuredSeconds: number): LabTestFile => ({ name, holds, measuredSeconds });
        const big = f("big", ["ceph1"], 500);
        const chain = [f("a", ["svc1"], 200), f("b", ["svc1"], 200), f("c", ["svc1"], 200)];
        assert.strictEqual(nextToStart([big, ...chain], [])?.name, "a", "svc1's chain (600s) before ceph1's one file (500s)");
        assert.strictEqual(nextToStart([big, ...chain.slice(1)], [chain[0]])?.name, "big", "svc1 is held: the next free file");
        assert.strictEqual(nextToStart(chain.slice(1), [chain[0]]), undefined);
    });

    it("powers off only the VMs no file still to run holds or uses, never the Consul server's", () => {
        const on = ["pxe1", "storage1", "svc1", "ceph1", "orc1", "pxeclient1"];
        const f = (name: string, holds: LabTestFile["holds"], uses?: LabTestFile["uses"]): LabTestFile => ({ name, holds, measuredSeconds: 1, ...(uses ? { uses } : {}) });
        // every file still to run: all on
        assert.deepStrictEqual(vmsNoLongerNeeded(labTestFiles, on, ["pxe1"]), []);
        // the OpenRC file done: orc1
        assert.deepStrictEqual(vmsNoLongerNeeded(labTestFiles.filter((x) => x.name !== "openrc"), on, ["pxe1"]), ["orc1"]);
        // a part of a VM keeps the VM on; so does a file that only uses it (the teams file's state in ceph1's RGW)
        assert.deepStrictEqual(vmsNoLongerNeeded([f("ovs", ["svc1:ovs"]), f("teams", ["storage1"], ["ceph1"])], on, ["pxe1"]), ["orc1", "pxeclient1"]);
        // nothing left: everything but the Consul server
        assert.deepStrictEqual(vmsNoLongerNeeded([], on, ["pxe1"]), ["storage1", "svc1", "ceph1", "orc1", "pxeclient1"]);
    });
});

// Lines read from this machine's /proc (session 18), as the runner's CPU account reads them.
describe("the lab tier's CPU account", () => {
    it("reads busy and idle ticks from /proc/stat (iowait is idle, steal is busy)", () => {
        const stat = "cpu  2752122 497 496745 1339616 7472 0 17804 0 0 0\ncpu0 1376000 250 248000 669000 3700 0 8900 0 0 0\n";
        assert.deepStrictEqual(parseProcStat(stat), { busy: 2752122 + 497 + 496745 + 17804, idle: 1339616 + 7472 });
    });

    it("reads a process's utime + stime after its command's parentheses", () => {
        const bash = "18033 (bash) S 18032 18033 18033 0 -1 4194560 4334 7168656 0 590 8 14 27845 9335 20 0 1 0 2249646 5124096 953 18446744073709551615";
        assert.strictEqual(parsePidStat(bash), 22);
        // a command name may hold spaces and parentheses: the last ")" ends it
        assert.strictEqual(parsePidStat(bash.replace("(bash)", "(a) b (c)")), 22);
    });

    it("reads a test file's tree of processes from bash's `times` (children's user + system)", () => {
        // printed by `bash -c 'head -c 20000000 /dev/urandom | sha256sum >/dev/null; times'`
        assert.strictEqual(parseChildTimes("0m0.000s 0m0.014s\n0m0.057s 0m0.071s\n"), 0.057 + 0.071);
        assert.strictEqual(parseChildTimes("0m0.004s 0m0.001s\n12m3.500s 1m0.250s\n"), 12 * 60 + 3.5 + 60 + 0.25);
        assert.throws(() => parseChildTimes("0m0.000s 0m0.014s\n"), /bash times: expected/);
    });
});
