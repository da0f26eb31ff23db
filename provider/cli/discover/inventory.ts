// discover, part inventory: the box reports turned into the inventory that
// examples/datacenter's program reads (its schema: examples/datacenter/program/
// inventory.ts). Pure: no I/O. Everything found is marked `adopt: true`; an
// object kept under the service that runs it now (a guest under its own unit, an
// export of the box's own nbd-server) carries `asFound`. What the inventory
// cannot say becomes a note: a commented block in the file, saying what and why.
import { configValues, LxcMount } from "../../parsers/lxc";
import type { GuestLive } from "../../parsers/qmp";
import { managedMarker as nbdManagedMarker } from "../../parsers/nbd";
import { BoxReport, Nic, Process, programOf } from "./survey";

// ---- the inventory's shape (the part discover writes) ------------------------------------

export interface InvNic { name: string; network: string; mac: string; address?: string }
export interface InvRaid { device: string; members: string[]; level?: string; name?: string }
export interface InvMachine {
    name: string;
    role: string;
    adopt: true;
    nics: InvNic[];
    ssh: { hostKey: string; host?: string; port?: number; user?: string };
    bmc?: { address: string };
    disks?: string[];
    raid?: InvRaid[];
    ceph?: { osds: { device: string; deviceClass?: string; adopt: true }[] };
    san?: { volumeGroup: string; devices: string[]; exportNetwork?: string; adopt: true };
    bridges: string[];
}
export interface InvGuest {
    name: string;
    host: string;
    role: string;
    adopt: true;
    memoryMiB: number;
    vcpus: number;
    boot: "network" | "disk";
    machineType?: string;
    nics: { network: string; mac: string; address?: string }[];
    disks: ({ device: string } | { volume: string })[];
    asFound?: { service?: string; qmpSocket: string };
    ssh?: InvMachine["ssh"];
    san?: InvMachine["san"];
}
export interface InvVolume {
    name: string;
    san: string;
    size: string;
    port: number;
    owner: string;
    exportName: string;
    readOnly?: boolean;
    allowedClients: string[];
    adopt: true;
    asFound?: { service?: string; config: string };
}
export interface InvContainer {
    name: string;
    host: string;
    service: string;
    adopt: true;
    template?: string;
    templateArgs?: string[];
    rootfs?: string;
    nics?: { network: string; address?: string; mac?: string; gateway?: string }[];
    mounts?: { target: string; source: string; type?: string; options?: string }[];
    memoryMiB?: number;
    autostart: boolean;
}
export interface InvNetwork { cidr: string; bridge?: string }
export interface Inventory {
    datacenter: string;
    networks: Record<string, InvNetwork>;
    consul?: { address: string; datacenter?: string };
    defaults: { sshUser: string };
    machines: InvMachine[];
    guests?: InvGuest[];
    volumes?: InvVolume[];
    containers?: InvContainer[];
    consulKeys?: { prefix: string; keys: Record<string, string>; adopt: true }[];
}

/** Something found that the inventory cannot hold: written as a commented block. */
export interface Note {
    /** The box it is on (or "consul"). */
    where: string;
    what: string;
    why: string;
    /** What was found, as lines to show commented out. */
    detail?: string[];
}

/** A box that could not be read. */
export interface Unreachable {
    address: string;
    error: string;
}

export interface DiscoverInput {
    datacenter: string;
    sshUser: string;
    /** Per box address: the host key to write (pinned, or the one seen on first use). */
    hostKeys: Map<string, string>;
    ports: Map<string, number>;
    bmcs: Map<string, string>;
    /** Network names by CIDR chosen by the operator. */
    networkNames: Map<string, string>;
    consul?: { address: string; datacenter?: string; keys: { prefix: string; keys: Map<string, string> }[] };
}

export interface Discovered {
    inventory: Inventory;
    notes: Note[];
    /** Counts per kind (for the summary on stderr and the lab's figures). */
    counts: Record<string, number>;
}

// ---- helpers ------------------------------------------------------------------------------

const namePattern = /^[a-z][a-z0-9-]{0,30}$/;

/** A name the inventory accepts (lower case, letters, digits, '-'), from any text. */
export function inventoryName(raw: string, fallback: string): string {
    const n = raw.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^[^a-z]+/, "").replace(/-+$/, "").slice(0, 31).replace(/-+$/, "");
    return namePattern.test(n) ? n : fallback;
}

function ipToInt(ip: string): number {
    return ip.split(".").reduce((n, p) => n * 256 + Number(p), 0) >>> 0;
}

