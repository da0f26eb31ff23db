// The model of the site the map draws, built from a stack's state: switches, boxes
// with what runs on them (PXE server, arrays, OSDs, bridges, guests with their own
// bridges, volume groups, NBD exports and containers), Consul's keys, the links
// between them, and what needs attention. Pure: no I/O, no layout.
//
// Where a resource lives is found the way an operator would: by the address its SSH
// connection goes to (a box's or a guest's address, as its Machine declares it),
// else by the box or guest it depends on, else it gets a host of its own named by
// that address.
import type { KvmGuestState } from "../../resources/kvmGuest";
import type { LxcContainerState } from "../../resources/lxcContainer";
import type { MachineState } from "../../resources/machine";
import type { NbdVolumeState } from "../../resources/nbdVolume";
import type { OvsBridgeState } from "../../resources/ovsBridge";
import type { PxeServerState } from "../../resources/pxeServer";
import type { RaidArrayState } from "../../resources/raidArray";
import type { VolumeGroupState } from "../../resources/volumeGroup";
import { describeResource, field, Health, list, obj, Problem, str, strs } from "./describe";
import { StackState, StateObject, StateResource } from "./state";

export type { Health } from "./describe";

export type NodeKind =
    | "switches" | "switch" | "box" | "guest" | "host" | "consul"
    | "pxe" | "array" | "vg" | "export" | "osd" | "bridge" | "container" | "keys" | "other";

/** One resource shown by a node, with the outputs a person may open (secrets already `[secret]`). */
export interface NodeResource {
    urn: string;
    kind: string;
    name: string;
    id?: string;
    outputs: StateObject;
}

export interface MapNode {
    /** Stable within one map: `n0`, `n1` ... in state order. */
    id: string;
    kind: NodeKind;
    title: string;
    lines: string[];
    health: Health;
    /** The badge: `clean`, `running`, `active` ... */
    state?: string;
    /** The network of a switch or a bridge (its colour). */
    network?: string;
    /** The resources this node stands for (a box: its Machine; a guest: its KvmGuest and its boot entry). */
    resources: NodeResource[];
    children: MapNode[];
}

export type LinkKind = "tunnel" | "nbd" | "disk" | "lv" | "nic";

export interface MapLink {
    id: string;
    kind: LinkKind;
    from: string;
    to: string;
    label?: string;
}

export interface AttentionItem {
    nodeId: string;
    /** The node's title and where it is: `md1 raid1 on stor2`. */
    where: string;
    severity: "bad" | "warn";
    text: string;
}

export interface SiteMap {
    stack: string;
    project: string;
    time?: string;
    roots: MapNode[];
    links: MapLink[];
    attention: AttentionItem[];
    /** pulumi-baremetal resources in the state, by kind. */
    kindCounts: Record<string, number>;
    /** Every pulumi-baremetal resource of the state is shown by exactly one node. */
    resourceCount: number;
}

const nodeKindOf: Record<string, NodeKind> = {
    PxeServer: "pxe", RaidArray: "array", VolumeGroup: "vg", NbdVolume: "export", CephOsd: "osd",
    OvsBridge: "bridge", LxcContainer: "container", ConsulKeys: "keys", KvmGuest: "guest", Machine: "box",
};

/** The order children are drawn in inside a box or guest. */
const childOrder: NodeKind[] = ["pxe", "bridge", "array", "osd", "vg", "export", "guest", "container", "other"];

class Builder {
    private next = 0;
    readonly roots: MapNode[] = [];
    readonly links: MapLink[] = [];
    readonly problems = new Map<string, Problem[]>();
    /** Node of each resource URN. */
    readonly nodeOf = new Map<string, MapNode>();
    readonly parentOf = new Map<string, MapNode>();

    node(kind: NodeKind, title: string, lines: string[] = [], health: Health = "ok"): MapNode {
        return { id: `n${this.next++}`, kind, title, lines, health, resources: [], children: [] };
    }

