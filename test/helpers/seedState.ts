// A synthetic state of the seed's data center (examples/datacenter, 116 resources),
// for the map's tests and benchmark: the seed cannot be brought up here (its hosts
// do not exist), so the state is made from what the real `pulumi preview --json`
// of the seed declares (URNs, types, checked inputs, dependencies, parents) plus,
// per kind, the outputs a healthy `pulumi up` would have read (arrays clean, guests
// running, OSDs up and in, one PXE server active). Secrets are written as state
// writes them, a signature and a ciphertext; here the ciphertext is made up (it is
// never decrypted: the map must not show it, whatever it holds).
//
// `node dist/test/helpers/seedState.js` previews the seed with the real CLI and
// rewrites the committed fixture (test/unit/fixtures/map/seed-state.json).
import { execFileSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { parse } from "yaml";
import type { PreviewJson } from "./pulumi";

export const secretSignature = { key: "4dabf18193072939515e22adb298388d", value: "1b47061264138c4ac30d75fd1eb44270" };
const repo = path.resolve(__dirname, "../../..");
export const seedStateFixture = path.join(repo, "test/unit/fixtures/map/seed-state.json");

type Json = string | number | boolean | null | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };

interface PreviewState {
    urn: string;
    type: string;
    custom?: boolean;
    inputs?: Obj;
    parent?: string;
    provider?: string;
    dependencies?: string[];
    propertyDependencies?: Record<string, string[]>;
}

/** A made-up ciphertext in the shape the passphrase provider writes (`v1:<nonce>:<sealed>`), from a seeded hash. */
function fakeCiphertext(seed: string): string {
    const h = (s: string) => crypto.createHash("sha256").update(s).digest("base64");
    return `v1:${h(`nonce ${seed}`).slice(0, 16)}:${h(`sealed ${seed}`)}${h(`more ${seed}`)}`;
}

function sealed(seed: string): Obj {
    return { [secretSignature.key]: secretSignature.value, ciphertext: fakeCiphertext(seed) };
}

/** Preview's "[secret]" placeholders become state's secret objects. */
function seal(v: Json, where: string): Json {
    if (v === "[secret]") return sealed(where);
    if (Array.isArray(v)) return v.map((x, i) => seal(x, `${where}/${i}`));
    if (v !== null && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, seal(x, `${where}/${k}`)]));
    return v;
}

const uuid = (seed: string) => {
    const h = crypto.createHash("sha256").update(seed).digest("hex");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
};
const str = (v: Json | undefined) => (typeof v === "string" ? v : "");
const arr = (v: Json | undefined): Json[] => (Array.isArray(v) ? v : []);
const obj = (v: Json | undefined): Obj => (v !== null && typeof v === "object" && !Array.isArray(v) ? v : {});

interface SeedFacts {
    /** network -> the machine that is its OpenVPN hub. */
    tunnelHubs: Map<string, string>;
}

function seedFacts(inventoryFile: string): SeedFacts {
    const inv = parse(fs.readFileSync(inventoryFile, "utf8")) as { networks: Record<string, { tunnelHub?: string }> };
    return { tunnelHubs: new Map(Object.entries(inv.networks).filter(([, n]) => n.tunnelHub).map(([k, n]) => [k, n.tunnelHub!])) };
}

