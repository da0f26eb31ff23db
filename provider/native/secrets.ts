// Secrets on the wire of the provider protocol. The plugin tells the engine it
// accepts secrets, so secret values arrive wrapped (`{ <sig>: <secret sig>, value }`)
// and the engine keeps whatever comes back as it is: an output is secret only if
// the provider wraps it. Kinds work on plain values, so the front door unwraps on
// the way in and wraps on the way out, at every place the field table marks
// secret and at every place the caller's own value was secret.
import { specialOutputValueSig, specialSecretSig, specialSigKey } from "@pulumi/pulumi/runtime/rpc";
import { AnyKindSpec, FieldSpec } from "../core/fields";
import { unknownValue } from "../core/validate";
import { collectObjectTypes, secretTree, SecretNode } from "../schema/walk";

/** A path into a value: object keys and list indexes. */
export type ValuePath = readonly (string | number)[];

export interface Revealed<T> {
    plain: T;
    /** Where the value held secrets. */
    secrets: ValuePath[];
}

function isObject(x: unknown): x is Record<string, unknown> {
    return typeof x === "object" && x !== null && !Array.isArray(x);
}

/** The value with every secret (and output value) unwrapped, and where the secrets were. */
export function reveal<T>(value: T): Revealed<T> {
    const secrets: ValuePath[] = [];
    const walk = (x: unknown, at: (string | number)[]): unknown => {
        if (Array.isArray(x)) return x.map((y, i) => walk(y, [...at, i]));
        if (!isObject(x)) return x;
        const sig = x[specialSigKey];
        if (sig === specialSecretSig) {
            secrets.push(at);
            return walk(x.value, at);
        }
        if (sig === specialOutputValueSig) {
            if (x.secret === true) secrets.push(at);
            return "value" in x ? walk(x.value, at) : unknownValue;
        }
        return Object.fromEntries(Object.entries(x).map(([k, y]) => [k, walk(y, [...at, k])]));
    };
    return { plain: walk(value, []) as T, secrets };
}

export function secretValue(value: unknown): Record<string, unknown> {
    return { [specialSigKey]: specialSecretSig, value };
}

/** Where one kind's table puts secrets, by top-level field (nested types expanded by name). */
export function kindSecretTree(spec: AnyKindSpec): Record<string, SecretNode> {
    const out: Record<string, SecretNode> = {};
    const fields: Record<string, FieldSpec> = { ...spec.inputs, ...spec.outputs };
    for (const [k, f] of Object.entries(fields)) {
        const node = f.secret ? true : secretTree(f.type);
        if (node !== undefined) out[k] = node;
    }
    return out;
}

/** The secret trees of the named object types a kind uses (`Connection` → its secret fields). */
export function namedSecretTrees(spec: AnyKindSpec): Record<string, SecretNode> {
    const out: Record<string, SecretNode> = {};
    for (const o of collectObjectTypes([spec])) {
        const node = secretTree({ kind: "object", type: o }, true);
        if (node !== undefined) out[o.name] = node;
    }
    return out;
}

/**
 * The value with secrets wrapped: where the table says (`tree`, resolving named
 * types through `named`) and at each path in `also` (what the caller sent secret).
 * Unknown values stay bare: the engine reads a wrapped unknown as known.
 */
export function conceal(value: Record<string, unknown>, tree: Record<string, SecretNode>, named: Record<string, SecretNode>, also: readonly ValuePath[] = []): Record<string, unknown> {
    const marked = new Set<string>();
    const markTree = (x: unknown, node: SecretNode, at: (string | number)[]): void => {
        if (x === undefined || x === null) return;
        if (node === true) {
            marked.add(JSON.stringify(at));
            return;
        }
        if (typeof node === "string") {
            if (named[node] !== undefined) markTree(x, named[node], at);
            return;
        }
        if (Array.isArray(x)) {
            if (node["[]"] !== undefined) x.forEach((y, i) => markTree(y, node["[]"], [...at, i]));
            return;
        }
        if (!isObject(x)) return;
        for (const [k, child] of Object.entries(node)) {
            if (k === "{}") for (const key of Object.keys(x)) markTree(x[key], child, [...at, key]);
            else if (k !== "[]") markTree(x[k], child, [...at, k]);
        }
    };
    markTree(value, tree, []);
    for (const p of also) marked.add(JSON.stringify(p));
    const wrap = (x: unknown, at: (string | number)[]): unknown => {
        if (x === undefined) return x;
        if (marked.has(JSON.stringify(at)) && at.length > 0 && x !== unknownValue) return secretValue(x);
        if (Array.isArray(x)) return x.map((y, i) => wrap(y, [...at, i]));
        if (isObject(x)) return Object.fromEntries(Object.entries(x).map(([k, y]) => [k, wrap(y, [...at, k])]));
        return x;
    };
    return wrap(value, []) as Record<string, unknown>;
}