function intToIp(n: number): string {
    return [24, 16, 8, 0].map((s) => (n >>> s) & 255).join(".");
}

/** `198.51.100.11/24` → its network `198.51.100.0/24` and the address. */
export function splitCidr(cidr: string): { network: string; address: string; prefix: number } {
    const [address, p] = cidr.split("/");
    const prefix = Number(p);
    const mask = prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
    return { network: `${intToIp(ipToInt(address) & mask)}/${prefix}`, address, prefix };
}

function inNetwork(address: string, network: string): boolean {
    const { network: base, prefix } = splitCidr(network);
    return splitCidr(`${address}/${prefix}`).network === base;
}

/** A size the inventory accepts (`64MiB`, `20GiB`), exact; undefined when the bytes are not whole MiB. */
export function sizeText(bytes: number): string | undefined {
    for (const [unit, f] of [["TiB", 2 ** 40], ["GiB", 2 ** 30], ["MiB", 2 ** 20]] as const) {
        if (bytes % f === 0 && bytes / f >= 1) return `${bytes / f}${unit}`;
    }
    return undefined;
}

/** The by-id link to name a kernel device by: the most specific kind first, never a wwn- when another exists. */
export function stableName(byId: Map<string, string[]>, kernel: string): string | undefined {
    const links = byId.get(kernel) ?? [];
    const rank = (l: string) => {
        const base = l.slice("/dev/disk/by-id/".length);
        const order = ["virtio-", "nvme-", "ata-", "scsi-", "usb-", "md-uuid-", "wwn-"];
        const i = order.findIndex((o) => base.startsWith(o));
        return i < 0 ? order.length : i;
    };
    return [...links].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b))[0];
}

// ---- the mapping ---------------------------------------------------------------------------

/** One box's place in the inventory while it is built. */
interface Placed {
    report: BoxReport;
    name: string;
    /** A guest of another box (its NIC's MAC is a qemu NIC there), or a machine. */
    as: "machine" | "guest";
}

class Builder {
    readonly notes: Note[] = [];
    readonly networks: Record<string, InvNetwork> = {};
    private readonly byCidr = new Map<string, string>();
    readonly machines: InvMachine[] = [];
    readonly guests: InvGuest[] = [];
    readonly volumes: InvVolume[] = [];
    readonly containers: InvContainer[] = [];
    private readonly names = new Set<string>();
    /** Each guest's block device files, and the volume each NBD one turned out to be. */
    readonly guestDisks = new Map<InvGuest, { files: string[]; volumes: Map<string, string> }>();

    constructor(readonly input: DiscoverInput) {}

    note(where: string, what: string, why: string, detail?: string[]): void {
        this.notes.push(detail ? { where, what, why, detail } : { where, what, why });
    }

    /** A name not used yet in the inventory (hosts and guests share one name space). */
    unique(name: string): string {
        let n = name;
        for (let i = 2; this.names.has(n); i++) n = `${name.slice(0, 28)}-${i}`;
        this.names.add(n);
        return n;
    }

    /** The network of an address with prefix, named on first sight. */
    networkOf(cidr: string): string {
        const { network } = splitCidr(cidr);
        let name = this.byCidr.get(network);
        if (!name) {
            const taken = new Set(Object.keys(this.networks));
            name = this.input.networkNames.get(network) ?? (taken.size === 0 ? "lan" : nextFree(taken));
            this.byCidr.set(network, name);
            this.networks[name] = { cidr: network };
        }
        return name;
    }

    /** The network an address (without prefix) is in, among those seen. */
    networkContaining(address: string): string | undefined {
        return [...this.byCidr].find(([cidr]) => inNetwork(address, cidr))?.[1];
    }

    /** The network whose OVS bridge is `bridge`. */
    networkOfBridge(bridge: string): string | undefined {
        return Object.entries(this.networks).find(([, n]) => n.bridge === bridge)?.[0];
    }
}

function nextFree(taken: Set<string>): string {
    for (let i = 1; ; i++) if (!taken.has(`net${i}`)) return `net${i}`;
}