    fromResource(r: StateResource, kind: NodeKind): MapNode {
        const d = describeResource(r);
        const n = this.node(kind, d.title, d.lines, d.health);
        if (d.state) n.state = d.state;
        this.attach(n, r, d.problems);
        return n;
    }

    /** Makes `r` one of the resources `n` stands for. */
    attach(n: MapNode, r: StateResource, problems: Problem[] = describeResource(r).problems): void {
        const res: NodeResource = { urn: r.urn, kind: r.kind ?? r.type, name: r.name, outputs: r.outputs };
        if (r.id) res.id = r.id;
        n.resources.push(res);
        this.nodeOf.set(r.urn, n);
        if (problems.length) this.problems.set(n.id, [...(this.problems.get(n.id) ?? []), ...problems]);
    }

    adopt(parent: MapNode | undefined, child: MapNode): void {
        if (parent) {
            parent.children.push(child);
            this.parentOf.set(child.id, parent);
        } else this.roots.push(child);
    }

    link(kind: LinkKind, from: MapNode, to: MapNode, label?: string): void {
        if (from === to) return;
        const l: MapLink = { id: `e${this.links.length}`, kind, from: from.id, to: to.id };
        if (label) l.label = label;
        this.links.push(l);
    }
}

const lower = (s: string | undefined) => s?.toLowerCase();
const connectionHost = (r: StateResource) => str(obj(r.inputs.connection).host) ?? str(obj(r.outputs.connection).host);

/** Builds the site's model from its state. */
export function buildSiteMap(state: StackState): SiteMap {
    const b = new Builder();
    const ours = state.resources.filter((r) => r.kind !== undefined);
    const hosts = declareHosts(b, ours);
    const placed = placeResources(b, ours, hosts);

    // The tree: switches first, then boxes, hosts known only by address, Consul.
    const switches = declareSwitches(b, ours, hosts.boxes);
    if (switches.size) {
        const group = b.node("switches", "Switches", ["bridges take their switch's colour"]);
        b.adopt(undefined, group);
        for (const s of switches.values()) b.adopt(group, s);
    }
    const fill = (host: MapNode) => {
        const kids = (placed.children.get(host) ?? []).sort((x, y) => childOrder.indexOf(x.kind) - childOrder.indexOf(y.kind));
        for (const k of kids) {
            b.adopt(host, k);
            if (k.kind === "guest") fill(k);
        }
    };
    for (const host of [...hosts.boxes, ...placed.tops]) {
        b.adopt(undefined, host);
        fill(host);
    }

    declareLinks(b, ours, hosts.byAddress);
    const attention = collectAttention(b, ours);
    const kindCounts: Record<string, number> = {};
    for (const r of ours) kindCounts[r.kind!] = (kindCounts[r.kind!] ?? 0) + 1;
    return { stack: state.stack, project: state.project, time: state.time, roots: b.roots, links: b.links, attention, kindCounts, resourceCount: ours.length };
}

interface Hosts {
    /** A node per Machine that is not a guest's boot entry. */
    boxes: MapNode[];
    guests: [StateResource, MapNode][];
    /** Box or guest by each address it is reached at (its IP, hostname, SSH host). */
    byAddress: Map<string, MapNode>;
}

const guestMac = (g: StateResource) => lower(str(field<KvmGuestState>(g, "mac")) ?? str(obj(list(field<KvmGuestState>(g, "nics"))[0]).mac));
const machineAddresses = (m: StateResource) => [
    str(field<MachineState>(m, "ip")), str(field<MachineState>(m, "hostname")),
    str(obj(obj(field<MachineState>(m, "waitForSsh")).connection).host),
];

