// Generates data-center inventories of any size in the seed program's schema
// (examples/datacenter/program/inventory.ts), for the preview benchmark and for
// anyone who needs a large, valid inventory. The mix repeats every ten machines
// (a "rack"), after the seed data center:
//
//   slot 0  firewall   lan + wan
//   slot 1  router     lan + wan + storage
//   slot 2-3 storage   eight disks: RAID1 /dev/md0 on two, Ceph OSDs on six; a SAN
//                      guest gets /dev/md0 and serves NBD volumes (LVM vg0)
//   slot 4-9 service   one KVM guest (its /var an NBD volume of the rack's SANs)
//                      running two LXC containers (dns, web)
//
// Rack 0's first two service boxes are the PXE servers (and Consul servers).
// Addresses are in the lab's benchmark range 198.18.0.0/15 as data only; where
// SSH, BMCs and Consul are reached is the caller's choice (`endpoint`), so a
// benchmark can point every host at a listener that counts connections.
//
//   node dist/bench/lib/inventoryGen.js 100 > inventory.yaml     (SSH at the eth0 addresses)
import { stringify } from "yaml";
import type { ContainerSpec, GuestSpec, Inventory, MachineSpec, VolumeSpec } from "../../examples/datacenter/program/inventory";

export interface Endpoint {
    host: string;
    port: number;
}

export interface InventoryOptions {
    /** The host key line every box presents (`ssh-ed25519 AAAA...`). */
    hostKey: string;
    /** `host:port` of the Consul agent. */
    consulAddress: string;
    /** Where to reach SSH on host number `k` (machines and guests, in order); their eth0 address, port 22 when omitted. */
    sshEndpoint?: (k: number, eth0: string) => Endpoint;
    /** Where machine number `k`'s BMC answers; 198.18.192.0/18 addresses, port 623 when omitted. */
    bmcEndpoint?: (k: number) => Endpoint;
}

export const rackSize = 10;
const disks = ["a", "b", "c", "d", "e", "f", "g", "h"].map((l) => `/dev/sd${l}`);

/** Sequential host addresses in a network (skipping .0 and .255 of every /24). */
class AddressPool {
    private next: number;
    constructor(readonly cidr: string, first: number) {
        this.next = ipToNumber(cidr.split("/")[0]) + first;
    }
    take(): string {
        while ((this.next & 255) === 0 || (this.next & 255) === 255) this.next++;
        return numberToIp(this.next++);
    }
}

function ipToNumber(ip: string): number {
    return ip.split(".").reduce((n, o) => n * 256 + Number(o), 0);
}

