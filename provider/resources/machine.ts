// Machine: a box identified by the MAC of its eth0. On every PXE server it names it
// has a static lease (a file in the server's dhcp-hostsdir) and a per-MAC iPXE
// script that picks its profile and adds its kernel arguments; in Consul it is an
// external catalog node with meta (mac, role, profile) and a K/V subtree of the
// configuration it reads at boot. Optionally its BMC powers it on (or cycles it
// into PXE), and the provider waits until it answers SSH and reads its facts.
//
// ID: the MAC, lower case with colons (52:54:00:b0:00:14). Changing it replaces.
import { ConsulConnection, consulConnectionType, KvOperation } from "../consul/client";
import { RefusedError } from "../core/errors";
import { checkByTable, diffByTable, erase, KindSpec, ObjectType, t } from "../core/fields";
import { changedFields, CheckOutcome, DiffOutcome, OperationContext, ResourceKind, sameValue } from "../core/resource";
import { isUnknown, unknownValue, Validator } from "../core/validate";
import { connectionType, describeTarget, HostConnection, Plan, Remote, step } from "../host";
import { IpmiConnection, ipmiConnectionType } from "../ipmi/ipmitool";
import { parseSections } from "../parsers/sections";
import {
    bootScriptOf, checkKernelArgs, checkName, hostsFileOf, managedMarker, parseDescriptor,
    profileScriptUrl, PxeDescriptor, pxeLayout,
} from "../pxe/shared";

export interface PxeServerRef {
    connection: HostConnection;
    name: string;
}

export type PowerOnCreate = "none" | "on" | "pxe";

export interface MachinePower {
    onCreate: PowerOnCreate;
    cycleOnBootChange: boolean;
    offOnDelete: boolean;
}

export interface WaitForSsh {
    connection: HostConnection;
    timeoutSeconds: number;
}

export interface MachineInputs {
    mac: string;
    hostname: string;
    ip: string;
    role: string;
    profile: string;
    kernelArgs: string[];
    pxeServers: PxeServerRef[];
    consul?: ConsulConnection;
    consulPrefix: string;
    config: Record<string, string>;
    ipmi?: IpmiConnection;
    power: MachinePower;
    waitForSsh?: WaitForSsh;
    adopt: boolean;
}

/** What one PXE server holds for this machine, as last read ("" when missing). */
export interface BootEntry {
    server: string;
    baseUrl: string;
    lease: string;
    bootScript: string;
}

export interface MachineFacts {
    kernel: string;
    bootedProfile?: string;
    disks: { name: string; sizeBytes: number }[];
    nics: { name: string; mac: string }[];
    addresses: string[];
}

export interface MachineState extends MachineInputs {
    entries: BootEntry[];
    consulNode?: { address: string; meta: Record<string, string> };
    facts?: MachineFacts;
    bootSeconds?: number;
}

// ---- the field table ----------------------------------------------------------------------

const pxeServerRefType: ObjectType = {
    name: "PxeServerRef",
    doc: "A PXE server as a Machine needs it: how to log into its box, and its instance name (a PxeServer's outputs; the SDK takes the PxeServer itself too).",
    fields: {
        connection: { type: t.object(connectionType), required: true, doc: "The PXE server's box." },
        name: { type: t.string(), default: "pxe", doc: "The PxeServer's instance name.", check: (v, f, x) => checkName(v, f, x) },
    },
};

const machinePowerType: ObjectType = {
    name: "MachinePower",
    doc: "What the BMC (ipmi) does with the machine; every action but `none` needs ipmi.",
    fields: {
        onCreate: {
            type: t.string(["none", "on", "pxe"]),
            defaultDoc: "`pxe` with ipmi, else `none`",
            doc: "On create: `pxe` (next boot from the network, then power on, or cycle when on), `on` (power on when off) or `none`.",
        },
        cycleOnBootChange: { type: t.boolean, default: false, doc: "Cycle the machine into PXE when ip, hostname, profile or kernelArgs change." },
        offOnDelete: { type: t.boolean, default: false, doc: "Power off on delete. Without it, deleting a Machine only removes its entries and registration." },
    },
};

const waitForSshType: ObjectType = {
    name: "WaitForSsh",
    doc: "Waiting for the machine to answer SSH after a power action, then reading its facts.",
    fields: {
        connection: { type: t.object(connectionType), required: true, doc: "How to reach the booted machine." },
        timeoutSeconds: { type: t.integer, default: 600, doc: "Give up after this many seconds.", rule: { min: 10, max: 7200 } },
    },
};

