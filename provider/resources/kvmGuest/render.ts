// KvmGuest, part render: the guest's names and files on the box, qemu's argv
// and the guest as a service of the box's init system (no I/O).
import { initSystemOf, ovsServiceOf, serviceFilePath } from "../../host";
import type { OsFamily, ServiceSpec } from "../../host";
import { nbdUri } from "../../parsers/nbd";
import { qmpScriptPathOn } from "../../qmp/script";
import type { KvmGuestInputs } from "./spec";

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

// OpenRC wants the program as an absolute path; both distributions install it here.
const qemuBinary = { debian: "qemu-system-x86_64", alpine: "/usr/bin/qemu-system-x86_64", "debian-openrc": "/usr/bin/qemu-system-x86_64" } as const;

/**
 * The guest as a service of the box's init system (rendered as a systemd unit
 * or an OpenRC script by the host layer).
 */
/** start_pre hooks that wait (up to 120 s each; a failure lets qemu try anyway) for the guest's NBD servers. */
function nbdWaits(g: KvmGuestInputs, family: OsFamily): { argv: string[]; mayFail: boolean }[] {
    const servers = [...new Set(g.disks.flatMap((d) => ("nbd" in d ? [`${d.nbd.host} ${d.nbd.port}`] : [])))];
    return servers.map((s) => ({ argv: [qmpScriptPathOn(family), "wait-tcp", ...s.split(" "), "120"], mayFail: true }));
}

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
            // OpenRC restarts no crashed guest (systemd does, Restart=on-failure): qemu that
            // started before its NBD server (a box booting, the server on it or not yet up)
            // would stay dead, so the start waits for each NBD server first (found by a power
            // cycle of the lab's OpenRC box).
            ...(initSystemOf(family) === "openrc" ? nbdWaits(g, family) : []),
        ],
        // The graceful stop: ACPI power button, then quit after the timeout.
        stop: { command: [qmpScriptPathOn(family), "powerdown", p.qmpSocket, String(g.shutdownTimeoutSeconds), p.stopOutcome], timeoutSeconds: g.shutdownTimeoutSeconds + 30 },
        postStop: tapDownCommands(g),
        // A guest that powers itself off stays off; a crashed qemu comes back.
        restart: { when: "on-failure", delaySeconds: 5 },
        errorLog: p.qemuLog,
        // After Open vSwitch as each init system had it: ordering on systemd, `use` on OpenRC.
        ...(ovs ? (initSystemOf(family) === "openrc" ? { wants: [ovsServiceOf(family)] } : { after: [ovsServiceOf(family)] }) : {}),
        // On OpenRC, after the box's own NBD exports (NbdVolume provides this name), when it has NBD disks.
        ...(initSystemOf(family) === "openrc" && g.disks.some((d) => "nbd" in d) ? { after: ["baremetal-nbd-exports"] } : {}),
    };
}
