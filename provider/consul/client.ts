// The Consul layer: the only module that speaks to Consul. Resources describe what
// they want (K/V operations, catalog entries) and this layer does the I/O, maps
// failures to errors an operator can act on, and keeps the ACL token out of them.
import Consul from "consul";
import { RemoteError } from "../core/errors";
import { isUnknown, Validator } from "../core/validate";

/** How to reach a Consul agent. Shared by every resource that registers in Consul. */
export interface ConsulConnection {
    /** `host:port` of the agent's HTTP API, e.g. `10.0.0.2:8500`. */
    address: string;
    /** `http` (default) or `https`. */
    scheme?: "http" | "https";
    /** ACL token; keep it a Pulumi secret. */
    token?: string;
    /** Datacenter; the agent's own when omitted. */
    datacenter?: string;
}

const hostPort = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]{1,253}):([0-9]{1,5})$/;

/** Validates a ConsulConnection input (no I/O). */
export function checkConsulConnection(v: Validator, field: string, value: unknown): ConsulConnection | undefined {
    if (isUnknown(value)) return value as ConsulConnection;
    if (value === undefined || value === null || typeof value !== "object" || Array.isArray(value)) {
        return v.fail(field, "is required: an object like { address: \"10.0.0.2:8500\" }");
    }
    const raw = value as Record<string, unknown>;
    const address = v.string(`${field}.address`, raw.address, {
        pattern: hostPort,
        patternHint: "is not host:port, e.g. 10.0.0.2:8500",
    });
    const m = address ? hostPort.exec(address) : null;
    if (m && (Number(m[2]) < 1 || Number(m[2]) > 65535)) v.fail(`${field}.address`, `port ${m[2]} is out of range 1-65535`);
    const scheme = v.string(`${field}.scheme`, raw.scheme, {
        optional: true,
        pattern: /^https?$/,
        patternHint: "must be http or https",
    }) as ConsulConnection["scheme"];
    const token = v.string(`${field}.token`, raw.token, {
        optional: true,
        maxLength: 256,
        pattern: /^[A-Za-z0-9._~+/=-]+$/,
        patternHint: "is not a Consul ACL token",
    });
    const datacenter = v.string(`${field}.datacenter`, raw.datacenter, {
        optional: true,
        maxLength: 64,
        pattern: /^[A-Za-z0-9_-]+$/,
        patternHint: "must be letters, digits, '-' or '_'",
    });
    for (const k of Object.keys(raw)) {
        if (!["address", "scheme", "token", "datacenter"].includes(k)) v.fail(`${field}.${k}`, "is not a Consul connection field (address, scheme, token, datacenter)");
    }
    if (!address) return undefined;
    return dropUndefined({ address, scheme, token, datacenter });
}

function dropUndefined<T extends object>(o: T): T {
    return Object.fromEntries(Object.entries(o).filter(([, x]) => x !== undefined)) as T;
}

/** One K/V change. Values are UTF-8 text. */
export type KvOperation = { verb: "set"; key: string; value: string } | { verb: "delete"; key: string };

/** Consul refuses transactions of more than 64 operations. */
const maxTxnOps = 64;
const requestTimeoutMs = 15_000;

export class ConsulKv {
    private readonly client: Consul;
    private readonly target: string;

    constructor(private readonly conn: ConsulConnection) {
        const m = hostPort.exec(conn.address);
        if (!m) throw new Error(`invalid Consul address ${JSON.stringify(conn.address)}`);
        this.client = new Consul({
            host: m[1].replace(/^\[|\]$/g, ""),
            port: Number(m[2]),
            secure: conn.scheme === "https",
            defaults: dropUndefined({ token: conn.token, dc: conn.datacenter }),
        });
        this.target = `Consul at ${conn.scheme ?? "http"}://${conn.address}`;
    }

    /** Every key under `prefix` with its value (empty map when there are none). */
    async tree(prefix: string): Promise<Map<string, string>> {
        const items = await this.call("read K/V under " + JSON.stringify(prefix), () =>
            this.client.kv.get({ key: prefix, recurse: true, timeout: requestTimeoutMs } as never),
        );
        const out = new Map<string, string>();
        for (const item of (items ?? []) as { Key: string; Value: string | null }[]) {
            out.set(item.Key, item.Value ?? "");
        }
        return out;
    }

    /**
     * Applies the operations in transactions of at most 64. Each transaction is
     * atomic; a failure names the batch so a re-run (which is idempotent) can finish.
     */
    async apply(ops: KvOperation[]): Promise<void> {
        for (let i = 0; i < ops.length; i += maxTxnOps) {
            const batch = ops.slice(i, i + maxTxnOps).map((op) => ({
                KV:
                    op.verb === "set"
                        ? { Verb: "set", Key: op.key, Value: Buffer.from(op.value, "utf8").toString("base64") }
                        : { Verb: "delete", Key: op.key },
            }));
            await this.call(`write ${batch.length} K/V keys`, () =>
                this.client.transaction.create(batch as never, { timeout: requestTimeoutMs } as never),
            );
        }
    }

    private async call<T>(operation: string, fn: () => Promise<T>): Promise<T> {
        try {
            return await fn();
        } catch (err) {
            throw this.explain(operation, err);
        }
    }

    private explain(operation: string, err: unknown): RemoteError {
        const e = err as { code?: string; message?: string; statusCode?: number; response?: { statusCode?: number; body?: unknown } };
        const status = e.response?.statusCode ?? e.statusCode;
        let detail = e.code ?? e.message ?? String(err);
        let hint = "";
        if (e.code === "ECONNREFUSED" || e.code === "EHOSTUNREACH" || e.code === "ENOTFOUND" || e.code === "ETIMEDOUT") {
            hint = `check that the Consul agent runs and that ${this.conn.address} is reachable from here (consul.address)`;
        } else if (status === 403) {
            detail = "permission denied (HTTP 403)";
            hint = "the ACL token (consul.token) lacks the needed policy for these keys";
        } else if (status) {
            const body = typeof e.response?.body === "string" ? e.response.body : JSON.stringify(e.response?.body ?? "");
            detail = `HTTP ${status}: ${body || e.message}`;
        }
        return new RemoteError(this.target, operation, redact(detail, this.conn.token), hint);
    }
}

function redact(text: string, secret: string | undefined): string {
    return secret ? text.split(secret).join("[secret]") : text;
}
