// The Open vSwitch part of discover's survey script, run by dash and by BusyBox sh against a
// test double of ovs-vsctl (test/fakes/ovs-vsctl.fake.sh, named as a fake: Open vSwitch does not
// run on this machine; test/lab/discover.test.ts runs the survey against the real one). A
// database that does not answer must come back as an error naming the call, never as a box
// without bridges: the inventory would leave a live bridge out and the program would not declare it.
import * as assert from "assert";
import { spawnSync } from "child_process";
import { boxShells, fakeCommandsDir, fakeOvsVsctl, shellName } from "../fakes/shells";
import { parseSurvey, surveyScript } from "../../provider/cli/discover/survey";

const shells = boxShells();

describe("discover's survey: Open vSwitch bridges, against a fake ovs-vsctl", () => {
    const fakes = fakeCommandsDir({ "ovs-vsctl": fakeOvsVsctl });

    /** The whole survey on this machine (it only reads), with the fake first on PATH. */
    function survey(shell: string[], mode: string) {
        const r = spawnSync(shell[0], [...shell.slice(1), "-c", surveyScript, "baremetal-discover"], {
            encoding: "utf8",
            env: { PATH: `${fakes.dir()}:/usr/sbin:/usr/bin:/sbin:/bin`, FAKE_OVS: mode },
            timeout: 60_000,
        });
        assert.strictEqual(r.status, 0, r.stderr);
        return parseSurvey(r.stdout);
    }

    for (const shell of shells) {
        describe(shellName(shell), () => {
            it("a bridge with its ports, and no error", () => {
                const s = survey(shell, "present");
                assert.deepStrictEqual([...s.ovsBridges], [["bmpar2", ["eth1", "vm5254007e0001"]]]);
                assert.deepStrictEqual(s.ovsErrors, []);
            });

            it("a database with no bridge: none, and no error", () => {
                const s = survey(shell, "absent");
                assert.strictEqual(s.ovsBridges.size, 0);
                assert.deepStrictEqual(s.ovsErrors, []);
            });

            it("list-br killed by its --timeout (SIGALRM): an error saying no answer in 30 s", () => {
                const s = survey(shell, "timeout");
                assert.strictEqual(s.ovsBridges.size, 0);
                assert.deepStrictEqual(s.ovsErrors, [{ call: "ovs-vsctl list-br", message: "no answer in 30 s" }]);
            });

            it("list-ports killed after list-br answered: the bridge is an error, not a bridge without ports", () => {
                const s = survey(shell, "timeout-after-list");
                assert.strictEqual(s.ovsBridges.size, 0);
                assert.deepStrictEqual(s.ovsErrors, [{ call: "ovs-vsctl list-ports bmpar2", message: "no answer in 30 s" }]);
            });

            it("ovsdb-server stopped: an error with Open vSwitch's own message", () => {
                const s = survey(shell, "stopped");
                assert.strictEqual(s.ovsErrors.length, 1);
                assert.strictEqual(s.ovsErrors[0].call, "ovs-vsctl list-br");
                assert.match(s.ovsErrors[0].message, /database connection failed \(No such file or directory\)/);
            });
        });
    }
});
