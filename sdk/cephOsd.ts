import * as pulumi from "@pulumi/pulumi";
import type { CephOsdInputs, CephOsdState } from "../provider/resources/cephOsd";
import { ConnectionArgs, secretConnection } from "./connection";
import { BaremetalResource, OutputOnly, outputsOf } from "./provider";

export interface CephOsdArgs {
    /**
     * The box that holds the device. It must belong to the cluster already:
     * `/etc/ceph/<cluster>.conf`, the admin keyring and the bootstrap-osd keyring
     * (`/var/lib/ceph/bootstrap-osd/<cluster>.keyring`) present. Changing its host
     * re-creates the OSD (needs zapOnDelete).
     */
    connection: pulumi.Input<ConnectionArgs>;
    /**
     * The block device the OSD's data lives on: a disk (`/dev/disk/by-id/...` is best),
     * a partition, a logical volume (`vg/lv`) or an NBD-attached device. Changing it
     * re-creates the OSD on the new device, which destroys the old one: refused
     * unless zapOnDelete is set.
     */
    device: pulumi.Input<string>;
    /**
     * CRUSH device class (`hdd`, `ssd`, `nvme` or your own name); the class Ceph
     * detects when omitted. Changes in place.
     */
    deviceClass?: pulumi.Input<string>;
    /**
     * CRUSH weight (by convention the size in TiB); the weight Ceph gives a new OSD
     * when omitted. Changes in place (data moves to match).
     */
    crushWeight?: pulumi.Input<number>;
    /**
     * CRUSH location as bucket type to bucket name, e.g. `{ root: "default", rack:
     * "r1", host: "storage1" }`; Ceph's default (root=default, host=<short hostname>)
     * when omitted. Changes in place; also stored as the OSD's `crush_location`
     * option so that a restart keeps it.
     */
    crushLocation?: pulumi.Input<Record<string, pulumi.Input<string>>>;
    /** Cluster name (`ceph` when omitted): selects `/etc/ceph/<cluster>.conf`. Changing it re-creates the OSD. */
    cluster?: pulumi.Input<string>;
    /**
     * Take over an OSD that already lives on this device (made by hand or by another
     * tool) instead of failing; it is not re-created and its data is kept.
     */
    adopt?: pulumi.Input<boolean>;
    /**
     * Opt-in to destroying the device's contents: after the OSD has been drained and
     * purged, `ceph-volume lvm zap --destroy` wipes the device. Also allows changes
     * that re-create the OSD (a new device or host). Without it, delete still drains
     * and purges the OSD safely but leaves the device's LVM volumes as they are.
     */
    zapOnDelete?: pulumi.Input<boolean>;
    /**
     * Seconds delete waits for `ceph osd safe-to-destroy` after marking the OSD out
     * (default 3600). When it never becomes safe the delete fails and the OSD stays
     * out but running, its data intact; it is never forced.
     */
    drainTimeoutSeconds?: pulumi.Input<number>;
}

/** Outputs that are not inputs, and inputs the provider defaults or reads back (see outputsOf). */
const osdOutputs: OutputOnly<CephOsdState, CephOsdInputs> = {
    osdId: undefined, osdFsid: undefined, clusterFsid: undefined, hostName: undefined, lvPath: undefined, devices: undefined,
    up: undefined, in: undefined, reweight: undefined,
};
const osdDefaults = ["deviceClass", "crushWeight", "crushLocation", "cluster", "adopt", "zapOnDelete", "drainTimeoutSeconds"];

/**
 * A Ceph OSD (bluestore) made by ceph-volume on one device. Delete takes the
 * safe path: out, wait until `ceph osd safe-to-destroy` agrees, stop, purge, and
 * zap only when zapOnDelete is set. ID: the OSD's fsid (`ceph-volume lvm list`'s
 * `osd fsid`).
 */
export class CephOsd extends BaremetalResource {
    declare readonly device: pulumi.Output<string>;
    /** The OSD number (`osd.<osdId>`). */
    declare readonly osdId: pulumi.Output<number>;
    /** The OSD's own fsid (the ID). */
    declare readonly osdFsid: pulumi.Output<string>;
    /** The cluster's fsid. */
    declare readonly clusterFsid: pulumi.Output<string>;
    /** The CRUSH device class as last read. */
    declare readonly deviceClass: pulumi.Output<string>;
    /** The CRUSH weight as last read. */
    declare readonly crushWeight: pulumi.Output<number>;
    /** The CRUSH location (bucket type to name, from the OSD up to the root) as last read. */
    declare readonly crushLocation: pulumi.Output<Record<string, string>>;
    /** The host's short name as the OSD reports it. */
    declare readonly hostName: pulumi.Output<string>;
    /** The logical volume ceph-volume made for the OSD's data (`/dev/ceph-.../osd-block-...`). */
    declare readonly lvPath: pulumi.Output<string>;
    /** The physical devices under the OSD's logical volume. */
    declare readonly devices: pulumi.Output<string[]>;
    /** Is the OSD daemon up (as last read)? */
    declare readonly up: pulumi.Output<boolean>;
    /** Is the OSD in (does it hold data) as last read? An OSD marked out reads false. */
    declare readonly in: pulumi.Output<boolean>;
    /** The OSD's reweight (1 when in, 0 when out) as last read. */
    declare readonly reweight: pulumi.Output<number>;

    constructor(name: string, args: CephOsdArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            "CephOsd",
            name,
            {
                ...outputsOf(osdDefaults),
                ...args,
                connection: secretConnection(args.connection),
                ...outputsOf(osdOutputs),
            },
            opts,
        );
    }
}
