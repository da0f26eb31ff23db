import * as pulumi from "@pulumi/pulumi";
import { ConnectionArgs, secretConnection } from "./connection";
import type { VolumeGroupInputs, VolumeGroupState } from "../provider/resources/volumeGroup";
import { BaremetalResource, OutputOnly, outputsOf } from "./provider";

/** Outputs that are not inputs, and inputs the provider defaults (see outputsOf). */
const vgOutputs: OutputOnly<VolumeGroupState, VolumeGroupInputs> = {
    uuid: undefined, sizeBytes: undefined, freeBytes: undefined, extentBytes: undefined, lvCount: undefined, physicalVolumes: undefined,
};
const vgDefaults = ["adopt", "wipeOnDelete"];

export interface VolumeGroupArgs {
    /** The machine that holds the devices. Changing its host re-creates the VG (needs wipeOnDelete). */
    connection: pulumi.Input<ConnectionArgs>;
    /** The VG name, e.g. `vg0`. Changing it re-creates the VG (needs wipeOnDelete). */
    name: pulumi.Input<string>;
    /**
     * Block devices that become its physical volumes, e.g. `[raid.device]`. Devices that
     * are mounted, md members, PVs of another VG or carry a file system are refused.
     * Adding a device extends the VG in place; removing one reduces it (LVM refuses if it holds data).
     */
    devices: pulumi.Input<pulumi.Input<string>[]>;
    /** Take over an existing VG of this name and these devices that pulumi-baremetal did not create. */
    adopt?: pulumi.Input<boolean>;
    /**
     * Opt-in to delete: without it, deleting the resource is refused and nothing changes.
     * With it, delete runs vgremove + pvremove, and is still refused while the VG holds volumes.
     */
    wipeOnDelete?: pulumi.Input<boolean>;
}

/** An LVM2 volume group. An existing VG with the same devices is adopted. ID: the VG UUID. */
export class VolumeGroup extends BaremetalResource {
    declare readonly name: pulumi.Output<string>;
    /** Devices as declared (PVs as LVM reports them, mapped back to the declared paths). */
    declare readonly devices: pulumi.Output<string[]>;
    declare readonly uuid: pulumi.Output<string>;
    declare readonly sizeBytes: pulumi.Output<number>;
    declare readonly freeBytes: pulumi.Output<number>;
    declare readonly extentBytes: pulumi.Output<number>;
    declare readonly lvCount: pulumi.Output<number>;
    declare readonly physicalVolumes: pulumi.Output<string[]>;

    constructor(name: string, args: VolumeGroupArgs, opts?: pulumi.CustomResourceOptions) {
        super("VolumeGroup", name, { ...outputsOf(vgDefaults), ...args, connection: secretConnection(args.connection), ...outputsOf(vgOutputs) }, opts);
    }
}
