// The data center as resources: one function that turns a validated inventory
// and the secrets into every pulumi-baremetal resource, in the order the seed
// brings a data center up:
//
//   PXE servers (on the Consul servers; bootstrapped boxes)
//     -> Machines (lease + boot entry on every PXE server, Consul node and K/V, BMC power)
//       -> RAID arrays, Ceph OSDs, OVS bridges on each box
//         -> guests (SAN VMs get the arrays) -> LVM + NBD exports in the SANs
//           -> guests with NBD disks (KVM-infra, KVM-services, NAS) -> bridges and containers inside
//
// Nothing here talks to a host: the resources do, during `pulumi up`. A preview
// opens no connection.
import * as pulumi from "@pulumi/pulumi";
import {
    CephOsd, ConnectionArgs, ConsulConnectionArgs, ConsulKeys, KvmGuest, LxcContainer, Machine, NbdVolume, OvsBridge,
    OvsTunnelArgs, PxeProfileArgs, PxeServer, RaidArray, useNativeProvider, VolumeGroup,
} from "pulumi-baremetal";
import type {
    ContainerSpec, FileSpec, GuestSpec, Inventory, MachineSpec, ProfileSpec, VolumeSpec,
} from "./inventory";
import { bridgedNetworks, tunnelPeers } from "./validate";

/** Secrets come from stack configuration, never from the inventory. */
export interface DataCenterSecrets {
    /** The private key every box accepts for `sshUser` (OpenSSH or PEM). */
    sshPrivateKey: pulumi.Input<string>;
    /** The BMC password of a machine. */
    bmcPassword(machine: string): pulumi.Input<string>;
    /** The OpenVPN static key of a network's tunnels. */
    openvpnKey(network: string): pulumi.Input<string>;
    /** Consul ACL token with write access to the catalog, K/V and sessions. */
    consulToken?: pulumi.Input<string>;
}

export interface DataCenterOptions {
    /**
     * Opt in to losing data: arrays wiped, volumes and OSDs zapped when they are deleted
     * or re-created. Off by default: such changes are refused and the data kept.
     */
    allowDataLoss?: boolean;
    /** Wait for new RAID arrays to finish their initial resync (default false: it runs in the background). */
    raidWaitForSync?: boolean;
    /** Seconds a connection into a guest keeps dialling while the guest boots (default 600). */
    guestBootSeconds?: number;
    /** Take over existing objects of the same names instead of failing (see the README's adopt). */
    adopt?: boolean;
    /**
     * Which part of the data center this stack declares (default `all`). A site split into two
     * stacks declares `storage` in one (PXE servers, boxes, their arrays, OSDs and bridges, SAN
     * VMs, volume groups, NBD exports, K/V trees) and `services` in the other (every other guest,
     * bridges and containers inside guests, containers on boxes, the NAS's K/V), from the same
     * inventory. The services stack reads the exports it needs from the storage stack's
     * `storageExports` output (a StackReference): pass them as `storage`.
     */
    part?: DataCenterPart;
    /** For `part: services`: the storage stack's `storageExports` output. */
    storage?: pulumi.Input<StorageExports>;
    /**
     * Register every resource with the native provider plugin (`pulumi-resource-baremetal`,
     * types `baremetal:index:<Kind>`) instead of the dynamic provider: the same resources
     * with the same inputs. Default false. The plugin must be on PATH (README, "The native
     * provider"); a stack keeps the provider it was made with (moving is an import).
     */
    native?: boolean;
}

export type DataCenterPart = "all" | "storage" | "services";
export const dataCenterParts: readonly DataCenterPart[] = ["all", "storage", "services"];

/** One NBD export as the storage stack publishes it for the services stack. */
export interface ExportRef { san: string; exportAddress: string; port: number; exportName: string; uri: string; sizeBytes: number }

/** The storage stack's output `storageExports`: every NBD export by volume name. */
export interface StorageExports { volumes: Record<string, ExportRef> }

export interface MachineSummary { name: string; role: string; mac: string; address: string; profile: string; bootSeconds?: number }
export interface ExportSummary { volume: string; san: string; uri: string; owner: string; sizeBytes: number }
export interface GuestSummary { name: string; host: string; status: string; memoryMiB: number }
export interface ContainerSummary { name: string; host: string; service: string; state: string; addresses: string[] }

export interface DataCenterSummary {
    datacenter: string;
    /** Which part this stack declares (see DataCenterOptions.part). */
    part: DataCenterPart;
    pxeServers: { name: string; dhcpRole: string; baseUrl: string }[];
    machines: MachineSummary[];
    arrays: { machine: string; device: string; state: string; members: string[] }[];
    osds: { machine: string; device: string; osdId: number }[];
    bridges: number;
    exports: ExportSummary[];
    guests: GuestSummary[];
    containers: ContainerSummary[];
}

