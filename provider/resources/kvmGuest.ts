// KvmGuest: a qemu guest on a services box, supervised by the box's init system
// (a systemd unit on Debian, an OpenRC service on Alpine), with disks from NBD
// exports or local devices, NICs on Open vSwitch or Linux bridges with fixed MACs,
// network boot by default, its serial console in a log and a QMP socket.
//
// ID: the MAC of the first NIC (the guest's uid: the seed finds a guest's NBD
// volumes by it). A change of `connection.host` live-migrates the guest when all
// its disks are on the network (NBD), instead of re-creating it.
//
// Files on the box (NAME = the guest's name):
//   /etc/systemd/system/baremetal-guest-NAME.service  or  /etc/init.d/baremetal-guest-NAME
//   /run/baremetal/guests/NAME/qmp.sock               QMP
//   /var/log/baremetal/guests/NAME.console.log        serial console
//   /run/baremetal/guests/NAME.incoming               only while a migration arrives
//   /run/baremetal/guests/NAME.stop                   how the last stop went
import { RefusedError } from "../core/errors";
import { changedFields, CheckOutcome, DiffOutcome, OperationContext, ResourceKind } from "../core/resource";
import { checkByTable, diffByTable, erase, KindSpec, ObjectType, t } from "../core/fields";
import { isUnknown, Validator } from "../core/validate";
import { connectionType, HostConnection, Plan, Remote, serviceFilePath, serviceStateShell, step } from "../host";
import type { OsFamily, ServiceSpec } from "../host";
import { nbdUri } from "../parsers/nbd";
import { GuestBlockDevice, guestQueries, MigrationResult, parseGuestReplies, parseMigrate, parseStatus, parseStopOutcome } from "../parsers/qmp";
import { qmpCall, qmpWait } from "../qmp/client";
import { qmpNotRunning, qmpScript, qmpScriptFile, qmpScriptPath } from "../qmp/script";

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

// ---- the field table and check ----------------------------------------------------

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
    example: `import { KvmGuest } from "pulumi-baremetal";

new KvmGuest("web01", {
    connection: { host: "198.51.100.12", privateKey: key, hostKey: "ssh-ed25519 AAAA..." },
    name: "web01",
    memoryMiB: 1024,
    disks: [{ nbd: { host: "198.18.1.11", port: 10809, export: "web01-var" } }],
    nics: [{ bridge: "br-lan", mac: "52:54:00:ab:00:01" }],
});`,
    deleteBeforeReplace: true,
    inputs: {
        // No replaceOn: a new host is a live migration or a replacement, decided in diff by the disks.
        connection: {
            type: t.object(connectionType),
            required: true,
            doc: "The box that runs the guest. Changing its `host` live-migrates the guest when every disk is an NBD export (an update, not a replacement); otherwise the guest is replaced, the old one first.",
        },
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
        adopt: { type: t.boolean, default: false, doc: "Take over an existing `baremetal-guest-<name>` service that this stack did not create." },
    },
    outputs: {
        mac: { type: t.string(), required: true, stable: true, doc: "The first NIC's MAC (the ID)." },
        serviceName: { type: t.string(), required: true, stable: true, doc: "The init-system service that runs qemu: `baremetal-guest-<name>`." },
        qmpSocket: { type: t.string(), required: true, stable: true, doc: "Path of the guest's QMP socket on the box." },
        consoleLog: { type: t.string(), required: true, stable: true, doc: "Path of the serial console's log on the box." },
        status: { type: t.string(), required: true, doc: "QMP status as last read: running, paused, inmigrate, postmigrate ... or `stopped`." },
        running: { type: t.boolean, required: true, doc: "Whether the guest ran when last read; an update starts a guest found stopped." },
        blockDevices: { type: t.array(t.object(blockDeviceType)), required: true, doc: "Block devices as QMP query-block lists them." },
        taps: { type: t.array(t.object(tapType)), required: true, doc: "Each NIC's tap on the box and the bridge it is on, as last read." },
        lastMigration: { type: t.object(migrationType), doc: "Figures of the last live migration (wall time, qemu's total time and downtime)." },
    },
};

