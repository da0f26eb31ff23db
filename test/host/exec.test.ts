// The host layer against a real OpenSSH sshd on loopback: commands, parallel
// sessions on one connection, exact argv, files, plans, timeouts, redaction.
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { CommandError, CommandTimeoutError, Host, hostLocks, NamedLocks, Secret, SshPool, step } from "../../provider/host";
import { Reporter } from "../../provider/core/resource";
import { DebianAdapter } from "../../provider/host/os";
import { startSshd, TestSshd } from "../helpers/sshd";

/** A Reporter that keeps every line, to check what an operator would see. */
function recordingReporter(): Reporter & { lines: string[] } {
    const lines: string[] = [];
    return { lines, info: (m) => lines.push(`info ${m}`), warn: (m) => lines.push(`warn ${m}`), progress: (m) => lines.push(`progress ${m}`) };
}

/** Prints its arguments as a JSON array: what the remote process really received. */
const printArgv = ["python3", "-c", "import json, sys; print(json.dumps(sys.argv[1:]))"];

describe("host layer over a real sshd", function () {
    let sshd: TestSshd;
    let pool: SshPool;
    let work: string;

    before(async () => {
        sshd = await startSshd();
        work = fs.mkdtempSync(path.join(sshd.dir, "work-"));
    });
    after(async () => {
        await sshd?.stop();
    });
    beforeEach(() => {
        pool = new SshPool();
    });
    afterEach(async () => {
        await pool.closeAll();
    });

    it("runs a command and returns its output and exit status", async () => {
        const host = new Host(sshd.connection(), { pool });
        const out = await host.run(["sh", "-c", "echo out; echo err >&2"]);
        assert.strictEqual(out.stdout, "out\n");
        assert.strictEqual(out.stderr, "err\n");
        assert.strictEqual(out.exitCode, 0);
        const failed = await host.exec(["sh", "-c", "exit 7"]);
        assert.strictEqual(failed.exitCode, 7);
    });

    it("runs 60 commands in parallel over ONE connection, within sshd's MaxSessions", async () => {
        const before = sshd.connections();
        const host = new Host(sshd.connection(), { pool });
        const outs = await Promise.all(Array.from({ length: 60 }, (_, i) => host.run(["sh", "-c", 'sleep 0.05; echo "$1"', "sh", String(i)])));
        assert.deepStrictEqual(
            outs.map((o) => o.stdout),
            Array.from({ length: 60 }, (_, i) => `${i}\n`),
        );
        assert.strictEqual(sshd.connections() - before, 1, "sshd saw exactly one TCP connection");
        assert.strictEqual(pool.stats().connectionsOpened, 1);
        assert.strictEqual(pool.stats().commands, 60);
    });

    it("delivers hostile strings to the remote process as exactly the argv intended", async () => {
        const host = new Host(sshd.connection(), { pool });
        const marker = path.join(work, "pwned");
        const hostile = [
            "it's", '"double"', `$(touch ${marker})`, `\`touch ${marker}\``, `; touch ${marker}`, "a\nb\n", "tab\there",
            "ünïcödé ✓ 日本語 🚀", "-n", "--help", "", " lead and trail ", "*", "~root", "$HOME", "back\\slash", "!!", "#comment",
            `| touch ${marker} &`, "'", "''", "'\\''", "\r\n", "%s%n",
        ];
        const out = await host.run([...printArgv, ...hostile]);
        assert.deepStrictEqual(JSON.parse(out.stdout), hostile);
        assert.ok(!fs.existsSync(marker), "no argument was interpreted by the remote shell");
    });

    it("writes a file atomically with mode and owner, reads it back, and reports an identical rewrite unchanged", async () => {
        const host = new Host(sshd.connection(), { pool });
        const file = path.join(work, "conf.d", "export.conf");
        const content = "[export]\nexportname = /dev/vg0/lv\nquote = it's \"fine\"\n";
        const first = await host.apply([step.writeFile(file, content, { mode: "0640", owner: "nobody:nogroup" })]);
        assert.strictEqual(first.changed, true);
        const st = fs.statSync(file);
        assert.strictEqual(st.mode & 0o7777, 0o640);
        assert.strictEqual(st.uid, Number(fs.readFileSync("/etc/passwd", "utf8").match(/^nobody:x:(\d+):/m)![1]));
        assert.strictEqual(await host.readFile(file), content);
        assert.deepStrictEqual(fs.readdirSync(path.dirname(file)), ["export.conf"], "no temporary file left behind");

        const again = await host.apply([step.writeFile(file, content, { mode: "0640", owner: "nobody:nogroup" })]);
        assert.strictEqual(again.changed, false);
        assert.strictEqual(fs.statSync(file).ino, st.ino, "an unchanged file is not replaced");

        await host.apply([step.writeFile(file, "new\n", { mode: "0600", owner: "root:root" })]);
        assert.notStrictEqual(fs.statSync(file).ino, st.ino, "a change replaces the file by rename, never edits it in place");
        assert.strictEqual(fs.readFileSync(file, "utf8"), "new\n");
        assert.strictEqual(fs.statSync(file).mode & 0o7777, 0o600);
    });

    it("keeps the old file when a write fails half-way (unknown owner), leaving no temporary file", async () => {
        const host = new Host(sshd.connection(), { pool });
        const file = path.join(work, "keep.conf");
        fs.writeFileSync(file, "original\n");
        await assert.rejects(host.apply([step.writeFile(file, "replacement\n", { owner: "no-such-user:root" })]), (err: Error) => {
            assert.ok(err instanceof CommandError);
            assert.match(err.message, /step 1\/1 \(write .*keep\.conf/);
            assert.match(err.message, /no-such-user/);
            return true;
        });
        assert.strictEqual(fs.readFileSync(file, "utf8"), "original\n");
        assert.deepStrictEqual(fs.readdirSync(work).filter((f) => f.startsWith(".baremetal")), []);
    });

    it("keeps the old file when the content arrives cut short (a connection dropped mid-write)", async () => {
        const host = new Host(sshd.connection(), { pool });
        const file = path.join(work, "short.conf");
        fs.writeFileSync(file, "original\n");
        // The write as planned, but only part of its content reaches the host's stdin.
        const [cmd] = new DebianAdapter().lower(step.writeFile(file, "dhcp-range=198.51.100.100,198.51.100.200\n"));
        await assert.rejects(host.run(cmd.argv, { stdin: "dhcp-range=198.51" }), (err: Error) => {
            assert.ok(err instanceof CommandError, String(err));
            assert.match(err.message, /received 17 of 41 bytes for .*short\.conf \(the input was cut short\)/);
            return true;
        });
        assert.strictEqual(fs.readFileSync(file, "utf8"), "original\n");
        assert.deepStrictEqual(fs.readdirSync(work).filter((f) => f.startsWith(".baremetal")), []);
    });

    it("reads a missing file as undefined and removes files idempotently", async () => {
        const host = new Host(sshd.connection(), { pool });
        const file = path.join(work, "gone.conf");
        fs.writeFileSync(file, "x");
        assert.strictEqual((await host.apply([step.removeFile(file)])).changed, true);
        assert.ok(!fs.existsSync(file));
        assert.strictEqual((await host.apply([step.removeFile(file)])).changed, false);
        assert.strictEqual(await host.readFile(file), undefined);
    });

    it("detects the OS and applies a plan step by step, reporting progress and skipping persist when nothing changed", async () => {
        const log = recordingReporter();
        const host = new Host(sshd.connection(), { pool, log });
        assert.strictEqual((await host.facts()).family, "debian");
        const file = path.join(work, "plan.conf");
        const plan = [
            step.ensurePackages("openssh-server"), // installed: must not run apt-get at all
            step.writeFile(file, "a=1\n"),
            step.run(["cat", file], { changes: false, what: "show the file" }),
            step.persist(),
        ];
        const result = await host.apply(plan);
        assert.deepStrictEqual(result.steps.map((s) => s.changed), [false, true, false, false]);
        assert.strictEqual(result.steps[2].commands[0].stdout, "a=1\n");
        assert.strictEqual(result.hostKey?.key, sshd.hostKey.split(" ").slice(0, 2).join(" "));
        assert.ok(log.lines.some((l) => /^progress root@127\.0\.0\.1:\d+: \[2\/4\] write .*plan\.conf/.test(l)), log.lines.join("\n"));
        assert.ok(log.lines.some((l) => /^info .*\[1\/4\] install package openssh-server \(if missing\): already so/.test(l)), log.lines.join("\n"));

        const rerun = await host.apply(plan);
        assert.strictEqual(rerun.changed, false);
        assert.strictEqual(rerun.steps[3].skipped, "nothing changed");
    });

    it("logs a step as done only when a command reported a change (an accepted exit code other than 0 is its 'nothing to do')", async () => {
        const log = recordingReporter();
        const host = new Host(sshd.connection(), { pool, log });
        const result = await host.apply([
            step.run(["sh", "-c", "exit 5"], { okExitCodes: [0, 5], what: "stop a service that is not loaded" }),
            step.run(["true"], { what: "run a command that cannot tell" }),
            step.persist(),
        ]);
        assert.deepStrictEqual(result.steps.map((s) => s.changed), [false, true, false]);
        assert.ok(log.lines.some((l) => /^info .*\[1\/3\] stop a service that is not loaded: already so/.test(l)), log.lines.join("\n"));
        assert.ok(log.lines.some((l) => /^info .*\[2\/3\] run a command that cannot tell: done/.test(l)), log.lines.join("\n"));
    });

    it("names the host, step, exit code and stderr of a failing step, and says what to do next", async () => {
        const host = new Host(sshd.connection(), { pool });
        const plan = [step.run(["true"]), step.run(["sh", "-c", "echo 'mdadm: no such device: /dev/sdz' >&2; exit 2", "mdadm"], { what: "create RAID1 /dev/md0" })];
        await assert.rejects(host.apply(plan), (err: Error) => {
            assert.ok(err instanceof CommandError, String(err));
            assert.strictEqual(err.exitCode, 2);
            assert.match(err.message, new RegExp(`^step 2/2 \\(create RAID1 /dev/md0\\) on root@127\\.0\\.0\\.1:${sshd.port} failed: exit code 2 from`));
            assert.match(err.message, /stderr: mdadm: no such device: \/dev\/sdz/);
            assert.match(err.message, /next: run the command by hand/);
            return true;
        });
    });

    it("kills a command that outlives its timeout, on the host too, and keeps the connection usable", async () => {
        const host = new Host(sshd.connection(), { pool });
        const tag = `${process.pid}${Date.now() % 100000}`;
        await assert.rejects(host.run(["sleep", `300.${tag}`], { timeoutMs: 700 }), (err: Error) => {
            assert.ok(err instanceof CommandTimeoutError, String(err));
            assert.match(err.message, /did not finish within 0\.7 s/);
            return true;
        });
        assert.strictEqual((await host.run(["echo", "still here"])).stdout, "still here\n");
        // The remote `timeout` wrapper kills it two seconds after the deadline; the wait is
        // generous (a loaded machine is slow) and still far short of the 300 s sleep.
        const deadline = Date.now() + 25_000;
        const running = (): boolean => fs.readdirSync("/proc").some((p) => /^\d+$/.test(p) && safeRead(`/proc/${p}/cmdline`).includes(`300.${tag}`));
        while (running() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
        assert.ok(!running(), "the timed-out command is gone from the host");
        assert.strictEqual(pool.stats().connectionsOpened, 1);
    });

    it("serialises steps under one lock on a host, also between processes (flock on the host)", async () => {
        const log = path.join(work, "lock.log");
        const critical = (who: string) =>
            step.run(["sh", "-c", 'echo "start $1" >>"$2"; sleep 0.3; echo "end $1" >>"$2"', "critical", who, log], { lock: hostLocks.packages });
        // Separate pools and lock registries: what two `pulumi up` processes would have.
        const a = new Host(sshd.connection(), { pool, locks: new NamedLocks() });
        const otherPool = new SshPool();
        const b = new Host(sshd.connection(), { pool: otherPool, locks: new NamedLocks() });
        try {
            await Promise.all([a.apply([critical("a")]), b.apply([critical("b")])]);
        } finally {
            await otherPool.closeAll();
        }
        const lines = fs.readFileSync(log, "utf8").trim().split("\n");
        assert.strictEqual(lines.length, 4);
        assert.match(lines.join(","), /^start (a|b),end \1,start (a|b),end \2$/);
    });

    it("never shows a secret in an error, a step record or the progress log", async () => {
        const log = recordingReporter();
        const plainSecret = "plain-db-password-42";
        const host = new Host(sshd.connection(), { pool, log, secrets: [plainSecret] });
        const token = new Secret("tok-SUPERSECRET-9f8e7d");
        // Echoes its argument, its stdin and the plain secret back on stderr, then fails.
        const leaky = step.run(["sh", "-c", 'echo "auth failed for $1 / $(cat) / $2" >&2; exit 1', "leaky", token, plainSecret], {
            stdin: new Secret("stdin-SECRET-5544"),
        });
        const ok = step.run(["sh", "-c", 'echo "token is $1"', "ok", token]);
        const result = await host.apply([ok]);
        const err = await host.apply([ok, leaky]).then(
            () => assert.fail("the leaky step should fail"),
            (e: Error) => e,
        );
        const everything = [String(err), JSON.stringify(err), JSON.stringify(result), ...log.lines].join("\n");
        for (const s of ["SUPERSECRET", "stdin-SECRET", plainSecret]) assert.ok(!everything.includes(s), `${s} leaked:\n${everything}`);
        assert.match(String(err), /auth failed for \[secret\] \/ \[secret\] \/ \[secret\]/);
        assert.strictEqual(result.steps[0].commands[0].stdout, "token is [secret]\n");
    });
});

function safeRead(p: string): string {
    try {
        return fs.readFileSync(p, "utf8");
    } catch {
        return "";
    }
}
