// The native provider's package schema, as `pulumi package get-schema` prints it
// (the plugin's getSchema), held against the field tables it is generated from:
// every kind, every field, its description, secrets, replaces and required lists,
// every nested type, and no reference to a type that is not there. (That pulumi
// itself accepts it is the e2e tier's check: test/e2e/native.test.ts.)
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { AnyKindSpec, erase, FieldSpec, ObjectType, TypeSpec } from "../../provider/core/fields";
import { kinds } from "../../provider/index";
import { emptyConfig } from "../../provider/native/config";
import { importIds } from "../../provider/native/importIds";
import { nativeProvider } from "../../provider/native/server";
import type { PackageSchema, SchemaProperty } from "../../provider/schema/packageSchema";
import { collectObjectTypes } from "../../provider/schema/walk";

const repo = path.resolve(__dirname, "../../..");
const version = (JSON.parse(fs.readFileSync(path.join(repo, "package.json"), "utf8")) as { version: string }).version;
const specs: AnyKindSpec[] = Object.values(kinds).map((k) => erase(k.spec as never));

async function schema(): Promise<PackageSchema> {
    const p = nativeProvider({ version, config: () => emptyConfig });
    return JSON.parse(await p.getSchema!()) as PackageSchema;
}

/** Every field of every kind and nested type, with where it sits in the schema. */
function everyField(s: PackageSchema): { where: string; f: FieldSpec; p: SchemaProperty | undefined }[] {
    const out: { where: string; f: FieldSpec; p: SchemaProperty | undefined }[] = [];
    for (const spec of specs) {
        const r = s.resources[`baremetal:index:${spec.kind}`];
        for (const [k, f] of [...Object.entries(spec.inputs), ...Object.entries(spec.outputs)]) out.push({ where: `${spec.kind}.${k}`, f, p: r?.properties[k] });
    }
    for (const o of collectObjectTypes(specs)) {
        for (const [k, f] of Object.entries(o.fields)) out.push({ where: `${o.name}.${k}`, f, p: s.types[`baremetal:index:${o.name}`]?.properties[k] });
    }
    return out;
}