export function check(_olds: Record<string, unknown>, news: Record<string, unknown>): CheckOutcome<KvmGuestInputs> {
    const v = new Validator();
    const inputs = checkByTable(v, erase(spec), news) as Partial<KvmGuestInputs>;
    const { disks, nics, boot } = inputs;
    // Only on lists that passed: a bad MAC is one error, not also a duplicate.
    if (Array.isArray(nics)) {
        const macs = nics.flatMap((n) => (typeof n === "object" && !isUnknown(n.mac) ? [n.mac] : []));
        if (new Set(macs).size !== macs.length) v.fail("nics", "two NICs have the same MAC");
    }
    if (boot === "disk" && Array.isArray(disks) && disks.length === 0) v.fail("boot", "is disk, but the guest has no disks");
    if (!v.ok) return { failures: v.failures };
    return { inputs: inputs as KvmGuestInputs, failures: [] };
}

// ---- diff -------------------------------------------------------------------------

/** Changes that only take effect when qemu starts again. */
const hardwareFields: (keyof KvmGuestInputs)[] = ["memoryMiB", "vcpus", "disks", "nics", "boot", "machine"];

/** A guest can move live only when no disk is local to the box it leaves. */
export function migratable(disks: GuestDisk[]): boolean {
    return disks.every((d) => "nbd" in d);
}

/**
 * What the table cannot say: the first NIC's MAC is the ID (a new one is a new
 * guest), and a new box is a live migration when every disk is on the network,
 * a replacement otherwise.
 */
function identityReplaces(olds: KvmGuestState, news: KvmGuestInputs): string[] {
    const replaces: string[] = [];
    if (olds.nics?.[0]?.mac !== news.nics[0]?.mac) replaces.push("nics[0].mac");
    if (olds.connection?.host !== news.connection.host && !migratable(olds.disks ?? [])) replaces.push("connection.host");
    return replaces;
}

export function diff(_id: string, olds: KvmGuestState, news: KvmGuestInputs): DiffOutcome {
    const d = diffByTable(erase(spec), olds as unknown as Record<string, unknown>, news as unknown as Record<string, unknown>);
    const replaces = [...d.replaces, ...identityReplaces(olds, news)];
    // A guest found stopped (refresh) is started again by an update.
    const stopped = olds.running === false;
    // The same MAC must never be on the network twice: the old guest goes first.
    return { changes: d.changed.length > 0 || replaces.length > 0 || stopped, replaces, deleteBeforeReplace: true, stables: replaces.length > 0 ? [] : d.stables };
}

// ---- what runs on the box -----------------------------------------------------------

export function serviceName(name: string): string {
    return `baremetal-guest-${name}`;
}

export function pathsOf(name: string) {
    const run = `/run/baremetal/guests/${name}`;
    return {
        run,
        qmpSocket: `${run}/qmp.sock`,
        pidFile: `${run}/qemu.pid`,
        incoming: `/run/baremetal/guests/${name}.incoming`,
        stopOutcome: `/run/baremetal/guests/${name}.stop`,
        consoleLog: `/var/log/baremetal/guests/${name}.console.log`,
        qemuLog: `/var/log/baremetal/guests/${name}.qemu.log`,
        logDir: "/var/log/baremetal/guests",
    };
}

export function unitPath(name: string, family: OsFamily): string {
    return serviceFilePath({ name: serviceName(name) }, family);
}

/** The tap of a NIC on the box: "vm" + the MAC's 12 hex digits (15 bytes at most, unique per MAC). */
export function tapName(mac: string): string {
    return `vm${mac.replace(/:/g, "")}`;
}

/** First comment of every unit or script: how create recognises a service it made before (crash, re-run). */
function ownerComment(mac: string): string {
    return `pulumi-baremetal guest mac=${mac}`;
}

/** The owner comment as a line of the file. */
export function ownerMarker(mac: string): string {
    return `# ${ownerComment(mac)}`;
}

