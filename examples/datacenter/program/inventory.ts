// The data center inventory: what boxes exist and how they are wired, as a YAML
// file an operator edits. Types first (a generator of large inventories and the
// programs build on them), then `loadInventory`, which parses and validates.
//
// Schema (YAML; names are lower-case letters, digits and '-', at most 31 characters):
//
//   datacenter: seed                      # name; the Consul datacenter unless consul.datacenter says otherwise
//   domain: seed.lan                      # optional DNS domain handed out by DHCP
//   networks:                             # by name (lan, wan, storage ...): the physical switches
//     lan: { cidr: 198.18.64.0/24, gateway: 198.18.64.1, dns: [..], bridge: brlan,
//            tunnelHub: svc1, tunnelPort: 1194 }
//       # bridge: name of the OVS bridge that replicates this switch on every box (omit: no bridge);
//       # tunnelHub: the box that boxes without a NIC on this switch reach by OpenVPN
//   consul: { address: 198.18.64.11:8500, datacenter: seed }   # the agent `pulumi up` talks to (omit: no Consul)
//   pxe:                                  # the PXE service (run by every machine with `pxeServer`; omit on a
//                                         # site that does not boot by PXE: then no Machine resources are declared)
//     network: lan                        # boot network (default lan): every machine's eth0 is on it
//     httpPort: 80
//     lockKey: baremetal/pxe/leader       # the Consul lock whose holder serves DHCP
//     consulBinary: /usr/bin/consul
//     profiles:                           # by name: pxeboot, default, lxc-repo (Alpine), or kind: debian
//       default: { kind: alpine, kernel: {url|path, sha256?}, initramfs: {...}, modloop: {...},
//                  repository: URL, packages: [alpine-base, ...], overlay: {path: content}, cmdline: [..] }
//   lxc:                                  # where containers' root file systems come from
//     server: lxcrepo1                    # the lxc-repo box (a host name or an address) for the `download` template
//     releases: { alpine: "3.20", debian: bookworm }
//     arch: amd64
//   ceph: { cluster: ceph }               # optional: the Ceph cluster the OSDs join
//   defaults: { sshUser: root, bmcUser: admin, profile: default, containerOs: alpine }
//   machines:                             # physical boxes; booted by PXE, power through their BMC
//     - name: stor1
//       adopt: true                       # take over what exists (its Machine entries, its bridges) as it runs
//       role: storage                     # free text (Consul catalog meta)
//       profile: default                  # a pxe profile
//       kernelArgs: [..]
//       nics: [{ name: eth0, network: lan, mac: 52:54:00:.., address: 198.18.64.21 }, ...]
//                                         # eth0 first: its MAC is the machine's identity, its address the lease
//       ssh: { hostKey: "ssh-ed25519 AAAA..", host?, port?, user? }   # host defaults to eth0's address
//       bmc: { address: 198.18.67.21, port?, user?, interface?, cipherSuite? }  # password: secret config
//       power: { onCreate: pxe|on|none, cycleOnBootChange?, offOnDelete? }
//       waitForSshSeconds: 600            # wait for SSH after the power action (omit: do not wait)
//       disks: [/dev/disk/by-id/..]       # every data disk; RAID members and OSD devices come from here
//       raid: [{ device: /dev/md0, members: [two disks], level?: raid1, name? }]
//       ceph: { osds: [{ device, deviceClass?, crushWeight?, adopt? }] }
//       san: { volumeGroup: vg0, devices: [/dev/md0], exportNetwork?: storage, adopt? }  # LVM + nbd-server here
//       pxeServer: { interface?: eth0 }   # this box is a PXE server (and a Consul server)
//       bridges: [lan, wan, storage]      # networks to replicate here (default: every network with a bridge)
//       config: { key: value }            # extra Consul K/V under machines/<name>/
//       consulAgent: true                 # it runs its own Consul agent: no external catalog node for it
//   guests:                               # KVM guests (SAN VMs, KVM-infra, KVM-services, NAS ...)
//     - name: san1
//       host: stor1                       # the machine running it (changing it live-migrates when all disks are NBD)
//       role: san
//       memoryMiB: 1024
//       vcpus: 2
//       boot: network|disk                # network (default): a PXE boot entry is declared for it
//       profile: default
//       nics: [{ network: lan, mac: .., address: .. }]     # eth0, eth1 ... in order
//       disks: [{ device: /dev/md0 }, { volume: infra1-var }]  # a device of the host, or an NbdVolume by name
//       ssh: { hostKey, host?, port?, user? } # needed when something runs inside (san, nfs, containers)
//       san: { ... }                      # as for machines: LVM + nbd-server inside the guest
//       nfs: { volume: nas-data, mountpoint: /srv/nfs, exports: [{ path: /srv/nfs/www, clients: [storage], options? }] }
//       bridges: [storage]                # default: the networks its containers attach to
//       machineType: pc                   # qemu machine type; shutdownTimeoutSeconds: 120 (ACPI power-down wait)
//       config: { key: value }
//       adopt: true                       # take over an existing guest of this name
//       asFound: { service: vm1.service, qmpSocket: /run/vm1.qmp }   # keep it under the service that runs
//                                         # it now (nothing restarted); remove to move it under baremetal-guest-<name> (restarts it)
//   volumes:                              # NBD exports: LVM volumes on a SAN, each owned by one guest
//     - { name: infra1-var, san: san1, size: 20GiB, port: 10809, owner: infra1, exportName?, readOnly?, allowedClients?, adopt? }
//       # allowedClients: who may connect: the boxes running the guest (default: the whole export network)
//       # asFound: { service: nbd-server.service, config: /etc/nbd-server/config }: keep it served by the box's own
//       #   nbd-server (nothing restarted); remove to give it an nbd-server of its own (its clients reconnect)
//   containers:                           # LXC containers in a machine or a guest
//     - name: dns1
//       host: infra1
//       service: dns                      # free text: dns, squid, web, ldap, lighttpd, php-fpm, postfix ...
//       os: alpine|debian                 # default defaults.containerOs; picks the download template's image
//       template: busybox                 # instead of the download template from lxc.server
//       templateArgs: [..]                # given: the template's arguments as they are (lxc.server is not needed)
//       rootfs: /srv/lxc/web1             # instead of a template: a root file system already on the host
//       nics: [{ network: lan, address: 198.18.64.53, mac?, gateway? }]   # on the host's bridge of that network
//       mounts: [{ target: /var/www, nfs: { server: nas1, path: /srv/nfs/www } } | { target, source, type?, options? }]
//       memoryMiB: 256
//       autostart: true
//       files: [{ path, content, mode? }]
//       commands: [[argv ...], ...]
//       adopt: true                       # take over an existing container of this name (as it runs, when its
//                                         # config says what is declared; nothing restarted)
//   consulKeys:                           # K/V trees as they are (ConsulKeys); needs consul
//     - { prefix: config/dns01/, keys: { listen: 198.18.64.53 }, adopt: true }
//
// Secrets (SSH key, BMC passwords, OpenVPN keys, Consul token) are never in the
// inventory: they come from stack configuration (see datacenter.ts).