/** Boxes (Machines) and guests (KvmGuests, each with its boot entry: the Machine with its first NIC's MAC). */
function declareHosts(b: Builder, ours: StateResource[]): Hosts {
    const kvmGuests = ours.filter((r) => r.kind === "KvmGuest");
    const guestsByMac = new Map(kvmGuests.filter((g) => guestMac(g)).map((g) => [guestMac(g), g] as const));
    const byAddress = new Map<string, MapNode>();
    const remember = (n: MapNode, addresses: (string | undefined)[]) => {
        for (const a of addresses) if (a && !byAddress.has(a)) byAddress.set(a, n);
    };
    const bootEntries = new Map<StateResource, StateResource>();
    const boxes: MapNode[] = [];
    for (const m of ours.filter((r) => r.kind === "Machine")) {
        const mac = lower(str(field<MachineState>(m, "mac")));
        const guest = mac ? guestsByMac.get(mac) : undefined;
        if (guest) {
            bootEntries.set(guest, m);
            continue;
        }
        const box = b.fromResource(m, "box");
        boxes.push(box);
        remember(box, machineAddresses(m));
    }
    const guests: [StateResource, MapNode][] = [];
    for (const g of kvmGuests) {
        const n = b.fromResource(g, "guest");
        const entry = bootEntries.get(g);
        if (entry) {
            b.attach(n, entry);
            const profile = str(field<MachineState>(entry, "profile"));
            n.lines.push([profile && `profile ${profile}`, str(field<MachineState>(entry, "ip"))].filter(Boolean).join(" · "));
            remember(n, machineAddresses(entry));
        }
        guests.push([g, n]);
    }
    return { boxes, guests, byAddress };
}

/**
 * Puts every other resource on its host: the box or guest its connection reaches, else
 * the box or guest it depends on, else a host of its own named by the address. ConsulKeys
 * go to their Consul.
 */
function placeResources(b: Builder, ours: StateResource[], hosts: Hosts): { children: Map<MapNode, MapNode[]>; tops: MapNode[] } {
    const children = new Map<MapNode, MapNode[]>();
    const put = (host: MapNode, child: MapNode) => children.set(host, [...(children.get(host) ?? []), child]);
    const synthetic = new Map<string, MapNode>();
    const consuls = new Map<string, MapNode>();
    const once = (map: Map<string, MapNode>, key: string, make: () => MapNode) => map.get(key) ?? map.set(key, make()).get(key)!;
    const hostOf = (r: StateResource, self?: MapNode): MapNode => {
        const address = connectionHost(r);
        const byAddress = address ? hosts.byAddress.get(address) : undefined;
        if (byAddress && byAddress !== self) return byAddress;
        for (const dep of r.dependencies) {
            const n = b.nodeOf.get(dep);
            if (n && n !== self && (n.kind === "box" || n.kind === "guest")) return n;
        }
        return once(synthetic, address ?? "", () => b.node("host", address ? `host ${address}` : "no host", ["not declared as a Machine"], "unknown"));
    };
    for (const [g, n] of hosts.guests) put(hostOf(g, n), n);
    for (const r of ours) {
        if (r.kind === "Machine" || r.kind === "KvmGuest") continue;
        if (r.kind === "ConsulKeys") {
            const address = str(obj(r.inputs.consul).address) ?? "";
            put(once(consuls, address, () => b.node("consul", "Consul K/V", address ? [address] : [])), b.fromResource(r, "keys"));
            continue;
        }
        const n = b.fromResource(r, nodeKindOf[r.kind!] ?? "other");
        if (r.kind === "OvsBridge") n.network = str(field<OvsBridgeState>(r, "network"));
        put(hostOf(r), n);
    }
    return { children, tops: [...synthetic.values(), ...consuls.values()] };
}