/**
 * qemu's argv. Every value in it was validated in check against a pattern with
 * no whitespace, quotes, '%', '$' or ',' (qemu's option separator), so it can be
 * written into a unit file or an OpenRC script as is.
 */
export function qemuArgs(g: KvmGuestInputs): string[] {
    const p = pathsOf(g.name);
    const args = [
        "-name", `guest=${g.name}`,
        "-machine", `${g.machine},accel=kvm:tcg`,
        "-m", String(g.memoryMiB),
        "-smp", String(g.vcpus),
        "-nodefaults", "-no-user-config", "-display", "none",
        "-qmp", `unix:${p.qmpSocket},server=on,wait=off`,
        "-chardev", `file,id=serial0,path=${p.consoleLog},append=on`,
        "-serial", "chardev:serial0",
    ];
    g.disks.forEach((d, i) => {
        const file = "nbd" in d ? nbdUri(d.nbd) : `${d.device},cache=none,aio=native`;
        args.push("-drive", `file=${file},format=raw,if=none,id=disk${i}${d.readOnly ? ",readonly=on" : ""}`);
        args.push("-device", `virtio-blk-pci,drive=disk${i},id=vdisk${i}`);
    });
    g.nics.forEach((n, i) => {
        args.push("-netdev", `tap,id=net${i},ifname=${tapName(n.mac)},script=no,downscript=no`);
        args.push("-device", `${n.model},netdev=net${i},mac=${n.mac},id=nic${i}`);
    });
    args.push("-boot", g.boot === "network" ? "order=nc" : "order=cn");
    return args;
}

/** Shell lines that put each NIC's tap on its bridge (run before qemu starts). */
function tapUpCommands(g: KvmGuestInputs): string[][] {
    return g.nics.flatMap((n) => {
        const tap = tapName(n.mac);
        return [
            ["ip", "tuntap", "add", "dev", tap, "mode", "tap"],
            ["ip", "link", "set", tap, "up"],
            ...(n.bridgeType === "ovs"
                ? [["ovs-vsctl", "--if-exists", "del-port", tap], ["ovs-vsctl", "--may-exist", "add-port", n.bridge, tap]]
                : [["ip", "link", "set", tap, "master", n.bridge]]),
        ];
    });
}

function tapDownCommands(g: KvmGuestInputs): string[][] {
    return g.nics.flatMap((n) => {
        const tap = tapName(n.mac);
        return [...(n.bridgeType === "ovs" ? [["ovs-vsctl", "--if-exists", "del-port", tap]] : []), ["ip", "link", "del", tap]];
    });
}

const qemuBinary = { debian: "qemu-system-x86_64", alpine: "/usr/bin/qemu-system-x86_64" } as const;

/**
 * The guest as a service of the box's init system (rendered as a systemd unit
 * or an OpenRC script by the host layer).
 */
export function guestService(g: KvmGuestInputs, family: OsFamily): ServiceSpec {
    const p = pathsOf(g.name);
    const ovs = g.nics.some((n) => n.bridgeType === "ovs");
    return {
        name: serviceName(g.name),
        description: `KVM guest ${g.name} (pulumi-baremetal)`,
        comments: [ownerComment(g.nics[0].mac), `KvmGuest ${g.name}, written by pulumi-baremetal: changes made here are overwritten.`],
        command: [qemuBinary[family], ...qemuArgs(g), "$QEMU_INCOMING"],
        type: "simple",
        pidFile: p.pidFile,
        // Present only while a live migration arrives: QEMU_INCOMING="-incoming tcp:..."
        environmentFile: { path: p.incoming, optional: true },
        preStart: [
            { argv: ["mkdir", "-p", p.run, p.logDir] },
            ...g.nics.map((n) => ({ argv: ["ip", "link", "del", tapName(n.mac)], mayFail: true })),
            ...tapUpCommands(g).map((argv) => ({ argv, mayFail: argv[1] === "--if-exists" })),
        ],
        // The graceful stop: ACPI power button, then quit after the timeout.
        stop: { command: [qmpScriptPath, "powerdown", p.qmpSocket, String(g.shutdownTimeoutSeconds), p.stopOutcome], timeoutSeconds: g.shutdownTimeoutSeconds + 30 },
        postStop: tapDownCommands(g),
        // A guest that powers itself off stays off; a crashed qemu comes back.
        restart: { when: "on-failure", delaySeconds: 5 },
        errorLog: p.qemuLog,
        // After Open vSwitch as each init system had it: ordering on systemd, `use` on OpenRC.
        ...(ovs ? (family === "alpine" ? { wants: ["ovs-vswitchd"] } : { after: ["openvswitch-switch"] }) : {}),
    };
}

