// The Pulumi package schema of the native provider (`pulumi package get-schema`),
// generated from the field tables like the SDK and the reference pages: every
// kind as `baremetal:index:<Kind>`, every input and output with its type and
// description, secrets marked, what replaces marked, what is required listed, the
// nested object types under `types`, and the provider's configuration.
// Deterministic and pure.
import { AnyKindSpec, FieldSpec, ObjectType, TypeSpec } from "../core/fields";
import { configFields } from "../native/config";
import { importIds } from "../native/importIds";
import { collectObjectTypes } from "./walk";

export const packageName = "baremetal";

/** A type as the schema writes it (the subset these tables use). */
export interface SchemaType {
    type?: "string" | "integer" | "number" | "boolean" | "array" | "object";
    items?: SchemaType;
    additionalProperties?: SchemaType;
    $ref?: string;
    oneOf?: SchemaType[];
}

export interface SchemaProperty extends SchemaType {
    description: string;
    secret?: true;
    /** A change replaces the resource (SDKs pass it as the replaceOnChanges option). */
    replaceOnChanges?: true;
    /** For docs: a change replaces the resource. */
    willReplaceOnChanges?: true;
    default?: string | number | boolean;
    deprecationMessage?: string;
}

export interface SchemaObject {
    type: "object";
    description: string;
    properties: Record<string, SchemaProperty>;
    required?: string[];
}

export interface SchemaResource {
    description: string;
    properties: Record<string, SchemaProperty>;
    required: string[];
    inputProperties: Record<string, SchemaProperty>;
    requiredInputs: string[];
}

export interface PackageSchema {
    name: string;
    displayName: string;
    version: string;
    description: string;
    keywords: string[];
    license: string;
    config: { variables: Record<string, SchemaProperty> };
    provider: { description: string; inputProperties: Record<string, SchemaProperty> };
    resources: Record<string, SchemaResource>;
    types: Record<string, SchemaObject>;
}

export function token(name: string): string {
    return `${packageName}:index:${name}`;
}

export function packageSchema(specs: readonly AnyKindSpec[], version: string): PackageSchema {
    const config = Object.fromEntries(Object.entries(configFields).map(([k, f]) => [k, property(f)]));
    return {
        name: packageName,
        displayName: "Bare metal",
        version,
        description: "A small bare-metal data center as Pulumi resources: PXE, machines, RAID, LVM and NBD, Ceph, KVM and LXC, over SSH and Consul.",
        keywords: ["pulumi", "baremetal", "category/infrastructure", "kind/native"],
        license: "Apache-2.0",
        config: { variables: config },
        provider: {
            description: "The baremetal provider. Its settings (`baremetal:<name>` in the stack configuration) fill in what a resource's SSH or Consul connection leaves out.",
            inputProperties: config,
        },
        resources: Object.fromEntries(specs.map((s) => [token(s.kind), resource(s)])),
        types: Object.fromEntries(collectObjectTypes(specs).map((o) => [token(o.name), objectType(o)])),
    };
}

function resource(s: AnyKindSpec): SchemaResource {
    const inputs = Object.entries(s.inputs).filter(([, f]) => !f.derived);
    const present = (f: FieldSpec) => f.required === true || f.default !== undefined || f.defaultDoc !== undefined || f.derived === true;
    const importLine = importIds[s.kind]
        ? `\n\n## Import\n\n\`pulumi import ${token(s.kind)} <name> <import ID>\`, the import ID being ${importIds[s.kind]}`
        : "\n\n## Import\n\nNot importable with `pulumi import`; declare it with `adopt: true` to take an existing object over.";
    return {
        description: `${s.doc.trim()}\n\nID: ${s.id.trim()}${importLine}`,
        properties: Object.fromEntries([...Object.entries(s.inputs), ...Object.entries(s.outputs)].map(([k, f]) => [k, property(f)])),
        required: [...Object.entries(s.inputs).filter(([, f]) => present(f)), ...Object.entries(s.outputs).filter(([, f]) => f.required)].map(([k]) => k).sort(),
        inputProperties: Object.fromEntries(inputs.map(([k, f]) => [k, property(f)])),
        requiredInputs: inputs.filter(([, f]) => f.required).map(([k]) => k).sort(),
    };
}

function objectType(o: ObjectType): SchemaObject {
    const required = Object.entries(o.fields).filter(([, f]) => f.required).map(([k]) => k).sort();
    return {
        type: "object",
        description: o.doc.trim(),
        properties: Object.fromEntries(Object.entries(o.fields).map(([k, f]) => [k, property(f)])),
        ...(required.length > 0 ? { required } : {}),
    };
}

/** One property: its type, and a description that says what the table says (default, replaces, values). */
function property(f: FieldSpec): SchemaProperty {
    const notes: string[] = [];
    if (f.type.kind === "string" && f.type.enum) notes.push(`One of ${f.type.enum.map((e) => `\`${e}\``).join(", ")}.`);
    if (f.default !== undefined) notes.push(`Default: \`${JSON.stringify(f.default)}\`.`);
    else if (f.defaultDoc) notes.push(`Default: ${f.defaultDoc}.`);
    if (f.change === "replace") notes.push("Changing it replaces the resource.");
    if (f.replaceOn && f.replaceOn.length > 0) notes.push(`Changing its ${f.replaceOn.map((x) => `\`${x}\``).join(" or ")} replaces the resource; other changes are made in place.`);
    if (f.stable) notes.push("Stable once created.");
    const p: SchemaProperty = { ...schemaType(f.type), description: [f.doc.trim(), ...notes].join(" ") };
    if (f.secret) p.secret = true;
    if (f.change === "replace") {
        p.replaceOnChanges = true;
        p.willReplaceOnChanges = true;
    }
    if (f.deprecated) p.deprecationMessage = f.deprecated;
    if (typeof f.default === "string" || typeof f.default === "number" || typeof f.default === "boolean") p.default = f.default;
    return p;
}

export function schemaType(t: TypeSpec): SchemaType {
    switch (t.kind) {
        case "string":
            return { type: "string" };
        case "integer":
            return { type: "integer" };
        case "number":
            return { type: "number" };
        case "boolean":
            return { type: "boolean" };
        case "json":
            return { $ref: "pulumi.json#/Any" };
        case "array":
            return { type: "array", items: schemaType(t.items) };
        case "map":
            return { type: "object", additionalProperties: schemaType(t.values) };
        case "object":
            return { $ref: `#/types/${token(t.type.name)}` };
        case "union":
            return { oneOf: t.variants.map((o) => ({ $ref: `#/types/${token(o.name)}` })) };
    }
}
