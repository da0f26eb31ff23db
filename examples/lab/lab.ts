// The lab as the data center program sees it: lab.json (written by lab/lab.sh)
// completes the lab inventory with what the lab decided at build time, and holds
// the lab's secrets (its client key, its BMC passwords). Pure: no Pulumi here, so
// the unit tests use it as it is.
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

/** The part of lab.json this program reads (the full type: test/lab/lab.ts). */
export interface LabJson {
    file: string;
    build: { vmlinuz: string; initrd: string; consulBinary: string };
    networks: Record<string, { cidr: string; gateway: string }>;
    ssh: { privateKeyPath: string };
    consul: { httpAddr: string; datacenter: string };
    vms: Record<string, {
        name: string;
        boot: "direct" | "pxe";
        nics: { name: string; network: string; mac: string; address: string }[];
        disks: { byId: string }[];
        ssh: { host: string; port: number; user: string; hostKey: string };
        bmc: { address: string; port: number; interface: "lanplus" | "lan"; user: string; password: string };
        kernelCmdline: string;
    }>;
}

export function defaultLabJsonPath(): string {
    const cache = process.env.PULUMI_BAREMETAL_CACHE ?? path.join(os.homedir(), ".cache", "pulumi-baremetal");
    return path.join(cache, "lab", "run", "lab.json");
}

export function readLabJson(file: string): LabJson {
    if (!fs.existsSync(file)) {
        throw new Error(`no lab description at ${file}: start the lab first (bash lab/lab.sh start), or set config labJson to its path`);
    }
    return JSON.parse(fs.readFileSync(file, "utf8")) as LabJson;
}

type Raw = Record<string, unknown>;
const isObj = (v: unknown): v is Raw => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Fills every field the lab inventory leaves out with the lab's own value: network
 * ranges, the Consul server, kernel files, and per VM its NICs, SSH endpoint and
 * host key, BMC, disks and (for PXE-booted VMs) its bm.* kernel arguments.
 * `withCeph` adds ceph1 with one OSD (only where the lab's Ceph cluster exists).
 */
export function completeFromLab(lab: LabJson, options: { withCeph?: boolean } = {}): (raw: unknown) => unknown {
    return (raw) => {
        if (!isObj(raw)) return raw;
        const inv: Raw = structuredClone(raw);
        if (isObj(inv.networks)) {
            for (const [name, n] of Object.entries(inv.networks)) {
                const l = lab.networks[name];
                if (isObj(n) && l) {
                    n.cidr ??= l.cidr;
                    n.gateway ??= l.gateway;
                }
            }
        }
        if (isObj(inv.consul)) {
            inv.consul.address ??= lab.consul.httpAddr;
            inv.consul.datacenter ??= lab.consul.datacenter;
        }
        if (isObj(inv.pxe)) {
            inv.pxe.consulBinary ??= lab.build.consulBinary;
            if (isObj(inv.pxe.profiles)) {
                for (const p of Object.values(inv.pxe.profiles)) {
                    if (!isObj(p)) continue;
                    p.kernel ??= { path: lab.build.vmlinuz };
                    p.initramfs ??= { path: lab.build.initrd };
                    if ((p.kind ?? "alpine") === "alpine") p.modloop ??= { path: lab.build.vmlinuz };
                }
            }
        }
        const machines = Array.isArray(inv.machines) ? inv.machines : [];
        if (options.withCeph && !machines.some((m) => isObj(m) && m.name === "ceph1")) {
            machines.push({
                name: "ceph1", role: "ceph", consulAgent: true, power: { onCreate: "none" }, bridges: [],
                ceph: { osds: [{ device: "/dev/disk/by-id/virtio-bm-ceph1-3" }] },
            });
        }
        for (const m of machines) {
            if (!isObj(m) || typeof m.name !== "string") continue;
            const vm = lab.vms[m.name];
            if (!vm) throw new Error(`machine ${m.name} of the lab inventory is not a lab VM (${Object.keys(lab.vms).join(", ")} in ${lab.file})`);
            m.nics ??= vm.nics.map((n) => ({ name: n.name, network: n.network, mac: n.mac, address: n.address }));
            m.ssh ??= { hostKey: vm.ssh.hostKey, host: vm.ssh.host, port: vm.ssh.port, user: vm.ssh.user };
            m.bmc ??= { address: vm.bmc.address, port: vm.bmc.port, user: vm.bmc.user, interface: vm.bmc.interface };
            if (vm.disks.length > 0) m.disks ??= vm.disks.map((d) => d.byId);
            if (vm.boot === "pxe") m.kernelArgs ??= vm.kernelCmdline.split(/\s+/).filter((w) => w.startsWith("bm."));
        }
        inv.machines = machines;
        return inv;
    };
}

/** An OpenVPN static key (2048 bits, the `openvpn --genkey secret` format) derived by HKDF-SHA256. */
export function derivedStaticKey(secret: string, label: string): string {
    const bytes = Buffer.from(crypto.hkdfSync("sha256", Buffer.from(secret), "pulumi-baremetal lab", `openvpn static key: ${label}`, 256));
    const hex = bytes.toString("hex");
    const lines = Array.from({ length: 16 }, (_, i) => hex.slice(i * 32, i * 32 + 32));
    return ["-----BEGIN OpenVPN Static key V1-----", ...lines, "-----END OpenVPN Static key V1-----", ""].join("\n");
}