/** What a healthy read of each kind returns, beside the inputs. */
function liveOutputs(kind: string, name: string, inputs: Obj, ctx: { pxeIndex: number; osdIndex: number; bridges: PreviewState[]; facts: SeedFacts }): Obj {
    switch (kind) {
        case "Machine":
            return { entries: [], consulNode: { address: str(inputs.ip), meta: { mac: str(inputs.mac), role: str(inputs.role), profile: str(inputs.profile), "managed-by": "pulumi-baremetal" } } };
        case "PxeServer":
            return {
                family: "alpine", baseUrl: `http://${str(inputs.address)}${inputs.httpPort && inputs.httpPort !== 80 ? `:${inputs.httpPort}` : ""}`,
                dhcpRole: ctx.pxeIndex === 0 ? "active" : "standby", leases: [], files: {},
            };
        case "RaidArray":
            return { uuid: uuid(name).replace(/-/g, ":").slice(0, 35), state: "clean", activeMembers: arr(inputs.members), failedMembers: [], sizeBytes: 4000787030016 };
        case "VolumeGroup":
            return { uuid: uuid(name), sizeBytes: 2 * 4000650887168, freeBytes: 6 * 2 ** 40, extentBytes: 4 * 2 ** 20, lvCount: 3, physicalVolumes: arr(inputs.devices) };
        case "NbdVolume":
            return {
                sizeBytes: inputs.requestedBytes ?? 0, lvUuid: uuid(name), lvPath: `/dev/${str(inputs.volumeGroup)}/${str(inputs.name)}`, serving: true,
                uri: `nbd://${str(inputs.exportAddress)}:${inputs.port}/${str(inputs.exportName)}`, serviceId: `nbd-${str(inputs.exportName)}`, registered: true,
            };
        case "CephOsd":
            return {
                osdId: ctx.osdIndex, osdFsid: uuid(name), clusterFsid: uuid("seed ceph"), hostName: name.replace(/^osd-/, "").replace(/-\d+$/, ""),
                lvPath: `/dev/ceph-${uuid(`vg ${name}`)}/osd-block-${uuid(name)}`, devices: [str(inputs.device)], up: true, in: true, reweight: 1,
                crushWeight: 3.6389, deviceClass: str(inputs.deviceClass) || "hdd", crushLocation: {},
            };
        case "OvsBridge": {
            const network = str(inputs.network);
            const [, host] = /^bridge-(.+)-[a-z]+$/.exec(name) ?? [];
            const hub = ctx.facts.tunnelHubs.get(network);
            // The boxes without a NIC on a tunnelled network dial its hub (examples/datacenter/program).
            const clients = ctx.bridges.filter((b) => str(b.inputs?.network) === network && !b.inputs?.uplink);
            const tunnelStates: Obj = {};
            if (hub && host === hub) clients.forEach((_c, i) => (tunnelStates[`v${network}${i + 1}`] = "active"));
            else if (hub && !inputs.uplink) tunnelStates[`v${network}`] = "active";
            return { ports: [str(inputs.uplink), ...Object.keys(tunnelStates)].filter(Boolean), addresses: [], movedAddresses: [], tunnelStates };
        }
        case "KvmGuest": {
            const nics = arr(inputs.nics).map(obj);
            const mac = str(nics[0]?.mac);
            return {
                mac, serviceName: `baremetal-guest-${str(inputs.name)}`, qmpSocket: `/run/baremetal/guests/${str(inputs.name)}/qmp.sock`,
                consoleLog: `/var/log/baremetal/guest-${str(inputs.name)}.log`, status: "running", running: true, blockDevices: [],
                taps: nics.map((n) => ({ mac: str(n.mac), tap: `vm${str(n.mac).replace(/:/g, "")}`, bridge: str(n.bridge) })),
            };
        }
        case "LxcContainer":
            return {
                state: "RUNNING", pid: 1000 + (name.length * 37) % 9000,
                addresses: arr(inputs.network).map((n) => str(obj(n).ipv4).split("/")[0]).filter(Boolean), configPath: `/var/lib/lxc/${str(inputs.name)}/config`,
            };
        default:
            return {};
    }
}

/** The state `pulumi stack export` would print after a healthy `up` of what the preview declares. */
export function seedStateFromPreview(preview: PreviewJson, inventoryFile = path.join(repo, "examples/datacenter/inventory.yaml")): Obj {
    const facts = seedFacts(inventoryFile);
    const states = preview.steps.map((s) => (s as unknown as { newState: PreviewState }).newState).filter((s) => s !== undefined);
    const bridges = states.filter((s) => s.type.endsWith(":OvsBridge"));
    let pxeIndex = 0;
    let osdIndex = 0;
    const time = "2026-12-01T09:00:00.000000000Z";
    const providerUrn = states.find((s) => s.provider)?.provider;
    const resources: Obj[] = [];
    for (const s of states) {
        const name = s.urn.split("::").pop()!;
        if (!s.custom) {
            resources.push({ urn: s.urn, custom: false, type: s.type, outputs: {}, created: time, modified: time });
            if (providerUrn) {
                const [urn, id] = [providerUrn.slice(0, providerUrn.lastIndexOf("::")), providerUrn.slice(providerUrn.lastIndexOf("::") + 2)];
                resources.push({ urn, custom: true, id, type: "pulumi:providers:pulumi-nodejs", inputs: {}, outputs: {}, created: time, modified: time });
            }
            continue;
        }
        const kind = s.type.split(":").pop()!;
        const inputs = seal(obj(s.inputs as Json), s.urn) as Obj;
        // The serialised provider (about 1.8 KB of code per resource) is left out of the fixture; the map drops it anyway.
        if (inputs.__provider !== undefined) inputs.__provider = "(left out of this synthetic state)";
        const live = liveOutputs(kind, name, obj(s.inputs as Json), { pxeIndex, osdIndex, bridges, facts });
        if (kind === "PxeServer") pxeIndex++;
        if (kind === "CephOsd") osdIndex++;
        const id = str(live.uuid) || str(live.osdFsid) || str(live.mac) || str(obj(s.inputs as Json).mac) || `${kind.toLowerCase()}-${name}`;
        const r: Obj = {
            urn: s.urn, custom: true, id, type: s.type, inputs, outputs: { ...inputs, ...live },
            parent: s.parent ?? null, dependencies: s.dependencies ?? [], provider: s.provider ?? null,
            propertyDependencies: (s.propertyDependencies ?? {}) as Obj, created: time, modified: time,
        };
        resources.push(r);
    }
    return {
        version: 3,
        deployment: {
            manifest: { time, magic: "synthetic", version: "v3.248.0" },
            secrets_providers: { type: "passphrase", state: { salt: `v1:${fakeCiphertext("salt").slice(3, 19)}:${fakeCiphertext("check").slice(20)}` } },
            resources,
        },
    };
}