function numberToIp(n: number): string {
    return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

function hex2(n: number): string {
    return (n & 255).toString(16).padStart(2, "0");
}

/** The role of a machine by its place in the rack. */
export function slotRole(slot: number): "firewall" | "router" | "storage" | "service" {
    if (slot === 0) return "firewall";
    if (slot === 1) return "router";
    return slot < 4 ? "storage" : "service";
}

/** An inventory of `machines` physical machines (plus their guests, volumes and containers). */
export function generateInventory(machines: number, options: InventoryOptions): Inventory {
    if (!Number.isInteger(machines) || machines < 6) throw new Error(`machines must be an integer of at least 6 (two PXE servers are the 5th and 6th), got ${machines}`);
    const lan = new AddressPool("198.18.64.0/18", 10);
    const storage = new AddressPool("198.18.128.0/18", 10);
    const wan = new AddressPool("198.18.192.0/20", 10);
    const bmcPool = new AddressPool("198.18.224.0/19", 10);
    let macs = 0;
    const mac = (): string => {
        const k = ++macs;
        return `52:54:00:${hex2(k >> 16)}:${hex2(k >> 8)}:${hex2(k)}`;
    };
    let hostCount = 0;
    const ssh = (eth0: string): MachineSpec["ssh"] => {
        const k = hostCount++;
        const e = options.sshEndpoint?.(k, eth0);
        return e ? { hostKey: options.hostKey, host: e.host, port: e.port } : { hostKey: options.hostKey };
    };

    const machineSpecs: MachineSpec[] = [];
    const guests: GuestSpec[] = [];
    const volumes: VolumeSpec[] = [];
    const containers: ContainerSpec[] = [];
    const sansOfRack = new Map<number, string[]>();
    const nextPort = new Map<string, number>();

    for (let i = 0; i < machines; i++) {
        const rack = Math.floor(i / rackSize);
        const slot = i % rackSize;
        const role = slotRole(slot);
        const name = `${role.slice(0, 2)}${rack}-${slot}`;
        const eth0 = lan.take();
        const nics: MachineSpec["nics"] = [{ name: "eth0", network: "lan", mac: mac(), address: eth0 }];
        if (role === "firewall" || role === "router") nics.push({ name: "eth1", network: "wan", mac: mac(), address: wan.take() });
        if (role !== "firewall") nics.push({ name: `eth${nics.length}`, network: "storage", mac: mac(), address: storage.take() });
        const bmcEndpoint = options.bmcEndpoint?.(i);
        const m: MachineSpec = {
            name,
            role,
            nics,
            ssh: ssh(eth0),
            bmc: bmcEndpoint ? { address: bmcEndpoint.host, port: bmcEndpoint.port } : { address: bmcPool.take() },
            power: { onCreate: "pxe" },
            bridges: role === "firewall" || role === "router" ? [] : ["lan", "storage"],
        };
        if (rack === 0 && (slot === 4 || slot === 5)) {
            m.pxeServer = {};
            m.consulAgent = true;
        }
        machineSpecs.push(m);

        if (role === "storage") {
            m.disks = [...disks];
            m.raid = [{ device: "/dev/md0", members: disks.slice(0, 2) }];
            m.ceph = { osds: disks.slice(2).map((device) => ({ device, deviceClass: "hdd" })) };
            const san = `san${rack}-${slot}`;
            const sanEth0 = lan.take();
            guests.push({
                name: san,
                role: "san",
                host: name,
                memoryMiB: 1024,
                vcpus: 2,
                nics: [
                    { network: "lan", mac: mac(), address: sanEth0 },
                    { network: "storage", mac: mac(), address: storage.take() },
                ],
                disks: [{ device: "/dev/md0" }],
                ssh: ssh(sanEth0),
                san: { volumeGroup: "vg0", devices: ["/dev/vda"] },
            });
            sansOfRack.set(rack, [...(sansOfRack.get(rack) ?? []), san]);
        }
        if (role === "service") {
            const vm = `vm${rack}-${slot}`;
            const sans = sansOfRack.get(rack) ?? sansOfRack.get(0)!;
            const san = sans[slot % sans.length];
            const port = nextPort.get(san) ?? 10809;
            nextPort.set(san, port + 1);
            volumes.push({ name: `${vm}-var`, san, size: "20GiB", port, owner: vm });
            const vmEth0 = lan.take();
            guests.push({
                name: vm,
                role: "services",
                host: name,
                memoryMiB: 2048,
                vcpus: 2,
                nics: [
                    { network: "lan", mac: mac(), address: vmEth0 },
                    { network: "storage", mac: mac(), address: storage.take() },
                ],
                disks: [{ volume: `${vm}-var` }],
                ssh: ssh(vmEth0),
                bridges: ["lan"],
            });
            for (const service of ["dns", "web"]) {
                containers.push({
                    name: `${service}${rack}-${slot}`,
                    host: vm,
                    service,
                    template: "busybox",
                    nics: [{ network: "lan", address: lan.take() }],
                    memoryMiB: 256,
                    autostart: true,
                    files: [{ path: "/etc/motd", content: `${service} in rack ${rack}\n`, mode: "0644" }],
                });
            }
        }
    }

    return {
        datacenter: "bench",
        domain: "bench.lan",
        networks: {
            lan: { cidr: "198.18.64.0/18", gateway: "198.18.64.1", dns: ["198.18.64.2"], bridge: "brlan" },
            storage: { cidr: "198.18.128.0/18", bridge: "brstorage" },
            wan: { cidr: "198.18.192.0/20", gateway: "198.18.192.1" },
        },
        consul: { address: options.consulAddress, datacenter: "bench" },
        pxe: {
            network: "lan",
            httpPort: 80,
            profiles: {
                default: {
                    kind: "alpine",
                    kernel: { url: "http://198.51.100.10/alpine/vmlinuz-lts" },
                    initramfs: { url: "http://198.51.100.10/alpine/initramfs-lts" },
                    modloop: { url: "http://198.51.100.10/alpine/modloop-lts" },
                    repository: "http://198.51.100.10/alpine/main",
                    packages: ["alpine-base", "openssh", "consul"],
                    cmdline: ["console=ttyS0"],
                },
            },
        },
        ceph: { cluster: "ceph" },
        defaults: { sshUser: "root", bmcUser: "admin", profile: "default", containerOs: "alpine" },
        machines: machineSpecs,
        guests,
        volumes,
        containers,
    };
}

/** Every SSH endpoint of an inventory (machines and guests), e.g. to listen on them. */
export function sshEndpoints(inv: Inventory): Endpoint[] {
    const hosts = [...inv.machines, ...(inv.guests ?? [])];
    return hosts.filter((h) => h.ssh).map((h) => ({ host: h.ssh!.host ?? (h.nics[0].address as string), port: h.ssh!.port ?? 22 }));
}

/** Loopback address number k (127.10.0.1, 127.10.0.2 ...): distinct hosts that never leave this box. */
export function loopbackAddress(k: number): string {
    return `127.${10 + Math.floor(k / 62_500)}.${Math.floor(k / 250) % 250}.${(k % 250) + 1}`;
}

export function inventoryYaml(inv: Inventory): string {
    return stringify(inv, { lineWidth: 0 });
}

if (require.main === module) {
    const n = Number(process.argv[2] ?? rackSize);
    const hostKey = process.env.BENCH_HOST_KEY;
    if (!hostKey) {
        console.error("set BENCH_HOST_KEY to the boxes' host key line (ssh-ed25519 AAAA...); usage: node dist/bench/lib/inventoryGen.js <machines>");
        process.exit(2);
    }
    process.stdout.write(inventoryYaml(generateInventory(n, { hostKey, consulAddress: process.env.BENCH_CONSUL ?? "198.18.64.14:8500" })));
}
