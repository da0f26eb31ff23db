// The demo after an interrupted `up`: a pulumi killed mid-run leaves its lock in the
// local file backend. lab/staleLocks (run by lab/demo.sh) must clear only a lock whose
// process is gone from this machine, and for any other lock say exactly what to run.
// Real CLI, real lock files; the program just waits, so the lock is held while it runs.
import * as assert from "assert";
import { ChildProcess, execFile, spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { judge, locksOf } from "../../lab/staleLocks";
import { killTree } from "../helpers/processes";
import { PulumiStack } from "../helpers/pulumi";
import { requireTools } from "../helpers/tools";
import { waitFor } from "../helpers/wait";

const repo = path.resolve(__dirname, "../../..");
const staleLocksJs = path.join(repo, "dist/lab/staleLocks.js");

function staleLocks(stateDir: string, stack: string): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
        execFile("node", [staleLocksJs, stateDir, stack], (err, stdout, stderr) => {
            resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
        });
    });
}


describe("demo: a lock left by an interrupted up", function () {
    this.timeout(300_000);
    let dir: string;
    let stack: PulumiStack;
    let running: ChildProcess | undefined;

    before(async () => {
        requireTools(["pulumi", "pulumi-language-nodejs"]);
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "demo-lock-"));
        fs.writeFileSync(path.join(dir, "Pulumi.yaml"), "name: demolock\nruntime: nodejs\n");
        fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name: "demolock", main: "index.js" }));
        // The program holds the update open until its marker file is removed.
        fs.writeFileSync(
            path.join(dir, "index.js"),
            `const fs = require("fs");\nfs.writeFileSync("running", "");\nmodule.exports = new Promise((r) => { const t = setInterval(() => { if (!fs.existsSync("running")) { clearInterval(t); r(); } }, 100); });\n`,
        );
        fs.symlinkSync(path.join(repo, "node_modules"), path.join(dir, "node_modules"));
        stack = await PulumiStack.init(dir, "lab");
    });

    after(async () => {
        running?.kill("SIGKILL");
        await stack?.cleanup();
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    /** `pulumi up` in the background, its program waiting; resolves once the lock file exists. */
    async function startUp(): Promise<ChildProcess> {
        const child = spawn("pulumi", ["up", "--yes", "--skip-preview", "--non-interactive", "--stack", "lab"], { cwd: dir, env: stack.env, stdio: "ignore", detached: true });
        await waitFor("the program to run under a held lock", () => fs.existsSync(path.join(dir, "running")) && locksOf(stack.stateDir, "lab").length === 1);
        return child;
    }

    it("a running pulumi's lock is kept, and the message says what to run", async () => {
        running = await startUp();
        const r = await staleLocks(stack.stateDir, "lab");
        assert.strictEqual(r.code, 3, r.stderr);
        assert.match(r.stderr, /pulumi is still running \(pid \d+/);
        assert.ok(r.stderr.includes(`PULUMI_BACKEND_URL=file://${stack.stateDir} pulumi cancel --stack lab --yes`), r.stderr);
        assert.strictEqual(locksOf(stack.stateDir, "lab").length, 1);
        fs.rmSync(path.join(dir, "running"));
        await new Promise((resolve) => running!.once("exit", resolve));
        running = undefined;
        assert.strictEqual(locksOf(stack.stateDir, "lab").length, 0, "a finished up left its lock");
    });

    it("a killed pulumi's lock is judged stale; `pulumi cancel` clears it and the next up runs", async () => {
        running = await startUp();
        // The workstation "loses power": the CLI and its plugins die at once.
        const exited = new Promise((resolve) => running!.once("exit", resolve));
        await killTree(running.pid!);
        await exited;
        running = undefined;
        await waitFor("the killed CLI to be gone", () => locksOf(stack.stateDir, "lab").every((l) => !fs.existsSync(`/proc/${l.pid}`)));
        const blocked = await stack.run(["up", "--yes", "--skip-preview"]);
        assert.notStrictEqual(blocked.code, 0);
        assert.match(blocked.stderr + blocked.stdout, /currently locked/);

        const r = await staleLocks(stack.stateDir, "lab");
        assert.strictEqual(r.code, 0, r.stderr);
        assert.strictEqual(r.stdout.trim(), "clear");
        assert.match(r.stderr, /its pulumi \(pid \d+ on .*\) is gone/);
        await stack.ok(["cancel", "--yes"]);
        fs.rmSync(path.join(dir, "running"), { force: true });
        fs.writeFileSync(path.join(dir, "index.js"), "module.exports = {};\n");
        await stack.up();
        assert.strictEqual(locksOf(stack.stateDir, "lab").length, 0);
    });

    it("a lock taken on another machine is never judged stale", () => {
        const lock = { path: "/x/l.json", pid: 1, hostname: "workstation-2", username: "op", timestamp: "2026-12-01T10:00:00Z" };
        const v = judge(lock, "this-host", () => undefined);
        assert.strictEqual(v.stale, false);
        assert.match(v.why, /another machine/);
    });
});