/** The inventory of the boxes read (and what cannot be in it, as notes). */
export function buildInventory(reports: BoxReport[], unreachable: Unreachable[], input: DiscoverInput): Discovered {
    const b = new Builder(input);
    // Networks: the LAN first (where the first box was reached), then in the order NICs show them.
    for (const r of reports) for (const n of r.survey.nics) for (const a of addressesOn(r, n)) if (splitCidr(a).address === r.address) b.networkOf(a);
    for (const r of reports) for (const n of r.survey.nics) for (const a of addressesOn(r, n)) b.networkOf(a);
    assignBridges(b, reports);
    for (const r of reports) ovsNotes(b, r);

    const placed = placeBoxes(b, reports);
    for (const p of placed.filter((x) => x.as === "machine")) b.machines.push(machineOf(b, p, input));
    // Guests after machines: a guest names its host; the guest's own box (if read) fills its ssh and san.
    for (const p of placed.filter((x) => x.as === "machine")) {
        for (const g of p.report.guests) {
            const guest = guestOf(b, p, g, placed);
            if (guest) b.guests.push(guest);
        }
    }
    for (const p of placed) volumesOf(b, p);
    for (const p of placed) for (const c of p.report.containers) {
        const ct = containerOf(b, p, c.name, c.live.config);
        if (ct) b.containers.push(ct);
    }
    settleGuestDisks(b);
    dropOrphans(b);
    for (const p of placed) dnsmasqNotes(b, p);
    for (const u of unreachable) b.note(u.address, "a box that could not be read", u.error);

    const inventory: Inventory = { datacenter: input.datacenter, networks: b.networks, defaults: { sshUser: input.sshUser }, machines: b.machines };
    if (input.consul) inventory.consul = dropUndefined({ address: input.consul.address, datacenter: input.consul.datacenter });
    if (b.guests.length > 0) inventory.guests = b.guests;
    if (b.volumes.length > 0) inventory.volumes = b.volumes;
    if (b.containers.length > 0) inventory.containers = b.containers;
    const kv = (input.consul?.keys ?? []).filter((k) => k.keys.size > 0);
    if (kv.length > 0) inventory.consulKeys = kv.map((k) => ({ prefix: k.prefix, keys: Object.fromEntries(k.keys), adopt: true }));
    const counts = {
        machines: b.machines.length,
        raid: b.machines.reduce((n, m) => n + (m.raid?.length ?? 0), 0),
        osds: b.machines.reduce((n, m) => n + (m.ceph?.osds.length ?? 0), 0),
        volumeGroups: [...b.machines, ...b.guests].filter((h) => h.san).length,
        volumes: b.volumes.length,
        guests: b.guests.length,
        containers: b.containers.length,
        bridges: [...b.machines].reduce((n, m) => n + (m.bridges?.length ?? 0), 0),
        consulKeys: kv.reduce((n, k) => n + k.keys.size, 0),
        notes: b.notes.length,
    };
    return { inventory, notes: b.notes, counts };
}

/** The IPv4 addresses of a NIC, those moved onto the OVS bridge it is a port of included. */
function addressesOn(r: BoxReport, n: Nic): string[] {
    if (n.kind !== "physical") return [];
    const bridge = bridgeOfPort(r, n.name);
    const onBridge = bridge ? (r.survey.nics.find((x) => x.name === bridge)?.addresses ?? []) : [];
    return [...n.addresses, ...onBridge];
}

/** Bridges discover could not list: the inventory lacks them, and the note says why and what to do. */
function ovsNotes(b: Builder, r: BoxReport): void {
    for (const e of r.survey.ovsErrors) {
        const all = e.call === "ovs-vsctl list-br";
        b.note(
            r.survey.hostname,
            all ? "OVS bridges" : `OVS bridge ${e.call.split(" ").pop()}`,
            `Open vSwitch did not answer \`${e.call}\` (${e.message}), so ${all ? "no bridge of this box is" : "this bridge is not"} in the inventory; run discover again once ovsdb-server answers (systemctl status ovsdb-server, or rc-service ovsdb-server status)`,
        );
    }
}

function bridgeOfPort(r: BoxReport, port: string): string | undefined {
    return [...r.survey.ovsBridges].find(([, ports]) => ports.includes(port))?.[0];
}

