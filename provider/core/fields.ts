// One declaration per field. Each resource kind describes its inputs and outputs
// once, in a typed table: type, doc, default, whether a change updates in place or
// replaces, whether the value is stable once created, secret, required. From that
// table come `check`'s defaults and shape checks, `diff`'s replaces and stables,
// the SDK's Args and output lists (sdk/generated, by `npm run generate`), the
// reference pages (docs/reference) and the native provider's schema.
//
// Pure data and pure functions: no I/O, no Pulumi.
import { sameValue } from "./values";
import { isUnknown, StringRule, Validator } from "./validate";

/** The shape of a value, as the SDK, the docs and the schema name it. */
export type TypeSpec =
    | { kind: "string"; enum?: readonly string[] }
    | { kind: "integer" }
    | { kind: "number" }
    | { kind: "boolean" }
    | { kind: "array"; items: TypeSpec }
    | { kind: "map"; values: TypeSpec }
    | { kind: "object"; type: ObjectType }
    /** One of several object shapes, told apart by a key only that shape has (`nbd` or `device`). */
    | { kind: "union"; variants: readonly ObjectType[] }
    /** Free-form JSON (parsed tool output passed through). */
    | { kind: "json" };

/** A named object shape (a nested input such as a NIC, or a shared one such as the SSH connection). */
export interface ObjectType {
    /** PascalCase; the SDK's input type is `<name>Args`, the schema's type `baremetal:index:<name>`. */
    readonly name: string;
    readonly doc: string;
    readonly fields: Readonly<Record<string, FieldSpec>>;
    /** The key that tells this shape apart inside a union. */
    readonly discriminator?: string;
    /**
     * Checks the whole object instead of field by field (the SSH connection has
     * its own checker, with key parsing and jump-chain limits). The fields still
     * describe the shape for the SDK, docs and schema.
     */
    readonly check?: (v: Validator, field: string, value: unknown) => unknown;
}

/** What changing an input does to the live object. */
export type ChangeRule = "update" | "replace";

export interface FieldSpec {
    readonly type: TypeSpec;
    /** One or two sentences, shown in the SDK's TSDoc, the reference page and the schema. */
    readonly doc: string;
    /** An input the user must give. */
    readonly required?: boolean;
    /** Filled in by `check` when the input is left out. */
    readonly default?: JsonValue;
    /**
     * What the value is when left out, when that is not a plain value: the kind's
     * own `check` computes it from other inputs (`exportName`: "the LV name"), or
     * the live object decides it (a CRUSH weight: "the weight Ceph gives a new OSD").
     * Either way the output always carries a value. A field the normalised inputs
     * always carry may have this instead of `default`.
     */
    readonly defaultDoc?: string;
    /**
     * Computed by the kind's `check` from other inputs and never given by the user
     * (`requestedBytes` from `size`): not in the SDK's Args, a value sent anyway is
     * ignored (the kind's check overwrites it); an output like any other.
     */
    readonly derived?: true;
    /** "update" (in place) unless said otherwise. */
    readonly change?: ChangeRule;
    /**
     * Sub-fields of an object input whose change replaces while the rest update in
     * place: `["host"]` on a connection (a new box is a new object, a new key is not).
     */
    readonly replaceOn?: readonly string[];
    /** A Pulumi secret end to end: encrypted in state, `[secret]` in previews and pages. */
    readonly secret?: boolean;
    /** Never changes once created, so preview can keep it known through an update. */
    readonly stable?: boolean;
    /** Why the field is kept although a newer one replaces it, and what to use instead. */
    readonly deprecated?: string;
    /** String rules: pattern with a hint, length; `concept` names a shared validator. */
    readonly rule?: StringRule & { min?: number; max?: number; minItems?: number; maxItems?: number; unique?: boolean };
    /**
     * Validates and normalises a present value instead of the generic shape check
     * (a MAC, a device path, a map whose keys have rules); returns undefined after
     * a failure. Absent values never reach it: the default or "is required" applies.
     */
    readonly check?: (v: Validator, field: string, value: unknown) => unknown;
}

export type JsonValue = string | number | boolean | null | JsonValue[] | { [k: string]: JsonValue };

/** An input the normalised inputs always carry (required, defaulted, or computed by the kind's check). */
type PresentField = FieldSpec & ({ required: true } | { default: JsonValue } | { defaultDoc: string } | { derived: true });
/** An input that may be absent from the normalised inputs. */
type AbsentableField = FieldSpec & { required?: false; default?: undefined };

/** What a kind says about itself, besides its fields. */
export interface KindAbout {
    /** The SDK class name and the `<Kind>` of every type token. */
    readonly kind: string;
    /** What the resource is, for the class TSDoc and the reference page. */
    readonly doc: string;
    /** What the ID is and how to find it (for `pulumi import`). */
    readonly id: string;
    /**
     * A short program using the kind: the statements only. The reference page adds
     * the imports of `pulumi` and the kind, and reads each `exampleSecrets` variable
     * from the stack's config as a secret, so the page's example compiles as it is.
     */
    readonly example: string;
    /** Variables the example uses, by the stack config key they come from (`{ key: "sshPrivateKey" }`). */
    readonly exampleSecrets?: Readonly<Record<string, string>>;
    /** The box the example acts on: the page declares `connection` for it (key from config, pinned host key). */
    readonly exampleHost?: string;
    /** Replaces are deleted before the new one is made (the same disks, the same name). */
    readonly deleteBeforeReplace?: boolean;
}