const bootEntryType: ObjectType = {
    name: "BootEntry",
    doc: "What one PXE server holds for the machine, as last read (\"\" when missing).",
    fields: {
        server: { type: t.string(), required: true, doc: "`<name>@<host>` of the PXE server." },
        baseUrl: { type: t.string(), required: true, doc: "The PXE server's base URL." },
        lease: { type: t.string(), required: true, doc: "The machine's file in the server's dhcp-hostsdir (its static lease)." },
        bootScript: { type: t.string(), required: true, doc: "The machine's per-MAC iPXE script." },
    },
};

const catalogNodeType: ObjectType = {
    name: "CatalogNode",
    doc: "A node in Consul's catalog.",
    fields: {
        address: { type: t.string(), required: true, doc: "The node's address." },
        meta: { type: t.map(t.string()), required: true, doc: "The node's meta (mac, role, profile, ...)." },
    },
};

const machineFactsType: ObjectType = {
    name: "MachineFacts",
    doc: "What the booted machine says about itself over SSH.",
    fields: {
        kernel: { type: t.string(), required: true, doc: "The running kernel's release (`uname -r`)." },
        bootedProfile: { type: t.string(), doc: "The profile the running system booted (`baremetal.profile=` on its command line)." },
        disks: {
            type: t.array(t.object({
                name: "MachineDisk",
                doc: "A disk of a booted machine.",
                fields: {
                    name: { type: t.string(), required: true, doc: "Kernel name (`sda`, `vda`, `nvme0n1`)." },
                    sizeBytes: { type: t.integer, required: true, doc: "Size in bytes." },
                },
            })),
            required: true,
            doc: "Its disks (no loop, RAM, md, dm, nbd or optical devices).",
        },
        nics: {
            type: t.array(t.object({
                name: "MachineNic",
                doc: "A network interface of a booted machine.",
                fields: {
                    name: { type: t.string(), required: true, doc: "Interface name." },
                    mac: { type: t.string(), required: true, doc: "Its MAC." },
                },
            })),
            required: true,
            doc: "Its network interfaces but lo.",
        },
        addresses: { type: t.array(t.string()), required: true, doc: "Its addresses with prefix length, link-local and loopback left out." },
    },
};

export const spec: KindSpec<MachineInputs, MachineState> = {
    kind: "Machine",
    doc: "A box that boots over the network, identified by the MAC of its eth0: its static lease and per-MAC boot entry on every PXE server it names, its Consul catalog node (an external node with meta mac, role, profile) and the configuration it reads at boot, optional power control through its BMC, and an optional wait for SSH with its facts read back. Entries and keys that exist with other content are refused unless adopt is set.",
    id: "the MAC, lower case with colons, e.g. `52:54:00:b0:00:14`.",
    example: `import { Machine, PxeServer } from "pulumi-baremetal";

declare const pxe: PxeServer;
new Machine("web01", {
    mac: "52:54:00:b0:00:14",
    hostname: "web01",
    ip: "198.51.100.20",
    profile: "default",
    pxeServers: [pxe],
    ipmi: { address: "198.18.3.20", user: "admin", password: bmcPassword },
    power: { onCreate: "pxe" },
});`,
    inputs: {
        mac: { type: t.string(), required: true, change: "replace", doc: "MAC of its eth0 (the machine's identity); dashes are accepted for colons.", check: (v, f, x) => v.mac(f, x) },
        hostname: { type: t.string(), required: true, doc: "Host name: its dhcp-host name and its Consul node name.", check: (v, f, x) => v.hostname(f, x) },
        ip: { type: t.string(), required: true, doc: "The address of its static lease.", check: (v, f, x) => v.ipv4(f, x) },
        role: {
            type: t.string(),
            default: "machine",
            doc: "Free text for programs (the catalog node's meta `role`).",
            rule: { maxLength: 64, pattern: /^[a-z0-9][a-z0-9_.-]*$/, patternHint: "is not a role name (lower-case letters, digits, _ . -)" },
        },
        profile: { type: t.string(), required: true, doc: "The profile it boots: one every named PXE server has.", check: (v, f, x) => checkName(v, f, x) },
        kernelArgs: { type: t.array(t.string()), default: [], doc: "Kernel arguments of this machine, after the profile's (one word each).", check: (v, f, x) => checkKernelArgs(v, f, x) },
        pxeServers: {
            type: t.array(t.object(pxeServerRefType)),
            required: true,
            doc: "Every PXE server that boots it (at most 16): adding or removing one updates in place.",
            rule: { minItems: 1, maxItems: 16 },
        },
        consul: { type: t.object(consulConnectionType), doc: "Where to register it (an external catalog node) and write its configuration." },
        consulPrefix: {
            type: t.string(),
            defaultDoc: "`machines/<hostname>/`",
            doc: "Root of its configuration in Consul's K/V (a trailing `/` is added).",
            check: (v, f, x) => v.kvPrefix(f, x),
        },
        config: {
            type: t.map(t.string()),
            default: {},
            doc: "Configuration the box reads at boot, by key relative to consulPrefix (needs consul).",
            check: (v, f, x) => v.kvMap(f, x, { maxValueLength: 512 * 1024 }),
        },
        ipmi: { type: t.object(ipmiConnectionType), doc: "Its BMC, for the power actions." },
        power: { type: t.object(machinePowerType), defaultDoc: "each field's default", doc: "Power actions through the BMC." },
        waitForSsh: { type: t.object(waitForSshType), doc: "Wait until it answers SSH after a power action, then read its facts." },
        adopt: {
            type: t.boolean,
            default: false,
            doc: "Take over lease and boot entries and Consul keys that exist with other content (they are rewritten). Without it, create fails and changes nothing.",
        },
    },
    outputs: {
        entries: { type: t.array(t.object(bootEntryType)), required: true, doc: "What each PXE server holds for it, as last read." },
        consulNode: { type: t.object(catalogNodeType), doc: "Its Consul catalog node as last read; absent when not registered." },
        facts: { type: t.object(machineFactsType), doc: "Kernel, booted profile, disks, NICs and addresses: read over SSH after it booted (waitForSsh)." },
        bootSeconds: { type: t.number, doc: "Seconds from the power action to SSH answering, when both happened in the last operation." },
    },
};

