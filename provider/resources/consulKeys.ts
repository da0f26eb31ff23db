// ConsulKeys: a subtree of Consul's K/V store holding one service's or box's
// configuration (the seed keeps per-service settings under e.g. `config/dns01/`).
//
// ID: the prefix, e.g. `config/dns01/`. Only the declared keys are managed: other
// keys under the prefix are neither read into state nor deleted.
import { ConsulConnection, consulConnectionType, KvOperation } from "../consul/client";
import { RefusedError } from "../core/errors";
import { CheckOutcome, DiffOutcome, OperationContext, ResourceKind } from "../core/resource";
import { checkByTable, diffByTable, erase, KindSpec, t } from "../core/fields";
import { Validator } from "../core/validate";

export interface ConsulKeysInputs {
    consul: ConsulConnection;
    prefix: string;
    keys: Record<string, string>;
    secrets: Record<string, string>;
    adopt: boolean;
}

/** Outputs mirror the inputs, with `keys` and `secrets` as last read from Consul. */
export type ConsulKeysState = ConsulKeysInputs;

/** A value may be a whole file (a certificate, a config): Consul's own limit is 512 KiB. */
const maxValueLength = 512 * 1024;

export const spec: KindSpec<ConsulKeysInputs, ConsulKeysState> = {
    kind: "ConsulKeys",
    doc: "A subtree of Consul's K/V store: a service's or box's configuration. Only the declared keys are managed; other keys under the prefix are neither read into state nor deleted.",
    id: "the prefix, e.g. `config/dns01/`.",
    example: `new ConsulKeys("dns01-config", {
    consul: { address: "192.0.2.2:8500" },
    prefix: "config/dns01/",
    keys: { listen: "192.0.2.53", "forwarders/0": "192.0.2.1" },
});`,
    inputs: {
        consul: { type: t.object(consulConnectionType), required: true, replaceOn: ["address", "datacenter"], doc: "The Consul agent to write to." },
        prefix: {
            type: t.string(),
            required: true,
            change: "replace",
            doc: "Root of the subtree, e.g. `config/dns01/` (a trailing `/` is added; no leading `/`).",
            check: (v, f, x) => v.kvPrefix(f, x),
        },
        keys: { type: t.map(t.string()), default: {}, doc: 'Plain values by key relative to the prefix, e.g. `{ "listen": "10.0.0.53" }`.', check: (v, f, x) => v.kvMap(f, x, { maxValueLength }) },
        secrets: { type: t.map(t.string()), default: {}, secret: true, doc: "Secret values (passwords, tokens) by key relative to the prefix.", check: (v, f, x) => v.kvMap(f, x, { maxValueLength }) },
        adopt: {
            type: t.boolean,
            default: false,
            doc: "Take over keys that already exist in Consul with other values (their values are replaced by the declared ones). Without it, create fails and changes nothing.",
        },
    },
    outputs: {},
};

export function check(_olds: Record<string, unknown>, news: Record<string, unknown>): CheckOutcome<ConsulKeysInputs> {
    const v = new Validator();
    const inputs = checkByTable(v, erase(spec), news) as Partial<ConsulKeysInputs>;
    const { keys, secrets } = inputs;
    for (const k of Object.keys(secrets ?? {})) {
        if (keys && k in keys) v.fail(`secrets.${k}`, "is also declared in keys; declare each key once");
    }
    if (keys && secrets && Object.keys(keys).length + Object.keys(secrets).length === 0) {
        v.fail("keys", "declare at least one key in keys or secrets");
    }
    if (!v.ok) return { failures: v.failures };
    return { inputs: inputs as ConsulKeysInputs, failures: [] };
}

export function diff(_id: string, olds: ConsulKeysState, news: ConsulKeysInputs): DiffOutcome {
    const d = diffByTable(erase(spec), olds as unknown as Record<string, unknown>, news as unknown as Record<string, unknown>);
    return { changes: d.changed.length > 0, replaces: d.replaces, stables: d.stables };
}

/** All declared keys with their full paths. */
function declared(s: ConsulKeysInputs): Map<string, string> {
    const out = new Map<string, string>();
    for (const [k, val] of Object.entries({ ...s.keys, ...s.secrets })) out.set(s.prefix + k, val);
    return out;
}

/** The set operations that make Consul hold `want`, given what it holds now. */
export function planWrites(want: Map<string, string>, live: Map<string, string>): KvOperation[] {
    return [...want].filter(([k, val]) => live.get(k) !== val).map(([key, value]) => ({ verb: "set", key, value }));
}

async function create(inputs: ConsulKeysInputs, ctx: OperationContext): Promise<{ id: string; outs: ConsulKeysState }> {
    const kv = ctx.consul(inputs.consul).kv;
    const want = declared(inputs);
    const live = await kv.tree(inputs.prefix);
    const taken = [...want].filter(([k, val]) => live.has(k) && live.get(k) !== val).map(([k]) => k);
    if (taken.length > 0 && !inputs.adopt) {
        throw new RefusedError(
            `${taken.length} key(s) under ${inputs.prefix} already exist in Consul with other values (${taken.slice(0, 5).join(", ")}${taken.length > 5 ? ", ..." : ""})`,
            "Set adopt: true on this ConsulKeys to take them over (their values will be replaced by the declared ones), or choose another prefix.",
        );
    }
    const ops = planWrites(want, live);
    ctx.log.info(`writing ${ops.length} of ${want.size} key(s) under ${inputs.prefix}`);
    await kv.apply(ops);
    return { id: inputs.prefix, outs: inputs };
}

async function read(_id: string, props: ConsulKeysState, ctx: OperationContext): Promise<ConsulKeysState | undefined> {
    const live = await ctx.consul(props.consul).kv.tree(props.prefix);
    const pick = (declaredKeys: Record<string, string>) =>
        Object.fromEntries(
            Object.keys(declaredKeys)
                .filter((k) => live.has(props.prefix + k))
                .map((k) => [k, live.get(props.prefix + k) as string]),
        );
    const keys = pick(props.keys ?? {});
    const secrets = pick(props.secrets ?? {});
    if (Object.keys(keys).length + Object.keys(secrets).length === 0) return undefined;
    return { ...props, keys, secrets };
}

async function update(_id: string, olds: ConsulKeysState, news: ConsulKeysInputs, ctx: OperationContext): Promise<ConsulKeysState> {
    const kv = ctx.consul(news.consul).kv;
    const want = declared(news);
    const live = await kv.tree(news.prefix);
    const removed = [...declared(olds).keys()].filter((k) => !want.has(k) && live.has(k));
    const ops: KvOperation[] = [...planWrites(want, live), ...removed.map((key) => ({ verb: "delete" as const, key }))];
    if (ops.length > 0) ctx.log.info(`updating ${ops.length} key(s) under ${news.prefix}`);
    await kv.apply(ops);
    return news;
}

async function remove(_id: string, props: ConsulKeysState, ctx: OperationContext): Promise<void> {
    const kv = ctx.consul(props.consul).kv;
    const live = await kv.tree(props.prefix);
    const ops = [...declared(props).keys()].filter((k) => live.has(k)).map((key) => ({ verb: "delete" as const, key }));
    ctx.log.info(`deleting ${ops.length} key(s) under ${props.prefix}`);
    await kv.apply(ops);
}

export const consulKeys: ResourceKind<ConsulKeysInputs, ConsulKeysState> = {
    spec,
    check,
    diff,
    create,
    read,
    update,
    delete: remove,
};