/** Writes the fixture from a fresh preview of the seed (the real CLI, no host reachable), or from a saved `pulumi preview --json` (`--from-preview FILE`). */
async function main(): Promise<void> {
    const saved = process.argv.indexOf("--from-preview");
    if (saved > 0) {
        writeFixture(seedStateFromPreview(JSON.parse(fs.readFileSync(process.argv[saved + 1], "utf8")) as PreviewJson));
        return;
    }
    const { Checkout } = await import("./checkout");
    const { PulumiStack } = await import("./pulumi");
    const { openvpnStaticKey } = await import("./keys");
    const checkout = Checkout.create("datacenter", "examples");
    const stack = await PulumiStack.init(checkout.programDir, "seed");
    try {
        const keyFile = path.join(checkout.root, "id_ed25519");
        execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "", "-f", keyFile]);
        await stack.setConfig("sshPrivateKey", fs.readFileSync(keyFile, "utf8"), true);
        await stack.setConfig("bmcPassword", crypto.randomBytes(12).toString("base64"), true);
        await stack.setConfig("openvpnKey", openvpnStaticKey(), true);
        await stack.setConfig("consulToken", crypto.randomBytes(12).toString("hex"), true);
        writeFixture(seedStateFromPreview(await stack.preview()));
    } finally {
        await stack.cleanup();
        checkout.remove();
    }
}

function writeFixture(state: Obj): void {
    fs.mkdirSync(path.dirname(seedStateFixture), { recursive: true });
    fs.writeFileSync(seedStateFixture, `${JSON.stringify(state, null, 1)}\n`);
    process.stderr.write(`wrote ${seedStateFixture}\n`);
}

if (require.main === module) {
    main().catch((err) => {
        process.stderr.write(`${(err as Error).stack ?? err}\n`);
        process.exit(1);
    });
}

/** The resources `withTrouble` breaks, by URN name. */
export const trouble = { array: "raid-stor2-md1", guest: "guest-nas1", osd: "osd-stor3-3" };

/**
 * A copy of a state with what an operator must see at once: one array degraded (a
 * member failed), one guest stopped, one OSD down and out.
 */
export function withTrouble<T>(state: T): T {
    const copy = structuredClone(state);
    const resources = arr(obj((copy as Obj).deployment).resources).map(obj);
    const find = (name: string) => {
        const r = resources.find((x) => str(x.urn).endsWith(`::${name}`));
        if (!r) throw new Error(`no ${name} in the state`);
        return obj(r.outputs);
    };
    const array = find(trouble.array);
    const members = arr(array.members);
    Object.assign(array, { state: "degraded", activeMembers: members.slice(0, 1), failedMembers: members.slice(1) });
    Object.assign(find(trouble.guest), { status: "shutdown", running: false });
    Object.assign(find(trouble.osd), { up: false, in: false, reweight: 0 });
    return copy;
}

/** Every ciphertext of a state (what the map must never show). */
export function ciphertexts(state: unknown): string[] {
    const out: string[] = [];
    const walk = (v: unknown) => {
        if (Array.isArray(v)) v.forEach(walk);
        else if (v !== null && typeof v === "object") {
            const o = v as Record<string, unknown>;
            if (secretSignature.key in o && typeof o.ciphertext === "string") out.push(o.ciphertext);
            Object.values(o).forEach(walk);
        }
    };
    walk(state);
    return out;
}