/** Each network's bridge: the OVS bridge whose uplink NIC (or own address) is on it; one name per network. */
function assignBridges(b: Builder, reports: BoxReport[]): void {
    const seen = new Map<string, Map<string, string[]>>();
    for (const r of reports) {
        for (const [bridge, ports] of r.survey.ovsBridges) {
            const uplinks = r.survey.nics.filter((n) => n.kind === "physical" && ports.includes(n.name));
            const own = r.survey.nics.find((n) => n.name === bridge)?.addresses ?? [];
            const cidrs = [...uplinks.flatMap((n) => n.addresses), ...own];
            const network = cidrs.map((c) => b.networkOf(c))[0];
            if (!network) {
                b.note(r.survey.hostname, `OVS bridge ${bridge}`, "it has no uplink NIC with an address and no address of its own, so discover cannot tell which network it replicates (the program uplinks bridges by a NIC or by its own OpenVPN tunnels)", [`ports: ${ports.join(", ") || "(none)"}`]);
                continue;
            }
            const byName = seen.get(network) ?? new Map<string, string[]>();
            byName.set(bridge, [...(byName.get(bridge) ?? []), r.survey.hostname]);
            seen.set(network, byName);
        }
    }
    for (const [network, byName] of seen) {
        const [chosen, ...others] = [...byName].sort((x, y) => y[1].length - x[1].length);
        b.networks[network].bridge = chosen[0];
        for (const [name, boxes] of others) {
            b.note(boxes.join(", "), `OVS bridge ${name} on network ${network}`, `the inventory names one bridge per network (${chosen[0]}, as on ${chosen[1].join(", ")}); rename one of them to bring both in`);
        }
    }
}

/** Which boxes are machines and which are guests of another box (matched by a NIC's MAC). */
function placeBoxes(b: Builder, reports: BoxReport[]): Placed[] {
    const guestMacs = new Map<string, BoxReport>();
    for (const r of reports) for (const g of r.guests) for (const mac of guestMacsOf(g)) guestMacs.set(mac, r);
    return reports.map((report, i) => {
        const isGuest = report.survey.nics.some((n) => n.kind === "physical" && guestMacs.has(n.mac) && guestMacs.get(n.mac) !== report);
        return { report, name: b.unique(inventoryName(report.survey.hostname, `box${i + 1}`)), as: isGuest ? "guest" : "machine" };
    });
}

function guestMacsOf(g: BoxReport["guests"][number]): string[] {
    return g.live ? g.live.nics.map((n) => n.mac) : macsOfArgv(g.process.argv);
}

function macsOfArgv(argv: string[]): string[] {
    return argv.flatMap((a) => /\bmac=([0-9a-fA-F:]{17})/.exec(a)?.[1].toLowerCase() ?? []);
}

function sshOf(r: BoxReport, input: DiscoverInput, firstAddress: string | undefined): InvMachine["ssh"] {
    const ssh: InvMachine["ssh"] = { hostKey: input.hostKeys.get(r.address) ?? "" };
    if (r.address !== firstAddress) ssh.host = r.address;
    const port = input.ports.get(r.address);
    if (port && port !== 22) ssh.port = port;
    return ssh;
}

/** NICs with a network, the one the box was reached on first. */
function nicsOf(b: Builder, r: BoxReport): InvNic[] {
    const nics: InvNic[] = [];
    for (const n of r.survey.nics.filter((x) => x.kind === "physical")) {
        const addresses = addressesOn(r, n);
        if (addresses.length === 0) continue;
        const chosen = addresses.find((a) => splitCidr(a).address === r.address) ?? addresses[0];
        nics.push({ name: n.name, network: b.networkOf(chosen), mac: n.mac, address: splitCidr(chosen).address });
        if (addresses.length > 1) b.note(r.survey.hostname, `addresses ${addresses.filter((a) => a !== chosen).join(", ")} on ${n.name}`, "the inventory holds one address per NIC");
    }
    return nics.sort((x, y) => Number(y.address === r.address) - Number(x.address === r.address));
}

function machineOf(b: Builder, p: Placed, input: DiscoverInput): InvMachine {
    const r = p.report;
    const nics = nicsOf(b, r);
    const m: InvMachine = { name: p.name, role: "machine", adopt: true, nics, ssh: sshOf(r, input, nics[0]?.address), bridges: [] };
    const bmc = input.bmcs.get(r.address);
    if (bmc) m.bmc = { address: bmc };
    const used = new Set<string>();
    const raid = arraysOf(b, p, used);
    if (raid.length > 0) m.raid = raid;
    const osds = osdsOf(b, p, used);
    if (osds.length > 0) m.ceph = { osds };
    // Always written: left out, the program would bridge every network that has a bridge here.
    m.bridges = Object.entries(b.networks).filter(([, n]) => n.bridge && r.survey.ovsBridges.has(n.bridge)).map(([name]) => name);
    const disks = disksOf(r, used);
    if (disks.length > 0) m.disks = disks;
    return m;
}