// ---- check -------------------------------------------------------------------------------

/** Each PXE server once (by `<name>@<host>`): two refs to one would write its entries twice. */
function checkServersOnce(v: Validator, servers: readonly PxeServerRef[]): void {
    const seen = new Set<string>();
    for (const [i, s] of servers.entries()) {
        if (isUnknown(s) || isUnknown(s.connection)) continue;
        const key = serverKey(s);
        if (seen.has(key)) v.fail(`pxeServers[${i}]`, `names PXE server ${key} twice`);
        seen.add(key);
    }
}

/** onCreate's default depends on ipmi; every action but none needs one. */
function completePower(v: Validator, power: Partial<MachinePower>, hasIpmi: boolean): MachinePower {
    const onCreate = power.onCreate ?? (hasIpmi ? "pxe" : "none");
    if (!hasIpmi) {
        if (onCreate !== "none" && !isUnknown(onCreate)) v.fail("power.onCreate", `is ${onCreate} but no ipmi is given; set ipmi or use "none"`);
        if (power.cycleOnBootChange === true) v.fail("power.cycleOnBootChange", "needs ipmi");
        if (power.offOnDelete === true) v.fail("power.offOnDelete", "needs ipmi");
    }
    return { onCreate, cycleOnBootChange: power.cycleOnBootChange ?? false, offOnDelete: power.offOnDelete ?? false };
}

export function check(_olds: Record<string, unknown>, news: Record<string, unknown>): CheckOutcome<MachineInputs> {
    const v = new Validator();
    // A left-out power is checked as {} so that its fields' defaults apply.
    const inputs = checkByTable(v, erase(spec), { ...news, power: news.power ?? {} }) as Partial<MachineInputs>;
    const { hostname, pxeServers, config, power } = inputs;
    if (Array.isArray(pxeServers)) checkServersOnce(v, pxeServers);
    if (inputs.consulPrefix === undefined && hostname !== undefined) inputs.consulPrefix = isUnknown(hostname) ? unknownValue : `machines/${hostname}/`;
    const noConsul = news.consul === undefined || news.consul === null;
    if (config && !isUnknown(config) && Object.keys(config).length > 0 && noConsul) v.fail("config", "needs consul (where the keys go)");
    // Judged by what was given, valid or not: a bad ipmi is one failure, not one more per power field.
    if (power && !isUnknown(power)) inputs.power = completePower(v, power, news.ipmi !== undefined && news.ipmi !== null);
    if (!v.ok) return { failures: v.failures };
    return { inputs: inputs as MachineInputs, failures: [] };
}