describe("native provider: the package schema from the field tables", () => {
    it("names the package and its version as package.json does, with every kind as baremetal:index:<Kind>", async () => {
        const s = await schema();
        assert.strictEqual(s.name, "baremetal");
        assert.strictEqual(s.version, version);
        assert.deepStrictEqual(Object.keys(s.resources).sort(), Object.keys(kinds).map((k) => `baremetal:index:${k}`).sort());
    });

    it("has every input (as an input and an output) and every output, each with the table's doc", async () => {
        const s = await schema();
        for (const spec of specs) {
            const r = s.resources[`baremetal:index:${spec.kind}`];
            const settable = Object.entries(spec.inputs).filter(([, f]) => !f.derived).map(([k]) => k);
            assert.deepStrictEqual(Object.keys(r.inputProperties).sort(), settable.sort(), `${spec.kind} inputs`);
            assert.deepStrictEqual(Object.keys(r.properties).sort(), [...Object.keys(spec.inputs), ...Object.keys(spec.outputs)].sort(), `${spec.kind} outputs`);
            assert.ok(r.description.startsWith(spec.doc.trim()), `${spec.kind} description`);
        }
        for (const { where, f, p } of everyField(s)) {
            assert.ok(p, `${where} is missing`);
            assert.ok(p.description.startsWith(f.doc.trim()), `${where}: description does not start with the table's doc`);
        }
    });

    it("marks exactly the table's secrets secret (the connection's key, ConsulKeys.secrets, tunnel keys ...)", async () => {
        const fields = everyField(await schema());
        const secret = fields.filter(({ p }) => p?.secret).map(({ where }) => where).sort();
        assert.deepStrictEqual(secret, fields.filter(({ f }) => f.secret).map(({ where }) => where).sort());
        assert.ok(secret.includes("Connection.privateKey") && secret.includes("ConsulKeys.secrets"), secret.join(", "));
    });

    it("marks what replaces: replaceOnChanges on replacing fields, the replacing sub-fields in the description", async () => {
        const fields = everyField(await schema());
        for (const { where, f, p } of fields) {
            assert.strictEqual(p?.replaceOnChanges === true, f.change === "replace", `${where} replaceOnChanges`);
            for (const sub of f.replaceOn ?? []) assert.match(p?.description ?? "", new RegExp(`\`${sub}\`.* replaces the resource`), `${where} names ${sub}`);
        }
        const replacing = fields.filter(({ p }) => p?.replaceOnChanges).map(({ where }) => where);
        assert.ok(replacing.includes("RaidArray.device") && replacing.includes("LxcContainer.template"), replacing.join(", "));
    });

    it("lists required inputs and outputs as the table says", async () => {
        const s = await schema();
        for (const spec of specs) {
            const r = s.resources[`baremetal:index:${spec.kind}`];
            assert.deepStrictEqual(r.requiredInputs, Object.entries(spec.inputs).filter(([, f]) => f.required).map(([k]) => k).sort(), spec.kind);
            // A defaulted input is always there as an output, never required as an input.
            for (const [k, f] of Object.entries(spec.inputs)) if (f.default !== undefined) assert.ok(r.required.includes(k) && !r.requiredInputs.includes(k), `${spec.kind}.${k}`);
        }
    });

    it("has every nested object type under types, and every $ref points at one that is there", async () => {
        const s = await schema();
        const used: ObjectType[] = collectObjectTypes(specs);
        assert.deepStrictEqual(Object.keys(s.types).sort(), used.map((o) => `baremetal:index:${o.name}`).sort());
        const refs = [...JSON.stringify(s).matchAll(/"\$ref":"([^"]+)"/g)].map((m) => m[1]);
        assert.ok(refs.length > 20);
        for (const ref of refs) {
            if (ref === "pulumi.json#/Any") continue;
            assert.ok(ref.startsWith("#/types/") && s.types[ref.slice("#/types/".length)], `dangling ${ref}`);
        }
        assert.deepStrictEqual(s.types["baremetal:index:Connection"].required, ["host"]);
    });

    it("writes each type as the schema spells it (lists, maps, unions, free-form JSON)", async () => {
        const s = await schema();
        const guest = s.resources["baremetal:index:KvmGuest"].inputProperties;
        assert.deepStrictEqual(guest.disks.items, { oneOf: [{ $ref: "#/types/baremetal:index:KvmGuestNbdDisk" }, { $ref: "#/types/baremetal:index:KvmGuestDeviceDisk" }] });
        assert.deepStrictEqual(s.resources["baremetal:index:ConsulKeys"].inputProperties.keys.additionalProperties, { type: "string" });
        const json = everyField(s).find(({ f }) => (f.type as TypeSpec).kind === "json");
        if (json) assert.strictEqual(json.p?.$ref, "pulumi.json#/Any", json.where);
        assert.strictEqual(s.resources["baremetal:index:RaidArray"].inputProperties.level.default, "raid1");
    });

    it("declares the provider settings from the connection tables (secret key, host keys, Consul token)", async () => {
        const { variables } = (await schema()).config;
        assert.strictEqual(variables.privateKey.secret, true);
        assert.strictEqual(variables.consulToken.secret, true);
        assert.deepStrictEqual(variables.hostKeys.additionalProperties, { type: "string" });
        assert.strictEqual(variables.port.type, "integer");
        assert.ok(!("host" in variables), "the host is a resource's own, never a provider default");
    });

    it("tells how each kind is imported, or that it is not", async () => {
        const s = await schema();
        for (const spec of specs) {
            const d = s.resources[`baremetal:index:${spec.kind}`].description;
            if (importIds[spec.kind]) assert.ok(d.includes(`pulumi import baremetal:index:${spec.kind}`) && d.includes(importIds[spec.kind]), spec.kind);
            else assert.match(d, /Not importable with `pulumi import`; declare it with `adopt: true`/, spec.kind);
        }
    });
});