/** What `declareDataCenter` made, by inventory name (for programs that add their own resources). */
export interface DataCenter {
    pxeServers: Map<string, PxeServer>;
    machines: Map<string, Machine>;
    arrays: Map<string, RaidArray>;
    osds: CephOsd[];
    bridges: Map<string, OvsBridge>;
    volumeGroups: Map<string, VolumeGroup>;
    /** What the services stack reads (set for `all` and `storage`; a `services` stack passes it on as it read it). */
    storageExports: pulumi.Output<StorageExports>;
    volumes: Map<string, NbdVolume>;
    guests: Map<string, KvmGuest>;
    containers: Map<string, LxcContainer>;
    resourceCount: number;
    summary: pulumi.Output<DataCenterSummary>;
}

/**
 * The secrets from stack configuration (all set with `pulumi config set --secret`):
 * `sshPrivateKey` (PEM/OpenSSH text, or its base64 because the CLI takes a value that
 * starts with "-----" for a flag), `bmcPassword` (every BMC) and/or `bmcPasswords`
 * (object by machine name), `openvpnKey` (every network) and/or `openvpnKeys` (object by
 * network name), optional `consulToken`.
 */
export function secretsFromConfig(config: pulumi.Config): DataCenterSecrets {
    const bmcAll = config.getSecret("bmcPassword");
    const bmcBy = config.getSecretObject<Record<string, string>>("bmcPasswords");
    const vpnAll = config.getSecret("openvpnKey");
    const vpnBy = config.getSecretObject<Record<string, string>>("openvpnKeys");
    return {
        sshPrivateKey: config.requireSecret("sshPrivateKey").apply(pemOrBase64),
        bmcPassword: (machine) => pick(config, "bmcPassword", "bmcPasswords", bmcAll, bmcBy, machine),
        openvpnKey: (network) => pick(config, "openvpnKey", "openvpnKeys", vpnAll, vpnBy, network).apply(pemOrBase64),
        consulToken: config.getSecret("consulToken"),
    };
}

/** A value from `byName[name]`, else `all`; a clear error naming both keys when neither is set. */
function pick(
    config: pulumi.Config, allKey: string, byKey: string,
    all: pulumi.Output<string> | undefined, by: pulumi.Output<Record<string, string>> | undefined, name: string,
): pulumi.Output<string> {
    const missing = `stack config has no secret for ${name}: set ${config.name}:${allKey} (for all) or ${config.name}:${byKey} (an object with a "${name}" key), with --secret`;
    if (!all && !by) throw new Error(missing);
    return pulumi.secret(pulumi.all([all, by]).apply(([a, b]) => {
        const v = b?.[name] ?? a;
        if (v === undefined) throw new Error(missing);
        return v;
    }));
}

function pemOrBase64(v: string): string {
    const t = v.trim();
    if (t.startsWith("-----")) return `${t}\n`;
    const decoded = Buffer.from(t, "base64").toString("utf8");
    if (!decoded.startsWith("-----")) throw new Error("a key in stack config is neither PEM/OpenSSH text nor its base64");
    return decoded.endsWith("\n") ? decoded : `${decoded}\n`;
}

// ---- helpers over the inventory ----------------------------------------------------------------

type HostSpec = MachineSpec | GuestSpec;

function isGuest(h: HostSpec): h is GuestSpec {
    return (h as GuestSpec).host !== undefined;
}

function prefixLength(cidr: string): number {
    return Number(cidr.split("/")[1]);
}

/** The NICs of a host with their interface names (a guest's are eth0, eth1 ... in order). */
function nicsOf(h: HostSpec): { name: string; network: string; mac: string; address?: string }[] {
    return isGuest(h) ? h.nics.map((n, i) => ({ name: `eth${i}`, ...n })) : h.nics;
}

function addressOn(h: HostSpec, network: string): string | undefined {
    return nicsOf(h).find((n) => n.network === network)?.address;
}

/** Where to reach a host over SSH: its ssh.host, else its eth0 address. */
function sshHost(h: HostSpec): string {
    const host = h.ssh?.host ?? nicsOf(h)[0].address;
    if (!host) throw new Error(`${h.name}: no ssh.host and no eth0 address (the inventory check should have caught this)`);
    return host;
}

function toFile(f: FileSpec): { url: string; sha256?: string } | { path: string } {
    return "url" in f ? (f.sha256 ? { url: f.url, sha256: f.sha256 } : { url: f.url }) : { path: f.path };
}

