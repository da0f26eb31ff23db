// Walking the field tables: the named object types they use, and where secrets sit.
import { AnyKindSpec, FieldSpec, ObjectType, TypeSpec } from "../core/fields";

/**
 * Where secrets sit in a value: `true` the whole value, a string the name of a
 * nested type (see the named trees), an object by field, with `[]` for the items
 * of a list and `{}` for the values of a map.
 */
export type SecretNode = true | string | { [field: string]: SecretNode };

/** Every named object type the tables use, once each, sorted by name. Two different types with one name are a bug. */
export function collectObjectTypes(specs: readonly AnyKindSpec[]): ObjectType[] {
    const seen = new Map<string, ObjectType>();
    const visitType = (t: TypeSpec): void => {
        switch (t.kind) {
            case "array":
                return visitType(t.items);
            case "map":
                return visitType(t.values);
            case "object":
                return visitObject(t.type);
            case "union":
                return t.variants.forEach(visitObject);
            default:
                return;
        }
    };
    const visitObject = (o: ObjectType): void => {
        const known = seen.get(o.name);
        if (known === o) return;
        if (known) throw new Error(`two different object types are both named ${o.name}; give one another name`);
        seen.set(o.name, o);
        Object.values(o.fields).forEach((f) => visitType(f.type));
    };
    for (const s of specs) for (const f of [...Object.values(s.inputs), ...Object.values(s.outputs)]) visitType(f.type);
    return [...seen.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * The secret tree of a type, or undefined when it holds no secret. A nested
 * object type becomes a reference by name (so self-referencing types such as a
 * connection's jump host stay finite), unless `expand` asks for its fields.
 */
export function secretTree(t: TypeSpec, expand = false): SecretNode | undefined {
    switch (t.kind) {
        case "array": {
            const n = secretTree(t.items);
            return n === undefined ? undefined : { "[]": n };
        }
        case "map": {
            const n = secretTree(t.values);
            return n === undefined ? undefined : { "{}": n };
        }
        case "object":
            if (!hasSecret(t.type, new Set())) return undefined;
            return expand ? fieldsTree(t.type.fields) : t.type.name;
        case "union": {
            const merged: Record<string, SecretNode> = {};
            for (const o of t.variants) {
                const n = hasSecret(o, new Set()) ? fieldsTree(o.fields) : undefined;
                if (n && typeof n === "object") Object.assign(merged, n);
            }
            return Object.keys(merged).length > 0 ? merged : undefined;
        }
        default:
            return undefined;
    }
}

function fieldsTree(fields: Readonly<Record<string, FieldSpec>>): SecretNode | undefined {
    const out: Record<string, SecretNode> = {};
    for (const [k, f] of Object.entries(fields)) {
        const n = f.secret ? true : secretTree(f.type);
        if (n !== undefined) out[k] = n;
    }
    return Object.keys(out).length > 0 ? out : undefined;
}

function hasSecret(o: ObjectType, visiting: Set<ObjectType>): boolean {
    if (visiting.has(o)) return false;
    visiting.add(o);
    return Object.values(o.fields).some((f) => f.secret || typeHasSecret(f.type, visiting));
}

function typeHasSecret(t: TypeSpec, visiting: Set<ObjectType>): boolean {
    switch (t.kind) {
        case "array":
            return typeHasSecret(t.items, visiting);
        case "map":
            return typeHasSecret(t.values, visiting);
        case "object":
            return hasSecret(t.type, visiting);
        case "union":
            return t.variants.some((o) => hasSecret(o, visiting));
        default:
            return false;
    }
}
