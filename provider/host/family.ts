// The OS families the host layer supports. A module of its own so that the
// service renderer (service.ts) and the OS adapters (os.ts) can both name them
// without importing each other.
//
// A family is a distribution (where files and packages are, what the packaged
// services are called) with an init system (how services are described, enabled
// and supervised). Alpine: OpenRC. Debian: systemd. "debian-openrc": Debian's
// packages with Debian's `openrc` as the init system (found by probing which init
// system runs, not by name) — the lab's stand-in for the seed's Alpine boxes.

export type OsFamily = "alpine" | "debian" | "debian-openrc";

export const osFamilies: readonly OsFamily[] = ["alpine", "debian", "debian-openrc"];

/** The init system that supervises services on a family. */
export type InitSystem = "openrc" | "systemd";

/** Whose packages and file layout a family has. */
export type Distribution = "alpine" | "debian";

export function initSystemOf(family: OsFamily): InitSystem {
    return family === "debian" ? "systemd" : "openrc";
}

export function distributionOf(family: OsFamily): Distribution {
    return family === "alpine" ? "alpine" : "debian";
}

/**
 * Open vSwitch's service as its distribution packages it: Alpine's `ovs-vswitchd`
 * script, Debian's `openvswitch-switch` (a systemd unit, or the LSB script under OpenRC).
 */
export function ovsServiceOf(family: OsFamily): string {
    return distributionOf(family) === "alpine" ? "ovs-vswitchd" : "openvswitch-switch";
}

/**
 * The service that activates volume groups at boot: Alpine's `lvm`; systemd's
 * `lvm2-monitor`. Debian under OpenRC has none: Debian's lvm2 ships no init
 * script, its udev rules run `vgchange -aay` themselves when systemd is absent.
 */
export function lvmServiceOf(family: OsFamily): string | undefined {
    return family === "alpine" ? "lvm" : family === "debian" ? "lvm2-monitor" : undefined;
}
