// CephOsd, part spec: the inputs and state, the field table, and the CRUSH values'
// own rules (validators the table names, equality to CRUSH's precision).
import { dataLossFields } from "../../core/dataLoss";
import { KindSpec, t } from "../../core/fields";
import { isUnknown, Validator } from "../../core/validate";
import { connectionField, HostConnection } from "../../host";

export interface CephOsdInputs {
    connection: HostConnection;
    device: string;
    deviceClass?: string;
    crushWeight?: number;
    crushLocation?: Record<string, string>;
    cluster: string;
    adopt: boolean;
    allowDataLoss: boolean;
    zapOnDelete?: boolean;
    drainTimeoutSeconds: number;
}

export interface CephOsdState extends Omit<CephOsdInputs, "deviceClass" | "crushWeight" | "crushLocation"> {
    osdId: number;
    osdFsid: string;
    clusterFsid: string;
    /** As last read (the declared value when it is the same to CRUSH's precision). */
    deviceClass: string;
    crushWeight: number;
    crushLocation: Record<string, string>;
    hostName: string;
    lvPath: string;
    devices: string[];
    up: boolean;
    in: boolean;
    reweight: number;
}

const classPattern = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;
const bucketTypePattern = /^[a-z][a-z0-9_]{0,31}$/;
const bucketNamePattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const clusterPattern = /^[a-z][a-z0-9_-]{0,31}$/;
/** CRUSH weights are 16.16 fixed point: two values closer than this are the same weight. */
const weightResolution = 1 / 65536;
/** The largest weight CRUSH can hold (16 integer bits). */
const maxWeight = 65535;

export const spec: KindSpec<CephOsdInputs, CephOsdState> = {
    kind: "CephOsd",
    doc: "A Ceph OSD (bluestore) made by ceph-volume on one device of a box that already belongs to the cluster. An OSD already on the device is refused unless adopt is set. Delete takes the safe path: mark it out, wait until `ceph osd safe-to-destroy` agrees, stop, purge, and zap the device only when allowDataLoss is set. A create cut short is finished or cleared away on the next run, never made twice.",
    id: "the OSD's fsid (`osd fsid` in `ceph-volume lvm list`, `uuid` in `ceph osd dump`): unlike the OSD number it is never reused by another OSD.",
    example: `new CephOsd("storage1-osd-c", {
    connection,
    device: "/dev/disk/by-id/ata-DISK-C",
    deviceClass: "hdd",
});`,
    exampleHost: "198.51.100.12",
    deleteBeforeReplace: true,
    inputs: {
        connection: connectionField("The box that holds the device. It must belong to the cluster already: `/etc/ceph/<cluster>.conf`, the admin keyring and the bootstrap-osd keyring (`/var/lib/ceph/bootstrap-osd/<cluster>.keyring`) present. A new host re-creates the OSD, which needs allowDataLoss."),
        device: {
            type: t.string(),
            required: true,
            change: "replace",
            doc: "The block device the OSD's data lives on: a disk (`/dev/disk/by-id/...` is best), a partition, a logical volume (`vg/lv` or `/dev/vg/lv`) or an NBD-attached device. A new device re-creates the OSD on it, which destroys the old one: refused unless allowDataLoss is set.",
            check: (v, field, value) => v.devicePath(field, value, { logicalVolume: true }),
        },
        deviceClass: {
            type: t.string(),
            defaultDoc: "the class Ceph detects",
            doc: "CRUSH device class (`hdd`, `ssd`, `nvme` or your own name). Changes in place.",
            rule: { pattern: classPattern, patternHint: "is not a device class name like hdd, ssd, nvme (letters, digits, _ . -)" },
        },
        crushWeight: {
            type: t.number,
            defaultDoc: "the weight Ceph gives a new OSD",
            doc: "CRUSH weight (by convention the size in TiB). Changes in place (data moves to match).",
            check: checkWeight,
        },
        crushLocation: {
            type: t.map(t.string()),
            defaultDoc: "Ceph's (root=default, host=<short hostname>)",
            doc: 'CRUSH location as bucket type to bucket name, naming the root, e.g. `{ root: "default", rack: "r1", host: "storage1" }`. Changes in place; also stored as the OSD\'s `crush_location` option so that a restart keeps it. Levels not declared are not managed.',
            check: checkLocation,
        },
        cluster: {
            type: t.string(),
            default: "ceph",
            change: "replace",
            doc: "Cluster name: selects `/etc/ceph/<cluster>.conf`.",
            rule: { pattern: clusterPattern, patternHint: "is not a cluster name (lower-case letters, digits, _ -), e.g. ceph" },
        },
        adopt: {
            type: t.boolean,
            default: false,
            doc: "Take over an OSD that already lives on this device (made by hand or by another tool) instead of failing; it is not re-created and its data is kept.",
        },
        ...dataLossFields(
            "zapOnDelete",
            "Allow this OSD to destroy the data it holds: on delete, after the OSD has been drained and purged, `ceph-volume lvm zap --destroy` wipes the device; and a change that re-creates the OSD (a new device, host or cluster) is allowed. Without it, delete still drains and purges the OSD safely but leaves the device's LVM volumes as they are, and re-creating changes are refused.",
        ),
        drainTimeoutSeconds: {
            type: t.integer,
            default: 3600,
            doc: "Seconds delete waits for `ceph osd safe-to-destroy` after marking the OSD out. When it never becomes safe the delete fails and the OSD stays out but running, its data intact; it is never forced.",
            rule: { min: 10, max: 7 * 86400 },
        },
    },
    outputs: {
        osdId: { type: t.integer, required: true, stable: true, doc: "The OSD number (`osd.<osdId>`)." },
        osdFsid: { type: t.string(), required: true, stable: true, doc: "The OSD's own fsid (the ID)." },
        clusterFsid: { type: t.string(), required: true, stable: true, doc: "The cluster's fsid." },
        hostName: { type: t.string(), required: true, doc: "The host's short name as the OSD reports it." },
        lvPath: { type: t.string(), required: true, doc: "The logical volume ceph-volume made for the OSD's data (`/dev/ceph-.../osd-block-...`)." },
        devices: { type: t.array(t.string()), required: true, doc: "The physical devices under the OSD's logical volume." },
        up: { type: t.boolean, required: true, doc: "Is the OSD daemon up (as last read)?" },
        in: { type: t.boolean, required: true, doc: "Is the OSD in (does it hold data) as last read? An OSD marked out reads false." },
        reweight: { type: t.number, required: true, doc: "The OSD's reweight (1 when in, 0 when out) as last read." },
    },
};

