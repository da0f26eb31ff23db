// Valid inputs of every kind, one (or two, where fields exclude each other) per
// kind, for tests that change one thing at a time (checkEveryMistake, siteCheck).
import { openvpnStaticKey } from "../helpers/keys";

export type Json = Record<string, unknown>;

const hostKey = `SHA256:${"A".repeat(43)}`;
export const connection = { host: "198.51.100.12", port: 22, user: "root", password: "pw-canary-6c1", hostKey, sudo: false, trustOnFirstUse: false };
const consul = { address: "198.51.100.2:8500", scheme: "http", token: "b3c1e7a2-5d1f-4c6e-9a8b-0123456789ab", datacenter: "dc1" };
const sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/** One valid input per kind (two where fields exclude each other): each case differs from it in one field. */
export function baselines(kind: string): Json[] {
    switch (kind) {
        case "ConsulKeys":
            return [{ consul, prefix: "config/web01/", keys: { listen: "198.51.100.80" }, secrets: { "db/password": "pw" }, adopt: false }];
        case "RaidArray":
            return [{ connection, device: "/dev/md0", level: "raid1", members: ["/dev/vdb", "/dev/vdc"], metadata: "1.2", name: "data", allowDataLoss: false, waitForSync: false, syncTimeoutSeconds: 3600 }];
        case "VolumeGroup":
            return [{ connection, name: "vg0", devices: ["/dev/md0"], adopt: false, allowDataLoss: false }];
        case "NbdVolume":
            return [{
                connection, volumeGroup: "vg0", name: "web01-var", size: "256MiB", exportName: "web01-var", port: 10810, readOnly: false,
                allowedClients: ["198.18.1.12", "198.18.1.0/24"], owner: "52:54:00:12:34:56", consul, exportAddress: "198.18.1.11",
                consulNode: "san1-nbd", serviceName: "nbd", adopt: false, allowDataLoss: false,
            }];
        case "PxeServer":
            return [{
                connection, name: "pxe", address: "198.51.100.10", interface: "eth0",
                subnet: "198.51.100.0/24", gateway: "198.51.100.1", dnsServers: ["198.51.100.1"], domain: "lab.example", leaseSeconds: 3600, httpPort: 80, ipxeBootloaders: true,
                profiles: {
                    default: {
                        kind: "alpine", kernel: { url: "http://198.51.100.1/boot/vmlinuz-lts", sha256: sha }, initramfs: { path: "/srv/boot/initramfs-lts" },
                        modloop: { url: "http://198.51.100.1/boot/modloop-lts", sha256: sha }, repository: "http://198.51.100.1/alpine/v3.20/main",
                        overlay: { "etc/hostname": "pxeclient\n" }, cmdline: ["console=ttyS0"],
                    },
                },
                standby: { consulAddress: "198.51.100.2:8500", lockKey: "baremetal/pxe/leader", consulBinary: "/usr/bin/consul", token: "0f7d2c3e-8b4a-4f1e-a2c9-0123456789ab" },
                adopt: false,
            }];
        case "Machine":
            return [{
                mac: "52:54:00:b0:00:14", hostname: "web01", ip: "198.51.100.20", role: "web", profile: "default", kernelArgs: ["quiet"],
                // Copies: structuredClone keeps shared objects shared, and a case changes one field only.
                pxeServers: [{ connection: { ...connection }, name: "pxe" }], consul, consulPrefix: "machines/web01/", config: { "net/gateway": "198.51.100.1" },
                ipmi: { address: "198.18.3.20", port: 623, user: "admin", password: "bmc-pw", interface: "lanplus", cipherSuite: 3 },
                power: { onCreate: "pxe", cycleOnBootChange: true, offOnDelete: false },
                waitForSsh: { connection: { ...connection }, timeoutSeconds: 600 }, adopt: false,
            }];
        case "KvmGuest":
            return [{
                connection, name: "web01", memoryMiB: 512, vcpus: 1,
                disks: [{ nbd: { host: "198.18.1.11", port: 10810, export: "web01-var" }, readOnly: false }, { device: "/dev/vg0/web01-root", readOnly: true }],
                nics: [{ bridge: "br-lan", bridgeType: "ovs", mac: "52:54:00:b0:00:21", model: "virtio-net-pci" }],
                boot: "network", machine: "pc", autostart: true, shutdownTimeoutSeconds: 120, migrationPort: 49152, migrationTimeoutSeconds: 600, adopt: false,
            }];
        case "OvsBridge":
            return [{
                connection, name: "br-storage", network: "storage", uplink: "eth1", moveAddresses: false,
                tunnels: [{ name: "vpn-storage", port: 1194, remote: "198.51.100.11", remotePort: 1194, key: openvpnStaticKey() }], adopt: false,
            }];
        case "CephOsd":
            return [{ connection, device: "/dev/vdb", deviceClass: "hdd", crushWeight: 0.5, crushLocation: { root: "default", host: "ceph1" }, cluster: "ceph", adopt: false, allowDataLoss: false, drainTimeoutSeconds: 3600 }];
        case "LxcContainer": {
            const common = {
                connection, name: "dns01",
                network: [{ bridge: "br-lan", hwaddr: "52:54:00:c0:00:01", ipv4: "198.51.100.50/24", gateway: "198.51.100.1" }],
                mounts: [{ source: "/srv/dns", target: "/var/lib/dns", type: "none", options: "bind,create=dir" }],
                autostart: true, limits: { memoryMiB: 256, cpuWeight: 100, pids: 512 },
                files: [{ path: "/etc/motd", content: "hello\n", mode: "0644" }], commands: [["sh", "-c", "echo ok"]], timeoutSeconds: 60, adopt: false,
            };
            return [{ ...common, template: "busybox", templateArgs: ["--flavor=tiny"] }, { ...common, rootfs: "/srv/lxc/dns01/rootfs" }];
        }
        default:
            return [];
    }
}