// ---- diff --------------------------------------------------------------------------------

/** Inputs whose change alters how the box boots (what cycleOnBootChange reacts to). */
export const bootRelevant = ["ip", "hostname", "profile", "kernelArgs"] as const;

export function diff(_id: string, olds: MachineState, news: MachineInputs): DiffOutcome {
    const d = diffByTable(erase(spec), olds as unknown as Record<string, unknown>, news as unknown as Record<string, unknown>);
    return { changes: d.changed.length > 0 || drifted(olds, news), replaces: d.replaces, stables: d.stables };
}

/** Entries or the catalog node differ from what the inputs make (edited by hand, seen by refresh). */
function drifted(olds: MachineState, news: MachineInputs): boolean {
    for (const e of olds.entries ?? []) {
        if (!news.pxeServers.some((s) => serverKey(s) === e.server)) continue;
        if (e.lease !== leaseLine(news) || e.bootScript !== bootScript(news, e.baseUrl)) return true;
    }
    if (news.consul && (!olds.consulNode || !sameValue(olds.consulNode, { address: news.ip, meta: nodeMeta(news) }))) return true;
    return false;
}

// ---- what goes on the PXE servers --------------------------------------------------------

export function serverKey(s: PxeServerRef): string {
    return `${s.name}@${s.connection.host}`;
}

/** The dhcp-hostsdir file: the static lease. */
export function leaseLine(m: Pick<MachineInputs, "mac" | "ip" | "hostname">): string {
    return `# ${managedMarker}: machine ${m.hostname}\n${m.mac},${m.ip},${m.hostname}\n`;
}

/** The per-MAC iPXE script: the machine's arguments, then the profile's script. */
export function bootScript(m: Pick<MachineInputs, "mac" | "hostname" | "role" | "profile" | "kernelArgs">, baseUrl: string): string {
    const args = [`baremetal.hostname=${m.hostname}`, `baremetal.mac=${m.mac}`, ...m.kernelArgs];
    return [
        "#!ipxe",
        `# ${managedMarker}: machine ${m.hostname} (${m.mac}), role ${m.role}, profile ${m.profile}`,
        `set bm_args ${args.join(" ")}`,
        `chain --autofree ${profileScriptUrl(baseUrl, m.profile)}`,
        "",
    ].join("\n");
}

export function planEntries(m: MachineInputs, server: PxeServerRef, baseUrl: string): Plan {
    const layout = pxeLayout(server.name);
    return [
        step.writeFile(hostsFileOf(layout, m.mac), leaseLine(m)),
        step.writeFile(bootScriptOf(layout, m.mac), bootScript(m, baseUrl)),
        // dnsmasq reads new and changed hostsdir files by itself but forgets a changed
        // address only on SIGHUP; harmless when it is not running (a standby)
        step.run(["sh", "-c", hupScript, "baremetal-hup", layout.pidFile], { what: `tell dnsmasq of PXE server ${server.name} to re-read its leases`, changes: false }),
        step.persist(),
    ];
}

export function planRemoveEntries(mac: string, server: PxeServerRef): Plan {
    const layout = pxeLayout(server.name);
    return [
        step.removeFile(hostsFileOf(layout, mac)),
        step.removeFile(bootScriptOf(layout, mac)),
        step.run(["sh", "-c", hupScript, "baremetal-hup", layout.pidFile], { what: `tell dnsmasq of PXE server ${server.name} to forget the lease`, changes: false }),
        step.persist(),
    ];
}

const hupScript = 'if [ -f "$1" ]; then kill -HUP "$(cat "$1")" 2>/dev/null; fi; exit 0';

export function nodeMeta(m: Pick<MachineInputs, "mac" | "role" | "profile">): Record<string, string> {
    return { mac: m.mac, role: m.role, profile: m.profile, "external-node": "true", "managed-by": "pulumi-baremetal" };
}

// ---- reading a PXE server's view of the machine ------------------------------------------