export function packagesFor(g: KvmGuestInputs, family: OsFamily): string[] {
    const ovs = g.nics.some((n) => n.bridgeType === "ovs");
    return family === "alpine"
        ? ["qemu-system-x86_64", "python3", "iproute2", ...(ovs ? ["openvswitch"] : [])]
        : ["qemu-system-x86", "python3", "iproute2", ...(ovs ? ["openvswitch-switch"] : [])];
}

/** The steps create asks about: "guest-service" (the unit or script changed, so a running guest restarts). */
export type KvmGuestStep = "guest-service";

/** Installs qemu, the QMP helper and the service; enables it at boot when autostart is set. */
export function planInstall(g: KvmGuestInputs, family: OsFamily): Plan<KvmGuestStep> {
    return [
        step.ensurePackages(...packagesFor(g, family)),
        step.writeFile(qmpScriptPath, qmpScriptFile(), { mode: "0755" }),
        step.installService(guestService(g, family), { tag: "guest-service" }),
        step.service(g.autostart ? "enable" : "disable", serviceName(g.name)),
        step.persist(),
    ];
}

/** The guest's service stops (its stop is the graceful power-down), then leaves the box. */
export function planRemove(name: string): Plan {
    const p = pathsOf(name);
    return [
        step.uninstallService({ name: serviceName(name) }),
        step.removeFile(p.incoming),
        step.removeFile(p.stopOutcome),
        step.persist(),
    ];
}

/** The incoming side of a live migration: the same guest, told to wait for its state. */
export function planIncoming(g: KvmGuestInputs, family: OsFamily): Plan<KvmGuestStep> {
    return [
        ...planInstall(g, family).filter((s) => s.kind !== "persist"),
        step.writeFile(pathsOf(g.name).incoming, `QEMU_INCOMING="-incoming tcp:0.0.0.0:${g.migrationPort}"\n`),
        step.service("start", serviceName(g.name)),
    ];
}

// ---- reading the live guest ------------------------------------------------------------

// $1 unit file, then the taps: prints "unit=present|absent", "active=<state>" and
// "tap <name> <bridge>" for each tap that exists.
const boxReadScript = [
    serviceStateShell,
    'unit=$1; svc=$2; shift 2',
    'if [ -e "$unit" ]; then echo unit=present; head -n 2 "$unit" | grep "^# pulumi-baremetal guest" || true; else echo unit=absent; fi',
    'echo "active=$(baremetal_service_state "$svc")"',
    'for t in "$@"; do',
    '  [ -e "/sys/class/net/$t" ] || continue',
    '  br=$(ovs-vsctl iface-to-br "$t" 2>/dev/null) || br=$(basename "$(readlink "/sys/class/net/$t/master" 2>/dev/null)" 2>/dev/null)',
    '  echo "tap $t ${br:--}"',
    'done',
].join("\n");

export interface BoxView {
    unitPresent: boolean;
    /** The MAC in the unit's owner marker, when the unit is one of ours. */
    ownerMac?: string;
    active: boolean;
    taps: Map<string, string>;
}

export function parseBoxView(text: string): BoxView {
    const taps = new Map<string, string>();
    let ownerMac: string | undefined;
    for (const line of text.split("\n")) {
        const t = /^tap (\S+) (\S+)$/.exec(line);
        if (t) taps.set(t[1], t[2] === "-" ? "" : t[2]);
        const o = /^# pulumi-baremetal guest mac=(\S+)$/.exec(line);
        if (o) ownerMac = o[1];
    }
    return { unitPresent: /^unit=present$/m.test(text), ownerMac, active: /^active=active$/m.test(text), taps };
}

