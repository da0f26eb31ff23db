// The Consul layer: the only module that speaks to Consul. Resources describe what
// they want (K/V operations, catalog entries) and this layer does the I/O, maps
// failures to errors an operator can act on, and keeps the ACL token out of them.
import Consul from "consul";
import { RemoteError } from "../core/errors";
import { ObjectType, t } from "../core/fields";
import { isUnknown, splitHostPort, Validator } from "../core/validate";

/** How to reach a Consul agent; documented once, in `consulConnectionType`. */
export interface ConsulConnection {
    address: string;
    scheme?: "http" | "https";
    token?: string;
    datacenter?: string;
}

/** The Consul connection's field table (shared by every kind that registers in Consul). */
export const consulConnectionType: ObjectType = {
    name: "ConsulConnection",
    doc: "How to reach a Consul agent's HTTP API.",
    check: (v, field, value) => checkConsulConnection(v, field, value),
    fields: {
        address: { type: t.string(), required: true, doc: "`host:port` of the agent's HTTP API, e.g. `10.0.0.2:8500`." },
        scheme: { type: t.string(["http", "https"]), doc: "`http` (when omitted) or `https`." },
        token: { type: t.string(), secret: true, doc: "ACL token." },
        datacenter: { type: t.string(), doc: "Datacenter; the agent's own when omitted." },
    },
};