/** $1 descriptor, $2 hosts file, $3 boot script, $4 hosts dir, $5 ip: what the server holds for this MAC. */
export const readEntriesScript = [
    'desc=$1 hosts=$2 boot=$3 dir=$4 ip=$5',
    '[ -f "$desc" ] || exit 3',
    'echo "==descriptor=="; cat "$desc"',
    'echo "==lease=="; cat "$hosts" 2>/dev/null',
    'echo "==boot=="; cat "$boot" 2>/dev/null',
    // another machine's entry claiming the same address
    'echo "==clash=="; for f in "$dir"/*; do [ -f "$f" ] && [ "$f" != "$hosts" ] && grep -q -F ",$ip," "$f" && echo "$f"; done',
    "exit 0",
].join("\n");

interface ServerView {
    ref: PxeServerRef;
    host: Remote;
    descriptor: PxeDescriptor;
    lease: string;
    bootScript: string;
    clashes: string[];
}

export function parseEntriesRead(text: string): { descriptor?: PxeDescriptor; lease: string; bootScript: string; clashes: string[] } {
    const { parts } = parseSections(text, ["descriptor", "lease", "boot", "clash"] as const);
    const section = (name: keyof typeof parts) => parts[name] ?? "";
    return {
        descriptor: parseDescriptor(section("descriptor")),
        lease: section("lease"),
        bootScript: section("boot"),
        clashes: section("clash").split("\n").filter((l) => l.trim() !== ""),
    };
}

async function viewOf(ref: PxeServerRef, m: Pick<MachineInputs, "mac" | "ip">, ctx: OperationContext): Promise<ServerView | undefined> {
    const host = ctx.remote(ref.connection);
    const layout = pxeLayout(ref.name);
    const out = await host.run(["sh", "-c", readEntriesScript, "baremetal-machine-read", layout.descriptor, hostsFileOf(layout, m.mac), bootScriptOf(layout, m.mac), layout.hostsDir, m.ip], {
        okExitCodes: [0, 3],
        what: `read the entries of ${m.mac} on PXE server ${ref.name}`,
    });
    if (out.exitCode === 3) return undefined;
    const r = parseEntriesRead(out.stdout);
    if (!r.descriptor) throw new Error(`PXE server ${serverKey(ref)}: ${layout.descriptor} is not a descriptor this package wrote; re-run \`pulumi up\` for the PxeServer`);
    return { ref, host, descriptor: r.descriptor, lease: r.lease, bootScript: r.bootScript, clashes: r.clashes };
}

async function requireView(ref: PxeServerRef, m: MachineInputs, ctx: OperationContext): Promise<ServerView> {
    const view = await viewOf(ref, m, ctx);
    if (!view) {
        throw new RefusedError(`there is no PXE server ${ref.name} on ${describeTarget(ref.connection)}`, "Create the PxeServer first (pass its outputs to pxeServers) or fix the name.");
    }
    if (!(m.profile in view.descriptor.profiles)) {
        throw new RefusedError(
            `profile: PXE server ${serverKey(ref)} has no profile ${JSON.stringify(m.profile)} (it has ${Object.keys(view.descriptor.profiles).join(", ") || "none"})`,
            "Declare the profile on that PxeServer or choose one it has.",
        );
    }
    if (view.clashes.length > 0) {
        throw new RefusedError(`ip: ${m.ip} is already leased to another machine on PXE server ${serverKey(ref)} (${view.clashes.join(", ")})`, "Choose another address or remove that machine first.");
    }
    return view;
}

/** Refuses to overwrite entries someone else made for this MAC, unless adopting. */
function assertTakeable(view: ServerView, m: MachineInputs): void {
    const foreign = (text: string, want: string) => text !== "" && text !== want && !text.includes(managedMarker);
    if (!m.adopt && (foreign(view.lease, leaseLine(m)) || foreign(view.bootScript, bootScript(m, view.descriptor.baseUrl)))) {
        throw new RefusedError(
            `PXE server ${serverKey(view.ref)} already has entries for ${m.mac} that pulumi-baremetal did not write`,
            "Set adopt: true on this Machine to take them over (they will be rewritten), or remove them by hand.",
        );
    }
}

// ---- Consul --------------------------------------------------------------------------------

/**
 * Refuses what Consul holds for someone else (an agent's node name; on create,
 * keys with other values) before anything is written anywhere: a RefusedError
 * promises that nothing was changed, PXE entries included.
 */
