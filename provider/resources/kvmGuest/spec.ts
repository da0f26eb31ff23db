// KvmGuest, part spec: the inputs and state, the nested object types and the
// field table.
import { KindSpec, ObjectType, t } from "../../core/fields";
import { connectionField, HostConnection } from "../../host";
import type { GuestBlockDevice } from "../../parsers/qmp";

export interface NbdDisk {
    nbd: { host: string; port: number; export: string };
    readOnly: boolean;
}

export interface DeviceDisk {
    device: string;
    readOnly: boolean;
}

export type GuestDisk = NbdDisk | DeviceDisk;

export interface GuestNic {
    bridge: string;
    bridgeType: "ovs" | "linux";
    mac: string;
    model: "virtio-net-pci" | "e1000";
}

/** A running qemu taken over as it runs: the service that supervises it and its QMP socket. */
export interface GuestAsFound {
    service?: string;
    qmpSocket: string;
}

export interface KvmGuestInputs {
    connection: HostConnection;
    name: string;
    memoryMiB: number;
    vcpus: number;
    disks: GuestDisk[];
    nics: GuestNic[];
    boot: "network" | "disk";
    machine: string;
    autostart: boolean;
    shutdownTimeoutSeconds: number;
    migrationPort: number;
    migrationTimeoutSeconds: number;
    adopt: boolean;
    asFound?: GuestAsFound;
}

export interface MigrationFigures {
    from: string;
    to: string;
    wallTimeMs: number;
    totalTimeMs?: number;
    downtimeMs?: number;
    ramTransferredBytes?: number;
}

export interface KvmGuestState extends KvmGuestInputs {
    mac: string;
    serviceName: string;
    qmpSocket: string;
    consoleLog: string;
    status: string;
    running: boolean;
    blockDevices: GuestBlockDevice[];
    taps: { mac: string; tap: string; bridge: string }[];
    lastMigration?: MigrationFigures;
}

// ---- the field table ----------------------------------------------------------------

const namePattern = /^[a-z][a-z0-9-]{0,30}$/;
const exportPattern = /^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}$/;
const machinePattern = /^[a-z0-9][a-z0-9._-]{0,63}$/;

const readOnlyField = { type: t.boolean, default: false, doc: "Attach the disk read-only." } as const;

const nbdExportType: ObjectType = {
    name: "KvmGuestNbdExport",
    doc: "Where an NBD export is served: an NbdVolume's `exportAddress`, `port` and `exportName` fit here.",
    fields: {
        host: { type: t.string(), required: true, doc: "The nbd-server's address: a DNS name, an IPv4 or an IPv6 address.", check: (v, f, x) => v.host(f, x) },
        port: { type: t.integer, default: 10809, doc: "The nbd-server's TCP port.", rule: { min: 1, max: 65535 } },
        export: {
            type: t.string(),
            required: true,
            doc: "The export's name.",
            rule: { pattern: exportPattern, patternHint: "is not an NBD export name (letters, digits, _ . + -)" },
        },
    },
};

const nbdDiskType: ObjectType = {
    name: "KvmGuestNbdDisk",
    doc: "A disk served by nbd-server (e.g. an NbdVolume). A guest whose disks are all NBD exports moves to another box by live migration.",
    discriminator: "nbd",
    fields: {
        nbd: { type: t.object(nbdExportType), required: true, doc: "The export: server, port and export name." },
        readOnly: readOnlyField,
    },
};

const deviceDiskType: ObjectType = {
    name: "KvmGuestDeviceDisk",
    doc: "A block device on the box itself (a local disk, an LV, an md array). A guest with one cannot live-migrate: a change of box replaces it.",
    discriminator: "device",
    fields: {
        device: { type: t.string(), required: true, doc: "The device's /dev path, e.g. `/dev/vg0/web01-var`.", check: (v, f, x) => v.devicePath(f, x) },
        readOnly: readOnlyField,
    },
};

