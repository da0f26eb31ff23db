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
import { isUnknown, Validator } from "../core/validate";
import { checkHostConnection, HostConnection, Plan, Remote, step } from "../host";
import type { OsFamily } from "../host";
import { nbdUri } from "../parsers/nbd";
import { GuestBlockDevice, guestQueries, MigrationResult, parseGuestReplies, parseMigrate, parseStatus, parseStopOutcome } from "../parsers/qmp";
import { qmpCall, qmpWait } from "../qmp/client";
import { qmpNotRunning, qmpScript, qmpScriptFile, qmpScriptPath } from "../qmp/script";

/** A disk served by nbd-server (e.g. an NbdVolume's host, port and export). */
export interface NbdDisk {
    nbd: { host: string; port: number; export: string };
    readOnly: boolean;
}

/** A block device on the box itself (a local disk, an LV, an md array). */
export interface DeviceDisk {
    device: string;
    readOnly: boolean;
}

export type GuestDisk = NbdDisk | DeviceDisk;

export interface GuestNic {
    /** The bridge the NIC's tap joins on the box. */
    bridge: string;
    /** `ovs` (Open vSwitch, the default) or `linux`. */
    bridgeType: "ovs" | "linux";
    mac: string;
    model: "virtio-net-pci" | "e1000";
}

export interface KvmGuestInputs {
    /** The box that runs the guest; changing its host migrates (NBD disks) or replaces. */
    connection: HostConnection;
    /** Guest name: lower-case letters, digits, '-'; names the service and files on the box. */
    name: string;
    memoryMiB: number;
    vcpus: number;
    disks: GuestDisk[];
    /** The first NIC's MAC is the guest's ID. */
    nics: GuestNic[];
    /** `network` (PXE first, the default) or `disk`. */
    boot: "network" | "disk";
    /** qemu machine type; the same on every box a guest migrates between. */
    machine: string;
    /** Start the guest when the box boots. */
    autostart: boolean;
    /** How long a stop waits for the guest to power off (ACPI) before qemu is told to quit. */
    shutdownTimeoutSeconds: number;
    /** TCP port the incoming qemu listens on during a live migration. */
    migrationPort: number;
    migrationTimeoutSeconds: number;
    /** Take over an existing service of the same name that this stack did not create. */
    adopt: boolean;
}

export interface MigrationFigures {
    from: string;
    to: string;
    /** Wall-clock time of the whole move, incoming qemu included. */
    wallTimeMs: number;
    /** query-migrate total-time. */
    totalTimeMs?: number;
    /** query-migrate downtime: how long the guest was paused. */
    downtimeMs?: number;
    ramTransferredBytes?: number;
}

export interface KvmGuestState extends KvmGuestInputs {
    /** The first NIC's MAC (the ID). */
    mac: string;
    serviceName: string;
    qmpSocket: string;
    consoleLog: string;
    /** QMP status as last read: running, paused, inmigrate, postmigrate ... or `stopped`. */
    status: string;
    running: boolean;
    blockDevices: GuestBlockDevice[];
    /** Each NIC's tap on the box and the bridge it is on, as last read. */
    taps: { mac: string; tap: string; bridge: string }[];
    lastMigration?: MigrationFigures;
}

// ---- check ------------------------------------------------------------------------

const namePattern = /^[a-z][a-z0-9-]{0,30}$/;
const macPattern = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
/** Linux interface names: at most 15 bytes, no '/', no whitespace. */
const ifnamePattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;
const exportPattern = /^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}$/;
const devicePattern = /^\/dev\/[A-Za-z0-9][A-Za-z0-9_.:@+\/-]{0,200}$/;
const machinePattern = /^[a-z0-9][a-z0-9._-]{0,63}$/;