async function assertConsulTakeable(m: MachineInputs, ctx: OperationContext, olds?: MachineState): Promise<void> {
    if (!m.consul) return;
    if (await ctx.consul(m.consul).nodes.isAgentMember(m.hostname)) {
        throw new RefusedError(`hostname: ${m.hostname} is the name of a running Consul agent`, "A Machine registers an external node; pick the name of a box that runs no agent.");
    }
    if (olds || m.adopt) return;
    const live = await ctx.consul(m.consul).kv.tree(m.consulPrefix);
    const taken = Object.entries(m.config).filter(([k, val]) => live.has(m.consulPrefix + k) && live.get(m.consulPrefix + k) !== val).map(([k]) => m.consulPrefix + k);
    if (taken.length > 0) {
        throw new RefusedError(`${taken.length} key(s) under ${m.consulPrefix} already exist in Consul with other values (${taken.slice(0, 5).join(", ")})`, "Set adopt: true on this Machine to take them over, or choose another consulPrefix.");
    }
}

async function registerInConsul(m: MachineInputs, ctx: OperationContext, olds?: MachineState): Promise<void> {
    if (!m.consul) return;
    const catalog = ctx.consul(m.consul).nodes;
    if (olds?.consul && olds.hostname !== m.hostname) await ctx.consul(olds.consul).nodes.deregisterNode(olds.hostname);
    await catalog.registerExternalNode({ node: m.hostname, address: m.ip, meta: nodeMeta(m) });
    const kv = ctx.consul(m.consul).kv;
    const live = await kv.tree(m.consulPrefix);
    const want = new Map(Object.entries(m.config).map(([k, val]) => [m.consulPrefix + k, val]));
    const ops: KvOperation[] = [...want].filter(([k, val]) => live.get(k) !== val).map(([key, value]) => ({ verb: "set", key, value }));
    if (olds?.consul) {
        const stale = Object.keys(olds.config ?? {}).map((k) => olds.consulPrefix + k).filter((k) => !want.has(k) && live.has(k));
        ops.push(...stale.map((key) => ({ verb: "delete" as const, key })));
    }
    if (ops.length > 0) ctx.log.info(`${m.hostname}: writing ${ops.length} configuration key(s) under ${m.consulPrefix}`);
    await kv.apply(ops);
}

async function unregisterFromConsul(m: MachineState, ctx: OperationContext): Promise<void> {
    if (!m.consul) return;
    await ctx.consul(m.consul).nodes.deregisterNode(m.hostname);
    const kv = ctx.consul(m.consul).kv;
    const live = await kv.tree(m.consulPrefix);
    const ops = Object.keys(m.config ?? {}).map((k) => m.consulPrefix + k).filter((k) => live.has(k)).map((key) => ({ verb: "delete" as const, key }));
    await kv.apply(ops);
    ctx.log.info(`${m.hostname}: removed from the Consul catalog and ${ops.length} key(s) under ${m.consulPrefix}`);
}

// ---- power and boot --------------------------------------------------------------------------

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs the power action; returns when it was taken (the start of the boot), if any. */
async function powerAction(m: MachineInputs, action: PowerOnCreate, ctx: OperationContext): Promise<number | undefined> {
    if (!m.ipmi || action === "none") return undefined;
    const bmc = ctx.bmc(m.ipmi);
    const state = await bmc.powerState();
    if (action === "on") {
        if (state === "on") {
            ctx.log.info(`${m.hostname}: already powered on (${bmc.target})`);
            return undefined;
        }
        await bmc.powerOn();
        ctx.log.info(`${m.hostname}: powered on through ${bmc.target}`);
        return Date.now();
    }
    await bmc.bootFromNetworkOnce();
    const started = Date.now();
    await bmc.cycle(sleep);
    ctx.log.info(`${m.hostname}: next boot from PXE, ${state === "on" ? "power cycled" : "powered on"} through ${bmc.target}`);
    return started;
}

/** Waits until the box answers SSH; each attempt is one quick dial on a private pool. */
async function waitForSsh(m: MachineInputs, ctx: OperationContext): Promise<void> {
    if (!m.waitForSsh) return;
    const { connection, timeoutSeconds } = m.waitForSsh;
    const started = Date.now();
    const deadline = started + timeoutSeconds * 1000;
    let last = "";
    for (;;) {
        try {
            await ctx.probeSsh(connection);
            return;
        } catch (err) {
            last = (err as Error).message.split("\n")[0];
        }
        const waited = Math.round((Date.now() - started) / 1000);
        if (Date.now() > deadline) {
            throw new Error(`${m.hostname} did not answer SSH at ${describeTarget(connection)} within ${timeoutSeconds} s; last attempt: ${last}\n  next: look at its console (BMC SOL), the PXE server's log and lease file; raise waitForSsh.timeoutSeconds if it is merely slow`);
        }
        ctx.log.progress(`${m.hostname}: waiting for SSH at ${describeTarget(connection)} (${waited} s of ${timeoutSeconds} s)`);
        await sleep(3000);
    }
}

