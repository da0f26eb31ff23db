import * as pulumi from "@pulumi/pulumi";
import { ConnectionArgs, secretConnection } from "./connection";
import type { KvmGuestInputs, KvmGuestState } from "../provider/resources/kvmGuest";
import { BaremetalResource, OutputOnly, outputsOf } from "./provider";

// Kept for modules that imported it from here (it lives in provider.ts).
export { outputsOf };

/** A disk served by nbd-server; an NbdVolume's outputs fit here. */
export interface KvmGuestNbdDiskArgs {
    nbd: pulumi.Input<{ host: pulumi.Input<string>; port?: pulumi.Input<number>; export: pulumi.Input<string> }>;
    readOnly?: pulumi.Input<boolean>;
}

/** A block device on the box itself (a local disk, an LV, an md array). Such a guest cannot live-migrate. */
export interface KvmGuestDeviceDiskArgs {
    device: pulumi.Input<string>;
    readOnly?: pulumi.Input<boolean>;
}

export interface KvmGuestNicArgs {
    /** The bridge on the box (an OvsBridge's name, or a Linux bridge with bridgeType "linux"). */
    bridge: pulumi.Input<string>;
    /** `ovs` (default) or `linux`. */
    bridgeType?: pulumi.Input<"ovs" | "linux">;
    /** Fixed MAC; the first NIC's MAC is the guest's ID (the seed finds its volumes by it). */
    mac: pulumi.Input<string>;
    /** `virtio-net-pci` (default) or `e1000`. */
    model?: pulumi.Input<"virtio-net-pci" | "e1000">;
}

export interface KvmGuestArgs {
    /**
     * The box that runs the guest. Changing its host live-migrates the guest when
     * every disk is an NBD export (an update, not a replacement); otherwise the
     * guest is replaced.
     */
    connection: pulumi.Input<ConnectionArgs>;
    /** Lower-case letters, digits, '-'; names the service `baremetal-guest-<name>`. Changing it replaces the guest. */
    name: pulumi.Input<string>;
    /** Guest memory; a change restarts the guest gracefully (ACPI power-down first). */
    memoryMiB: pulumi.Input<number>;
    /** Virtual CPUs (default 1); a change restarts the guest gracefully. */
    vcpus?: pulumi.Input<number>;
    disks?: pulumi.Input<pulumi.Input<KvmGuestNbdDiskArgs | KvmGuestDeviceDiskArgs>[]>;
    nics: pulumi.Input<pulumi.Input<KvmGuestNicArgs>[]>;
    /** `network` (PXE first, the default) or `disk`. */
    boot?: pulumi.Input<"network" | "disk">;
    /** qemu machine type (default `pc`); keep it the same on every box a guest moves between. */
    machine?: pulumi.Input<string>;
    /** Start at box boot (default true). */
    autostart?: pulumi.Input<boolean>;
    /** Seconds a stop waits for the guest to power off (ACPI) before qemu quits (default 120). */
    shutdownTimeoutSeconds?: pulumi.Input<number>;
    /** TCP port of the incoming side of a live migration (default 49152). */
    migrationPort?: pulumi.Input<number>;
    /** Seconds a live migration may take (default 600). */
    migrationTimeoutSeconds?: pulumi.Input<number>;
    /** Take over an existing `baremetal-guest-<name>` service this stack did not create. */
    adopt?: pulumi.Input<boolean>;
}

/** Outputs that are not inputs, and inputs the provider defaults (see outputsOf). */
const guestOutputs: OutputOnly<KvmGuestState, KvmGuestInputs> = {
    mac: undefined, serviceName: undefined, qmpSocket: undefined, consoleLog: undefined, status: undefined,
    running: undefined, blockDevices: undefined, taps: undefined, lastMigration: undefined,
};
const guestDefaults = ["vcpus", "disks", "boot", "machine", "autostart", "shutdownTimeoutSeconds", "migrationPort", "migrationTimeoutSeconds", "adopt"];

/**
 * A qemu guest supervised by the box's init system (systemd or OpenRC), read
 * through QMP. ID: the first NIC's MAC.
 */
export class KvmGuest extends BaremetalResource {
    declare readonly name: pulumi.Output<string>;
    /** The first NIC's MAC (the ID). */
    declare readonly mac: pulumi.Output<string>;
    declare readonly memoryMiB: pulumi.Output<number>;
    declare readonly vcpus: pulumi.Output<number>;
    declare readonly serviceName: pulumi.Output<string>;
    declare readonly qmpSocket: pulumi.Output<string>;
    declare readonly consoleLog: pulumi.Output<string>;
    /** QMP status as last read: running, paused, postmigrate ... or `stopped`. */
    declare readonly status: pulumi.Output<string>;
    declare readonly running: pulumi.Output<boolean>;
    /** Block devices as QMP query-block lists them. */
    declare readonly blockDevices: pulumi.Output<{ device: string; file: string; driver: string; readOnly: boolean }[]>;
    /** Each NIC's tap and the bridge it is on, as last read. */
    declare readonly taps: pulumi.Output<{ mac: string; tap: string; bridge: string }[]>;
    /** Figures of the last live migration (wall time, qemu total-time and downtime in ms). */
    declare readonly lastMigration: pulumi.Output<
        { from: string; to: string; wallTimeMs: number; totalTimeMs?: number; downtimeMs?: number; ramTransferredBytes?: number } | undefined
    >;

    constructor(name: string, args: KvmGuestArgs, opts?: pulumi.CustomResourceOptions) {
        super("KvmGuest", name, { ...outputsOf(guestOutputs), ...outputsOf(guestDefaults), ...args, connection: secretConnection(args.connection) }, opts);
    }
}