/**
 * The table of one kind, held to its TypeScript types by the compiler: every key of
 * `Inputs` has an entry, a key that is optional in `Inputs` has neither `required`
 * nor `default`, and every key of `State` that is not an input is an output entry.
 */
export interface KindSpec<Inputs, State> extends KindAbout {
    readonly inputs: { readonly [K in keyof Inputs]-?: undefined extends Inputs[K] ? AbsentableField : PresentField };
    readonly outputs: { readonly [K in Exclude<keyof State, keyof Inputs>]-?: FieldSpec };
}

/** A KindSpec with its type parameters erased, for code that walks every kind (generators). */
export interface AnyKindSpec extends KindAbout {
    readonly inputs: Readonly<Record<string, FieldSpec>>;
    readonly outputs: Readonly<Record<string, FieldSpec>>;
}

export function erase<I, S>(spec: KindSpec<I, S>): AnyKindSpec {
    return spec as unknown as AnyKindSpec;
}

// ---- type builders: short, so a table reads like a table ------------------------------

export const t = {
    string: (values?: readonly string[]): TypeSpec => (values ? { kind: "string", enum: values } : { kind: "string" }),
    integer: { kind: "integer" } as TypeSpec,
    number: { kind: "number" } as TypeSpec,
    boolean: { kind: "boolean" } as TypeSpec,
    json: { kind: "json" } as TypeSpec,
    array: (items: TypeSpec): TypeSpec => ({ kind: "array", items }),
    map: (values: TypeSpec): TypeSpec => ({ kind: "map", values }),
    object: (type: ObjectType): TypeSpec => ({ kind: "object", type }),
    union: (...variants: ObjectType[]): TypeSpec => ({ kind: "union", variants }),
};

// ---- what the table decides ----------------------------------------------------------

/** Inputs with a default, as the SDK must list them so their outputs are filled in. */
export function defaultedInputs(spec: AnyKindSpec): string[] {
    return Object.entries(spec.inputs)
        .filter(([, f]) => !f.required)
        .map(([k]) => k);
}

export function outputNames(spec: AnyKindSpec): string[] {
    return Object.keys(spec.outputs);
}

/** Every field whose change replaces, with `replaceOn` sub-fields as dotted paths. */
export function replacingPaths(spec: AnyKindSpec): string[] {
    return Object.entries(spec.inputs).flatMap(([k, f]) =>
        f.change === "replace" ? [k] : (f.replaceOn ?? []).map((s) => `${k}.${s}`),
    );
}

/** The value at a dotted path (`connection.host`), or undefined. */
export function valueAt(o: unknown, path: string): unknown {
    let cur = o;
    for (const part of path.split(".")) {
        if (!cur || typeof cur !== "object") return undefined;
        cur = (cur as Record<string, unknown>)[part];
    }
    return cur;
}

export interface TableDiff {
    /** Every input that differs (its top-level name). */
    changed: string[];
    /** The replacing paths that differ. */
    replaces: string[];
    /** Inputs that replace and outputs marked stable, for an update that replaces nothing. */
    stables: string[];
}

/**
 * What the table says about a change from `olds` (the state) to `news` (checked
 * inputs). An old state without a field that now has a default is not a change
 * (a stack written before the field existed).
 */
export function diffByTable(spec: AnyKindSpec, olds: Record<string, unknown>, news: Record<string, unknown>): TableDiff {
    const before = (path: string): unknown => {
        const f = spec.inputs[path];
        const old = valueAt(olds, path);
        return old === undefined && f?.default !== undefined ? f.default : old;
    };
    const changed = Object.keys(spec.inputs).filter((k) => !sameValue(before(k), news[k]));
    const replaces = replacingPaths(spec).filter((p) => !sameValue(before(p), valueAt(news, p)));
    const stables =
        replaces.length > 0
            ? []
            : [...Object.entries(spec.inputs).filter(([, f]) => f.change === "replace"), ...Object.entries(spec.outputs).filter(([, f]) => f.stable)].map(([k]) => k);
    return { changed, replaces, stables };
}

// ---- checking inputs against the table ------------------------------------------------

/**
 * Checks every input the table declares and fills in defaults; unknown keys are
 * refused by name. Returns the normalised inputs (undefined values dropped) —
 * partial when there were failures, so the kind can still run its cross-field
 * checks on what is valid without reporting follow-on errors for what is not.
 */
export function checkByTable(v: Validator, spec: AnyKindSpec, news: Record<string, unknown>, ignore: readonly string[] = []): Record<string, unknown> {
    return checkFields(v, "", spec.inputs, news, ignore);
}

