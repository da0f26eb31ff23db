// The host trace without a host: the line format, the jump chain, appends from
// several processes, the off switch, and the summary the benchmarks print.
import * as assert from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { recordTrace, traceEnvVar, traceFile, traceFormatVersion, traceTarget } from "../../provider/host/trace";
import { readTrace, summarise, summariseEvents, targetOf } from "../../bench/lib/traceSummary";
import { throwawayPrivateKey } from "../helpers/keys";

describe("host trace", () => {
    let dir: string;
    let saved: string | undefined;

    beforeEach(() => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "host-trace-"));
        saved = process.env[traceEnvVar];
    });
    afterEach(() => {
        if (saved === undefined) delete process.env[traceEnvVar];
        else process.env[traceEnvVar] = saved;
        fs.rmSync(dir, { recursive: true, force: true });
    });

    it("is off when the variable is unset or empty, and writes nothing", () => {
        delete process.env[traceEnvVar];
        assert.strictEqual(traceFile(), undefined);
        process.env[traceEnvVar] = "";
        assert.strictEqual(traceFile(), undefined);
        recordTrace({ ...traceTarget({ host: "h" }), event: "connect", start: 1, durationMs: 1, ok: true });
        assert.deepStrictEqual(fs.readdirSync(dir), []);
    });

    it("names the target by address, port, user and jump chain, never by a credential", () => {
        const privateKey = throwawayPrivateKey();
        const t = traceTarget({
            host: "198.51.100.11",
            port: 2222,
            user: "admin",
            privateKey,
            password: "hunter2-password",
            proxy: { host: "198.51.100.12", password: "jump-password", proxy: { host: "198.51.100.10", user: "bastion" } },
        });
        assert.deepStrictEqual(t, { host: "198.51.100.11", port: 2222, user: "admin", via: ["bastion@198.51.100.10:22", "root@198.51.100.12:22"] });
        assert.ok(!JSON.stringify(t).includes("PRIVATE KEY") && !JSON.stringify(t).includes("password"));
        assert.strictEqual(targetOf({ ...t, v: 1, event: "connect", start: 0, durationMs: 0, ok: true, pid: 1 }), "admin@198.51.100.11:2222 via root@198.51.100.12:22 via bastion@198.51.100.10:22");
    });

    it("appends one JSON line per event with the format version and the process id", () => {
        const file = path.join(dir, "trace.jsonl");
        process.env[traceEnvVar] = file;
        recordTrace({ ...traceTarget({ host: "198.51.100.11" }), event: "connect", start: 1000, durationMs: 12, ok: true });
        recordTrace({ ...traceTarget({ host: "198.51.100.11" }), event: "command", operation: "step 1/2 (write /etc/x)", command: "sh -c <baremetal-write> /etc/x", start: 1012, durationMs: 30, exitCode: 0 });
        const lines = fs.readFileSync(file, "utf8").trimEnd().split("\n");
        assert.strictEqual(lines.length, 2);
        const [c, k] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
        assert.strictEqual(c.v, traceFormatVersion);
        assert.strictEqual(c.event, "connect");
        assert.strictEqual(c.pid, process.pid);
        assert.strictEqual(k.exitCode, 0);
        assert.strictEqual(k.operation, "step 1/2 (write /etc/x)");
        assert.strictEqual((fs.statSync(file).mode & 0o777).toString(8), "600");
    });

    it("keeps whole lines when several processes append to one file at once", () => {
        const file = path.join(dir, "shared.jsonl");
        const writer = path.join(__dirname, "../../provider/host/trace.js");
        // Four processes of 500 events each with long commands, all at once.
        const script = `const t = require(${JSON.stringify(writer)}); for (let i = 0; i < 500; i++) t.recordTrace({ host: "h" + process.argv[1], port: 22, user: "root", via: [], event: "command", command: "x".repeat(900) + i, start: i, durationMs: 1, exitCode: 0 });`;
        const procs = ["1", "2", "3", "4"].map((n) => `node -e '${script}' ${n} &`).join(" ");
        execFileSync("sh", ["-c", `${procs} wait`], { env: { ...process.env, [traceEnvVar]: file } });
        const events = readTrace(file);
        assert.strictEqual(events.length, 2000);
        const s = summariseEvents(events);
        assert.strictEqual(s.processes, 4);
        assert.deepStrictEqual(s.hosts.map((h) => [h.target, h.commands]), [1, 2, 3, 4].map((n) => [`root@h${n}:22`, 500]));
    });

    it("sums connections per host, commands, failures and durations", () => {
        const file = path.join(dir, "sum.jsonl");
        process.env[traceEnvVar] = file;
        const a = traceTarget({ host: "198.51.100.11" });
        const b = traceTarget({ host: "198.51.100.12", proxy: { host: "198.51.100.11" } });
        recordTrace({ ...a, event: "connect", start: 100, durationMs: 20, ok: true });
        recordTrace({ ...b, event: "connect", start: 110, durationMs: 5, ok: false, error: "connection refused" });
        recordTrace({ ...b, event: "connect", start: 120, durationMs: 30, ok: true });
        recordTrace({ ...a, event: "command", operation: "step 1/1 (x)", command: "true", start: 130, durationMs: 10, exitCode: 0 });
        recordTrace({ ...a, event: "command", command: "false", start: 140, durationMs: 7, exitCode: 1 });
        recordTrace({ ...b, event: "command", command: "sleep 1", start: 150, durationMs: 50, exitCode: null, error: "timed out" });
        const s = summarise(file);
        assert.strictEqual(s.connectionsOpened, 2);
        assert.strictEqual(s.dialsFailed, 1);
        assert.strictEqual(s.commands, 3);
        assert.strictEqual(s.commandsFailed, 2);
        assert.strictEqual(s.sumCommandMs, 67);
        assert.strictEqual(s.sumConnectMs, 50);
        assert.strictEqual(s.spanMs, 100);
        assert.deepStrictEqual(
            s.hosts.map((h) => [h.target, h.connectionsOpened, h.dialsFailed, h.commands, h.commandMs]),
            [
                ["root@198.51.100.11:22", 1, 0, 2, 17],
                ["root@198.51.100.12:22 via root@198.51.100.11:22", 1, 1, 1, 50],
            ],
        );
        assert.deepStrictEqual(s.byOperation[0], { operation: "sleep 1", commands: 1, ms: 50 });
    });

    it("reads a missing trace as empty and refuses a line of another format", () => {
        assert.deepStrictEqual(summarise(path.join(dir, "none.jsonl")).commands, 0);
        const file = path.join(dir, "bad.jsonl");
        fs.writeFileSync(file, '{"v":99,"event":"connect"}\n');
        assert.throws(() => readTrace(file), /trace format v99/);
        fs.writeFileSync(file, "not json\n");
        assert.throws(() => readTrace(file), /bad\.jsonl:1: not a JSON line/);
    });
});