/** Validates a ConsulConnection input (no I/O). */
export function checkConsulConnection(v: Validator, field: string, value: unknown): ConsulConnection | undefined {
    if (isUnknown(value)) return value as ConsulConnection;
    if (value === undefined || value === null || typeof value !== "object" || Array.isArray(value)) {
        return v.fail(field, "is required: an object like { address: \"10.0.0.2:8500\" }");
    }
    const raw = value as Record<string, unknown>;
    const address = v.hostPort(`${field}.address`, raw.address);
    const scheme = v.string(`${field}.scheme`, raw.scheme, {
        optional: true,
        pattern: /^https?$/,
        patternHint: "must be http or https",
    }) as ConsulConnection["scheme"];
    const token = v.consulToken(`${field}.token`, raw.token, { optional: true });
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

/**
 * What every Consul client here shares: the connection, and one mapping of
 * failures to errors that name the agent, say what to do, and hide the token.
 */
abstract class ConsulApi {
    protected readonly client: Consul;
    protected readonly target: string;

    constructor(
        protected readonly conn: ConsulConnection,
        /** The hint for HTTP 403: which policy the token lacks for this kind of call. */
        private readonly deniedHint: string,
        /** Read HTTP 404 (e.g. an absent node) as null instead of an error. */
        private readonly notFoundAsNull = false,
    ) {
        const hp = splitHostPort(conn.address);
        if (!hp) throw new Error(`invalid Consul address ${JSON.stringify(conn.address)}`);
        this.client = new Consul({
            host: hp.host,
            port: hp.port,
            secure: conn.scheme === "https",
            defaults: dropUndefined({ token: conn.token, dc: conn.datacenter }),
        });
        this.target = `Consul at ${conn.scheme ?? "http"}://${conn.address}`;
    }

    /**
     * Every call here is idempotent (plain set/delete, register/deregister, reads),
     * so a connection reset is retried: under many parallel resources a pooled
     * keep-alive socket that the agent has just closed is reset on reuse (9 of 100
     * Machine creates failed so in bench/noopUp.ts before this).
     */
    protected async call<T>(operation: string, fn: () => Promise<T>): Promise<T> {
        for (let attempt = 1; ; attempt++) {
            try {
                return await fn();
            } catch (err) {
                const status = statusOf(err);
                if (this.notFoundAsNull && status === 404) return null as T;
                if (status === undefined && isReset(err) && attempt < resetRetries) {
                    await new Promise((r) => setTimeout(r, 100 * attempt));
                    continue;
                }
                throw this.explain(operation, err, status);
            }
        }
    }

    private explain(operation: string, err: unknown, status: number | undefined): RemoteError {
        const e = err as { code?: string; message?: string; response?: { body?: unknown } };
        let detail = e.code ?? e.message ?? String(err);
        let hint = "";
        if (["ECONNREFUSED", "EHOSTUNREACH", "ENOTFOUND", "ETIMEDOUT"].includes(e.code ?? "")) {
            hint = `check that the Consul agent runs and that ${this.conn.address} is reachable from here (consul.address)`;
        } else if (status === 403) {
            detail = "permission denied (HTTP 403)";
            hint = this.deniedHint;
        } else if (status) {
            const body = typeof e.response?.body === "string" ? e.response.body : JSON.stringify(e.response?.body ?? "");
            detail = `HTTP ${status}: ${body || e.message}`;
        }
        return new RemoteError(this.target, operation, redact(detail, this.conn.token), hint);
    }
}

const resetRetries = 3;

function isReset(err: unknown): boolean {
    const e = err as { code?: string; message?: string };
    return ["ECONNRESET", "EPIPE", "ECONNABORTED"].includes(e.code ?? "") || /socket hang up/i.test(e.message ?? "");
}

function statusOf(err: unknown): number | undefined {
    const e = err as { statusCode?: number; response?: { statusCode?: number } };
    return e.response?.statusCode ?? e.statusCode;
}

/** The K/V store as kinds use it. */
export interface KvStore {
    /** Every key under `prefix` with its value (empty map when there are none). */
    tree(prefix: string): Promise<Map<string, string>>;
    /** Applies the operations (atomically per batch of at most 64). */
    apply(ops: KvOperation[]): Promise<void>;
}

export class ConsulKv extends ConsulApi implements KvStore {
    constructor(conn: ConsulConnection) {
        super(conn, "the ACL token (consul.token) lacks the needed policy for these keys");
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

}

function redact(text: string, secret: string | undefined): string {
    return secret ? text.split(secret).join("[secret]") : text;
}

// ---- catalog: external nodes (added for Machine) ----------------------------------

/** A node in the catalog as this package registers it. */
export interface CatalogNode {
    node: string;
    address: string;
    meta: Record<string, string>;
}

/**
 * Catalog entries for machines that run no Consul agent. Registered as *external*
 * nodes (NodeMeta "external-node": "true", no agent of that name): anti-entropy only
 * syncs an agent's own node, so it leaves these alone (consul#729, #7513).
 */
/** External catalog nodes as kinds use them (Machine). */
export interface NodeCatalog {
    registerExternalNode(n: CatalogNode): Promise<void>;
    deregisterNode(node: string): Promise<void>;
    /** The node as the catalog has it, or undefined when it is not registered. */
    node(node: string): Promise<CatalogNode | undefined>;
    /** Does an agent (a real Consul member) use this name? */
    isAgentMember(node: string): Promise<boolean>;
}

export class ConsulCatalog extends ConsulApi implements NodeCatalog {
    constructor(conn: ConsulConnection) {
        super(conn, "the ACL token (consul.token) needs node:write on this node name");
    }

    async registerExternalNode(n: CatalogNode): Promise<void> {
        await this.call(`register node ${n.node}`, () =>
            this.client.catalog.register({ node: n.node, address: n.address, nodemeta: { ...n.meta, "external-node": "true" }, timeout: requestTimeoutMs } as never),
        );
    }

    async deregisterNode(node: string): Promise<void> {
        await this.call(`deregister node ${node}`, () => this.client.catalog.deregister({ node, timeout: requestTimeoutMs } as never));
    }

    /** The node as the catalog has it, or undefined when it is not registered. */
    async node(node: string): Promise<CatalogNode | undefined> {
        const r = (await this.call(`read node ${node}`, () => this.client.catalog.node.services({ node, timeout: requestTimeoutMs } as never))) as
            | { Node?: { Node: string; Address: string; Meta?: Record<string, string> | null } }
            | null
            | undefined;
        if (!r?.Node) return undefined;
        return { node: r.Node.Node, address: r.Node.Address, meta: r.Node.Meta ?? {} };
    }

    /** Does an agent (a real Consul member) use this name? Registering over it would be undone by anti-entropy. */
    async isAgentMember(node: string): Promise<boolean> {
        const nodes = (await this.call("list catalog nodes", () => this.client.catalog.node.list({ timeout: requestTimeoutMs } as never))) as { Node: string; Meta?: Record<string, string> | null }[];
        const n = nodes.find((x) => x.Node === node);
        return n !== undefined && n.Meta?.["external-node"] !== "true";
    }
}

// ---- catalog: services of external nodes (added for NbdVolume) ---------------------

/**
 * A service instance on an *external* node: a catalog node with no agent behind
 * it (NodeMeta external-node=true, as consul-esm marks them). Anti-entropy only
 * syncs an agent's own node, so such entries stay until deregistered, and the
 * provider needs no agent on the box whose service it publishes.
 */
export interface ExternalService {
    node: string;
    /** The node's address: where clients reach the service. */
    address: string;
    serviceId: string;
    service: string;
    port: number;
    meta: Record<string, string>;
    tags: string[];
}

export const externalNodeMeta = { "external-node": "true", "external-probe": "false" } as const;

/** Services of external nodes as kinds use them (NbdVolume). */
export interface ServiceCatalog {
    /** Registers (or updates) the node and its service in one catalog write. */
    register(s: ExternalService): Promise<void>;
    /** The service as the catalog holds it, or undefined. */
    service(node: string, serviceId: string): Promise<ExternalService | undefined>;
    /** Removes the service, and the node with it once it holds no other service. */
    deregister(node: string, serviceId: string): Promise<void>;
    /** Every instance of `service` whose meta `key` equals `value`. */
    findByMeta(service: string, key: string, value: string): Promise<ExternalService[]>;
}

export class ConsulServiceCatalog extends ConsulApi implements ServiceCatalog {
    constructor(conn: ConsulConnection) {
        super(conn, "the ACL token (consul.token) lacks node:write / service:write for this node and service", true);
    }

    /** Registers (or updates) the node and its service in one catalog write. */
    async register(s: ExternalService): Promise<void> {
        await this.call(`register service ${s.serviceId} on node ${s.node}`, () =>
            this.client.catalog.register({
                node: s.node,
                address: s.address,
                nodemeta: { ...externalNodeMeta },
                service: { id: s.serviceId, service: s.service, address: s.address, port: s.port, meta: s.meta, tags: s.tags },
                timeout: requestTimeoutMs,
            } as never),
        );
    }

    /** The service as the catalog holds it, or undefined. */
    async service(node: string, serviceId: string): Promise<ExternalService | undefined> {
        const body = (await this.call(`read node ${node}`, () => this.client.catalog.node.services({ node, timeout: requestTimeoutMs } as never))) as CatalogNodeBody | null;
        const svc = body?.Services?.[serviceId];
        if (!body?.Node || !svc) return undefined;
        return { node, address: svc.Address || body.Node.Address, serviceId, service: svc.Service, port: svc.Port, meta: svc.Meta ?? {}, tags: svc.Tags ?? [] };
    }

    /** Removes the service, and the node with it once it holds no other service. */
    async deregister(node: string, serviceId: string): Promise<void> {
        await this.call(`deregister service ${serviceId} from node ${node}`, () =>
            this.client.catalog.deregister({ node, serviceid: serviceId, timeout: requestTimeoutMs } as never),
        );
        const body = (await this.call(`read node ${node}`, () => this.client.catalog.node.services({ node, timeout: requestTimeoutMs } as never))) as CatalogNodeBody | null;
        if (body?.Node && Object.keys(body.Services ?? {}).length === 0 && body.Node.Meta?.["external-node"] === "true") {
            await this.call(`deregister empty node ${node}`, () => this.client.catalog.deregister({ node, timeout: requestTimeoutMs } as never));
        }
    }

    /**
     * Every instance of `service` whose meta `key` equals `value`, in ONE request
     * (a server-side filter expression, Consul >= 1.5). `value` must already be
     * validated: it is placed in the expression in double quotes.
     */
    async findByMeta(service: string, key: string, value: string): Promise<ExternalService[]> {
        if (!/^[A-Za-z0-9_-]+$/.test(key) || /["\\]/.test(value)) throw new Error(`meta filter ${key}=${JSON.stringify(value)} is not safe to query`);
        const rows = (await this.call(`look up ${service} with ${key}=${value}`, () =>
            this.client.catalog.service.nodes({ service, filter: `ServiceMeta.${key} == "${value}"`, timeout: requestTimeoutMs } as never),
        )) as CatalogServiceRow[] | null;
        return (rows ?? []).map((r) => ({
            node: r.Node,
            address: r.ServiceAddress || r.Address,
            serviceId: r.ServiceID,
            service: r.ServiceName,
            port: r.ServicePort,
            meta: r.ServiceMeta ?? {},
            tags: r.ServiceTags ?? [],
        }));
    }
}

interface CatalogNodeBody {
    Node?: { Node: string; Address: string; Meta?: Record<string, string> };
    Services?: Record<string, { ID: string; Service: string; Address: string; Port: number; Meta?: Record<string, string>; Tags?: string[] }>;
}

interface CatalogServiceRow {
    Node: string;
    Address: string;
    ServiceID: string;
    ServiceName: string;
    ServiceAddress: string;
    ServicePort: number;
    ServiceMeta?: Record<string, string>;
    ServiceTags?: string[];
}

// ---- what the operation context hands to kinds --------------------------------------

/** One Consul agent as kinds reach it: through the operation context, never by constructing clients. */
export interface ConsulClient {
    readonly kv: KvStore;
    readonly nodes: NodeCatalog;
    readonly services: ServiceCatalog;
}

/** The real clients of one agent, each made on first use. */
export function consulClient(conn: ConsulConnection): ConsulClient {
    let kv: ConsulKv | undefined;
    let nodes: ConsulCatalog | undefined;
    let services: ConsulServiceCatalog | undefined;
    return {
        get kv() {
            return (kv ??= new ConsulKv(conn));
        },
        get nodes() {
            return (nodes ??= new ConsulCatalog(conn));
        },
        get services() {
            return (services ??= new ConsulServiceCatalog(conn));
        },
    };
}