function checkDisk(v: Validator, field: string, raw: unknown): GuestDisk | undefined {
    if (isUnknown(raw)) return raw as GuestDisk;
    if (!raw || typeof raw !== "object" || Array.isArray(raw)) return v.fail(field, 'must be { nbd: { host, port, export } } or { device: "/dev/..." }');
    const d = raw as Record<string, unknown>;
    const readOnly = v.boolean(`${field}.readOnly`, d.readOnly, false);
    for (const k of Object.keys(d)) if (!["nbd", "device", "readOnly"].includes(k)) v.fail(`${field}.${k}`, "is not a disk field (nbd, device, readOnly)");
    if ((d.nbd === undefined) === (d.device === undefined)) return v.fail(field, "needs exactly one of nbd or device");
    if (d.device !== undefined) {
        const device = v.string(`${field}.device`, d.device, { pattern: devicePattern, patternHint: "is not a /dev path like /dev/vg0/guest-var" });
        if (device && device.split("/").includes("..")) return v.fail(`${field}.device`, "must not contain ..");
        return device === undefined ? undefined : { device, readOnly };
    }
    if (isUnknown(d.nbd)) return { nbd: d.nbd as NbdDisk["nbd"], readOnly };
    if (!d.nbd || typeof d.nbd !== "object") return v.fail(`${field}.nbd`, "must be { host, port, export }");
    const n = d.nbd as Record<string, unknown>;
    for (const k of Object.keys(n)) if (!["host", "port", "export"].includes(k)) v.fail(`${field}.nbd.${k}`, "is not an NBD field (host, port, export)");
    const host = v.host(`${field}.nbd.host`, n.host);
    const port = v.integer(`${field}.nbd.port`, n.port ?? 10809, { min: 1, max: 65535 });
    const exportName = v.string(`${field}.nbd.export`, n.export, { pattern: exportPattern, patternHint: "is not an NBD export name (letters, digits, _ . + -)" });
    if (host === undefined || port === undefined || exportName === undefined) return undefined;
    return { nbd: { host, port, export: exportName }, readOnly };
}

function checkNic(v: Validator, field: string, raw: unknown): GuestNic | undefined {
    if (isUnknown(raw)) return raw as GuestNic;
    if (!raw || typeof raw !== "object" || Array.isArray(raw)) return v.fail(field, 'must be { bridge: "br-lan", mac: "52:54:00:..." }');
    const n = raw as Record<string, unknown>;
    for (const k of Object.keys(n)) if (!["bridge", "bridgeType", "mac", "model"].includes(k)) v.fail(`${field}.${k}`, "is not a NIC field (bridge, bridgeType, mac, model)");
    const bridge = v.string(`${field}.bridge`, n.bridge, { pattern: ifnamePattern, patternHint: "is not an interface name (at most 15 characters: letters, digits, _ . -)" });
    const bridgeType = v.string(`${field}.bridgeType`, n.bridgeType ?? "ovs", { pattern: /^(ovs|linux)$/, patternHint: "must be ovs or linux" }) as GuestNic["bridgeType"] | undefined;
    const mac = v.string(`${field}.mac`, typeof n.mac === "string" ? n.mac.toLowerCase() : n.mac, { pattern: macPattern, patternHint: "is not a MAC address like 52:54:00:12:34:56" });
    if (mac && !isUnknown(mac) && parseInt(mac.slice(0, 2), 16) & 1) v.fail(`${field}.mac`, `${mac} is a multicast address; a NIC needs a unicast one (even first octet)`);
    if (mac === "00:00:00:00:00:00") v.fail(`${field}.mac`, "00:00:00:00:00:00 is not a NIC's address");
    const model = v.string(`${field}.model`, n.model ?? "virtio-net-pci", { pattern: /^(virtio-net-pci|e1000)$/, patternHint: "must be virtio-net-pci or e1000" }) as GuestNic["model"] | undefined;
    if (!bridge || !bridgeType || !mac || !model) return undefined;
    return { bridge, bridgeType, mac, model };
}