async function readBox(host: Remote, g: KvmGuestInputs): Promise<BoxView> {
    const family = (await host.facts()).family;
    const out = await host.run(["sh", "-c", boxReadScript, "baremetal-guest-read", unitPath(g.name, family), serviceName(g.name), ...g.nics.map((n) => tapName(n.mac))], {
        what: `read guest ${g.name}'s service`,
        timeoutMs: 60_000,
    });
    return parseBoxView(out.stdout);
}

/** The state: declared values, overlaid with what the box and QMP say. */
async function readState(host: Remote, g: KvmGuestInputs, extra: Partial<KvmGuestState> = {}): Promise<KvmGuestState | undefined> {
    const box = await readBox(host, g);
    if (!box.unitPresent) return undefined;
    const p = pathsOf(g.name);
    const replies = await qmpCall(host, p.qmpSocket, [...guestQueries]);
    const state: KvmGuestState = {
        ...g,
        ...extra,
        mac: g.nics[0].mac,
        serviceName: serviceName(g.name),
        qmpSocket: p.qmpSocket,
        consoleLog: p.consoleLog,
        status: "stopped",
        running: false,
        blockDevices: [],
        taps: g.nics.map((n) => ({ mac: n.mac, tap: tapName(n.mac), bridge: box.taps.get(tapName(n.mac)) ?? "" })),
    };
    if (!replies) return state;
    const live = parseGuestReplies(JSON.stringify(replies));
    // Live values replace declared ones, so refresh shows drift and up corrects it.
    state.status = live.status;
    state.running = live.running;
    state.blockDevices = live.blockDevices;
    state.memoryMiB = live.memoryMiB;
    state.vcpus = live.vcpus;
    state.nics = g.nics.map((n) => ({ ...n, bridge: box.taps.get(tapName(n.mac)) || n.bridge }));
    return state;
}

// ---- operations -----------------------------------------------------------------------------

function hostFor(conn: HostConnection, ctx: OperationContext): Remote {
    return ctx.remote(conn);
}

/** Starts the service and waits until QMP reports the guest in `want` status. */
async function startAndWait(host: Remote, g: KvmGuestInputs, want: string, ctx: OperationContext): Promise<void> {
    await host.apply([step.service("start", serviceName(g.name))]);
    await waitForStatus(host, g, want, ctx);
}

async function waitForStatus(host: Remote, g: KvmGuestInputs, want: string, ctx: OperationContext): Promise<void> {
    ctx.log.progress(`${g.name}: waiting for QMP on ${host.target} to report ${want}`);
    const reply = await qmpWait(host, pathsOf(g.name).qmpSocket, 60);
    const status = reply ? parseStatus(reply.return).status : "not running";
    if (status !== want) {
        const why = await serviceLog(host, g);
        throw new Error(`guest ${g.name} on ${host.target} is ${status}, expected ${want}.\n${why}\n  next: fix the cause (disk export reachable? bridge present?) and run again`);
    }
}

/** The last lines of the service's log, for an error message. */
async function serviceLog(host: Remote, g: KvmGuestInputs): Promise<string> {
    const family = (await host.facts()).family;
    const argv = family === "alpine" ? ["tail", "-n", "15", pathsOf(g.name).qemuLog] : ["journalctl", "-u", serviceName(g.name), "-n", "15", "--no-pager", "-o", "cat"];
    const out = await host.exec(argv, { timeoutMs: 30_000 });
    return out.stdout.trim() || out.stderr.trim();
}

/**
 * The graceful stop: the init system's stop runs the ACPI power-down with the
 * timeout (ExecStop / stop()), so a box shutdown does the same; the outcome file
 * tells which way it went.
 */