export type OsName = "alpine" | "debian";

/** A file a PXE server serves: downloaded from a URL (optionally checked) or already on the box. */
export type FileSpec = { url: string; sha256?: string } | { path: string };

export interface NetworkSpec {
    /** IPv4 network with prefix length, e.g. `198.18.64.0/24`. */
    cidr: string;
    gateway?: string;
    dns?: string[];
    /** OVS bridge replicating this switch on every box that lists the network (at most 15 characters). */
    bridge?: string;
    /** The machine that boxes without a NIC on this network dial by OpenVPN to reach it. */
    tunnelHub?: string;
    /** First UDP port of this network's tunnels on the hub (default 1194); one port per tunnel. */
    tunnelPort?: number;
}

export interface ConsulSpec {
    /** `host:port` of the Consul agent the program registers machines and volumes with. */
    address: string;
    /** Default: the inventory's `datacenter`. */
    datacenter?: string;
}

export interface ProfileSpec {
    /** `alpine` (diskless, apkovl overlay; default) or `debian`. */
    kind?: OsName;
    kernel: FileSpec;
    initramfs: FileSpec;
    modloop?: FileSpec;
    /** Alpine package repository URL (`alpine_repo=`). */
    repository?: string;
    /** Alpine packages (the overlay's `etc/apk/world`). */
    packages?: string[];
    /** Further overlay files by relative path. */
    overlay?: Record<string, string>;
    cmdline?: string[];
}