function checkFields(v: Validator, prefix: string, fields: Readonly<Record<string, FieldSpec>>, raw: Record<string, unknown>, ignore: readonly string[]): Record<string, unknown> {
    for (const k of Object.keys(raw)) {
        if (!(k in fields) && !ignore.includes(k)) v.fail(`${prefix}${k}`, `is not a field here (fields: ${Object.keys(fields).join(", ")})`);
    }
    const out: Record<string, unknown> = {};
    for (const [k, f] of Object.entries(fields)) {
        // The kind's check computes it; what the user sent is not looked at.
        if (f.derived) continue;
        const value = checkField(v, `${prefix}${k}`, f, raw[k]);
        if (value !== undefined) out[k] = value;
    }
    return out;
}

/** One field: absent → default or "is required"; present → its shape, then its own check. */
export function checkField(v: Validator, field: string, f: FieldSpec, value: unknown): unknown {
    if (isUnknown(value)) return value;
    // An empty string for an optional string is "not given" (as the SDK's `?? ""` idiom means).
    const absent = value === undefined || value === null || (value === "" && f.type.kind === "string" && !f.required && !f.rule?.allowEmpty);
    if (absent) {
        if (f.default !== undefined) return structuredClone(f.default);
        if (f.required) {
            // An object type with its own checker words its own "is required" (with an example).
            if (f.type.kind === "object" && f.type.type.check) return f.type.type.check(v, field, value);
            return v.fail(field, "is required");
        }
        return undefined;
    }
    return f.check ? f.check(v, field, value) : checkShape(v, field, f.type, value, f.rule ?? {});
}

function checkShape(v: Validator, field: string, type: TypeSpec, value: unknown, rule: NonNullable<FieldSpec["rule"]>): unknown {
    if (isUnknown(value)) return value;
    switch (type.kind) {
        case "string": {
            const s = v.string(field, value, { ...rule, optional: false });
            if (s !== undefined && type.enum && !isUnknown(s) && !type.enum.includes(s)) {
                return v.fail(field, `${JSON.stringify(s)} must be ${oneOf(type.enum)}`);
            }
            return s;
        }
        case "integer":
            return v.integer(field, value, { min: rule.min, max: rule.max });
        case "number":
            if (typeof value !== "number" || !Number.isFinite(value)) return v.fail(field, `must be a number, got ${JSON.stringify(value)}`);
            if (rule.min !== undefined && value < rule.min) return v.fail(field, `must be at least ${rule.min}, got ${value}`);
            if (rule.max !== undefined && value > rule.max) return v.fail(field, `must be at most ${rule.max}, got ${value}`);
            return value;
        case "boolean":
            return v.boolean(field, value, false);
        case "json":
            return value;
        case "array": {
            const items = v.list(field, value, (f, x) => checkShape(v, f, type.items, x, itemRule(rule)), { min: rule.minItems, max: rule.maxItems });
            if (items && rule.unique && !isUnknown(items) && new Set(items.map((x) => JSON.stringify(x))).size !== items.length) {
                return v.fail(field, "lists the same item twice");
            }
            return items;
        }
        case "map": {
            if (typeof value !== "object" || Array.isArray(value)) return v.fail(field, "must be an object");
            const out: Record<string, unknown> = {};
            for (const [k, x] of Object.entries(value as Record<string, unknown>)) {
                const checked = checkShape(v, `${field}.${k}`, type.values, x, itemRule(rule));
                if (checked !== undefined) out[k] = checked;
            }
            return out;
        }
        case "object":
            return checkObject(v, field, type.type, value);
        case "union": {
            if (typeof value !== "object" || value === null || Array.isArray(value)) return v.fail(field, `must be an object (${unionHint(type.variants)})`);
            const keys = Object.keys(value);
            const matching = type.variants.filter((o) => o.discriminator !== undefined && keys.includes(o.discriminator));
            if (matching.length !== 1) return v.fail(field, `must have exactly one of ${unionHint(type.variants)}`);
            return checkObject(v, field, matching[0], value);
        }
    }
}

function checkObject(v: Validator, field: string, type: ObjectType, value: unknown): unknown {
    if (type.check) return type.check(v, field, value);
    if (typeof value !== "object" || value === null || Array.isArray(value)) return v.fail(field, "must be an object");
    return checkFields(v, `${field}.`, type.fields, value as Record<string, unknown>, []);
}

/** Rules of a list or map apply to the list; a string rule (pattern, length) applies to each item. */
function itemRule(rule: NonNullable<FieldSpec["rule"]>): NonNullable<FieldSpec["rule"]> {
    const { minItems: _a, maxItems: _b, unique: _c, ...rest } = rule;
    return rest;
}

function oneOf(values: readonly string[]): string {
    return values.length === 1 ? values[0] : `${values.slice(0, -1).join(", ")} or ${values[values.length - 1]}`;
}

function unionHint(variants: readonly ObjectType[]): string {
    return variants.map((o) => `\`${o.discriminator}\``).join(" or ");
}