/** Every whole disk by its stable name, with the partitions arrays and OSDs use. */
function disksOf(r: BoxReport, used: Set<string>): string[] {
    const whole = r.survey.disks.map((d) => stableName(r.survey.byId, `/dev/${d.name}`)).filter((x): x is string => x !== undefined);
    return [...new Set([...whole, ...used])];
}

function memberName(r: BoxReport, kernel: string): string {
    return stableName(r.survey.byId, kernel) ?? kernel;
}

function arraysOf(b: Builder, p: Placed, used: Set<string>): InvRaid[] {
    const r = p.report;
    const out: InvRaid[] = [];
    for (const { device, live } of r.arrays) {
        const members = live.detail.members.map((m) => memberName(r, m.device));
        const unstable = members.filter((m) => !m.startsWith("/dev/disk/by-id/"));
        if (unstable.length > 0 || !/^\/dev\/md\d+$/.test(device)) {
            b.note(r.survey.hostname, `md array ${device}`, unstable.length > 0 ? `its members ${unstable.join(", ")} have no /dev/disk/by-id name (a loop device?), so the inventory cannot name them stably` : "it is not named /dev/mdN", [`uuid ${live.detail.uuid}, ${live.detail.level}, members ${live.detail.members.map((m) => m.device).join(", ")}`]);
            continue;
        }
        for (const m of members) used.add(m);
        const item: InvRaid = { device, members };
        if (live.detail.level !== "raid1") item.level = live.detail.level;
        // The name in the superblock, without the homehost prefix mdadm adds (`storage1:data`).
        const full = live.detail.name ?? "";
        const name = full.split(":")[0] === r.survey.hostname ? full.split(":").slice(1).join(":") : full;
        if (/^[A-Za-z0-9_.-]{1,32}$/.test(name)) item.name = name;
        out.push(item);
    }
    return out;
}

function osdsOf(b: Builder, p: Placed, used: Set<string>): NonNullable<InvMachine["ceph"]>["osds"] {
    const r = p.report;
    const out: NonNullable<InvMachine["ceph"]>["osds"] = [];
    for (const lv of r.survey.osds.filter((x) => x.type === "block")) {
        if (lv.devices.length !== 1) {
            b.note(r.survey.hostname, `Ceph osd.${lv.osdId}`, `it spans ${lv.devices.length} devices; CephOsd takes one device`);
            continue;
        }
        const device = memberName(r, lv.devices[0]);
        used.add(device);
        out.push(lv.crushDeviceClass ? { device, deviceClass: lv.crushDeviceClass, adopt: true } : { device, adopt: true });
    }
    return out;
}

/** `-name guest=web,debug-threads=on` or `-name web`: the guest's own name. */
function qemuName(argv: string[]): string | undefined {
    const v = argv[argv.indexOf("-name") + 1];
    if (argv.indexOf("-name") < 0 || !v) return undefined;
    return /(?:^|,)guest=([^,]+)/.exec(v)?.[1] ?? v.split(",")[0];
}

function argAfter(argv: string[], flag: string): string | undefined {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
}

function guestOf(b: Builder, host: Placed, g: BoxReport["guests"][number], placed: Placed[]): InvGuest | undefined {
    const r = host.report;
    const argv = g.process.argv;
    const own = placed.find((p) => p.as === "guest" && p.report.survey.nics.some((n) => guestMacsOf(g).includes(n.mac)));
    const name = own?.name ?? b.unique(inventoryName(qemuName(argv) ?? (g.process.service ?? "").replace(/\.service$/, ""), `guest-${g.process.pid}`));
    const where = r.survey.hostname;
    if (!g.qmpSocket || !g.live) {
        b.note(where, `qemu process ${g.process.pid} (${name})`, g.qmpSocket ? `its QMP socket ${g.qmpSocket} did not answer` : "it has no QMP socket (-qmp unix:...), through which KvmGuest reads and stops a guest: add one to its command line at its next restart", [argv.join(" ")]);
        return undefined;
    }
    const live: GuestLive = g.live;
    const nics: InvGuest["nics"] = [];
    for (const n of live.nics) {
        const bridge = n.tap ? bridgeOfPort(r, n.tap) : undefined;
        const network = bridge ? b.networkOfBridge(bridge) : undefined;
        if (!network) {
            b.note(where, `guest ${name}`, `its NIC ${n.mac} (tap ${n.tap ?? "?"}) is not on an OVS bridge of a known network${bridge ? ` (${bridge})` : ""}`);
            return undefined;
        }
        nics.push({ network, mac: n.mac });
    }
    if (nics.length === 0) {
        b.note(where, `guest ${name}`, "it has no NIC; the inventory identifies a guest by its first NIC's MAC");
        return undefined;
    }
    const guest: InvGuest = {
        name,
        host: host.name,
        role: "guest",
        adopt: true,
        memoryMiB: live.memoryMiB,
        vcpus: live.vcpus,
        boot: /order=n/.test(argAfter(argv, "-boot") ?? "") ? "network" : "disk",
        nics,
        disks: [],
        asFound: dropUndefined({ service: g.process.service, qmpSocket: g.qmpSocket }),
    };
    const machineType = argAfter(argv, "-machine")?.split(",").find((x) => !x.includes("="));
    if (machineType && machineType !== "pc") guest.machineType = machineType;
    // Disks: named once the volumes are known (an NBD disk names its volume).
    b.guestDisks.set(guest, { files: live.blockDevices.map((d) => d.file), volumes: new Map() });
    if (own) {
        const ownNics = nicsOf(b, own.report);
        guest.ssh = sshOf(own.report, b.input, ownNics[0]?.address);
        for (const n of guest.nics) n.address = ownNics.find((x) => x.mac === n.mac)?.address;
        for (const n of guest.nics) if (n.address === undefined) delete n.address;
    }
    return guest;
}