export function check(_olds: Record<string, unknown>, news: Record<string, unknown>): CheckOutcome<KvmGuestInputs> {
    const v = new Validator();
    const connection = checkHostConnection(v, "connection", news.connection);
    const name = v.string("name", news.name, { pattern: namePattern, patternHint: "must be lower-case letters, digits and '-', starting with a letter, at most 31 characters" });
    const memoryMiB = v.integer("memoryMiB", news.memoryMiB, { min: 16, max: 4 * 1024 * 1024 });
    const vcpus = v.integer("vcpus", news.vcpus ?? 1, { min: 1, max: 255 }) ?? 1;
    const disks = v.list("disks", news.disks, (f, d) => checkDisk(v, f, d), { optional: true, max: 16 });
    const nics = v.list("nics", news.nics, (f, n) => checkNic(v, f, n), { min: 1, max: 8 });
    if (Array.isArray(nics) && !isUnknown(nics)) {
        const macs = nics.map((n) => n.mac).filter((m) => !isUnknown(m));
        if (new Set(macs).size !== macs.length) v.fail("nics", "two NICs have the same MAC");
    }
    const boot = v.string("boot", news.boot ?? "network", { pattern: /^(network|disk)$/, patternHint: "must be network or disk" }) as KvmGuestInputs["boot"] | undefined;
    if (boot === "disk" && Array.isArray(disks) && disks.length === 0) v.fail("boot", "is disk, but the guest has no disks");
    const machine = v.string("machine", news.machine ?? "pc", { pattern: machinePattern, patternHint: "is not a qemu machine type like pc or q35" });
    const autostart = v.boolean("autostart", news.autostart, true);
    const shutdownTimeoutSeconds = v.integer("shutdownTimeoutSeconds", news.shutdownTimeoutSeconds ?? 120, { min: 1, max: 3600 });
    const migrationPort = v.integer("migrationPort", news.migrationPort ?? 49152, { min: 1024, max: 65535 });
    const migrationTimeoutSeconds = v.integer("migrationTimeoutSeconds", news.migrationTimeoutSeconds ?? 600, { min: 10, max: 86400 });
    const adopt = v.boolean("adopt", news.adopt, false);
    if (!v.ok || !connection || !name || memoryMiB === undefined || !disks || !nics || !boot || !machine || shutdownTimeoutSeconds === undefined || migrationPort === undefined || migrationTimeoutSeconds === undefined) {
        return { failures: v.failures };
    }
    return {
        inputs: { connection, name, memoryMiB, vcpus, disks, nics, boot, machine, autostart, shutdownTimeoutSeconds, migrationPort, migrationTimeoutSeconds, adopt },
        failures: [],
    };
}

// ---- diff -------------------------------------------------------------------------

/** Changes that only take effect when qemu starts again. */
const hardwareFields: (keyof KvmGuestInputs)[] = ["memoryMiB", "vcpus", "disks", "nics", "boot", "machine"];
/** Changes to the service definition that need no restart. */
const serviceFields: (keyof KvmGuestInputs)[] = ["autostart", "shutdownTimeoutSeconds"];

/** A guest can move live only when no disk is local to the box it leaves. */
export function migratable(disks: GuestDisk[]): boolean {
    return disks.every((d) => "nbd" in d);
}

export function diff(_id: string, olds: KvmGuestState, news: KvmGuestInputs): DiffOutcome {
    const replaces: string[] = [];
    if (olds.name !== news.name) replaces.push("name");
    if (olds.nics?.[0]?.mac !== news.nics[0]?.mac) replaces.push("nics[0].mac");
    const hostChanged = olds.connection?.host !== news.connection.host;
    if (hostChanged && !migratable(olds.disks ?? [])) replaces.push("connection.host");
    const changed = changedFields(olds, news, [...hardwareFields, ...serviceFields, "connection", "migrationPort", "migrationTimeoutSeconds", "adopt"]);
    // A guest found stopped (refresh) is started again by an update.
    const stopped = olds.running === false;
    // The same MAC must never be on the network twice: the old guest goes first.
    return { changes: replaces.length + changed.length > 0 || stopped, replaces, deleteBeforeReplace: true, stables: ["name", "mac", "serviceName", "qmpSocket", "consoleLog"] };
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
    return family === "alpine" ? `/etc/init.d/${serviceName(name)}` : `/etc/systemd/system/${serviceName(name)}.service`;
}

