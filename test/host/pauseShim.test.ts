// The fault harness's pause shim (test/lab/signWatcher.ts), run for real on this
// machine: the lab's cut of `mdadm /dev/md30 --remove` depends on it, and a shim
// that did not stop, or stopped every call, would turn that lab test into a
// hang or into a cut somewhere else. Here the wrapped program is `echo` from
// /usr/bin, in a directory of the test's own instead of /usr/local/sbin.
import * as assert from "assert";
import { execFileSync, spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { waitFor } from "../helpers/wait";
import { installShimScript, pausedRun, removeShimScript } from "../lab/signWatcher";

function stateOf(pid: number): string {
    return fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(")")[1].trim().split(" ")[0];
}

describe("the fault harness's pause shim, run with /bin/sh", function () {
    let dir: string;
    const sign = pausedRun("echo", "stop me");
    const pattern = "process" in sign ? sign.process : assert.fail("pausedRun must give a process sign");
    const shim = "process" in sign && sign.pause ? sign.pause : assert.fail("pausedRun must give a pause");

    before(() => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "bm-shim-"));
        execFileSync("/bin/sh", ["-c", installShimScript(shim, dir)]);
    });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    it("passes any other call straight to the real program", () => {
        assert.strictEqual(execFileSync(path.join(dir, "echo"), ["stop", "you"], { encoding: "utf8" }), "stop you\n");
        assert.strictEqual(execFileSync(path.join(dir, "echo"), ["stop meow"], { encoding: "utf8" }), "stop meow\n");
    });

    it("stops a call that starts with the arguments until it is continued, then runs the real program", async () => {
        const child = spawn(path.join(dir, "echo"), ["stop", "me", "now"]);
        let out = "";
        child.stdout.on("data", (d: Buffer) => (out += d.toString()));
        const pid = child.pid ?? assert.fail("no pid");
        await waitFor("the shim to stop itself", () => stateOf(pid) === "T", 5000, 20);
        const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
        assert.match(cmdline, pattern, "the watcher's pattern must match the stopped wrapper");
        await new Promise((r) => setTimeout(r, 300));
        assert.strictEqual(out, "", "nothing runs while it is stopped");
        process.kill(pid, "SIGCONT");
        const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
        assert.strictEqual(code, 0);
        assert.strictEqual(out, "stop me now\n");
    });

    it("refuses to replace a program that is not a shim, and removes only its own", () => {
        const other = { program: "true", leadingArgs: "x" };
        fs.writeFileSync(path.join(dir, "true"), "#!/bin/sh\nexit 0\n");
        assert.throws(() => execFileSync("/bin/sh", ["-c", installShimScript(other, dir)], { stdio: "pipe" }), /is not a pause shim/);
        execFileSync("/bin/sh", ["-c", removeShimScript(other, dir)]);
        assert.ok(fs.existsSync(path.join(dir, "true")), "a file that is not a shim stays");
        execFileSync("/bin/sh", ["-c", removeShimScript(shim, dir)]);
        assert.ok(!fs.existsSync(path.join(dir, "echo")), "the shim is gone");
    });

    it("takes only plain words as arguments", () => {
        assert.throws(() => pausedRun("mdadm", "/dev/md30 --remove'; rm -rf /"), /plain words/);
        assert.throws(() => pausedRun("../mdadm", "x"), /plain program name/);
    });
});
