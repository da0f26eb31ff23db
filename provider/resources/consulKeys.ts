// ConsulKeys: a subtree of Consul's K/V store holding one service's or box's
// configuration (the seed keeps per-service settings under e.g. `config/dns01/`).
//
// ID: the prefix, e.g. `config/dns01/`. Only the declared keys are managed: other
// keys under the prefix are neither read into state nor deleted.
import { checkConsulConnection, ConsulConnection, ConsulKv, KvOperation } from "../consul/client";
import { RefusedError } from "../core/errors";
import { changedFields, CheckOutcome, DiffOutcome, OperationContext, ResourceKind } from "../core/resource";
import { Validator } from "../core/validate";

export interface ConsulKeysInputs {
    /** The Consul agent to write to. */
    consul: ConsulConnection;
    /** Root of the subtree; ends with `/`, no leading `/`. */
    prefix: string;
    /** Plain values, by key relative to the prefix. */
    keys: Record<string, string>;
    /** Secret values (passwords, tokens), by key relative to the prefix; kept secret in state. */
    secrets: Record<string, string>;
    /** Take over keys that already exist with other values instead of failing. */
    adopt: boolean;
}

/** Outputs mirror the inputs, with `keys` and `secrets` as last read from Consul. */
export type ConsulKeysState = ConsulKeysInputs;

const segment = "[A-Za-z0-9_.@-]+";
const prefixPattern = new RegExp(`^(${segment}/)+$`);
const keyPattern = new RegExp(`^${segment}(/${segment})*$`);

function checkRelativeKey(v: Validator, field: string, key: string): void {
    if (key.split("/").some((s) => s === "." || s === "..")) v.fail(field, `${JSON.stringify(key)} must not contain "." or ".." segments`);
}

export function check(_olds: Record<string, unknown>, news: Record<string, unknown>): CheckOutcome<ConsulKeysInputs> {
    const v = new Validator();
    const consul = checkConsulConnection(v, "consul", news.consul);
    let prefix = v.string("prefix", news.prefix, {
        maxLength: 512,
        pattern: /^[A-Za-z0-9_.@/-]+$/,
        patternHint: "may only contain letters, digits and _ . @ - /",
    });
    if (prefix !== undefined && !prefix.endsWith("/")) prefix += "/";
    if (prefix !== undefined && !prefixPattern.test(prefix)) {
        v.fail("prefix", `${JSON.stringify(prefix)} must be a relative path like "config/dns01/" (no leading "/", no empty segments)`);
    }
    if (prefix !== undefined) checkRelativeKey(v, "prefix", prefix.slice(0, -1));
    const keyRule = { maxLength: 512, pattern: keyPattern, patternHint: "must be a relative key like \"db/host\"" };
    const keys = v.stringMap("keys", news.keys, keyRule, { maxLength: 512 * 1024, allowControl: true });
    const secrets = v.stringMap("secrets", news.secrets, keyRule, { maxLength: 512 * 1024, allowControl: true });
    // Each map names itself: a bad key under secrets must not be reported as keys.
    for (const k of Object.keys(keys ?? {})) checkRelativeKey(v, `keys.${k}`, k);
    for (const k of Object.keys(secrets ?? {})) checkRelativeKey(v, `secrets.${k}`, k);
    for (const k of Object.keys(secrets ?? {})) {
        if (keys && k in keys) v.fail(`secrets.${k}`, "is also declared in keys; declare each key once");
    }
    if (keys && secrets && Object.keys(keys).length + Object.keys(secrets).length === 0) {
        v.fail("keys", "declare at least one key in keys or secrets");
    }
    const adopt = v.boolean("adopt", news.adopt, false);
    if (!v.ok || !consul || !prefix || !keys || !secrets) return { failures: v.failures };
    return { inputs: { consul, prefix, keys, secrets, adopt }, failures: [] };
}

export function diff(_id: string, olds: ConsulKeysState, news: ConsulKeysInputs): DiffOutcome {
    const replaces: string[] = [];
    if (olds.prefix !== news.prefix) replaces.push("prefix");
    if (olds.consul?.address !== news.consul.address) replaces.push("consul.address");
    if (olds.consul?.datacenter !== news.consul.datacenter) replaces.push("consul.datacenter");
    const changed = changedFields(olds, news, ["consul", "keys", "secrets", "adopt"]);
    return { changes: replaces.length > 0 || changed.length > 0, replaces, stables: ["prefix"] };
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
    const kv = new ConsulKv(inputs.consul);
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

async function read(_id: string, props: ConsulKeysState, _ctx: OperationContext): Promise<ConsulKeysState | undefined> {
    const live = await new ConsulKv(props.consul).tree(props.prefix);
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
    const kv = new ConsulKv(news.consul);
    const want = declared(news);
    const live = await kv.tree(news.prefix);
    const removed = [...declared(olds).keys()].filter((k) => !want.has(k) && live.has(k));
    const ops: KvOperation[] = [...planWrites(want, live), ...removed.map((key) => ({ verb: "delete" as const, key }))];
    if (ops.length > 0) ctx.log.info(`updating ${ops.length} key(s) under ${news.prefix}`);
    await kv.apply(ops);
    return news;
}

async function remove(_id: string, props: ConsulKeysState, ctx: OperationContext): Promise<void> {
    const kv = new ConsulKv(props.consul);
    const live = await kv.tree(props.prefix);
    const ops = [...declared(props).keys()].filter((k) => live.has(k)).map((key) => ({ verb: "delete" as const, key }));
    ctx.log.info(`deleting ${ops.length} key(s) under ${props.prefix}`);
    await kv.apply(ops);
}

export const consulKeys: ResourceKind<ConsulKeysInputs, ConsulKeysState> = {
    check,
    diff,
    create,
    read,
    update,
    delete: remove,
};
