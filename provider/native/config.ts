// The native provider's configuration: defaults for every SSH connection and
// Consul connection a program (or `pulumi import`) leaves them out of. Identity
// (which host, which Consul agent) always stays in the resource's own inputs;
// only credentials and habits (key, user, port, sudo, host keys, ACL token) come
// from here, so a program and the code `pulumi import` prints carry no secret.
//
// The fields are the connection tables' own (provider/host/connection.ts,
// provider/consul/client.ts): one declaration each, shown in the schema's
// `config` section. The engine starts the plugin with the stack's `baremetal:*`
// configuration, decrypted, as JSON in PULUMI_CONFIG.
import { consulConnectionType } from "../consul/client";
import { checkField, FieldSpec, ObjectType, t, TypeSpec } from "../core/fields";
import { InputError } from "../core/errors";
import { Validator } from "../core/validate";
import { connectionType } from "../host";

/** Connection fields a stack may default; the host, its pinned key and a jump host stay per connection. */
const sshDefaults = ["user", "port", "privateKey", "privateKeyPassword", "password", "agentSocketPath", "sudo", "trustOnFirstUse", "dialErrorLimit", "perDialTimeout"] as const;

function sshDefault(name: (typeof sshDefaults)[number]): FieldSpec {
    const f = connectionType.fields[name];
    return { type: f.type, secret: f.secret, doc: `Used for every SSH connection that leaves \`${name}\` out. ${f.doc}` };
}

/** The provider's configuration table (`baremetal:<name>`), the schema's `config.variables`. */
export const configFields: Readonly<Record<string, FieldSpec>> = {
    ...Object.fromEntries(sshDefaults.map((n) => [n, sshDefault(n)])),
    hostKeys: {
        type: t.map(t.string()),
        doc: "Pinned host keys by host address (`{ \"198.51.100.11\": \"ssh-ed25519 AAAA...\" }`), used for every SSH connection to that host that leaves `hostKey` out; each in the form of a connection's `hostKey`.",
    },
    consulToken: {
        type: consulConnectionType.fields.token.type,
        secret: true,
        doc: `Used for every Consul connection that leaves \`token\` out. ${consulConnectionType.fields.token.doc}`,
    },
};

export interface NativeConfig {
    /** Connection fields filled in where a connection leaves them out. */
    ssh: Record<string, unknown>;
    hostKeys: Record<string, string>;
    consulToken?: string;
}

export const emptyConfig: NativeConfig = { ssh: {}, hostKeys: {} };

/**
 * The configuration from the JSON the engine hands the plugin (values are the
 * strings `pulumi config set` stored). Bad values fail naming `baremetal:<key>`,
 * never showing a secret's value.
 */
export function parseConfig(json: string | undefined): NativeConfig {
    if (!json) return emptyConfig;
    let raw: Record<string, unknown>;
    try {
        raw = JSON.parse(json) as Record<string, unknown>;
    } catch {
        throw new InputError([{ field: "baremetal", reason: "the stack configuration the engine passed (PULUMI_CONFIG) is not JSON" }]);
    }
    const v = new Validator();
    const out: Record<string, unknown> = {};
    for (const [k, text] of Object.entries(raw)) {
        const f = configFields[k];
        if (!f) {
            v.fail(`baremetal:${k}`, `is not a setting of this provider (settings: ${Object.keys(configFields).join(", ")})`);
            continue;
        }
        const value = fromConfigText(v, `baremetal:${k}`, f.type, text);
        // SSH defaults are checked below, together, by the connection's own checker.
        const checkedValue = (sshDefaults as readonly string[]).includes(k) ? value : checkField(v, `baremetal:${k}`, f, value);
        if (checkedValue !== undefined) out[k] = checkedValue;
    }
    if (!v.ok) throw new InputError(v.failures);
    const { hostKeys, consulToken, ...ssh } = out;
    // Each default as a connection would check it (a key that does not parse fails here, once).
    const probe = new Validator();
    checkField(probe, "baremetal", { type: t.object(connectionType), doc: "" }, { host: "config.invalid", ...ssh });
    const keys = (hostKeys ?? {}) as Record<string, string>;
    for (const [host, hostKey] of Object.entries(keys)) checkField(probe, `baremetal:hostKeys.${host}`, { type: t.object(connectionType), doc: "" }, { host, hostKey });
    if (!probe.ok) throw new InputError(probe.failures.map((f) => ({ field: f.field.replace(/^baremetal\.(?!.*:)/, "baremetal:"), reason: f.reason })));
    return { ssh, hostKeys: keys, consulToken: consulToken as string | undefined };
}