function profileArgs(p: ProfileSpec): PxeProfileArgs {
    const kind = p.kind ?? "alpine";
    const args: PxeProfileArgs = { kind, kernel: toFile(p.kernel), initramfs: toFile(p.initramfs), cmdline: p.cmdline ?? [] };
    if (kind === "alpine") {
        if (p.modloop) args.modloop = toFile(p.modloop);
        if (p.repository) args.repository = p.repository;
        const overlay: Record<string, string> = {
            "etc/network/interfaces": "auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet dhcp\n",
        };
        if (p.packages) overlay["etc/apk/world"] = `${p.packages.join("\n")}\n`;
        if (p.repository) overlay["etc/apk/repositories"] = `${p.repository}\n`;
        args.overlay = { ...overlay, ...(p.overlay ?? {}) };
    }
    return args;
}

/** The K/V configuration a box reads at boot, under machines/<name>/. */
function hostConfig(inv: Inventory, h: HostSpec): Record<string, string> {
    const out: Record<string, string> = { role: h.role, datacenter: inv.datacenter };
    if (isGuest(h)) out.host = h.host;
    for (const n of nicsOf(h)) {
        out[`net/${n.name}/mac`] = n.mac.toLowerCase();
        out[`net/${n.name}/network`] = n.network;
        if (n.address) out[`net/${n.name}/address`] = `${n.address}/${prefixLength(inv.networks[n.network].cidr)}`;
    }
    return { ...out, ...(h.config ?? {}) };
}

// ---- the program -------------------------------------------------------------------------------

/** Declares every resource of the data center; see the top of this file for the order. */
export function declareDataCenter(inv: Inventory, secrets: DataCenterSecrets, options: DataCenterOptions = {}): DataCenter {
    // Only this call's resources: what the program declares after it keeps its own choice.
    const nativeBefore = useNativeProvider(options.native ?? false);
    try {
        return declareResources(inv, secrets, options);
    } finally {
        useNativeProvider(nativeBefore);
    }
}

