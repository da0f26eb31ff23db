// Starts the real Consul agent (`consul agent -dev`, from the pinned toolchain on
// PATH) on free loopback ports, and stops it. Nothing listens beyond 127.0.0.1.
import { ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { freePort } from "./net";

export interface DevConsul {
    /** host:port of the HTTP API. */
    address: string;
    stop(): Promise<void>;
    /** Raw K/V access for assertions and for making drift by hand. */
    get(key: string): Promise<string | undefined>;
    put(key: string, value: string): Promise<void>;
    keys(prefix: string): Promise<string[]>;
}

export async function startConsul(): Promise<DevConsul> {
    const [http, serfLan, serfWan, server] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "consul-dev-"));
    const logPath = path.join(dir, "consul.log");
    const log = fs.openSync(logPath, "w");
    const child: ChildProcess = spawn(
        "consul",
        [
            "agent", "-dev", "-bind", "127.0.0.1", "-client", "127.0.0.1",
            "-http-port", String(http), "-dns-port", "-1", "-grpc-port", "-1",
            "-serf-lan-port", String(serfLan), "-serf-wan-port", String(serfWan), "-server-port", String(server),
            "-node", `test-${process.pid}`,
        ],
        { stdio: ["ignore", log, log] },
    );
    const address = `127.0.0.1:${http}`;
    const base = `http://${address}/v1`;
    const deadline = Date.now() + 30_000;
    for (;;) {
        if (child.exitCode !== null) throw new Error(`consul exited with ${child.exitCode}:\n${fs.readFileSync(logPath, "utf8")}`);
        try {
            const r = await fetch(`${base}/status/leader`);
            if (r.ok && (await r.text()).length > 4) break;
        } catch {
            /* not up yet */
        }
        if (Date.now() > deadline) throw new Error(`consul did not elect a leader in 30 s:\n${fs.readFileSync(logPath, "utf8")}`);
        await new Promise((r) => setTimeout(r, 100));
    }
    return {
        address,
        async stop() {
            if (child.exitCode === null) {
                const exited = new Promise((r) => child.once("exit", r));
                child.kill("SIGINT");
                await exited;
            }
            fs.closeSync(log);
            fs.rmSync(dir, { recursive: true, force: true });
        },
        async get(key) {
            const r = await fetch(`${base}/kv/${key}?raw`);
            if (r.status === 404) return undefined;
            return r.text();
        },
        async put(key, value) {
            const r = await fetch(`${base}/kv/${key}`, { method: "PUT", body: value });
            if (!r.ok) throw new Error(`PUT ${key}: HTTP ${r.status}`);
        },
        async keys(prefix) {
            const r = await fetch(`${base}/kv/${prefix}?keys`);
            if (r.status === 404) return [];
            return (await r.json()) as string[];
        },
    };
}
