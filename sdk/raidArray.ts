import * as pulumi from "@pulumi/pulumi";
import { ConnectionArgs, secretConnection } from "./connection";
import type { RaidArrayInputs, RaidArrayState } from "../provider/resources/raidArray";
import { BaremetalResource, OutputOnly, outputsOf } from "./provider";

/** Outputs that are not inputs, and inputs the provider defaults (see outputsOf). */
const raidOutputs: OutputOnly<RaidArrayState, RaidArrayInputs> = {
    uuid: undefined, state: undefined, activeMembers: undefined, failedMembers: undefined, sizeBytes: undefined, syncPercent: undefined,
};
const raidDefaults = ["level", "metadata", "name", "wipeOnDelete", "waitForSync", "syncTimeoutSeconds"];

export interface RaidArrayArgs {
    /** The machine that holds the member disks. Changing its host re-creates the array (needs wipeOnDelete). */
    connection: pulumi.Input<ConnectionArgs>;
    /** The md device, `/dev/md0` ... `/dev/md127`. */
    device: pulumi.Input<string>;
    /** `raid1` (default), `raid0`, `raid5`, `raid6` or `raid10`. Changing it re-creates the array. */
    level?: pulumi.Input<"raid0" | "raid1" | "raid5" | "raid6" | "raid10">;
    /**
     * Member block devices; stable paths (`/dev/disk/by-id/...`) are best. Adding,
     * removing or replacing a member happens in place (mdadm --add/--fail/--remove/--grow).
     */
    members: pulumi.Input<pulumi.Input<string>[]>;
    /** Superblock format: `1.2` (default), `1.1` or `1.0`. */
    metadata?: pulumi.Input<"1.0" | "1.1" | "1.2">;
    /** Name stored in the superblock. */
    name?: pulumi.Input<string>;
    /**
     * Opt-in to destroying data: zero the members' superblocks on delete, and allow
     * changes that re-create the array. Without it, delete stops the array and keeps
     * its superblocks (it can be assembled again), and re-creating changes are refused.
     */
    wipeOnDelete?: pulumi.Input<boolean>;
    /** Wait until the array is clean after create or a member change (progress in the log). */
    waitForSync?: pulumi.Input<boolean>;
    /** Seconds to wait for the resync when waitForSync is set (default 3600). */
    syncTimeoutSeconds?: pulumi.Input<number>;
}

/**
 * An mdadm software RAID array. An existing array with the same members is
 * adopted instead of re-created. ID: the array UUID.
 */
export class RaidArray extends BaremetalResource {
    declare readonly device: pulumi.Output<string>;
    declare readonly level: pulumi.Output<string>;
    /** Members currently in the array and not failed. */
    declare readonly members: pulumi.Output<string[]>;
    declare readonly uuid: pulumi.Output<string>;
    /** clean, degraded, resyncing, recovering, checking, inactive or unknown (as last read). */
    declare readonly state: pulumi.Output<string>;
    declare readonly activeMembers: pulumi.Output<string[]>;
    declare readonly failedMembers: pulumi.Output<string[]>;
    declare readonly sizeBytes: pulumi.Output<number>;
    declare readonly syncPercent: pulumi.Output<number | undefined>;

    constructor(name: string, args: RaidArrayArgs, opts?: pulumi.CustomResourceOptions) {
        super("RaidArray", name, { ...outputsOf(raidDefaults), ...args, connection: secretConnection(args.connection), ...outputsOf(raidOutputs) }, opts);
    }
}
