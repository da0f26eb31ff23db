// ScriptedSite: the TEST DOUBLES of one operation's outside world (hosts,
// Consul agents, BMCs) and the OperationContext that hands them to a kind. A
// kind that reaches anything the test did not set up fails with a message
// naming it.
import type { ConsulConnection } from "../../provider/consul/client";
import type { OperationContext, Reporter } from "../../provider/core/resource";
import { describeTarget, HostConnection, RemoteOptions } from "../../provider/host";
import type { IpmiConnection } from "../../provider/ipmi/ipmitool";
import { FakeBmc } from "./fakeBmc";
import { FakeConsul } from "./fakeConsul";
import { ScriptedRemote, ScriptedRemoteOptions } from "./scriptedRemote";

/** A Reporter that keeps every line, for assertions on what an operator reads. */
export class RecordingReporter implements Reporter {
    readonly lines: { level: "info" | "warn" | "progress"; message: string }[] = [];
    info(message: string): void {
        this.lines.push({ level: "info", message });
    }
    warn(message: string): void {
        this.lines.push({ level: "warn", message });
    }
    progress(message: string): void {
        this.lines.push({ level: "progress", message });
    }
    /** info and warn lines (what stays in the Pulumi log). */
    kept(): string[] {
        return this.lines.filter((l) => l.level !== "progress").map((l) => l.message);
    }
}

export class ScriptedSite {
    readonly log = new RecordingReporter();
    private readonly hosts = new Map<string, ScriptedRemote>();
    private readonly agents = new Map<string, FakeConsul>();
    private readonly bmcs = new Map<string, FakeBmc>();
    /** What kinds asked the context for, in order (`remote root@h:22 (1 secret)`, `consul 10.0.0.2:8500` ...). */
    readonly requests: string[] = [];

    /** A scripted host for this connection (made on first call; the same object afterwards). */
    host(conn: HostConnection, options: ScriptedRemoteOptions = {}): ScriptedRemote {
        const target = describeTarget(conn);
        let h = this.hosts.get(target);
        if (!h) {
            h = new ScriptedRemote(target, { log: this.log, ...options });
            this.hosts.set(target, h);
        }
        return h;
    }

    consulAt(conn: ConsulConnection): FakeConsul {
        let c = this.agents.get(conn.address);
        if (!c) {
            c = new FakeConsul();
            this.agents.set(conn.address, c);
        }
        return c;
    }

    bmcAt(conn: IpmiConnection, power: "on" | "off" = "off"): FakeBmc {
        const key = `${conn.address}:${conn.port ?? 623}`;
        let b = this.bmcs.get(key);
        if (!b) {
            b = new FakeBmc(`BMC ${key}`, power);
            this.bmcs.set(key, b);
        }
        return b;
    }

    /** Fails when any host ran a command its script did not answer. */
    verify(): void {
        for (const h of this.hosts.values()) h.verify();
    }

    /** The context a kind's create/read/update/delete gets. */
    context(): OperationContext {
        const hostFor = (conn: HostConnection, options?: RemoteOptions): ScriptedRemote => {
            const target = describeTarget(conn);
            const secrets = (options?.secrets ?? []).filter((s) => s !== undefined).length;
            this.requests.push(`remote ${target}${secrets > 0 ? ` (${secrets} secret${secrets > 1 ? "s" : ""})` : ""}`);
            const h = this.hosts.get(target);
            if (!h) throw new Error(`ScriptedSite: the kind reached ${target}, which the test did not script (scripted: ${[...this.hosts.keys()].join(", ") || "none"})`);
            return h;
        };
        return {
            log: this.log,
            remote: hostFor,
            consul: (conn) => {
                this.requests.push(`consul ${conn.address}`);
                const c = this.agents.get(conn.address);
                if (!c) throw new Error(`ScriptedSite: the kind reached Consul at ${conn.address}, which the test did not set up`);
                return c;
            },
            bmc: (conn) => {
                this.requests.push(`bmc ${conn.address}`);
                const b = this.bmcs.get(`${conn.address}:${conn.port ?? 623}`);
                if (!b) throw new Error(`ScriptedSite: the kind reached the BMC at ${conn.address}, which the test did not set up`);
                return b;
            },
            probeSsh: async (conn) => {
                await hostFor(conn).run(["true"], { what: "probe SSH", timeoutMs: 20_000 });
            },
        };
    }
}