export const factsScript = [
    'echo "==kernel=="; uname -r',
    'echo "==cmdline=="; cat /proc/cmdline',
    'echo "==disks=="',
    'for d in /sys/block/*; do n=${d##*/}; case $n in loop*|ram*|zram*|sr*|md*|dm-*|nbd*|fd*) continue;; esac; echo "$n $(( $(cat "$d/size") * 512 ))"; done',
    'echo "==nics=="',
    'for n in /sys/class/net/*; do i=${n##*/}; [ "$i" = lo ] && continue; echo "$i $(cat "$n/address")"; done',
    'echo "==addresses=="; ip -o addr show 2>/dev/null',
    "exit 0",
].join("\n");

/** Parses the facts script's output (exported for tests on captured output). */
export function parseFacts(text: string): MachineFacts {
    const { parts } = parseSections(text, ["kernel", "cmdline", "disks", "nics", "addresses"] as const);
    const section = (name: keyof typeof parts) => (parts[name] ?? "").split("\n").filter((l) => l.trim() !== "");
    const profile = /(?:^|\s)baremetal\.profile=(\S+)/.exec(section("cmdline").join(" "));
    const facts: MachineFacts = {
        kernel: section("kernel")[0]?.trim() ?? "",
        disks: section("disks").map((l) => l.trim().split(/\s+/)).map(([name, size]) => ({ name, sizeBytes: Number(size) })),
        nics: section("nics").map((l) => l.trim().split(/\s+/)).map(([name, mac]) => ({ name, mac })),
        addresses: section("addresses")
            .map((l) => /\s(inet6?)\s+(\S+)/.exec(l))
            .filter((x): x is RegExpExecArray => x !== null && !/^(127\.|::1\/|fe80:)/.test(x[2]))
            .map((x) => x[2]),
    };
    if (profile) facts.bootedProfile = profile[1];
    return facts;
}

async function readFacts(m: MachineInputs, ctx: OperationContext): Promise<MachineFacts | undefined> {
    if (!m.waitForSsh) return undefined;
    const out = await ctx.remote(m.waitForSsh.connection).run(["sh", "-c", factsScript, "baremetal-facts"], { what: `read the facts of ${m.hostname}`, timeoutMs: 60_000 });
    return parseFacts(out.stdout);
}

async function bootAndRead(m: MachineInputs, action: PowerOnCreate, ctx: OperationContext): Promise<{ facts?: MachineFacts; bootSeconds?: number }> {
    const started = await powerAction(m, action, ctx);
    await waitForSsh(m, ctx);
    const out: { facts?: MachineFacts; bootSeconds?: number } = {};
    if (started !== undefined && m.waitForSsh) {
        out.bootSeconds = Math.round((Date.now() - started) / 100) / 10;
        ctx.log.info(`${m.hostname}: answers SSH ${out.bootSeconds} s after the power action`);
    }
    const facts = await readFacts(m, ctx);
    if (facts) out.facts = facts;
    return out;
}

// ---- lifecycle ------------------------------------------------------------------------------

async function writeEntries(m: MachineInputs, ctx: OperationContext): Promise<BootEntry[]> {
    const views = await Promise.all(m.pxeServers.map((s) => requireView(s, m, ctx)));
    for (const view of views) assertTakeable(view, m);
    await Promise.all(views.map((view) => view.host.apply(planEntries(m, view.ref, view.descriptor.baseUrl))));
    return views.map((view) => ({ server: serverKey(view.ref), baseUrl: view.descriptor.baseUrl, lease: leaseLine(m), bootScript: bootScript(m, view.descriptor.baseUrl) }));
}

async function liveNode(m: MachineInputs, ctx: OperationContext): Promise<MachineState["consulNode"]> {
    if (!m.consul) return undefined;
    const n = await ctx.consul(m.consul).nodes.node(m.hostname);
    return n ? { address: n.address, meta: n.meta } : undefined;
}