/** A VG with NBD exports on a box: its san section and its volumes. */
function volumesOf(b: Builder, p: Placed): void {
    const r = p.report;
    const where = r.survey.hostname;
    const host = p.as === "machine" ? b.machines.find((m) => m.name === p.name) : b.guests.find((g) => g.name === p.name);
    const exports = nbdExports(r);
    const byVg = new Map<string, typeof exports>();
    for (const e of exports) byVg.set(e.lv.vg, [...(byVg.get(e.lv.vg) ?? []), e]);
    const owners = nbdClients(b);
    let sanVg: string | undefined;
    for (const [vg, list] of byVg) {
        if (!host || sanVg) {
            b.note(where, `NBD exports of volume group ${vg}`, host ? `the inventory holds one SAN volume group per host (${sanVg} here)` : "the box is not in the inventory");
            continue;
        }
        const pvs = r.survey.pvs.filter((pv) => pv.vg === vg).map((pv) => (/^\/dev\/md\d+$/.test(pv.device) ? pv.device : memberName(r, pv.device)));
        const addresses = r.survey.nics.flatMap((n) => n.addresses.map((a) => splitCidr(a).address));
        let exportNetwork: string | undefined;
        for (const e of list) {
            const client = owners.find((o) => addresses.includes(o.host) && o.port === e.port && o.export === e.exportName);
            if (!client) {
                b.note(where, `NBD export ${e.exportName} (${vg}/${e.lv.name})`, "no guest found uses it; the inventory gives every volume an owner guest (read the box that runs it too)", [`${e.file} [${e.exportName}] port ${e.port}`]);
                continue;
            }
            const size = sizeText(e.lv.sizeBytes);
            if (!size) {
                b.note(where, `logical volume ${vg}/${e.lv.name}`, `its size ${e.lv.sizeBytes} bytes is not a whole number of MiB`);
                continue;
            }
            exportNetwork ??= b.networkContaining(client.host);
            const vol: InvVolume = {
                name: e.lv.name, san: p.name, size, port: e.port, owner: client.guest.name, exportName: e.exportName,
                allowedClients: e.allowedClients, adopt: true,
            };
            if (e.readOnly) vol.readOnly = true;
            if (!e.ours) vol.asFound = dropUndefined({ service: e.service, config: e.file });
            b.volumes.push(vol);
            b.guestDisks.get(client.guest)?.volumes.set(client.file, e.lv.name);
        }
        if (!b.volumes.some((v) => v.san === p.name)) continue;
        sanVg = vg;
        host.san = { volumeGroup: vg, devices: pvs, ...(exportNetwork ? { exportNetwork } : {}), adopt: true };
        if (p.as === "machine") {
            const m = host as InvMachine;
            for (const d of pvs.filter((x) => x.startsWith("/dev/disk/by-id/"))) if (!m.disks?.includes(d)) m.disks = [...(m.disks ?? []), d];
        }
    }
}

interface Export {
    file: string;
    exportName: string;
    port: number;
    readOnly: boolean;
    allowedClients: string[];
    lv: BoxReport["survey"]["lvs"][number];
    /** Written by NbdVolume (its own nbd-server per export). */
    ours: boolean;
    /** The service of the nbd-server process that reads this file. */
    service?: string;
}