export interface PxeSpec {
    /** The boot network (default `lan`). */
    network?: string;
    httpPort?: number;
    /** Consul lock whose holder serves DHCP (default `baremetal/pxe/leader`). */
    lockKey?: string;
    /** Path of the consul binary on the PXE boxes (default `/usr/bin/consul`). */
    consulBinary?: string;
    /** Lease time in seconds (default 3600). */
    leaseSeconds?: number;
    /** Copy iPXE boot loaders into the TFTP root (default true). */
    ipxeBootloaders?: boolean;
    profiles: Record<string, ProfileSpec>;
}

export interface LxcSpec {
    /** The image server of the `download` template: the lxc-repo box (a host name in this inventory, or an address). */
    server?: string;
    /** Release of each OS's image, e.g. `{ alpine: "3.20", debian: "bookworm" }`. */
    releases?: Partial<Record<OsName, string>>;
    /** Image architecture (default `amd64`). */
    arch?: string;
}

export interface CephSpec {
    /** Cluster name (default `ceph`). */
    cluster?: string;
}

export interface DefaultsSpec {
    sshUser?: string;
    bmcUser?: string;
    /** Profile of machines and guests that name none (default `default`). */
    profile?: string;
    containerOs?: OsName;
}

export interface NicSpec {
    /** Interface name on the box (`eth0` ...). */
    name: string;
    network: string;
    mac: string;
    /** IPv4 address without prefix length; the network's prefix applies. */
    address?: string;
}

export interface SshSpec {
    /** The host's public key line (`ssh-ed25519 AAAA...`) or `SHA256:` fingerprint. */
    hostKey: string;
    /** Where to connect (default: the eth0 address). */
    host?: string;
    port?: number;
    user?: string;
}

export interface BmcSpec {
    address: string;
    port?: number;
    user?: string;
    interface?: "lanplus" | "lan";
    cipherSuite?: number;
}

export interface PowerSpec {
    onCreate?: "none" | "on" | "pxe";
    cycleOnBootChange?: boolean;
    offOnDelete?: boolean;
}

export interface RaidSpec {
    /** `/dev/md0` ... `/dev/md127`. */
    device: string;
    members: string[];
    level?: "raid0" | "raid1" | "raid5" | "raid6" | "raid10";
    name?: string;
}

export interface CephOsdSpec {
    device: string;
    deviceClass?: string;
    crushWeight?: number;
    adopt?: boolean;
}

export interface SanSpec {
    volumeGroup: string;
    /** Physical volumes as this box sees them (e.g. `/dev/md0`, or `/dev/vda` in a SAN VM). */
    devices: string[];
    /** Network whose address clients use for the exports (default `storage`). */
    exportNetwork?: string;
    adopt?: boolean;
}

/** How an adopted object runs now, kept until the operator removes it (see the schema above). */
export interface GuestAsFound {
    /** The init-system service that runs its qemu (absent: a qemu started by hand). */
    service?: string;
    /** Its QMP socket, through which it is read and powered down. */
    qmpSocket: string;
}

export interface VolumeAsFound {
    /** The service of the nbd-server that serves it. */
    service?: string;
    /** That nbd-server's config file holding the export. */
    config: string;
}

export interface PxeServerSpec {
    /** Interface to serve DHCP on (default `eth0`). */
    interface?: string;
}

/** What every host (machine or guest) may carry. */
export interface HostCommon {
    name: string;
    role: string;
    profile?: string;
    kernelArgs?: string[];
    ssh?: SshSpec;
    san?: SanSpec;
    bridges?: string[];
    config?: Record<string, string>;
    /**
     * The host runs its own Consul agent, which registers it: the program then does not
     * register it as an external catalog node (it writes its K/V configuration only).
     */
    consulAgent?: boolean;
    /** Take over what exists of it (its Machine entries, bridges; a guest's qemu) instead of failing. */
    adopt?: boolean;
}