async function gracefulStop(host: Remote, g: KvmGuestInputs, ctx: OperationContext): Promise<void> {
    const p = pathsOf(g.name);
    ctx.log.info(`${g.name}: powering down on ${host.target} (ACPI, up to ${g.shutdownTimeoutSeconds}s, then quit)`);
    const started = Date.now();
    await host.apply([step.removeFile(p.stopOutcome), step.service("stop", serviceName(g.name))]);
    const outcome = parseStopOutcome((await host.readFile(p.stopOutcome)) ?? "");
    const took = ((Date.now() - started) / 1000).toFixed(1);
    if (!outcome) ctx.log.info(`${g.name}: was not running (stopped in ${took}s)`);
    else if (outcome.outcome === "powered-off") ctx.log.info(`${g.name}: powered off by itself after ${outcome.seconds}s`);
    else ctx.log.warn(`${g.name}: did not power off within ${g.shutdownTimeoutSeconds}s (no OS answering ACPI?); qemu was told to quit`);
}

async function create(inputs: KvmGuestInputs, ctx: OperationContext): Promise<{ id: string; outs: KvmGuestState }> {
    const host = hostFor(inputs.connection, ctx);
    const family = (await host.facts()).family;
    const box = await readBox(host, inputs);
    const ours = box.ownerMac === inputs.nics[0].mac;
    if (box.unitPresent && !ours && !inputs.adopt) {
        throw new RefusedError(
            `a service ${serviceName(inputs.name)} already exists on ${host.target}${box.ownerMac ? ` for the guest with MAC ${box.ownerMac}` : ""}`,
            "Set adopt: true on this KvmGuest to take it over (its definition is replaced and the guest restarted), or choose another name.",
        );
    }
    if (box.unitPresent) ctx.log.info(`${inputs.name}: ${ours ? "found the service an earlier run created" : "adopting the existing service"} on ${host.target}`);
    const plan = planInstall(inputs, family);
    const result = await host.apply(plan);
    const unitChanged = result.stepChanged("guest-service");
    if (box.active && unitChanged) await gracefulStop(host, inputs, ctx);
    if (!box.active || unitChanged) await startAndWait(host, inputs, "running", ctx);
    const state = await readState(host, inputs);
    if (!state) throw new Error(`guest ${inputs.name} was created on ${host.target} but its service cannot be read back`);
    return { id: inputs.nics[0].mac, outs: state };
}

async function read(_id: string, props: KvmGuestState, ctx: OperationContext): Promise<KvmGuestState | undefined> {
    const { lastMigration } = props;
    return readState(hostFor(props.connection, ctx), props, lastMigration ? { lastMigration } : {});
}

/**
 * Live migration to the box of `news.connection`: an incoming qemu with the same
 * hardware there, `migrate` on the source, a check that the guest runs on the
 * target, then the source service goes.
 */