/** The switches: every network a bridge is on, the LAN the boxes boot from, the IPMI network of their BMCs. */
function declareSwitches(b: Builder, ours: StateResource[], boxes: MapNode[]): Map<string, MapNode> {
    const bridges = ours.filter((x) => x.kind === "OvsBridge");
    const bmcs = ours.filter((r) => r.kind === "Machine" && str(obj(field<MachineState>(r, "ipmi")).address)).length;
    const networks = new Set<string>();
    if (boxes.length) networks.add("lan");
    for (const r of bridges) {
        const n = str(field<OvsBridgeState>(r, "network"));
        if (n) networks.add(n);
    }
    if (bmcs) networks.add("ipmi");
    const pxe = ours.find((r) => r.kind === "PxeServer");
    const out = new Map<string, MapNode>();
    for (const name of networks) {
        const on = bridges.filter((r) => str(field<OvsBridgeState>(r, "network")) === name);
        const tunnelled = on.filter((r) => !str(field<OvsBridgeState>(r, "uplink"))).length;
        const lines = [
            name === "lan" && pxe ? str(field<PxeServerState>(pxe, "subnet")) : undefined,
            name === "lan" ? `${boxes.length} box(es) boot here` : undefined,
            on.length ? `${on.length} bridge(s)${tunnelled ? `, ${tunnelled} over OpenVPN` : ""}` : undefined,
            name === "ipmi" ? `${bmcs} BMC(s)` : undefined,
        ].filter((l): l is string => l !== undefined);
        const sw = b.node("switch", `${name.toUpperCase()}`, lines);
        sw.network = name;
        out.set(name, sw);
    }
    return out;
}

function declareLinks(b: Builder, ours: StateResource[], hostByAddress: Map<string, MapNode>): void {
    const nodeOf = (r: StateResource) => b.nodeOf.get(r.urn)!;
    const hostOf = (r: StateResource) => b.parentOf.get(nodeOf(r).id);
    const ofKind = (k: string) => ours.filter((r) => r.kind === k);
    const bridges = ofKind("OvsBridge");
    const bridgeOn = (host: MapNode | undefined, name: string | undefined) =>
        bridges.find((x) => hostOf(x) === host && str(field<OvsBridgeState>(x, "name")) === name);

    // Bridges are coloured by their network (the switches' colours); links are drawn for
    // OpenVPN tunnels, which are the links between boxes that no switch shows.
    for (const [client, hub] of tunnelPairs(bridges, hostByAddress, hostOf)) b.link("tunnel", nodeOf(hub), nodeOf(client), "OpenVPN");

    // Storage: arrays to the guest that takes them as disks or the VG on them; VG to its exports; exports to their owner.
    const vgs = ofKind("VolumeGroup");
    const guests = ofKind("KvmGuest");
    for (const a of ofKind("RaidArray")) {
        const dev = str(field<RaidArrayState>(a, "device"));
        for (const g of guests) {
            const disks = list(field<KvmGuestState>(g, "disks")).map((d) => str(obj(d).device));
            if (hostOf(g) === hostOf(a) && dev && disks.includes(dev)) b.link("disk", nodeOf(a), nodeOf(g), dev);
        }
        for (const vg of vgs) {
            if (hostOf(vg) === hostOf(a) && dev && strs(field<VolumeGroupState>(vg, "devices")).includes(dev)) b.link("disk", nodeOf(a), nodeOf(vg));
        }
    }
    const guestByMac = new Map(guests.map((g) => [lower(str(field<KvmGuestState>(g, "mac")) ?? str(obj(list(field<KvmGuestState>(g, "nics"))[0]).mac)), g] as const));
    for (const v of ofKind("NbdVolume")) {
        const vg = vgs.find((x) => hostOf(x) === hostOf(v) && str(field<VolumeGroupState>(x, "name")) === str(field<NbdVolumeState>(v, "volumeGroup")));
        if (vg) b.link("lv", nodeOf(vg), nodeOf(v));
        const owner = guestByMac.get(lower(str(field<NbdVolumeState>(v, "owner"))));
        if (owner) {
            b.link("nbd", nodeOf(v), nodeOf(owner), "NBD");
            const ownerNode = nodeOf(owner);
            nodeOf(v).lines = nodeOf(v).lines.map((l) => (l.startsWith("owner ") ? `owner ${ownerNode.title}` : l));
        }
    }

    // NICs: guests and containers on the bridges of the box (or guest) they run on.
    for (const g of guests) {
        for (const nic of list(field<KvmGuestState>(g, "nics"))) {
            const br = bridgeOn(hostOf(g), str(obj(nic).bridge));
            if (br) b.link("nic", nodeOf(br), nodeOf(g));
        }
    }
    for (const c of ofKind("LxcContainer")) {
        for (const nic of list(field<LxcContainerState>(c, "network"))) {
            const br = bridgeOn(hostOf(c), str(obj(nic).bridge));
            if (br) b.link("nic", nodeOf(br), nodeOf(c));
        }
    }
}