function checkWeight(v: Validator, field: string, value: unknown): number | undefined {
    if (isUnknown(value)) return value as number;
    if (typeof value !== "number" || !Number.isFinite(value)) return v.fail(field, `must be a number like 1.819 (TiB by convention), got ${JSON.stringify(value)}`);
    if (value < 0) return v.fail(field, `must not be negative, got ${value}`);
    if (value > maxWeight) return v.fail(field, `must be at most ${maxWeight} (CRUSH holds 16 integer bits), got ${value}`);
    return value;
}

function checkLocation(v: Validator, field: string, value: unknown): Record<string, string> | undefined {
    const before = v.failures.length;
    const loc = v.stringMap(
        field,
        value,
        { pattern: bucketTypePattern, patternHint: "is not a CRUSH bucket type like root, rack, host" },
        { pattern: bucketNamePattern, patternHint: "is not a CRUSH bucket name (letters, digits, _ . -)" },
    );
    if (v.failures.length > before || !loc || isUnknown(loc)) return loc;
    if (Object.keys(loc).length === 0) return v.fail(field, "is empty; omit it to keep the location Ceph gives the OSD");
    // stringMap allows empty values; an empty bucket name would reach `ceph osd crush` as `root=`.
    for (const [k, name] of Object.entries(loc)) if (name === "") v.fail(`${field}.${k}`, "is empty: name the bucket");
    if (v.failures.length > before) return undefined;
    if (!("root" in loc)) return v.fail(field, 'must name the root bucket (e.g. root: "default"); a new bucket without one would hang outside the CRUSH tree and get no data');
    return loc;
}

/** Two CRUSH weights equal to CRUSH's precision (16.16 fixed point). */
export function sameWeight(a: number, b: number): boolean {
    return Math.abs(a - b) <= weightResolution;
}

/** Does the live location carry every declared bucket? (Levels not declared are not managed.) */
export function locationMatches(declared: Record<string, string>, live: Record<string, string>): boolean {
    return Object.entries(declared).every(([k, v]) => live[k] === v);
}