/** The tap of a NIC on the box: "vm" + the MAC's 12 hex digits (15 bytes at most, unique per MAC). */
export function tapName(mac: string): string {
    return `vm${mac.replace(/:/g, "")}`;
}

/** First line of every unit: how create recognises a service it made before (crash, re-run). */
export function ownerMarker(mac: string): string {
    return `# pulumi-baremetal guest mac=${mac}`;
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

/** The systemd unit (Debian). */
export function systemdUnit(g: KvmGuestInputs): string {
    const p = pathsOf(g.name);
    const ovs = g.nics.some((n) => n.bridgeType === "ovs");
    return [
        ownerMarker(g.nics[0].mac),
        `# KvmGuest ${g.name}, written by pulumi-baremetal: changes made here are overwritten.`,
        "[Unit]",
        `Description=KVM guest ${g.name} (pulumi-baremetal)`,
        "Wants=network-online.target",
        `After=network-online.target${ovs ? " openvswitch-switch.service" : ""}`,
        "",
        "[Service]",
        "Type=simple",
        // Present only while a live migration arrives: QEMU_INCOMING=-incoming tcp:...
        `EnvironmentFile=-${p.incoming}`,
        `ExecStartPre=mkdir -p ${p.run} ${p.logDir}`,
        ...g.nics.map((n) => `ExecStartPre=-ip link del ${tapName(n.mac)}`),
        ...tapUpCommands(g).map((c) => `ExecStartPre=${c[1] === "--if-exists" ? "-" : ""}${c.join(" ")}`),
        `ExecStart=${qemuBinary.debian} ${qemuArgs(g).join(" ")} $QEMU_INCOMING`,
        // The graceful stop: ACPI power button, then quit after the timeout.
        `ExecStop=-${qmpScriptPath} powerdown ${p.qmpSocket} ${g.shutdownTimeoutSeconds} ${p.stopOutcome}`,
        ...tapDownCommands(g).map((c) => `ExecStopPost=-${c.join(" ")}`),
        `TimeoutStopSec=${g.shutdownTimeoutSeconds + 30}`,
        // A guest that powers itself off stays off; a crashed qemu comes back.
        "Restart=on-failure",
        "RestartSec=5",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ].join("\n");
}

/** The OpenRC service (Alpine). */
export function openrcScript(g: KvmGuestInputs): string {
    const p = pathsOf(g.name);
    const ovs = g.nics.some((n) => n.bridgeType === "ovs");
    const indent = (c: string[]) => `\t${c.join(" ")} || return 1`;
    return [
        "#!/sbin/openrc-run",
        ownerMarker(g.nics[0].mac),
        `# KvmGuest ${g.name}, written by pulumi-baremetal: changes made here are overwritten.`,
        `description="KVM guest ${g.name} (pulumi-baremetal)"`,
        `command=${qemuBinary.alpine}`,
        `command_args="${qemuArgs(g).join(" ")}"`,
        "command_background=true",
        `pidfile=${p.pidFile}`,
        `error_log=${p.qemuLog}`,
        "",
        "depend() {",
        "\tneed net",
        ...(ovs ? ["\tuse ovs-vswitchd"] : []),
        "}",
        "",
        "start_pre() {",
        `\tmkdir -p ${p.run} ${p.logDir} || return 1`,
        ...g.nics.map((n) => `\tip link del ${tapName(n.mac)} 2>/dev/null`),
        ...tapUpCommands(g).map(indent),
        "\t# Present only while a live migration arrives: QEMU_INCOMING=\"-incoming tcp:...\"",
        `\tif [ -f ${p.incoming} ]; then . ${p.incoming}; command_args="$command_args $QEMU_INCOMING"; fi`,
        "}",
        "",
        "stop() {",
        `\tebegin "Powering down KVM guest ${g.name} (up to ${g.shutdownTimeoutSeconds}s, then quit)"`,
        `\t${qmpScriptPath} powerdown ${p.qmpSocket} ${g.shutdownTimeoutSeconds} ${p.stopOutcome}`,
        `\tstart-stop-daemon --stop --quiet --pidfile "$pidfile" --retry TERM/10/KILL/5 || true`,
        "\teend 0",
        "}",
        "",
        "stop_post() {",
        ...tapDownCommands(g).map((c) => `\t${c.join(" ")} 2>/dev/null`),
        "\treturn 0",
        "}",
        "",
    ].join("\n");
}

export function packagesFor(g: KvmGuestInputs, family: OsFamily): string[] {
    const ovs = g.nics.some((n) => n.bridgeType === "ovs");
    return family === "alpine"
        ? ["qemu-system-x86_64", "python3", "iproute2", ...(ovs ? ["openvswitch"] : [])]
        : ["qemu-system-x86", "python3", "iproute2", ...(ovs ? ["openvswitch-switch"] : [])];
}

/** Installs qemu, the QMP helper and the service; enables it at boot when autostart is set. */
export function planInstall(g: KvmGuestInputs, family: OsFamily): Plan {
    const svc = serviceName(g.name);
    return [
        step.ensurePackages(...packagesFor(g, family)),
        step.writeFile(qmpScriptPath, qmpScriptFile(), { mode: "0755" }),
        family === "alpine"
            ? step.writeFile(unitPath(g.name, family), openrcScript(g), { mode: "0755" })
            : step.writeFile(unitPath(g.name, family), systemdUnit(g)),
        ...(family === "debian" ? [step.run(["systemctl", "daemon-reload"], { what: "reload systemd units" })] : []),
        step.service(g.autostart ? "enable" : "disable", svc),
        step.persist(),
    ];
}

/** The guest's service stops (its stop is the graceful power-down), then leaves the box. */
export function planRemove(name: string, family: OsFamily): Plan {
    const svc = serviceName(name);
    const p = pathsOf(name);
    return [
        step.service("disable", svc),
        step.removeFile(unitPath(name, family)),
        ...(family === "debian" ? [step.run(["systemctl", "daemon-reload"], { what: "reload systemd units" })] : []),
        step.removeFile(p.incoming),
        step.removeFile(p.stopOutcome),
        step.persist(),
    ];
}

/** The incoming side of a live migration: the same guest, told to wait for its state. */
export function planIncoming(g: KvmGuestInputs, family: OsFamily): Plan {
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
    'unit=$1; svc=$2; shift 2',
    'if [ -e "$unit" ]; then echo unit=present; head -n 2 "$unit" | grep "^# pulumi-baremetal guest" || true; else echo unit=absent; fi',
    'if command -v systemctl >/dev/null 2>&1; then echo "active=$(systemctl is-active "$svc" 2>/dev/null)"; else rc-service "$svc" status >/dev/null 2>&1 && echo active=active || echo active=inactive; fi',
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
    const unitStep = plan.findIndex((s) => s.kind === "writeFile" && s.path === unitPath(inputs.name, family));
    const unitChanged = result.steps[unitStep]?.changed === true;
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
    const sourceFamily = (await source.facts()).family;
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
        await source.apply([step.service("stop", serviceName(olds.name)), ...planRemove(olds.name, sourceFamily)]);
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
    const family = (await host.facts()).family;
    const box = await readBox(host, props);
    if (!box.unitPresent) {
        ctx.log.info(`${props.name}: already gone from ${host.target}`);
        return;
    }
    if (box.ownerMac !== undefined && box.ownerMac !== props.mac) {
        throw new RefusedError(`the service ${serviceName(props.name)} on ${host.target} now belongs to the guest with MAC ${box.ownerMac}, not ${props.mac}`, "Refresh the stack to see what happened; nothing was stopped.");
    }
    await gracefulStop(host, props, ctx);
    await host.apply(planRemove(props.name, family));
}

export const kvmGuest: ResourceKind<KvmGuestInputs, KvmGuestState> = { check, diff, create, read, update, delete: remove };