/** Every export of the box's nbd-server configs whose device is an LV. */
function nbdExports(r: BoxReport): Export[] {
    const out: Export[] = [];
    const servers = r.survey.processes.filter((p) => programOf(p) === "nbd-server");
    for (const f of r.survey.nbdConfigs) {
        const ours = f.text.includes(nbdManagedMarker);
        const port = Number(f.config.generic?.port ?? "10809");
        for (const [section, keys] of Object.entries(f.config)) {
            if (section === "generic" || !keys.exportname) continue;
            const lv = r.survey.lvs.find((l) => l.path === keys.exportname || `/dev/mapper/${l.vg.replace(/-/g, "--")}-${l.name.replace(/-/g, "--")}` === keys.exportname);
            if (!lv) continue;
            const server = servers.find((s) => configOfServer(s) === f.path) ?? (f.path.startsWith("/etc/nbd-server/conf.d/") ? servers.find((s) => configOfServer(s) === "/etc/nbd-server/config") : undefined);
            const e: Export = {
                file: f.path.startsWith("/etc/nbd-server/conf.d/") ? "/etc/nbd-server/config" : f.path,
                exportName: section, port, readOnly: /^(true|yes|1)$/i.test(keys.readonly ?? ""),
                allowedClients: r.nbdAuth.get(keys.authfile ?? "") ?? [], lv, ours,
            };
            if (server?.service) e.service = server.service;
            out.push(e);
        }
    }
    return out;
}

/** The config file an nbd-server process reads (`-C FILE`, else the default). */
function configOfServer(p: Process): string {
    const i = p.argv.indexOf("-C");
    return i >= 0 ? p.argv[i + 1] : "/etc/nbd-server/config";
}

/** Every guest disk that is an NBD export: where it points and whose it is. */
function nbdClients(b: Builder): { host: string; port: number; export: string; file: string; guest: InvGuest }[] {
    const out: { host: string; port: number; export: string; file: string; guest: InvGuest }[] = [];
    for (const [guest, disks] of b.guestDisks) {
        for (const file of disks.files) {
            const m = /^nbd:\/\/\[?([^\]/]+?)\]?:(\d+)\/(.*)$/.exec(file);
            if (m) out.push({ host: m[1], port: Number(m[2]), export: m[3], file, guest });
        }
    }
    return out;
}

/** Guests whose every disk could be named get their disks; the others become notes (with their volumes). */
function settleGuestDisks(b: Builder): void {
    for (const g of [...b.guests]) {
        const host = b.machines.find((m) => m.name === g.host);
        const hostDevices = new Set([...(host?.disks ?? []), ...(host?.raid ?? []).map((x) => x.device)]);
        const found = b.guestDisks.get(g) ?? { files: [], volumes: new Map<string, string>() };
        const disks: InvGuest["disks"] = [];
        const unnamed: string[] = [];
        for (const file of found.files) {
            const volume = found.volumes.get(file);
            if (volume) disks.push({ volume });
            else if (hostDevices.has(file)) disks.push({ device: file });
            else unnamed.push(file);
        }
        if (unnamed.length > 0) {
            b.guests.splice(b.guests.indexOf(g), 1);
            b.note(g.host, `guest ${g.name}`, `its disk(s) ${unnamed.join(", ")} are neither an NBD export of a box read nor a disk or md array of ${g.host}; the inventory names guest disks only so`, [`memory ${g.memoryMiB} MiB, ${g.vcpus} vCPU(s), NICs ${g.nics.map((n) => n.mac).join(", ")}`]);
            continue;
        }
        g.disks = disks;
    }
}

/** What refers to a guest that had to be left out goes too, with a note saying so. */
function dropOrphans(b: Builder): void {
    const hosts = new Set([...b.machines.map((m) => m.name), ...b.guests.map((g) => g.name)]);
    for (const v of [...b.volumes].filter((x) => !hosts.has(x.owner) || !hosts.has(x.san))) {
        b.volumes.splice(b.volumes.indexOf(v), 1);
        b.note(v.san, `NBD export ${v.exportName} (${v.name})`, `${hosts.has(v.owner) ? v.san : v.owner} is not in the inventory (see its note)`);
    }
    for (const c of [...b.containers].filter((x) => !hosts.has(x.host))) {
        b.containers.splice(b.containers.indexOf(c), 1);
        b.note(c.host, `LXC container ${c.name}`, `its host ${c.host} is not in the inventory (see its note)`);
    }
}