function declareResources(inv: Inventory, secrets: DataCenterSecrets, options: DataCenterOptions): DataCenter {
    const wipe = options.allowDataLoss ?? false;
    const adopt = options.adopt ?? false;
    const sshUser = inv.defaults?.sshUser ?? "root";
    const pxeNet = inv.pxe?.network ?? "lan";
    // No consul section: nothing is registered in Consul.
    const consul: ConsulConnectionArgs | undefined = inv.consul ? { address: inv.consul.address, datacenter: inv.consul.datacenter ?? inv.datacenter } : undefined;
    if (consul && secrets.consulToken) consul.token = secrets.consulToken;
    // Each object adopts when the program says so for all, or its inventory entry does.
    const adopting = (entry: { adopt?: boolean } | undefined) => adopt || entry?.adopt === true;
    const guestDials = Math.max(1, Math.ceil((options.guestBootSeconds ?? 600) / 10));
    const machinesByName = new Map(inv.machines.map((m) => [m.name, m]));
    const part = options.part ?? "all";
    if (!dataCenterParts.includes(part)) throw new Error(`part: "${String(part)}" is not one of ${dataCenterParts.join(", ")}`);
    if (part === "services" && options.storage === undefined) throw new Error("part: services needs the storage stack's exports (options.storage, from a StackReference to the storage stack's storageExports output)");
    const withStorage = part !== "services";
    const withServices = part !== "storage";
    // The storage side holds the SAN guests and every guest a SAN's disks come from.
    const storageGuests = new Set<string>();
    const markStorage = (g: GuestSpec): void => {
        if (storageGuests.has(g.name)) return;
        storageGuests.add(g.name);
        for (const d of g.disks ?? []) {
            if (!("volume" in d)) continue;
            const san = (inv.guests ?? []).find((x) => x.name === (inv.volumes ?? []).find((v) => v.name === d.volume)?.san);
            if (san) markStorage(san);
        }
    };
    for (const g of (inv.guests ?? []).filter((x) => x.san)) markStorage(g);
    const guestHere = (g: GuestSpec) => (storageGuests.has(g.name) ? withStorage : withServices);
    const fromStorage = options.storage === undefined ? undefined : pulumi.output(options.storage);
    /** An export of the storage stack, failing clearly when it does not publish it. */
    const exportRef = (volume: string): pulumi.Output<ExportRef> => fromStorage!.apply((s) => {
        const e = s?.volumes?.[volume];
        if (!e) throw new Error(`the storage stack publishes no export "${volume}" (it has ${Object.keys(s?.volumes ?? {}).join(", ") || "none"}): run \`pulumi up\` on the storage stack first, from the same inventory`);
        return e;
    });
    const hostsByName = new Map<string, HostSpec>([...inv.machines.map((m) => [m.name, m] as const), ...(inv.guests ?? []).map((g) => [g.name, g] as const)]);

    const dc: DataCenter = {
        pxeServers: new Map(), machines: new Map(), arrays: new Map(), osds: [], bridges: new Map(),
        volumeGroups: new Map(), volumes: new Map(), guests: new Map(), containers: new Map(), resourceCount: 0,
        summary: pulumi.output({} as DataCenterSummary), storageExports: pulumi.output<StorageExports>({ volumes: {} }),
    };
    const count = <T>(r: T): T => {
        dc.resourceCount++;
        return r;
    };

    const connection = (h: HostSpec): ConnectionArgs => {
        const c: ConnectionArgs = { host: sshHost(h), user: h.ssh?.user ?? sshUser, privateKey: secrets.sshPrivateKey };
        if (h.ssh?.port) c.port = h.ssh.port;
        if (h.ssh?.hostKey) c.hostKey = h.ssh.hostKey;
        // A guest may still be booting when the first resource inside it connects.
        if (isGuest(h)) {
            c.dialErrorLimit = guestDials;
            c.perDialTimeout = 10;
        }
        return c;
    };

    // -- PXE servers: every machine with pxeServer; the Consul lock picks the one serving DHCP.
    const net = inv.networks[pxeNet];
    const pxe = inv.pxe;
    const profiles = Object.fromEntries(Object.entries(pxe?.profiles ?? {}).map(([name, p]) => [name, profileArgs(p)]));
    for (const m of pxe && withStorage ? inv.machines.filter((x) => x.pxeServer) : []) {
        const nic = m.nics.find((n) => n.network === pxeNet)!;
        dc.pxeServers.set(m.name, count(new PxeServer(`pxe-${m.name}`, {
            connection: connection(m),
            name: inv.datacenter,
            address: nic.address!,
            interface: m.pxeServer?.interface ?? nic.name,
            subnet: net.cidr,
            ...(net.gateway ? { gateway: net.gateway } : {}),
            ...(net.dns ? { dnsServers: net.dns } : {}),
            ...(inv.domain ? { domain: inv.domain } : {}),
            ...(pxe!.leaseSeconds ? { leaseSeconds: pxe!.leaseSeconds } : {}),
            ...(pxe!.httpPort ? { httpPort: pxe!.httpPort } : {}),
            ipxeBootloaders: pxe!.ipxeBootloaders ?? true,
            profiles,
            standby: {
                lockKey: pxe!.lockKey ?? "baremetal/pxe/leader",
                consulAddress: "127.0.0.1:8500",
                consulBinary: pxe!.consulBinary ?? "/usr/bin/consul",
                ...(secrets.consulToken ? { token: secrets.consulToken } : {}),
            },
            adopt: adopting(m),
        })));
    }
    // The services stack names the storage stack's PXE servers the way a PxeServer resource does.
    const pxeServers: ConstructorParameters<typeof Machine>[1]["pxeServers"] = withStorage
        ? [...dc.pxeServers.values()]
        : (pxe ? inv.machines.filter((x) => x.pxeServer) : []).map((m) => ({ connection: connection(m), name: inv.datacenter }));

    // -- Machines: boot entries everywhere, Consul, power; guests' entries too (they boot by PXE).
    // Without PXE servers there is no Machine: a box is then only where its arrays, guests and containers are.
    const declareMachine = (h: HostSpec, extra: { ipmi?: MachineSpec["bmc"]; power?: MachineSpec["power"]; waitForSshSeconds?: number }): Machine | undefined => {
        if (!pxe) return undefined;
        const eth0 = nicsOf(h)[0];
        const config = hostConfig(inv, h);
        const args: ConstructorParameters<typeof Machine>[1] = {
            mac: eth0.mac.toLowerCase(),
            hostname: h.name,
            ip: eth0.address!,
            role: h.role,
            profile: h.profile ?? inv.defaults?.profile ?? "default",
            kernelArgs: h.kernelArgs ?? [],
            pxeServers,
            adopt: adopting(h),
        };
        if (h.consulAgent && consul) {
            // The box's own agent registers it; its configuration still goes to K/V.
            count(new ConsulKeys(`config-${h.name}`, { consul, prefix: `machines/${h.name}/`, keys: config, adopt: adopting(h) }));
        } else if (consul) {
            args.consul = consul;
            args.config = config;
        }
        if (extra.ipmi) {
            const b = extra.ipmi;
            args.ipmi = {
                address: b.address, user: b.user ?? inv.defaults?.bmcUser ?? "admin", password: secrets.bmcPassword(h.name),
                ...(b.port ? { port: b.port } : {}), ...(b.interface ? { interface: b.interface } : {}), ...(b.cipherSuite !== undefined ? { cipherSuite: b.cipherSuite } : {}),
            };
        }
        args.power = { onCreate: extra.power?.onCreate ?? (extra.ipmi ? "pxe" : "none"), cycleOnBootChange: extra.power?.cycleOnBootChange ?? false, offOnDelete: extra.power?.offOnDelete ?? false };
        if (extra.waitForSshSeconds) args.waitForSsh = { connection: connection(h), timeoutSeconds: extra.waitForSshSeconds };
        const machine = count(new Machine(`machine-${h.name}`, args));
        dc.machines.set(h.name, machine);
        return machine;
    };
    for (const m of withStorage ? inv.machines : []) declareMachine(m, { ipmi: m.bmc, power: m.power, waitForSshSeconds: m.waitForSshSeconds });

    /** What a box's own resources wait for: its Machine, when there is one. */
    const bootedOf = (name: string): pulumi.Resource[] => {
        const machine = dc.machines.get(name);
        return machine ? [machine] : [];
    };

    // -- On each machine: RAID arrays, Ceph OSDs.
    for (const m of withStorage ? inv.machines : []) {
        const booted = bootedOf(m.name);
        for (const r of m.raid ?? []) {
            dc.arrays.set(`${m.name}:${r.device}`, count(new RaidArray(`raid-${m.name}-${r.device.slice(5)}`, {
                connection: connection(m), device: r.device, level: r.level ?? "raid1", members: r.members,
                name: r.name ?? `${m.name}-${r.device.slice(5)}`, allowDataLoss: wipe, waitForSync: options.raidWaitForSync ?? false,
            }, { dependsOn: booted })));
        }
        (m.ceph?.osds ?? []).forEach((o, i) => {
            dc.osds.push(count(new CephOsd(`osd-${m.name}-${i}`, {
                connection: connection(m), device: o.device,
                ...(o.deviceClass ? { deviceClass: o.deviceClass } : {}), ...(o.crushWeight !== undefined ? { crushWeight: o.crushWeight } : {}),
                ...(inv.ceph?.cluster ? { cluster: inv.ceph.cluster } : {}),
                allowDataLoss: wipe, adopt: adopting(o),
            }, { dependsOn: booted })));
        });
    }

    // -- OVS bridges: one per (host, bridged network); uplinked by the host's NIC, else by OpenVPN to the hub.
    const bridgeFor = (h: HostSpec, network: string, dependsOn: pulumi.Resource[]): OvsBridge => {
        const spec = inv.networks[network];
        const nic = nicsOf(h).find((n) => n.network === network);
        const tunnels: OvsTunnelArgs[] = [];
        const base = spec.tunnelPort ?? 1194;
        if (!isGuest(h) && spec.tunnelHub === h.name) {
            tunnelPeers(inv, network).forEach((_peer, i) => tunnels.push({ name: `v${network}${i + 1}`, port: base + i, key: secrets.openvpnKey(network) }));
        } else if (!nic) {
            const hub = machinesByName.get(spec.tunnelHub!)!;
            const i = tunnelPeers(inv, network).findIndex((p) => p.name === h.name);
            tunnels.push({ name: `v${network}`, port: base + i, remote: sshHost(hub), remotePort: base + i, key: secrets.openvpnKey(network) });
        }
        const bridge = count(new OvsBridge(`bridge-${h.name}-${network}`, {
            connection: connection(h), name: spec.bridge!, network,
            ...(nic ? { uplink: nic.name, moveAddresses: nic.address !== undefined } : {}),
            tunnels, adopt: adopting(h),
        }, { dependsOn }));
        dc.bridges.set(`${h.name}:${network}`, bridge);
        return bridge;
    };
    for (const m of withStorage ? inv.machines : []) {
        for (const network of bridgedNetworks(inv, m, true)) bridgeFor(m, network, bootedOf(m.name));
    }

    // -- Guests, in dependency order: a guest with NBD disks waits for the SAN that serves them.
    const guests = inv.guests ?? [];
    const volumesBySan = new Map<string, VolumeSpec[]>();
    for (const v of inv.volumes ?? []) volumesBySan.set(v.san, [...(volumesBySan.get(v.san) ?? []), v]);

    const declareSan = (h: HostSpec, dependsOn: pulumi.Resource[]): void => {
        const san = h.san!;
        // A device that is one of the box's arrays comes from the array, so the VG waits for it.
        const arrayOf = (d: string) => dc.arrays.get(`${h.name}:${d}`);
        const arrays = san.devices.map(arrayOf).filter((a): a is RaidArray => a !== undefined);
        const vg = count(new VolumeGroup(`vg-${h.name}-${san.volumeGroup}`, {
            connection: connection(h), name: san.volumeGroup,
            devices: san.devices.map((d) => arrayOf(d)?.device ?? d),
            allowDataLoss: wipe, adopt: adopting(san),
        }, { dependsOn: [...dependsOn, ...arrays] }));
        dc.volumeGroups.set(h.name, vg);
        const exportNetwork = san.exportNetwork ?? (inv.networks.storage ? "storage" : pxeNet);
        const exportAddress = addressOn(h, exportNetwork) ?? sshHost(h);
        for (const v of volumesBySan.get(h.name) ?? []) {
            const owner = hostsByName.get(v.owner) as GuestSpec;
            // The NBD client is qemu on whichever box runs the guest: by default every box on the export network.
            const clients = v.allowedClients ?? [inv.networks[exportNetwork].cidr];
            dc.volumes.set(v.name, count(new NbdVolume(`volume-${v.name}`, {
                connection: connection(h), volumeGroup: vg.name, name: v.name, size: v.size, port: v.port,
                ...(v.exportName ? { exportName: v.exportName } : {}),
                readOnly: v.readOnly ?? false, allowedClients: clients, owner: owner.nics[0].mac.toLowerCase(),
                ...(consul ? { consul } : {}), exportAddress, allowDataLoss: wipe, adopt: adopting(v),
                ...(v.asFound ? { asFound: v.asFound } : {}),
            })));
        }
    };
    for (const m of withStorage ? inv.machines.filter((x) => x.san) : []) declareSan(m, bootedOf(m.name));

    const declared = new Set<string>();
    const declareGuest = (g: GuestSpec, chain: string[]): void => {
        if (declared.has(g.name) || !guestHere(g)) return;
        if (chain.includes(g.name)) throw new Error(`guests ${[...chain, g.name].join(" -> ")} depend on each other's volumes in a circle`);
        // Its disks' SANs first (a SAN may itself be a guest).
        for (const d of g.disks ?? []) {
            if (!("volume" in d)) continue;
            const vol = (inv.volumes ?? []).find((v) => v.name === d.volume)!;
            const san = hostsByName.get(vol.san)!;
            if (isGuest(san)) declareGuest(san, [...chain, g.name]);
        }
        const host = machinesByName.get(g.host)!;
        const entryMachine = (g.boot ?? "network") === "network" ? declareMachine(g, {}) : undefined;
        const entry = entryMachine ? [entryMachine] : [];
        // (In the services stack the box's bridges and arrays belong to the storage stack: nothing to wait for.)
        const hostBridges = g.nics.flatMap((n) => dc.bridges.get(`${host.name}:${n.network}`) ?? []);
        const arrays = (g.disks ?? []).flatMap((d) => ("device" in d && dc.arrays.has(`${host.name}:${d.device}`) ? [dc.arrays.get(`${host.name}:${d.device}`)!] : []));
        const disks = (g.disks ?? []).map((d) => {
            if ("device" in d) return { device: d.device, readOnly: d.readOnly ?? false };
            const vol = dc.volumes.get(d.volume);
            if (vol) return { nbd: { host: vol.exportAddress, port: vol.port, export: vol.exportName }, readOnly: d.readOnly ?? false };
            const ref = exportRef(d.volume);
            return { nbd: { host: ref.exportAddress, port: ref.port, export: ref.exportName }, readOnly: d.readOnly ?? false };
        });
        const guest = count(new KvmGuest(`guest-${g.name}`, {
            connection: connection(host), name: g.name, memoryMiB: g.memoryMiB, vcpus: g.vcpus ?? 1,
            disks, nics: g.nics.map((n) => ({ bridge: inv.networks[n.network].bridge!, mac: n.mac.toLowerCase() })),
            boot: g.boot ?? "network", ...(g.machineType ? { machine: g.machineType } : {}), autostart: true, adopt: adopting(g),
            ...(g.shutdownTimeoutSeconds ? { shutdownTimeoutSeconds: g.shutdownTimeoutSeconds } : {}),
            ...(g.asFound ? { asFound: g.asFound } : {}),
        }, { dependsOn: [...bootedOf(host.name), ...hostBridges, ...arrays, ...entry] }));
        dc.guests.set(g.name, guest);
        declared.add(g.name);
        for (const network of bridgedNetworks(inv, g, false)) bridgeFor(g, network, [guest]);
        if (g.san) declareSan(g, [guest]);
    };
    for (const g of guests) declareGuest(g, []);

    // -- NAS guests: what to mount and export, as K/V their boot scripts read.
    for (const g of guests.filter((x) => x.nfs && consul && guestHere(x))) {
        const nfs = g.nfs!;
        const vol = dc.volumes.get(nfs.volume) ?? exportRef(nfs.volume);
        const exports = Object.fromEntries(nfs.exports.map((e, i) => [
            `nfs/exports/${i}`,
            `${e.path} ${e.clients.map((cl) => inv.networks[cl]?.cidr ?? cl).map((cl) => `${cl}(${e.options ?? "rw,sync,no_subtree_check"})`).join(" ")}`,
        ]));
        const diskIndex = (g.disks ?? []).findIndex((d) => "volume" in d && d.volume === nfs.volume);
        count(new ConsulKeys(`nfs-${g.name}`, {
            consul: consul!, prefix: `machines/${g.name}/nfs-server/`,
            keys: { volume: vol.uri, device: `/dev/vd${String.fromCharCode(97 + diskIndex)}`, mountpoint: nfs.mountpoint, ...Object.fromEntries(Object.entries(exports).map(([k, v]) => [k.replace(/^nfs\//, ""), v])) },
            adopt: adopting(g),
        }));
    }

    // -- K/V trees brought in as they are.
    for (const kv of consul && withStorage ? inv.consulKeys ?? [] : []) {
        const name = kv.prefix.replace(/\/$/, "").replace(/[^A-Za-z0-9-]+/g, "-");
        count(new ConsulKeys(`kv-${name}`, { consul: consul!, prefix: kv.prefix, keys: kv.keys, adopt: adopting(kv) }));
    }

    // -- Containers.
    for (const ct of withServices ? inv.containers ?? [] : []) declareContainer(ct);
    function declareContainer(ct: ContainerSpec): void {
        const host = hostsByName.get(ct.host)!;
        const os = ct.os ?? inv.defaults?.containerOs ?? "alpine";
        const template = ct.rootfs ? undefined : ct.template ?? "download";
        const lxcServer = inv.lxc?.server ? (hostsByName.get(inv.lxc.server) ? sshHost(hostsByName.get(inv.lxc.server)!) : inv.lxc.server) : undefined;
        const templateArgs = ct.templateArgs ?? (template === "download"
            ? ["--dist", os, "--release", inv.lxc?.releases?.[os] ?? "", "--arch", inv.lxc?.arch ?? "amd64", "--server", lxcServer ?? ""]
            : []);
        const hostGuest = isGuest(host) ? dc.guests.get(host.name) : undefined;
        const dependsOn: pulumi.Resource[] = hostGuest ? [hostGuest] : bootedOf(host.name);
        const network = (ct.nics ?? []).map((n) => {
            const spec = inv.networks[n.network];
            const bridge = dc.bridges.get(`${host.name}:${n.network}`);
            if (bridge) dependsOn.push(bridge);
            return {
                bridge: spec.bridge!,
                ...(n.mac ? { hwaddr: n.mac.toLowerCase() } : {}),
                ...(n.address ? { ipv4: `${n.address}/${prefixLength(spec.cidr)}` } : {}),
                ...(n.gateway ?? spec.gateway ? { gateway: (n.gateway ?? spec.gateway)! } : {}),
            };
        });
        const mounts = (ct.mounts ?? []).map((m) => {
            if (!m.nfs) return { source: m.source!, target: m.target, ...(m.type ? { type: m.type } : {}), ...(m.options ? { options: m.options } : {}) };
            const server = hostsByName.get(m.nfs.server)!;
            const nas = dc.guests.get(server.name);
            if (nas) dependsOn.push(nas);
            const address = addressOn(server, "storage") ?? sshHost(server);
            return { source: `${address}:${m.nfs.path}`, target: m.target, type: "nfs", options: m.options ?? "nfsvers=4,create=dir" };
        });
        dc.containers.set(ct.name, count(new LxcContainer(`container-${ct.name}`, {
            connection: connection(host), name: ct.name, ...(template ? { template, templateArgs } : { rootfs: ct.rootfs }), network, mounts,
            autostart: ct.autostart ?? true,
            ...(ct.memoryMiB ? { limits: { memoryMiB: ct.memoryMiB } } : {}),
            files: ct.files ?? [], commands: ct.commands ?? [], adopt: adopting(ct),
        }, { dependsOn })));
    }

    if (withStorage) {
        const volumes = [...dc.volumes.entries()].map(([name, v]) => pulumi.all([v.exportAddress, v.port, v.exportName, v.uri, v.sizeBytes]).apply(
            ([exportAddress, port, exportName, uri, sizeBytes]): [string, ExportRef] => [name, {
                san: (inv.volumes ?? []).find((x) => x.name === name)!.san, exportAddress, port, exportName, uri: uri ?? "", sizeBytes: sizeBytes ?? 0,
            }]));
        dc.storageExports = pulumi.all(volumes).apply((vs) => ({ volumes: Object.fromEntries(vs) }));
    } else {
        dc.storageExports = fromStorage!;
    }
    dc.summary = summarize(inv, dc, part);
    return dc;
}

function summarize(inv: Inventory, dc: DataCenter, part: DataCenterPart): pulumi.Output<DataCenterSummary> {
    const machineSpecs = new Map<string, HostSpec>([...inv.machines.map((m) => [m.name, m] as const), ...(inv.guests ?? []).map((g) => [g.name, g] as const)]);
    // A site without PXE has no Machine resources: its boxes are listed as the inventory has them.
    const bare = dc.machines.size === 0 && part !== "services" ? inv.machines.map((h) => pulumi.output<MachineSummary>({ name: h.name, role: h.role, mac: h.nics[0].mac.toLowerCase(), address: h.nics[0].address ?? "", profile: "" })) : [];
    const machines = [...bare, ...[...dc.machines.entries()].map(([name, m]) => pulumi.all([m.bootSeconds]).apply(([bootSeconds]) => {
        const h = machineSpecs.get(name)!;
        const eth0 = nicsOf(h)[0];
        const s: MachineSummary = { name, role: h.role, mac: eth0.mac.toLowerCase(), address: eth0.address ?? "", profile: h.profile ?? inv.defaults?.profile ?? "default" };
        if (bootSeconds !== undefined) s.bootSeconds = bootSeconds;
        return s;
    }))];
    const pxe = [...dc.pxeServers.entries()].map(([name, p]) => pulumi.all([p.dhcpRole, p.baseUrl]).apply(([dhcpRole, baseUrl]) => ({ name, dhcpRole: dhcpRole ?? "", baseUrl: baseUrl ?? "" })));
    const arrays = [...dc.arrays.entries()].map(([key, a]) => pulumi.all([a.state, a.activeMembers]).apply(([state, members]) => ({ machine: key.split(":")[0], device: key.split(":")[1], state: state ?? "", members: members ?? [] })));
    const osds = dc.osds.map((o) => pulumi.all([o.urn, o.device, o.osdId]).apply(([urn, device, osdId]) => ({ machine: urn.split("::").pop()!.replace(/^osd-/, "").replace(/-[0-9]+$/, ""), device, osdId })));
    // Every export: this stack's own, or (services) as the storage stack publishes them.
    const exports = (inv.volumes ?? []).map((v) => dc.storageExports.apply((s) => {
        const e = s.volumes[v.name];
        return { volume: v.name, san: v.san, uri: e?.uri ?? "", owner: v.owner, sizeBytes: e?.sizeBytes ?? 0 };
    }));
    const guests = (inv.guests ?? []).filter((g) => dc.guests.has(g.name)).map((g) => pulumi.all([dc.guests.get(g.name)!.status]).apply(([status]) => ({ name: g.name, host: g.host, status: status ?? "", memoryMiB: g.memoryMiB })));
    const containers = (inv.containers ?? []).filter((ct) => dc.containers.has(ct.name)).map((ct) => {
        const c = dc.containers.get(ct.name)!;
        return pulumi.all([c.state, c.addresses]).apply(([state, addresses]) => ({ name: ct.name, host: ct.host, service: ct.service, state: state ?? "", addresses: addresses ?? [] }));
    });
    return pulumi.all([pulumi.all(pxe), pulumi.all(machines), pulumi.all(arrays), pulumi.all(osds), pulumi.all(exports), pulumi.all(guests), pulumi.all(containers)])
        .apply(([p, m, a, o, e, g, c]) => ({
            datacenter: inv.datacenter, part, pxeServers: p, machines: m, arrays: a, osds: o, bridges: dc.bridges.size, exports: e, guests: g, containers: c,
        }));
}

/** A few lines a person reads after `pulumi up`. */
export function formatSummary(s: DataCenterSummary): string {
    const lines = [
        `data center ${s.datacenter}${s.part && s.part !== "all" ? ` (stack part: ${s.part})` : ""}: ${s.machines.length} machine(s), ${s.guests.length} guest(s), ${s.containers.length} container(s), ${s.bridges} bridge(s)`,
        ...s.pxeServers.map((p) => `  pxe        ${p.name}: ${p.dhcpRole} ${p.baseUrl}`),
        ...s.machines.map((m) => `  machine    ${m.name} (${m.role}) ${m.address} ${m.mac}${m.profile ? ` profile ${m.profile}` : ""}${m.bootSeconds !== undefined ? `, booted in ${m.bootSeconds} s` : ""}`),
        ...s.arrays.map((a) => `  raid       ${a.machine}:${a.device} ${a.state} [${a.members.join(" ")}]`),
        ...s.osds.map((o) => `  osd        ${o.machine}: osd.${o.osdId} on ${o.device}`),
        ...s.exports.map((e) => `  export     ${e.volume} ${e.uri} (${Math.round(e.sizeBytes / 2 ** 20)} MiB) for ${e.owner}`),
        ...s.guests.map((g) => `  guest      ${g.name} on ${g.host}: ${g.status}, ${g.memoryMiB} MiB`),
        ...s.containers.map((c) => `  container  ${c.name} (${c.service}) on ${c.host}: ${c.state} ${c.addresses.join(" ")}`),
    ];
    return lines.join("\n");
}