/**
 * Which bridge's OpenVPN tunnel reaches which. A tunnel's `remote` names the hub when
 * the state shows it; a tunnel's key makes the whole list a secret in state, though,
 * so usually it does not, and then the bridges of one network tell: the one with
 * tunnels and an uplink is the hub, those with tunnels and no uplink dial it.
 */
function tunnelPairs(bridges: StateResource[], hostByAddress: Map<string, MapNode>, hostOf: (r: StateResource) => MapNode | undefined): [StateResource, StateResource][] {
    const pairs: [StateResource, StateResource][] = [];
    const hasTunnels = (r: StateResource) => Object.keys(obj(field<OvsBridgeState>(r, "tunnelStates"))).length > 0 || list(field<OvsBridgeState>(r, "tunnels")).length > 0;
    const network = (r: StateResource) => str(field<OvsBridgeState>(r, "network"));
    for (const client of bridges) {
        const remotes = list(field<OvsBridgeState>(client, "tunnels")).map((t) => str(obj(t).remote)).filter((x): x is string => !!x);
        if (remotes.length) {
            for (const remote of remotes) {
                const host = hostByAddress.get(remote);
                const hub = bridges.find((x) => hostOf(x) === host && network(x) === network(client));
                if (hub) pairs.push([client, hub]);
            }
            continue;
        }
        if (!hasTunnels(client) || str(field<OvsBridgeState>(client, "uplink")) || field<OvsBridgeState>(client, "tunnels") !== undefined) continue;
        const hubs = bridges.filter((x) => x !== client && network(x) === network(client) && hasTunnels(x) && str(field<OvsBridgeState>(x, "uplink")));
        if (hubs.length === 1) pairs.push([client, hubs[0]]);
    }
    return pairs;
}

/** What needs a person, worst first; and the site-wide rule: some PXE server must serve DHCP. */
function collectAttention(b: Builder, ours: StateResource[]): AttentionItem[] {
    const all: MapNode[] = [];
    const walk = (n: MapNode) => {
        all.push(n);
        n.children.forEach(walk);
    };
    b.roots.forEach(walk);
    const where = (n: MapNode) => {
        const host = b.parentOf.get(n.id);
        return host && host.kind !== "consul" ? `${n.title} on ${host.title}` : n.title;
    };
    const items: AttentionItem[] = [];
    for (const n of all) {
        for (const p of b.problems.get(n.id) ?? []) items.push({ nodeId: n.id, where: where(n), severity: p.severity, text: p.text });
    }
    const pxe = ours.filter((r) => r.kind === "PxeServer");
    const roles = pxe.map((r) => str(field<PxeServerState>(r, "dhcpRole")));
    if (pxe.length > 0 && roles.every((r) => r !== undefined) && !roles.includes("active")) {
        const first = b.nodeOf.get(pxe[0].urn)!;
        items.unshift({ nodeId: first.id, where: "PXE", severity: "bad", text: `no active PXE server: none of ${pxe.length} serves DHCP (${roles.join(", ")}); machines cannot boot` });
    }
    const rank = { bad: 0, warn: 1 };
    return items.map((x, i) => ({ x, i })).sort((p, q) => rank[p.x.severity] - rank[q.x.severity] || p.i - q.i).map((p) => p.x);
}

/** Every node of the map, depth first. */
export function allNodes(site: SiteMap): MapNode[] {
    const out: MapNode[] = [];
    const walk = (n: MapNode) => {
        out.push(n);
        n.children.forEach(walk);
    };
    site.roots.forEach(walk);
    return out;
}