async function migrate(olds: KvmGuestState, news: KvmGuestInputs, ctx: OperationContext): Promise<MigrationFigures> {
    const source = hostFor(olds.connection, ctx);
    const target = hostFor(news.connection, ctx);
    // The guest moves as it is; hardware changes are applied after it arrived.
    const moving: KvmGuestInputs = { ...news, ...pick(olds, hardwareFields) };
    const targetFamily = (await target.facts()).family;
    const p = pathsOf(news.name);
    const started = Date.now();
    ctx.log.info(`${news.name}: live migration from ${source.target} to ${target.target} begins`);
    const targetBox = await readBox(target, moving);
    if (targetBox.unitPresent && targetBox.ownerMac !== moving.nics[0].mac && !news.adopt) {
        throw new RefusedError(`a service ${serviceName(news.name)} already exists on ${target.target}`, "Remove it, or set adopt: true to replace it.");
    }
    await target.apply(planIncoming(moving, targetFamily));
    try {
        await waitForStatus(target, moving, "inmigrate", ctx);
        ctx.log.progress(`${news.name}: copying memory to ${target.target}`);
        const out = await source.run(["python3", "-c", qmpScript, "migrate", olds.qmpSocket, `tcp:${news.connection.host}:${news.migrationPort}`, String(news.migrationTimeoutSeconds)], {
            okExitCodes: [0, qmpNotRunning],
            timeoutMs: (news.migrationTimeoutSeconds + 60) * 1000,
            what: `migrate ${news.name} to ${target.target}`,
        });
        if (out.exitCode === qmpNotRunning) throw new Error(`guest ${news.name} is not running on ${source.target}; nothing to migrate (refresh, then up starts it on the new box)`);
        const result: MigrationResult = parseMigrate(out.stdout);
        if (result.status !== "completed") throw new Error(`migration of ${news.name} to ${target.target} ended ${result.status}${result.errorDesc ? `: ${result.errorDesc}` : ""}`);
        await waitForStatus(target, moving, "running", ctx);
        const figures: MigrationFigures = {
            from: source.target,
            to: target.target,
            wallTimeMs: Date.now() - started,
            totalTimeMs: result.totalTimeMs,
            downtimeMs: result.downtimeMs,
            ramTransferredBytes: result.ramTransferredBytes,
        };
        ctx.log.info(
            `${news.name}: migrated from ${source.target} to ${target.target} in ${(figures.wallTimeMs / 1000).toFixed(1)}s ` +
                `(qemu total-time ${result.totalTimeMs ?? "?"} ms, downtime ${result.downtimeMs ?? "?"} ms, ${((result.ramTransferredBytes ?? 0) / 1048576).toFixed(1)} MiB RAM sent)`,
        );
        // The source qemu is paused in postmigrate: quit, so its stop does not wait for an ACPI answer.
        await qmpCall(source, olds.qmpSocket, [{ execute: "quit" }]).catch(() => undefined);
        await source.apply([step.service("stop", serviceName(olds.name)), ...planRemove(olds.name)]);
        return figures;
    } finally {
        // Without the file a later restart on the target boots normally instead of waiting for a migration.
        await target.apply([step.removeFile(p.incoming)]).catch(() => undefined);
    }
}

function pick<T extends object>(from: T, keys: (keyof T)[]): Partial<T> {
    return Object.fromEntries(keys.map((k) => [k, from[k]])) as Partial<T>;
}

async function update(_id: string, olds: KvmGuestState, news: KvmGuestInputs, ctx: OperationContext): Promise<KvmGuestState> {
    let lastMigration = olds.lastMigration;
    let running = olds.running;
    if (olds.connection.host !== news.connection.host) {
        lastMigration = await migrate(olds, news, ctx);
        running = true;
    }
    const host = hostFor(news.connection, ctx);
    const family = (await host.facts()).family;
    const migrated: KvmGuestState = lastMigration !== olds.lastMigration ? { ...olds, connection: news.connection } : olds;
    const restart = changedFields(migrated, news, hardwareFields).length > 0;
    await host.apply(planInstall(news, family));
    if (restart && running) {
        ctx.log.info(`${news.name}: ${changedFields(migrated, news, hardwareFields).join(", ")} changed; restarting the guest`);
        await gracefulStop(host, { ...news, shutdownTimeoutSeconds: olds.shutdownTimeoutSeconds }, ctx);
    }
    const box = await readBox(host, news);
    if (!box.active) await startAndWait(host, news, "running", ctx);
    const state = await readState(host, news, lastMigration ? { lastMigration } : {});
    if (!state) throw new Error(`guest ${news.name} disappeared from ${host.target} during the update`);
    return state;
}

async function remove(_id: string, props: KvmGuestState, ctx: OperationContext): Promise<void> {
    const host = hostFor(props.connection, ctx);
    const box = await readBox(host, props);
    if (!box.unitPresent) {
        ctx.log.info(`${props.name}: already gone from ${host.target}`);
        return;
    }
    if (box.ownerMac !== undefined && box.ownerMac !== props.mac) {
        throw new RefusedError(`the service ${serviceName(props.name)} on ${host.target} now belongs to the guest with MAC ${box.ownerMac}, not ${props.mac}`, "Refresh the stack to see what happened; nothing was stopped.");
    }
    await gracefulStop(host, props, ctx);
    await host.apply(planRemove(props.name));
}

export const kvmGuest: ResourceKind<KvmGuestInputs, KvmGuestState> = { spec, check, diff, create, read, update, delete: remove };