const lxcTemplateLine = /^# Template used to create this container: \S*\/lxc-([a-z][a-z0-9_-]*)\s*$/m;
const lxcParamsLine = /^# Parameters passed to the template:(.*)$/m;
const mountSourceOk = /^(?:\/[A-Za-z0-9_.@+/-]*|[A-Za-z0-9.-]+:\/[A-Za-z0-9_.@+/-]*)$/;

function containerOf(b: Builder, p: Placed, name: string, config: string): InvContainer | undefined {
    const where = p.report.survey.hostname;
    const ctName = inventoryName(name, "");
    if (ctName !== name) {
        b.note(where, `LXC container ${name}`, "its name is not one the inventory accepts (lower-case letters, digits, '-')");
        return undefined;
    }
    const ct: InvContainer = { name, host: p.name, service: inventoryName(name.replace(/[0-9-]+$/, ""), "container"), adopt: true, autostart: configValues(config, "lxc.start.auto").pop() === "1" };
    const template = lxcTemplateLine.exec(config)?.[1];
    const rootfs = (configValues(config, "lxc.rootfs.path").pop() ?? "").replace(/^dir:/, "");
    if (template) {
        ct.template = template;
        const args = (lxcParamsLine.exec(config)?.[1] ?? "").trim().split(/\s+/).filter((a) => a !== "");
        if (args.length > 0) ct.templateArgs = args;
    } else if (rootfs.startsWith("/")) {
        ct.rootfs = rootfs;
    } else {
        b.note(where, `LXC container ${name}`, "neither the template it was made from nor a directory root file system shows in its config");
        return undefined;
    }
    const nics: NonNullable<InvContainer["nics"]> = [];
    for (let i = 0; configValues(config, `lxc.net.${i}.type`).length > 0; i++) {
        const get = (k: string) => configValues(config, `lxc.net.${i}.${k}`).pop();
        if (get("type") !== "veth") continue;
        const network = b.networkOfBridge(get("link") ?? "");
        if (!network) {
            b.note(where, `LXC container ${name}`, `its NIC ${i} is on ${get("link") ?? "no bridge"}, which is not the OVS bridge of a known network`);
            return undefined;
        }
        const nic: NonNullable<InvContainer["nics"]>[number] = { network };
        const address = get("ipv4.address");
        if (address) nic.address = address.split("/")[0];
        const mac = get("hwaddr");
        if (mac) nic.mac = mac.toLowerCase();
        const gateway = get("ipv4.gateway");
        if (gateway && gateway !== "auto") nic.gateway = gateway;
        nics.push(nic);
    }
    if (nics.length > 0) ct.nics = nics;
    const mounts: LxcMount[] = configValues(config, "lxc.mount.entry").map((e) => {
        const [source, target, type, options] = e.split(/\s+/);
        return { source, target: `/${target}`, type, options };
    });
    const usable = mounts.filter((m) => mountSourceOk.test(m.source) && /^\/[A-Za-z0-9_.@+/-]*$/.test(m.target) && /^[a-z0-9]{1,16}$/.test(m.type) && /^[A-Za-z0-9_=,.:/-]{1,200}$/.test(m.options));
    if (usable.length > 0) ct.mounts = usable.map((m) => ({ target: m.target, source: m.source, type: m.type, options: m.options }));
    const memory = configValues(config, "lxc.cgroup2.memory.max").pop();
    if (memory && /^[0-9]+M$/.test(memory)) ct.memoryMiB = Number(memory.slice(0, -1));
    return ct;
}

function dnsmasqNotes(b: Builder, p: Placed): void {
    const r = p.report;
    const running = r.survey.processes.filter((x) => programOf(x) === "dnsmasq");
    for (const f of r.survey.dnsmasqConfigs.filter((c) => c.hosts.length > 0)) {
        b.note(
            r.survey.hostname,
            `dnsmasq static hosts in ${f.path}${running.length > 0 ? ` (served by ${running.map((x) => x.service ?? `pid ${x.pid}`).join(", ")})` : ""}`,
            "pulumi-baremetal's PxeServer runs its own dnsmasq instance; taking these over would mean stopping this one (DHCP pauses while the PxeServer's starts). Left as they are: declare a PxeServer (pxe section, pxeServer on this box) and these machines to move them",
            f.hosts.map((h) => `dhcp-host=${[h.mac, h.ip, h.hostname].filter(Boolean).join(",")}`),
        );
    }
}

function dropUndefined<T extends object>(o: T): T {
    return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
