// The host trace against real sshds on loopback: every connection sshd accepted
// and every command session it started is in the trace, with the jump chain,
// the step names and exit codes, and no credential or secret anywhere in it.
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { CommandEvent, ConnectEvent, DialError, Host, Secret, SshPool, step, traceEnvVar } from "../../provider/host";
import { readTrace, summarise } from "../../bench/lib/traceSummary";
import { freePort } from "../helpers/net";
import { startSshd, TestSshd } from "../helpers/sshd";

describe("host trace over real sshds", function () {
    let jump: TestSshd;
    let target: TestSshd;
    let dir: string;
    let file: string;
    let saved: string | undefined;
    let pool: SshPool;

    before(async () => {
        jump = await startSshd();
        target = await startSshd({ client: jump.client });
    });
    after(async () => {
        await target?.stop();
        await jump?.stop();
    });
    beforeEach(() => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "host-trace-"));
        file = path.join(dir, "trace.jsonl");
        saved = process.env[traceEnvVar];
        process.env[traceEnvVar] = file;
        pool = new SshPool();
    });
    afterEach(async () => {
        await pool.closeAll();
        if (saved === undefined) delete process.env[traceEnvVar];
        else process.env[traceEnvVar] = saved;
        fs.rmSync(dir, { recursive: true, force: true });
    });

    const commands = (): CommandEvent[] => readTrace(file).filter((e): e is CommandEvent => e.event === "command");
    const connects = (): ConnectEvent[] => readTrace(file).filter((e): e is ConnectEvent => e.event === "connect");

    it("records the one pooled connection and each command sshd ran, with exit codes and durations", async () => {
        const [conns, sessions] = [target.connections(), target.commandSessions()];
        const host = new Host(target.connection(), { pool });
        await Promise.all(Array.from({ length: 12 }, (_, i) => host.run(["sh", "-c", "sleep 0.05; echo $1", "sh", String(i)])));
        await host.exec(["sh", "-c", "exit 3"]);
        await pool.closeAll();

        assert.strictEqual(target.connections() - conns, 1);
        assert.strictEqual(target.commandSessions() - sessions, 13);
        const c = connects();
        assert.deepStrictEqual(
            c.map((e) => [e.host, e.port, e.user, e.via, e.ok]),
            [["127.0.0.1", target.port, "root", [], true]],
        );
        const k = commands();
        assert.strictEqual(k.length, 13, "one line per command sshd started");
        assert.deepStrictEqual(k.map((e) => e.exitCode).sort(), [...Array<number>(12).fill(0), 3]);
        for (const e of k) {
            assert.ok(e.durationMs >= 0 && e.start >= c[0].start, JSON.stringify(e));
            assert.strictEqual(e.pid, process.pid);
        }
        assert.ok(k.filter((e) => e.exitCode === 0).every((e) => e.durationMs >= 50), "a command's duration covers its own run (sleep 0.05)");
        assert.ok(k.some((e) => e.command === "sh -c 'exit 3'"), JSON.stringify(k.map((e) => e.command)));
    });

    it("names the step of each command of a plan, and the jump chain of a tunnelled connection", async () => {
        const work = fs.mkdtempSync(path.join(target.dir, "work-"));
        const [jumpConns, targetConns] = [jump.connections(), target.connections()];
        const host = new Host(target.connection({ proxy: jump.connection({ user: "root" }) }), { pool });
        const conf = path.join(work, "trace.conf");
        await host.apply([step.writeFile(conf, "a=1\n"), step.run(["cat", conf], { what: "show the configuration", changes: false })]);
        await pool.closeAll();

        assert.strictEqual(jump.connections() - jumpConns, 1);
        assert.strictEqual(target.connections() - targetConns, 1);
        const c = connects();
        assert.deepStrictEqual(c.map((e) => [e.port, e.via]).sort(), [
            [jump.port, []],
            [target.port, [`root@127.0.0.1:${jump.port}`]],
        ].sort());
        const ops = commands().map((e) => e.operation ?? `(none) ${e.command}`);
        // OS detection first (named by its purpose), then the two steps.
        assert.match(ops[0], /^detect OS family/);
        assert.ok(ops.some((o) => /^step 1\/2 \(write .*trace\.conf/.test(o)), ops.join("\n"));
        assert.ok(ops.includes("step 2/2 (show the configuration)"), ops.join("\n"));
        const s = summarise(file);
        assert.strictEqual(s.connectionsOpened, 2);
        assert.strictEqual(s.hosts.find((h) => h.target.includes(" via "))?.commands, commands().length);
    });

    it("never writes a key, a password or a secret argument, stdin or plain secret", async () => {
        const plainSecret = "plain-db-password-42";
        const host = new Host(target.connection(), { pool, secrets: [plainSecret] });
        const token = new Secret("tok-SUPERSECRET-9f8e7d");
        await host.exec(["sh", "-c", 'echo "$1 $2" >&2; exit 1', "leaky", token, plainSecret], { stdin: new Secret("stdin-SECRET-5544") });
        await assert.rejects(
            host.apply([step.run(["sh", "-c", 'echo "$1" >&2; exit 2', "leaky", token], { what: `load ${plainSecret}` })]),
            /step 1\/1/,
        );
        await pool.closeAll();
        const text = fs.readFileSync(file, "utf8");
        assert.ok(commands().length >= 2, text);
        const privateKeyLines = target.client.privateKey.split("\n").filter((l) => l.length >= 16 && !l.startsWith("-----"));
        for (const s of ["tok-SUPERSECRET-9f8e7d", "stdin-SECRET-5544", plainSecret, ...privateKeyLines]) {
            assert.ok(!text.includes(s), `the trace holds a secret: ${s.slice(0, 12)}...`);
        }
        assert.ok(text.includes("[secret]"), "secret arguments show as [secret]");
    });

    it("records every failed dial attempt (nothing listening), so a preview that dials shows up", async () => {
        const port = await freePort();
        const host = new Host({ host: "127.0.0.1", port, privateKey: target.client.privateKey, hostKey: target.hostKey, dialErrorLimit: 2 }, { pool: new SshPool({ backoffBaseMs: 10 }) });
        await assert.rejects(host.run(["true"]), DialError);
        const c = connects();
        assert.deepStrictEqual(c.map((e) => [e.port, e.ok]), [[port, false], [port, false]]);
        assert.match(c[0].error ?? "", /ECONNREFUSED|refused/);
        assert.strictEqual(commands().length, 0, "a command that never reached the host is not a command run");
        assert.strictEqual(summarise(file).dialsFailed, 2);
    });

    it("writes nothing when the variable is unset", async () => {
        delete process.env[traceEnvVar];
        await new Host(target.connection(), { pool }).run(["true"]);
        assert.ok(!fs.existsSync(file));
    });
});