function withOptional(state: MachineState, extra: { consulNode?: MachineState["consulNode"]; facts?: MachineFacts; bootSeconds?: number }): MachineState {
    const out: MachineState = { ...state };
    delete out.consulNode;
    if (extra.consulNode) out.consulNode = extra.consulNode;
    if (extra.facts) out.facts = extra.facts;
    if (extra.bootSeconds !== undefined) out.bootSeconds = extra.bootSeconds;
    return out;
}

async function create(inputs: MachineInputs, ctx: OperationContext): Promise<{ id: string; outs: MachineState }> {
    await assertConsulTakeable(inputs, ctx);
    const entries = await writeEntries(inputs, ctx);
    ctx.log.info(`${inputs.hostname}: lease ${inputs.ip} and boot entry (profile ${inputs.profile}) on ${entries.map((e) => e.server).join(", ")}`);
    await registerInConsul(inputs, ctx);
    const booted = await bootAndRead(inputs, inputs.power.onCreate, ctx);
    return { id: inputs.mac, outs: withOptional({ ...inputs, entries }, { consulNode: await liveNode(inputs, ctx), ...booted }) };
}

async function read(_id: string, props: MachineState, ctx: OperationContext): Promise<MachineState | undefined> {
    const entries: BootEntry[] = [];
    for (const ref of props.pxeServers) {
        const view = await viewOf(ref, props, ctx);
        if (view && (view.lease !== "" || view.bootScript !== "")) entries.push({ server: serverKey(ref), baseUrl: view.descriptor.baseUrl, lease: view.lease, bootScript: view.bootScript });
    }
    const consulNode = await liveNode(props, ctx);
    let config = props.config;
    if (props.consul) {
        const live = await ctx.consul(props.consul).kv.tree(props.consulPrefix);
        config = Object.fromEntries(Object.keys(props.config ?? {}).filter((k) => live.has(props.consulPrefix + k)).map((k) => [k, live.get(props.consulPrefix + k) as string]));
    }
    if (entries.length === 0 && !consulNode) return undefined;
    // Servers that lost the machine's entries drop out, so the next up writes them again.
    const pxeServers = props.pxeServers.filter((s) => entries.some((e) => e.server === serverKey(s)));
    return withOptional({ ...props, pxeServers, entries, config }, { consulNode, facts: props.facts, bootSeconds: props.bootSeconds });
}

async function update(_id: string, olds: MachineState, news: MachineInputs, ctx: OperationContext): Promise<MachineState> {
    await assertConsulTakeable(news, ctx, olds);
    const dropped = (olds.pxeServers ?? []).filter((o) => !news.pxeServers.some((n) => serverKey(n) === serverKey(o)));
    for (const ref of dropped) {
        ctx.log.info(`${news.hostname}: removing its entries from PXE server ${serverKey(ref)}`);
        await ctx.remote(ref.connection).apply(planRemoveEntries(olds.mac, ref));
    }
    const entries = await writeEntries(news, ctx);
    if (olds.consul && !news.consul) await unregisterFromConsul(olds, ctx);
    else await registerInConsul(news, ctx, olds);
    const bootChanged = changedFields(olds, news, [...bootRelevant]).length > 0;
    const action: PowerOnCreate = bootChanged && news.power.cycleOnBootChange ? "pxe" : "none";
    if (action === "pxe") ctx.log.info(`${news.hostname}: ${changedFields(olds, news, [...bootRelevant]).join(", ")} changed: cycling it into PXE (power.cycleOnBootChange)`);
    const booted = await bootAndRead(news, action, ctx);
    return withOptional({ ...news, entries }, { consulNode: await liveNode(news, ctx), facts: booted.facts ?? olds.facts, bootSeconds: booted.bootSeconds ?? olds.bootSeconds });
}

async function remove(_id: string, props: MachineState, ctx: OperationContext): Promise<void> {
    for (const ref of props.pxeServers ?? []) {
        await ctx.remote(ref.connection).apply(planRemoveEntries(props.mac, ref));
    }
    await unregisterFromConsul(props, ctx);
    if (props.ipmi && props.power?.offOnDelete) {
        const bmc = ctx.bmc(props.ipmi);
        if ((await bmc.powerState()) === "on") {
            await bmc.powerOff();
            ctx.log.info(`${props.hostname}: powered off through ${bmc.target} (power.offOnDelete)`);
        }
    }
}

export const machine: ResourceKind<MachineInputs, MachineState> = { spec, check, diff, create, read, update, delete: remove };