const nicType: ObjectType = {
    name: "KvmGuestNic",
    doc: "A NIC: a tap on a bridge of the box, with a fixed MAC.",
    fields: {
        bridge: {
            type: t.string(),
            required: true,
            doc: "The bridge the NIC's tap joins on the box: an OvsBridge's name, or a Linux bridge with bridgeType `linux`.",
            check: (v, f, x) => v.interfaceName(f, x),
        },
        bridgeType: { type: t.string(["ovs", "linux"]), default: "ovs", doc: "`ovs` (Open vSwitch) or `linux`." },
        mac: { type: t.string(), required: true, doc: "Fixed MAC address (lower-cased by check). The first NIC's MAC is the guest's ID: the seed finds its volumes by it.", check: (v, f, x) => v.mac(f, x) },
        model: { type: t.string(["virtio-net-pci", "e1000"]), default: "virtio-net-pci", doc: "The NIC model qemu emulates." },
    },
};

export const servicePattern = /^[A-Za-z0-9][A-Za-z0-9@._-]{0,127}$/;

const asFoundType: ObjectType = {
    name: "KvmGuestAsFound",
    doc: "A qemu already running on the box, taken over as it runs: the service that supervises it and its QMP socket (what `baremetal discover` finds).",
    fields: {
        service: {
            type: t.string(),
            doc: "The init-system service that runs its qemu (`vm1.service`); absent for a qemu started by hand.",
            rule: { pattern: servicePattern, patternHint: "is not a service name like vm1.service" },
        },
        qmpSocket: { type: t.string(), required: true, doc: "Its QMP socket on the box, through which it is read and powered down.", check: (v, f, x) => v.absolutePath(f, x, { where: "on the box" }) },
    },
};

const blockDeviceType: ObjectType = {
    name: "GuestBlockDevice",
    doc: "A block device of a running guest, as QMP query-block lists it.",
    fields: {
        device: { type: t.string(), required: true, doc: "The -drive id, e.g. `disk0`." },
        file: { type: t.string(), required: true, doc: 'What is attached: `nbd://198.18.1.11:10810/guest0` or `/dev/vg/lv`; "" when empty.' },
        driver: { type: t.string(), required: true, doc: "Format driver of the attached image, e.g. `raw`." },
        readOnly: { type: t.boolean, required: true, doc: "Attached read-only." },
    },
};

const tapType: ObjectType = {
    name: "GuestTap",
    doc: "A NIC's tap on the box and the bridge it is on.",
    fields: {
        mac: { type: t.string(), required: true, doc: "The NIC's MAC." },
        tap: { type: t.string(), required: true, doc: "The tap's name on the box: `vm` and the MAC's 12 hex digits." },
        bridge: { type: t.string(), required: true, doc: 'The bridge the tap is on as last read; "" when on none.' },
    },
};

const migrationType: ObjectType = {
    name: "GuestMigration",
    doc: "Figures of a live migration.",
    fields: {
        from: { type: t.string(), required: true, doc: "The box the guest left." },
        to: { type: t.string(), required: true, doc: "The box the guest moved to." },
        wallTimeMs: { type: t.integer, required: true, doc: "Wall-clock time of the whole move, the incoming qemu's start included." },
        totalTimeMs: { type: t.integer, doc: "qemu's query-migrate total-time." },
        downtimeMs: { type: t.integer, doc: "qemu's query-migrate downtime: how long the guest was paused." },
        ramTransferredBytes: { type: t.integer, doc: "Guest memory sent over the network." },
    },
};