export interface MachineSpec extends HostCommon {
    nics: NicSpec[];
    bmc?: BmcSpec;
    power?: PowerSpec;
    waitForSshSeconds?: number;
    disks?: string[];
    raid?: RaidSpec[];
    ceph?: { osds: CephOsdSpec[] };
    pxeServer?: PxeServerSpec;
}

export interface GuestNicSpec {
    network: string;
    mac: string;
    address?: string;
}

export type GuestDiskSpec = { device: string; readOnly?: boolean } | { volume: string; readOnly?: boolean };

export interface NfsExportSpec {
    /** Absolute path under the mountpoint. */
    path: string;
    /** Network names or CIDRs allowed to mount. */
    clients: string[];
    /** exports(5) options (default `rw,sync,no_subtree_check`). */
    options?: string;
}

export interface NfsSpec {
    /** One of this guest's NBD volumes, mounted at `mountpoint`. */
    volume: string;
    mountpoint: string;
    exports: NfsExportSpec[];
}

export interface GuestSpec extends HostCommon {
    /** The machine running the guest. */
    host: string;
    memoryMiB: number;
    vcpus?: number;
    boot?: "network" | "disk";
    nics: GuestNicSpec[];
    disks?: GuestDiskSpec[];
    nfs?: NfsSpec;
    /** qemu machine type (default `pc`). */
    machineType?: string;
    /** Seconds a stop waits for the guest's own power-down before qemu quits (default 120). */
    shutdownTimeoutSeconds?: number;
    asFound?: GuestAsFound;
}

export interface VolumeSpec {
    /** The LV name, unique in the inventory (guests' disks name it). */
    name: string;
    /** The host (machine or guest) with a `san` section that serves it. */
    san: string;
    /** With a binary unit: `512MiB`, `20GiB`, `1TiB`. */
    size: string;
    port: number;
    /** The guest that mounts it (its eth0 MAC is registered as the owner). */
    owner: string;
    exportName?: string;
    readOnly?: boolean;
    /** Addresses or CIDRs allowed to connect (default: the export network, so the guest can move between boxes). */
    allowedClients?: string[];
    adopt?: boolean;
    asFound?: VolumeAsFound;
}

export interface ContainerNicSpec {
    network: string;
    /** IPv4 without prefix length. */
    address?: string;
    mac?: string;
    gateway?: string;
}

export interface ContainerMountSpec {
    target: string;
    /** An NFS export of a guest with `nfs` (resolved to its address on the storage network, else lan). */
    nfs?: { server: string; path: string };
    /** A path on the host, or `server:/export`. */
    source?: string;
    type?: string;
    options?: string;
}

export interface ContainerFileSpec {
    path: string;
    content: string;
    mode?: string;
}

export interface ContainerSpec {
    name: string;
    /** A machine or guest. */
    host: string;
    service: string;
    os?: OsName;
    template?: string;
    templateArgs?: string[];
    /** A root file system already on the host, instead of a template. */
    rootfs?: string;
    nics?: ContainerNicSpec[];
    mounts?: ContainerMountSpec[];
    memoryMiB?: number;
    autostart?: boolean;
    files?: ContainerFileSpec[];
    commands?: string[][];
    adopt?: boolean;
}

export interface ConsulKeysSpec {
    /** Ends with `/`. */
    prefix: string;
    keys: Record<string, string>;
    adopt?: boolean;
}

export interface Inventory {
    datacenter: string;
    domain?: string;
    networks: Record<string, NetworkSpec>;
    consul?: ConsulSpec;
    pxe?: PxeSpec;
    lxc?: LxcSpec;
    ceph?: CephSpec;
    defaults?: DefaultsSpec;
    machines: MachineSpec[];
    guests?: GuestSpec[];
    volumes?: VolumeSpec[];
    containers?: ContainerSpec[];
    consulKeys?: ConsulKeysSpec[];
}

export { loadInventory, parseInventory, validateInventory, InventoryError, InventoryProblem, LoadOptions } from "./validate";
