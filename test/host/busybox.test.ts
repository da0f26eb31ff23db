// The constant scripts of the Alpine adapter, run under BusyBox (Alpine's
// userland: ash, mktemp, stat, cmp, timeout ...) over a real sshd. This machine
// is Debian, so each command gets a PATH of BusyBox applets only; what cannot be
// had here (OpenRC, apk, lbu, BusyBox flock) is covered by the plan tests.
import * as assert from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { Host, SshPool, step } from "../../provider/host";
import { AlpineAdapter, RemoteCommand, unchangedMarker } from "../../provider/host/os";
import { withRemoteTimeout } from "../../provider/host/execute";
import { MaybeSecret } from "../../provider/host/redact";
import { startSshd, TestSshd } from "../helpers/sshd";

const busybox = "/usr/bin/busybox";

describe("Alpine scripts under BusyBox over a real sshd", function () {
    let sshd: TestSshd;
    let pool: SshPool;
    let host: Host;
    let applets: string;
    let work: string;
    const alpine = new AlpineAdapter(true);

    before(async () => {
        if (!fs.existsSync(busybox)) throw new Error(`${busybox} is missing: install busybox-static (listed in lab/host-packages.txt)`);
        sshd = await startSshd();
        applets = fs.mkdtempSync(path.join(sshd.dir, "busybox-"));
        execFileSync(busybox, ["--install", "-s", applets]);
        work = fs.mkdtempSync(path.join(sshd.dir, "work-"));
        pool = new SshPool();
        host = new Host(sshd.connection(), { pool });
    });
    after(async () => {
        await pool?.closeAll();
        await sshd?.stop();
    });

    /** Runs one lowered Alpine command with BusyBox as the only userland. */
    async function underBusybox(cmd: RemoteCommand): Promise<string> {
        const argv: MaybeSecret[] = cmd.argv[0] === "sh" ? ["busybox", ...cmd.argv] : cmd.argv;
        const out = await host.run(["env", "-i", `PATH=${applets}`, busybox, ...argv.slice(argv[0] === "busybox" ? 1 : 0)], { stdin: cmd.stdin });
        return out.stdout;
    }

    it("writes a file atomically with mode and owner, and leaves an identical one alone", async () => {
        const file = path.join(work, "etc", "nbd-server", "config");
        const [cmd] = alpine.lower(step.writeFile(file, "[generic]\nuser = nbd\n", { mode: "0640", owner: "nobody:nogroup" }));
        assert.notStrictEqual((await underBusybox(cmd)).trim(), unchangedMarker);
        assert.strictEqual(fs.readFileSync(file, "utf8"), "[generic]\nuser = nbd\n");
        assert.strictEqual(fs.statSync(file).mode & 0o7777, 0o640);
        const ino = fs.statSync(file).ino;
        assert.strictEqual((await underBusybox(cmd)).trim(), unchangedMarker);
        assert.strictEqual(fs.statSync(file).ino, ino);
        assert.deepStrictEqual(fs.readdirSync(path.dirname(file)), ["config"]);
    });

    it("keeps the old file when the content arrives cut short (a connection dropped mid-write)", async () => {
        const file = path.join(work, "etc", "short.conf");
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, "original\n");
        const [cmd] = alpine.lower(step.writeFile(file, "[generic]\nuser = nbd\n"));
        await assert.rejects(underBusybox({ ...cmd, stdin: "[gen" }), /received 4 of 21 bytes for .*short\.conf/);
        assert.strictEqual(fs.readFileSync(file, "utf8"), "original\n");
        assert.deepStrictEqual(fs.readdirSync(path.dirname(file)).filter((f) => f.startsWith(".baremetal")), []);
    });

    it("installs a boot script in local.d form, executable", async () => {
        const file = path.join(work, "local.d", "bridges.start");
        const [cmd] = alpine.lower(step.writeFile(file, "#!/bin/sh\nexit 0\n", { mode: "0755" }));
        await underBusybox(cmd);
        assert.strictEqual(fs.statSync(file).mode & 0o7777, 0o755);
    });

    it("removes a file, and reports unchanged when it is already gone", async () => {
        const file = path.join(work, "stale.conf");
        fs.writeFileSync(file, "x");
        const [cmd] = alpine.lower(step.removeFile(file));
        assert.strictEqual((await underBusybox(cmd)).trim(), "");
        assert.ok(!fs.existsSync(file));
        assert.strictEqual((await underBusybox(cmd)).trim(), unchangedMarker);
    });

    it("BusyBox timeout accepts the wrapper's syntax and kills the command", async () => {
        const started = Date.now();
        const out = await host.exec(["env", "-i", `PATH=${applets}`, busybox, ...withRemoteTimeout(["sleep", "10"], 100)]);
        // Killed by SIGKILL: reported as the signal, or as 128+9 by a parent that caught it.
        assert.ok(/^(SIG)?KILL$/.test(out.signal ?? "") || out.exitCode === 137, JSON.stringify(out));
        assert.ok(Date.now() - started < 5000);
    });
});