export const spec: KindSpec<KvmGuestInputs, KvmGuestState> = {
    kind: "KvmGuest",
    doc: "A qemu guest on a services box, supervised by the box's init system (a systemd unit on Debian, an OpenRC service on Alpine) and read through QMP: disks from NBD exports or local devices, NICs on Open vSwitch or Linux bridges with fixed MACs, network boot by default, the serial console in a log. A change of the connection's host live-migrates the guest when every disk is an NBD export, and replaces it otherwise. Changes of memory, vCPUs, disks, NICs, boot order or machine type restart it gracefully (ACPI power-down first); delete powers it down the same way.",
    id: "the first NIC's MAC in lower case, e.g. `52:54:00:ab:00:01` (the guest's uid: the seed finds its NBD volumes by it).",
    example: `new KvmGuest("web01", {
    connection,
    name: "web01",
    memoryMiB: 1024,
    disks: [{ nbd: { host: "198.18.1.11", port: 10809, export: "web01-var" } }],
    nics: [{ bridge: "br-lan", mac: "52:54:00:ab:00:01" }],
});`,
    exampleHost: "198.51.100.12",
    deleteBeforeReplace: true,
    inputs: {
        // No replaceOn: a new host is a live migration or a replacement, decided in diff by the disks.
        connection: connectionField("The box that runs the guest. Changing its `host` live-migrates the guest when every disk is an NBD export (an update, not a replacement); otherwise the guest is replaced, the old one first.", []),
        name: {
            type: t.string(),
            required: true,
            change: "replace",
            doc: "Guest name: lower-case letters, digits and '-'; names the service `baremetal-guest-<name>` and the guest's files on the box.",
            rule: { pattern: namePattern, patternHint: "must be lower-case letters, digits and '-', starting with a letter, at most 31 characters" },
        },
        memoryMiB: { type: t.integer, required: true, doc: "Guest memory in MiB; a change restarts the guest gracefully (ACPI power-down first).", rule: { min: 16, max: 4 * 1024 * 1024 } },
        vcpus: { type: t.integer, default: 1, doc: "Virtual CPUs; a change restarts the guest gracefully.", rule: { min: 1, max: 255 } },
        disks: {
            type: t.array(t.union(nbdDiskType, deviceDiskType)),
            default: [],
            doc: 'Disks, each an NBD export (`{ nbd: { host, port, export } }`) or a block device on the box (`{ device: "/dev/..." }`); at most 16. A change restarts the guest.',
            rule: { maxItems: 16 },
        },
        nics: {
            type: t.array(t.object(nicType)),
            required: true,
            doc: "NICs, 1 to 8. The first NIC's MAC is the guest's ID: changing it replaces the guest, the old one first (the same MAC is never on the network twice). Other changes restart the guest.",
            rule: { minItems: 1, maxItems: 8 },
        },
        boot: { type: t.string(["network", "disk"]), default: "network", doc: "`network` (PXE first, then the disks) or `disk` (the disks first)." },
        machine: {
            type: t.string(),
            default: "pc",
            doc: "qemu machine type (`pc`, `q35` ...); keep it the same on every box a guest moves between.",
            rule: { pattern: machinePattern, patternHint: "is not a qemu machine type like pc or q35" },
        },
        autostart: { type: t.boolean, default: true, doc: "Start the guest when the box boots." },
        shutdownTimeoutSeconds: {
            type: t.integer,
            default: 120,
            doc: "Seconds a stop waits for the guest to power off (ACPI) before qemu is told to quit.",
            rule: { min: 1, max: 3600 },
        },
        migrationPort: { type: t.integer, default: 49152, doc: "TCP port the incoming qemu listens on during a live migration.", rule: { min: 1024, max: 65535 } },
        migrationTimeoutSeconds: { type: t.integer, default: 600, doc: "Seconds a live migration may take.", rule: { min: 10, max: 86400 } },
        adopt: { type: t.boolean, default: false, doc: "Take over an existing `baremetal-guest-<name>` service that this stack did not create, or (with asFound) a qemu that runs under a service of its own." },
        asFound: {
            type: t.object(asFoundType),
            doc: "Keep an adopted qemu under the service that runs it now: nothing is written or restarted, it is read and powered down through its QMP socket, and changes that need a restart are refused. Removing it (an update, shown by preview) moves the guest under `baremetal-guest-<name>`: that powers it down gracefully and starts it again. Needs adopt.",
        },
    },
    outputs: {
        mac: { type: t.string(), required: true, stable: true, doc: "The first NIC's MAC (the ID)." },
        serviceName: { type: t.string(), required: true, doc: "The init-system service that runs qemu: `baremetal-guest-<name>`, or asFound's service (\"\" for a qemu started by hand)." },
        qmpSocket: { type: t.string(), required: true, doc: "Path of the guest's QMP socket on the box." },
        consoleLog: { type: t.string(), required: true, doc: "Path of the serial console's log on the box (\"\" for a guest kept as found)." },
        status: { type: t.string(), required: true, doc: "QMP status as last read: running, paused, inmigrate, postmigrate ... or `stopped`." },
        running: { type: t.boolean, required: true, doc: "Whether the guest ran when last read; an update starts a guest found stopped." },
        blockDevices: { type: t.array(t.object(blockDeviceType)), required: true, doc: "Block devices as QMP query-block lists them." },
        taps: { type: t.array(t.object(tapType)), required: true, doc: "Each NIC's tap on the box and the bridge it is on, as last read." },
        lastMigration: { type: t.object(migrationType), doc: "Figures of the last live migration (wall time, qemu's total time and downtime)." },
    },
};