/** `pulumi config set` stores text: numbers, booleans and maps are parsed by the field's type. */
function fromConfigText(v: Validator, field: string, type: TypeSpec, text: unknown): unknown {
    if (typeof text !== "string") return text;
    switch (type.kind) {
        case "integer":
        case "number":
            return /^-?\d+(\.\d+)?$/.test(text.trim()) ? Number(text) : v.fail(field, "must be a number");
        case "boolean":
            return text === "true" ? true : text === "false" ? false : v.fail(field, "must be true or false");
        case "map":
        case "object":
        case "array":
            try {
                return JSON.parse(text);
            } catch {
                return v.fail(field, "must be a JSON object (set it with `pulumi config set --path` or a YAML map in the stack file)");
            }
        default:
            return text;
    }
}

// ---- filling connections in ------------------------------------------------------------

/**
 * The inputs with every SSH and Consul connection (wherever the kind's table puts
 * one, nested or in a list) completed from the configuration. What a connection
 * says itself wins. Unknown values (preview) are left alone.
 */
export function withConfigDefaults(fields: Readonly<Record<string, FieldSpec>>, inputs: Record<string, unknown>, config: NativeConfig): Record<string, unknown> {
    return mapConnections(fields, inputs, (type, conn) => ({ ...defaultsFor(type, conn, config), ...conn }));
}

/**
 * The inputs without what the configuration supplies (a value equal to the
 * configured default), for the code `pulumi import` prints: the program then gets
 * the same values from the same configuration.
 */
export function withoutConfigDefaults(fields: Readonly<Record<string, FieldSpec>>, inputs: Record<string, unknown>, config: NativeConfig): Record<string, unknown> {
    return mapConnections(fields, inputs, (type, conn) => {
        const defaults = defaultsFor(type, conn, config);
        return Object.fromEntries(Object.entries(conn).filter(([k, x]) => !(k in defaults) || JSON.stringify(defaults[k]) !== JSON.stringify(x)));
    });
}

function defaultsFor(type: ObjectType, conn: Record<string, unknown>, config: NativeConfig): Record<string, unknown> {
    if (type === consulConnectionType) return config.consulToken === undefined ? {} : { token: config.consulToken };
    const host = typeof conn.host === "string" ? conn.host : "";
    const hostKey = config.hostKeys[host];
    return { ...config.ssh, ...(hostKey !== undefined ? { hostKey } : {}) };
}

type ConnectionMap = (type: ObjectType, conn: Record<string, unknown>) => Record<string, unknown>;

function mapConnections(fields: Readonly<Record<string, FieldSpec>>, value: Record<string, unknown>, f: ConnectionMap): Record<string, unknown> {
    const out: Record<string, unknown> = { ...value };
    for (const [k, spec] of Object.entries(fields)) {
        if (out[k] !== undefined) out[k] = mapValue(spec.type, out[k], f);
    }
    return out;
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
    return typeof x === "object" && x !== null && !Array.isArray(x);
}

function mapValue(type: TypeSpec, value: unknown, f: ConnectionMap): unknown {
    switch (type.kind) {
        case "array":
            return Array.isArray(value) ? value.map((x) => mapValue(type.items, x, f)) : value;
        case "map":
            return isPlainObject(value) ? Object.fromEntries(Object.entries(value).map(([k, x]) => [k, mapValue(type.values, x, f)])) : value;
        case "object": {
            if (!isPlainObject(value)) return value;
            const inner = mapConnections(type.type.fields, value, f);
            return type.type === connectionType || type.type === consulConnectionType ? f(type.type, inner) : inner;
        }
        case "union": {
            if (!isPlainObject(value)) return value;
            const variant = type.variants.find((o) => o.discriminator !== undefined && o.discriminator in value);
            return variant ? mapConnections(variant.fields, value, f) : value;
        }
        default:
            return value;
    }
}
