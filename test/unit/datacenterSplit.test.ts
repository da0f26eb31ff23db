// The seed's data center split into two stacks from one inventory (config `part`):
// `storage` and `services` together declare exactly what `all` declares, each
// resource in one of them; the services stack takes the NBD endpoints of its
// guests from the storage stack's `storageExports` (what a StackReference reads),
// and says which export is missing when the storage stack lacks one. Pulumi's own
// mock monitor stands in for the engine, which cannot run in the unit tier.
import * as assert from "assert";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { Inventory, loadInventory } from "../../examples/datacenter/program/inventory";
import { throwawayPrivateKey } from "../helpers/keys";

const repo = path.resolve(__dirname, "../../..");

// The program imports the package by name (the build), so the project's tsc does not compile it:
// it is loaded as `pulumi` loads it, through ts-node (transpile only; test/unit/programsTypecheck.test.ts
// type-checks it). The few types used here are restated.
type DataCenterPart = "all" | "storage" | "services";
interface ExportRef { san: string; exportAddress: string; port: number; exportName: string; uri: string; sizeBytes: number }
interface StorageExports { volumes: Record<string, ExportRef> }
interface DataCenter { resourceCount: number; summary: pulumi.Output<unknown>; storageExports: pulumi.Output<StorageExports> }
type Declare = (inv: Inventory, secrets: unknown, options: { part?: DataCenterPart; storage?: StorageExports }) => DataCenter;
let declareDataCenter: Declare;

interface Made { type: string; name: string; inputs: Record<string, unknown> }

let made: Made[] = [];

function value<T>(o: pulumi.Output<T>): Promise<T> {
    return new Promise((resolve) => o.apply((v) => resolve(v)));
}

const secrets = {
    sshPrivateKey: throwawayPrivateKey(), // made at run time: no key is kept in the repository
    bmcPassword: () => "bmc",
    openvpnKey: () => "vpn",
};

/** Declares one part and waits until every resource reached the (mock) engine. */
async function declare(inv: Inventory, part: DataCenterPart, storage?: StorageExports): Promise<{ made: Made[]; exports: StorageExports; resourceCount: number }> {
    made = [];
    const dc = declareDataCenter(inv, secrets, { part, ...(storage ? { storage } : {}) });
    await value(dc.summary);
    const exports = await value(dc.storageExports);
    // Registrations whose inputs wait on other outputs land a little later.
    for (let i = 0; i < 50 && made.length < dc.resourceCount; i++) await new Promise((r) => setImmediate(r));
    return { made, exports, resourceCount: dc.resourceCount };
}

const kindOf = (m: Made) => m.type.split(":").pop() ?? "";

describe("the seed's data center split into stacks (storage, services)", function () {
    this.timeout(60_000);
    let inv: Inventory;

    before(() => {
        pulumi.runtime.setMocks({
            newResource(args) {
                made.push({ type: args.type, name: args.name, inputs: args.inputs as Record<string, unknown> });
                // Outputs a real create returns, for the exports the storage stack publishes.
                const extra = args.type.endsWith("NbdVolume")
                    ? { uri: `nbd://${String(args.inputs.exportAddress)}:${String(args.inputs.port)}/${String(args.inputs.name)}`, sizeBytes: 1 << 30, exportName: args.inputs.name }
                    : {};
                return { id: `${args.name}-id`, state: { ...args.inputs, ...extra } };
            },
            call: (args) => args.inputs,
        }, "datacenter", "split", false);
        (require("ts-node") as { register(o: object): void }).register({ transpileOnly: true, compilerOptions: { module: "commonjs" } });
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        declareDataCenter = (require(path.join(repo, "examples/datacenter/program/datacenter.ts")) as { declareDataCenter: Declare }).declareDataCenter;
        inv = loadInventory(path.join(repo, "examples/datacenter/inventory.yaml"));
    });

    it("storage and services together declare what the whole declares, each resource once", async () => {
        const all = await declare(inv, "all");
        const storage = await declare(inv, "storage");
        const services = await declare(inv, "services", storage.exports);
        const names = (r: { made: Made[] }) => r.made.map((m) => `${kindOf(m)}::${m.name}`).sort();
        const both = [...names(storage), ...names(services)].sort();
        assert.deepStrictEqual(both, names(all));
        assert.strictEqual(new Set(both).size, both.length, "a resource is in both stacks");
        assert.strictEqual(storage.resourceCount + services.resourceCount, all.resourceCount);
        const kinds = (r: { made: Made[] }) => new Set(r.made.map(kindOf));
        for (const k of ["PxeServer", "RaidArray", "CephOsd", "VolumeGroup", "NbdVolume"]) {
            assert.ok(kinds(storage).has(k), `storage declares no ${k}`);
            assert.ok(!kinds(services).has(k), `services declares a ${k}`);
        }
        for (const k of ["LxcContainer", "KvmGuest"]) assert.ok(kinds(services).has(k), `services declares no ${k}`);
        assert.ok(!kinds(storage).has("LxcContainer"), "storage declares a container");
        // The SAN VMs are the storage stack's guests; every other guest is the services stack's.
        const sanGuests = (inv.guests ?? []).filter((g) => g.san).map((g) => `guest-${g.name}`);
        assert.ok(sanGuests.length > 0);
        for (const g of sanGuests) assert.ok(storage.made.some((m) => m.name === g), `${g} is not in storage`);
        assert.deepStrictEqual(Object.keys(storage.exports.volumes).sort(), (inv.volumes ?? []).map((v) => v.name).sort());
    });

    it("the services stack's guests take their NBD endpoints from the storage stack's exports", async () => {
        const storage = await declare(inv, "storage");
        const volumes = Object.fromEntries(Object.entries(storage.exports.volumes).map(([k, v]) => [k, { ...v, exportAddress: "198.18.99.1", port: 20000 }]));
        const services = await declare(inv, "services", { volumes });
        const guest = (inv.guests ?? []).find((g) => !g.san && (g.disks ?? []).some((d) => "volume" in d))!;
        const made = services.made.find((m) => m.name === `guest-${guest.name}`);
        assert.ok(made, `guest-${guest.name} is not in services`);
        const disks = made.inputs.disks as { nbd?: { host: string; port: number } }[];
        const nbd = disks.filter((d) => d.nbd);
        assert.ok(nbd.length > 0);
        for (const d of nbd) assert.deepStrictEqual({ host: d.nbd!.host, port: d.nbd!.port }, { host: "198.18.99.1", port: 20000 });
    });

    it("a services stack needs the storage stack's exports, and names one it lacks", async () => {
        assert.throws(() => declareDataCenter(inv, secrets, { part: "services" }), /needs the storage stack's exports/);
        const err = await new Promise<string>((resolve) => {
            const handler = (e: Error) => resolve(String(e.message));
            process.once("unhandledRejection", handler);
            const dc = declareDataCenter(inv, secrets, { part: "services", storage: { volumes: {} } });
            dc.summary.apply(() => resolve("no error"));
        });
        assert.match(err, /the storage stack publishes no export "[^"]+" \(it has none\): run `pulumi up` on the storage stack first/);
    });
});
