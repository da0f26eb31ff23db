// CephOsd: one Ceph OSD (bluestore) made by ceph-volume on one device of a box
// that already belongs to a cluster (ceph.conf, admin and bootstrap-osd keyrings).
//
// ID: the OSD's fsid (`osd fsid` in `ceph-volume lvm list`, `uuid` in `ceph osd
// dump`): unlike the OSD number it is never reused by another OSD.
//
// Data safety, as Rook and cephadm do it (ceph-ansible did not, ceph-ansible#5790):
// delete marks the OSD out, waits until `ceph osd safe-to-destroy` agrees (the
// cluster has copied its data elsewhere), and only then stops and purges it. An
// OSD that cannot drain within drainTimeoutSeconds is reported and left out but
// running with its data; it is never forced. The device itself is wiped
// (`ceph-volume lvm zap --destroy`) only with `allowDataLoss` (formerly `zapOnDelete`), and changes that
// re-create the OSD (another device, host or cluster) are refused without it.
//
// Interrupted creates: create notes on the box which OSD fsid it is about to make
// on which device (intentDir) and passes that fsid to ceph-volume. A re-run that
// finds the note finishes an OSD that booted, and clears away one that never did
// (`osd purge-new`, which Ceph refuses for an OSD that ever booted; the device was
// empty before the note), then creates again: never a second OSD, never a refusal
// of its own half-made one.
import { randomUUID } from "crypto";
import { RefusedError } from "../core/errors";
import { CheckOutcome, DiffOutcome, OperationContext, ResourceKind } from "../core/resource";
import { checkByTable, diffByTable, erase, KindSpec, t, valueAt } from "../core/fields";
import { applyDataLossAlias, dataLossFields, withCurrentOptIn } from "../core/dataLoss";
import { isUnknown, Validator } from "../core/validate";
import { connectionType, HostConnection, hostLocks, Plan, Remote, step } from "../host";
import type { OsFamily } from "../host";
import {
    CephVolumeLv, OsdCrushInfo, osdCrushInfo, OsdDump, OsdDumpEntry, parseCephVolumeList, parseOsdDump, parseOsdTree, parseSafeToDestroy, SafeToDestroy,
} from "../parsers/ceph";
import { ownTag } from "../parsers/lvm";
import { parseSections, requirePart } from "../parsers/sections";

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

/** How often delete asks safe-to-destroy (each ask is itself a `ceph` run of a few seconds on a slow box). */
export const drainPollMs = 5000;
/** Give up on a `ceph` command that cannot reach the monitors after this long (seconds). */
const connectTimeoutSeconds = 120;

export const spec: KindSpec<CephOsdInputs, CephOsdState> = {
    kind: "CephOsd",
    doc: "A Ceph OSD (bluestore) made by ceph-volume on one device of a box that already belongs to the cluster. An OSD already on the device is refused unless adopt is set. Delete takes the safe path: mark it out, wait until `ceph osd safe-to-destroy` agrees, stop, purge, and zap the device only when allowDataLoss is set. A create cut short is finished or cleared away on the next run, never made twice.",
    id: "the OSD's fsid (`osd fsid` in `ceph-volume lvm list`, `uuid` in `ceph osd dump`): unlike the OSD number it is never reused by another OSD.",
    example: `import { CephOsd } from "pulumi-baremetal";

new CephOsd("storage1-osd-c", {
    connection: { host: "198.51.100.12", privateKey: key, hostKey: "ssh-ed25519 AAAA..." },
    device: "/dev/disk/by-id/ata-DISK-C",
    deviceClass: "hdd",
});`,
    deleteBeforeReplace: true,
    inputs: {
        connection: {
            type: t.object(connectionType),
            required: true,
            replaceOn: ["host"],
            doc: "The box that holds the device. It must belong to the cluster already: `/etc/ceph/<cluster>.conf`, the admin keyring and the bootstrap-osd keyring (`/var/lib/ceph/bootstrap-osd/<cluster>.keyring`) present. A new host re-creates the OSD, which needs allowDataLoss.",
        },
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

export function check(olds: Record<string, unknown>, news: Record<string, unknown>): CheckOutcome<CephOsdInputs> {
    const v = new Validator();
    const inputs = checkByTable(v, erase(spec), news) as Partial<CephOsdInputs>;
    applyDataLossAlias(v, inputs, news, "zapOnDelete");
    // A change that re-creates the OSD replaces it with a new, empty one (and wipes the old device):
    // data-destroying, so opt-in only, like every resource here that holds data. Only fields whose
    // new value is valid, so a bad device is not also reported as a re-create.
    if (olds.device !== undefined && inputs.allowDataLoss === false) {
        for (const f of diffByTable(erase(spec), olds, inputs).replaces.filter((p) => valueAt(inputs, p) !== undefined)) {
            v.fail(
                f,
                `changing ${f} re-creates the OSD on ${String(olds.device)}: the old OSD is drained and purged and a new, empty one is made. ` +
                    "Set allowDataLoss: true to allow it (the old device is then wiped); nothing was changed",
            );
        }
    }
    if (!v.ok) return { failures: v.failures };
    return { inputs: inputs as CephOsdInputs, failures: [] };
}

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

/** Inputs that say what to keep in CRUSH: left out, they leave Ceph's own value (which the state holds) alone. */
const crushFields: readonly string[] = ["deviceClass", "crushWeight", "crushLocation"];

export function diff(_id: string, stored: CephOsdState, news: CephOsdInputs): DiffOutcome {
    const olds = withCurrentOptIn(stored, "zapOnDelete");
    const d = diffByTable(erase(spec), olds as unknown as Record<string, unknown>, news as unknown as Record<string, unknown>);
    // The state holds CRUSH's values as last read; only a declared value that CRUSH does not hold is a change.
    const changed = d.changed.filter((k) => !crushFields.includes(k));
    if (news.deviceClass !== undefined && news.deviceClass !== olds.deviceClass) changed.push("deviceClass");
    if (news.crushWeight !== undefined && (isUnknown(news.crushWeight) || !sameWeight(news.crushWeight, olds.crushWeight))) changed.push("crushWeight");
    if (news.crushLocation !== undefined && (isUnknown(news.crushLocation) || !locationMatches(news.crushLocation, olds.crushLocation ?? {}))) changed.push("crushLocation");
    // The new OSD wants the same device (or the same host's disks): the old one must go first.
    return { changes: changed.length > 0, replaces: d.replaces, stables: d.stables, deleteBeforeReplace: true };
}

// ---- commands (plans as data) ---------------------------------------------------

/** `ceph` with the cluster named and a bound on waiting for the monitors. */
export function cephArgv(cluster: string, ...args: string[]): string[] {
    return ["ceph", "--cluster", cluster, "--connect-timeout", String(connectTimeoutSeconds), ...args];
}

function osdName(id: number): string {
    return `osd.${id}`;
}

/** Where the box keeps what a cluster member needs. */
export function clusterFiles(cluster: string) {
    return {
        conf: `/etc/ceph/${cluster}.conf`,
        adminKeyring: `/etc/ceph/${cluster}.client.admin.keyring`,
        bootstrapOsdKeyring: `/var/lib/ceph/bootstrap-osd/${cluster}.keyring`,
    };
}

/**
 * Where create notes, on the box, the fsid of the OSD it is about to make and the
 * device it makes it on, until the OSD is complete and tagged as ours. An SSH cut
 * kills ceph-volume at its next write to the dead session (a BrokenPipeError),
 * and then its own rollback dies of the same error: the OSD is left half-made (an
 * id in the OSD map that never booted, an LV carrying ceph-volume's tags but no
 * bluestore). The note is how the next create knows that half-made OSD is its own
 * (see interruptedCreate), so that it can clear it away instead of refusing it.
 */
export const intentDir = "/var/lib/ceph/baremetal-creating";

/** One note of intentDir: the OSD fsid create chose and the device (kernel name) it was making it on. */
export interface CreateIntent {
    osdFsid: string;
    real: string;
}

/**
 * ceph-volume makes the LVM volume group and LV, runs mkfs, registers the OSD and
 * starts it, with the OSD fsid chosen here (noted first, see intentDir).
 */
export function planCreate(inputs: CephOsdInputs, intent: CreateIntent): Plan {
    return [
        step.run(["sh", "-c", 'mkdir -p "$1" && printf \'%s\\n\' "$3" >"$1/$2"', "baremetal-osd-intent", intentDir, intent.osdFsid, intent.real], {
            what: `note on the box that osd ${intent.osdFsid} is being made on ${intent.real}`,
        }),
        step.run(
            [
                "ceph-volume", "--cluster", inputs.cluster, "lvm", "create", "--bluestore", "--data", inputs.device, "--osd-fsid", intent.osdFsid,
                ...(inputs.deviceClass !== undefined ? ["--crush-device-class", inputs.deviceClass] : []),
            ],
            // LVM metadata changes: one at a time per box, like every other LVM user here. mkfs is slow on a small box.
            { lock: hostLocks.lvm, timeoutMs: 30 * 60_000, what: `create a bluestore OSD on ${inputs.device} (ceph-volume lvm create)` },
        ),
    ];
}

/** The OSD is complete and ours (tagged): the note of its create goes. */
export function planForgetIntent(osdFsid: string): Plan {
    return [step.run(["rm", "-f", `${intentDir}/${osdFsid}`], { what: `forget the note of osd ${osdFsid}'s create` })];
}

/** Waits until no ceph-volume of an interrupted create still runs here (it holds the host's LVM lock until it exits). */
export function planWaitInterrupted(): Plan {
    return [step.run(["true"], { lock: hostLocks.lvm, what: "wait for an interrupted ceph-volume on this box to exit (the LVM lock)", changes: false })];
}

/**
 * Clears away the half-made OSD an interrupted create left: its daemon and boot
 * activation, its id (`osd purge-new`, which Ceph refuses for an OSD that ever
 * booted, so an OSD that could hold data is never purged here), its tmpfs, and
 * what ceph-volume put on the device (the device was empty before: create checks
 * that before it notes its intent).
 */
export function planRollback(r: { cluster: string; device: string; osdFsid: string; osdId?: number; zap: boolean }, family: OsFamily): Plan {
    const plan: Plan[number][] = [];
    if (r.osdId !== undefined) {
        const svc = osdServices(family, r.cluster, r.osdId, r.osdFsid);
        plan.push(...stopAndDisable(svc, family));
        plan.push(step.run(cephArgv(r.cluster, "osd", "purge-new", osdName(r.osdId), "--yes-i-really-mean-it"), { what: `purge the never-booted ${osdName(r.osdId)} an interrupted create left` }));
        plan.push(unmountDataDir(r.cluster, r.osdId));
    }
    if (r.zap) plan.push(zapStep(r.cluster, r.device));
    plan.push(...planForgetIntent(r.osdFsid));
    return plan;
}

/** What an earlier, interrupted create of this device left, judged from the probe. */
export type Interrupted =
    | { kind: "none" }
    /** The OSD was made and has booted: only the tag (and the note) are missing; adopt activates it if it is down. */
    | { kind: "finish"; intent: CreateIntent }
    /** Half-made, never booted (or not made at all): clear it away and create again. */
    | { kind: "rollback"; intent: CreateIntent; osdId?: number; zap: boolean }
    /** The note is stale (the device holds another OSD now): drop the note, change nothing else. */
    | { kind: "stale"; intent: CreateIntent };

export function interruptedCreate(p: Pick<Probe, "real" | "lvs" | "lvReal" | "signature" | "dump" | "intents">, device: string): Interrupted {
    const intent = p.intents.find((i) => i.real === p.real);
    if (!intent) return { kind: "none" };
    const lv = osdOnDevice(p, device);
    if (lv && lv.osdFsid !== intent.osdFsid) return { kind: "stale", intent };
    const entry = p.dump.osds.find((o) => o.uuid === intent.osdFsid);
    // An OSD that ever booted was made completely (activation starts it only after mkfs); it may hold data.
    if (lv && entry && (entry.up || entry.upFrom > 0)) return { kind: "finish", intent };
    const carries = Object.keys(p.signature).some((k) => ["TYPE", "PTTYPE", "PART_ENTRY_TYPE"].includes(k)) || lv !== undefined;
    return { kind: "rollback", intent, ...(entry ? { osdId: entry.id } : {}), zap: carries };
}

/** Marks the LV as ours, so that a create re-run after a crash adopts it instead of refusing. */
export function planTag(lvPath: string): Plan {
    return [step.run(["lvchange", "--addtag", ownTag, lvPath], { lock: hostLocks.lvm, what: `tag ${lvPath} as made by pulumi-baremetal` })];
}

/** Brings the OSD's CRUSH entry to what is declared; undeclared fields are left alone. */
export function planCrush(cluster: string, id: number, live: OsdCrushInfo, want: Pick<CephOsdInputs, "deviceClass" | "crushWeight" | "crushLocation">): Plan {
    const name = osdName(id);
    const plan: Plan[number][] = [];
    const weight = want.crushWeight ?? live.crushWeight;
    if (want.crushLocation !== undefined && !locationMatches(want.crushLocation, live.location)) {
        const loc = Object.entries(want.crushLocation).map(([k, v]) => `${k}=${v}`);
        // The option keeps the location across restarts (osd_crush_update_on_start would move it back to its host).
        plan.push(step.run(cephArgv(cluster, "config", "set", name, "crush_location", loc.join(" ")), { what: `keep ${name}'s CRUSH location ${loc.join(" ")} across restarts` }));
        plan.push(step.run(cephArgv(cluster, "osd", "crush", "set", name, String(weight), ...loc), { what: `move ${name} to ${loc.join(" ")} (weight ${weight})` }));
    } else if (want.crushWeight !== undefined && !sameWeight(want.crushWeight, live.crushWeight)) {
        plan.push(step.run(cephArgv(cluster, "osd", "crush", "reweight", name, String(want.crushWeight)), { what: `set ${name}'s CRUSH weight to ${want.crushWeight} (was ${live.crushWeight})` }));
    }
    if (want.deviceClass !== undefined && want.deviceClass !== live.deviceClass) {
        // Ceph refuses to overwrite a class: remove the old one first.
        if (live.deviceClass !== "") plan.push(step.run(cephArgv(cluster, "osd", "crush", "rm-device-class", name), { what: `remove ${name}'s device class ${live.deviceClass}` }));
        plan.push(step.run(cephArgv(cluster, "osd", "crush", "set-device-class", want.deviceClass, name), { what: `set ${name}'s device class to ${want.deviceClass}` }));
    }
    return plan;
}

/** First step of a delete: no new data goes to the OSD, the cluster starts copying its data away. */
export function planOut(cluster: string, id: number): Plan {
    return [step.run(cephArgv(cluster, "osd", "out", osdName(id)), { what: `mark ${osdName(id)} out (its data moves to the other OSDs)` })];
}

/** The OSD's daemon and boot-time activation, by init system. */
export function osdServices(family: OsFamily, cluster: string, id: number, osdFsid: string): { daemon: string; activation?: string } {
    if (family === "alpine") return { daemon: `ceph-osd.${id}` };
    // Debian's units read CLUSTER from /etc/default/ceph; the instance is the OSD number.
    return { daemon: `ceph-osd@${id}`, activation: `ceph-volume@lvm-${id}-${osdFsid}` };
}

function stopAndDisable(svc: { daemon: string; activation?: string }, family: OsFamily): Plan[number][] {
    return [
        family === "alpine"
            ? step.run(["rc-service", svc.daemon, "stop"], { okExitCodes: [0, 1], what: `stop ${svc.daemon}` })
            : step.run(["systemctl", "stop", svc.daemon], { okExitCodes: [0, 5], what: `stop ${svc.daemon}` }),
        family === "alpine"
            ? step.run(["rc-update", "del", svc.daemon], { okExitCodes: [0, 1], what: `do not start ${svc.daemon} at boot` })
            : step.run(["systemctl", "disable", "--quiet", svc.daemon, ...(svc.activation ? [svc.activation] : [])], { okExitCodes: [0, 1], what: `do not start ${svc.daemon} at boot` }),
    ];
}

function unmountDataDir(cluster: string, id: number): Plan[number] {
    const dataDir = `/var/lib/ceph/osd/${cluster}-${id}`;
    // ceph-volume's activation mounts a tmpfs with the OSD's keyring here.
    return step.run(["sh", "-c", 'if mountpoint -q "$1"; then umount "$1"; fi; rmdir "$1" 2>/dev/null; exit 0', "baremetal-osd-dir", dataDir], { what: `unmount ${dataDir}` });
}

function zapStep(cluster: string, device: string): Plan[number] {
    return step.run(["ceph-volume", "--cluster", cluster, "lvm", "zap", "--destroy", device], { lock: hostLocks.lvm, timeoutMs: 15 * 60_000, what: `wipe ${device} (ceph-volume lvm zap --destroy)` });
}

/** After safe-to-destroy said yes: stop, purge, tidy; wipe the device only when opted in. */
export function planRemove(state: Pick<CephOsdState, "cluster" | "osdId" | "osdFsid" | "device" | "allowDataLoss">, family: OsFamily): Plan {
    const { cluster, osdId: id } = state;
    const svc = osdServices(family, cluster, id, state.osdFsid);
    return [
        ...stopAndDisable(svc, family),
        step.run(cephArgv(cluster, "osd", "purge", String(id), "--yes-i-really-mean-it"), { what: `purge ${osdName(id)} from the cluster (CRUSH, auth key, OSD map)` }),
        unmountDataDir(cluster, id),
        ...(state.allowDataLoss ? [zapStep(cluster, state.device)] : []),
        step.persist(),
    ];
}

// ---- reading the box and the cluster ----------------------------------------------

/**
 * Everything create needs before it acts, in one SSH command: are the cluster's
 * files there, what is the device really, which OSD LVs exist (and the devices
 * their paths resolve to), what signature the device carries, the OSD map.
 */
export const probeScript = [
    'c=$1 dev=$2 conf=$3 key=$4',
    '[ -f "$conf" ] || { echo "no $conf" >&2; exit 10; }',
    '[ -f "$key" ] || { echo "no $key" >&2; exit 11; }',
    'command -v ceph-volume >/dev/null 2>&1 || { echo "ceph-volume is not installed" >&2; exit 12; }',
    'case "$dev" in /*) path=$dev ;; *) path=/dev/$dev ;; esac',
    'real=$(readlink -e -- "$path") || { echo "$path does not exist" >&2; exit 13; }',
    '[ -b "$real" ] || { echo "$path ($real) is not a block device" >&2; exit 14; }',
    'echo "real=$real"',
    't=$(mktemp); trap \'rm -f "$t"\' EXIT',
    'ceph-volume --cluster "$c" lvm list --format json >"$t" || exit 15',
    'echo ==list==; cat "$t"',
    'echo ==lvreal==',
    'sed -n \'s/^ *"lv_path": "\\(.*\\)",*$/\\1/p\' "$t" | sort -u | while read -r p; do echo "$p $(readlink -f -- "$p")"; done',
    'echo ==blkid==',
    'blkid -p -o export -- "$real" 2>/dev/null',
    'echo ==use==',
    'grep -E "^$real[0-9p]*[[:space:]]" /proc/mounts',
    'h=$(ls "/sys/class/block/${real##*/}/holders" 2>/dev/null | tr "\\n" " "); [ -z "$h" ] || echo "held by $h"',
    'echo ==dump==',
    `ceph --cluster "$c" --connect-timeout ${connectTimeoutSeconds} osd dump -f json || exit 16`,
    'echo ==intents==',
    `for f in ${intentDir}/*; do [ -f "$f" ] && echo "\${f##*/} $(cat "$f")"; done`,
    'exit 0',
].join("\n");

export interface Probe {
    /** The kernel device the declared path resolves to. */
    real: string;
    lvs: CephVolumeLv[];
    /** LV path to the device it resolves to. */
    lvReal: Map<string, string>;
    /** blkid's signature of the device (TYPE, PTTYPE ...); empty when it carries none. */
    signature: Record<string, string>;
    /** Mounts and holders of the device, one per line; empty when unused. */
    inUse: string;
    dump: OsdDump;
    /** Notes of creates not finished (see intentDir). */
    intents: CreateIntent[];
}

/** Parses the probe script's output (exported for tests on captured output). */
export function parseProbe(text: string): Probe {
    const sections = parseSections(text, ["list", "lvreal", "blkid", "use", "dump", "intents"] as const);
    const section = (name: "list" | "lvreal" | "blkid" | "use" | "dump"): string => requirePart(sections, name, "probe");
    const real = /^real=(.*)$/m.exec(sections.preamble)?.[1] ?? "";
    const lvReal = new Map<string, string>();
    for (const line of section("lvreal").split("\n")) {
        const [p, r] = line.trim().split(" ");
        if (p && r) lvReal.set(p, r);
    }
    const signature: Record<string, string> = {};
    for (const line of section("blkid").split("\n")) {
        const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
        if (m && m[1] !== "DEVNAME") signature[m[1]] = m[2];
    }
    // (Probes captured before intents existed end with the dump.)
    const intents: CreateIntent[] = [];
    for (const line of (sections.parts.intents ?? "").split("\n")) {
        const m = /^([0-9a-f-]{36}) (\/\S+)$/.exec(line.trim());
        if (m) intents.push({ osdFsid: m[1], real: m[2] });
    }
    return { real, lvs: parseCephVolumeList(section("list")), lvReal, signature, inUse: section("use").trim(), dump: parseOsdDump(section("dump")), intents };
}

/** The block LV of the OSD that lives on the declared device, if any. */
export function osdOnDevice(probe: Pick<Probe, "real" | "lvs" | "lvReal">, device: string): CephVolumeLv | undefined {
    return probe.lvs.find(
        (lv) =>
            lv.type === "block" &&
            (lv.devices.includes(probe.real) || lv.lvPath === device || `${lv.vgName}/${lv.lvName}` === device || probe.lvReal.get(lv.lvPath) === probe.real),
    );
}

/**
 * The OSD map and the CRUSH tree from ONE `ceph` process: the CLI reads commands
 * from stdin when given none. Each `ceph` run costs a Python start and a fetch of
 * the monitors' command table (5-15 s on a small TCG box, measured), so two
 * commands in one run nearly halve a read.
 */
export function readArgv(cluster: string): string[] {
    return cephArgv(cluster, "-f", "json");
}
export const readCommands = "osd dump\nosd tree\n";

export interface LiveOsd {
    dump: OsdDump;
    entry?: OsdDumpEntry;
    crush?: OsdCrushInfo;
}

/**
 * Parses what `ceph -f json` printed for readCommands (one JSON document per line,
 * in order; told apart by their keys so that a missing one is an error, not a
 * mix-up), and finds the OSD with this fsid in them.
 */
export function parseRead(text: string, osdFsid: string): LiveOsd {
    const docs = text.split("\n").filter((l) => l.trim().startsWith("{"));
    const dumpText = docs.find((d) => d.includes('"osds"'));
    const treeText = docs.find((d) => d.includes('"nodes"'));
    if (!dumpText || !treeText) throw new Error(`ceph printed no ${dumpText ? "osd tree" : "osd dump"} (expected one JSON document per command):\n${text.slice(0, 400)}`);
    const dump = parseOsdDump(dumpText);
    const entry = dump.osds.find((o) => o.uuid === osdFsid);
    const out: LiveOsd = { dump };
    if (entry) {
        out.entry = entry;
        const crush = osdCrushInfo(parseOsdTree(treeText), entry.id);
        if (crush) out.crush = crush;
    }
    return out;
}

/**
 * Reads in flight, by box and cluster. A refresh reads every OSD of a box at once;
 * they all need the same cluster-wide maps, so they share one `ceph` run. Only a
 * read already under way is shared (never a finished one): nothing is cached.
 */
const inFlight = new Map<string, Promise<string>>();

async function clusterMaps(host: Remote, cluster: string, shared: boolean): Promise<string> {
    const key = `${host.target}|${cluster}`;
    const running = shared ? inFlight.get(key) : undefined;
    if (running) return running;
    const p = host.run(readArgv(cluster), { stdin: readCommands, what: `read the OSD map and CRUSH tree of cluster ${cluster}`, timeoutMs: 5 * 60_000 }).then((o) => o.stdout);
    if (shared) {
        inFlight.set(key, p);
        const forget = () => inFlight.get(key) === p && inFlight.delete(key);
        p.then(forget, forget);
    }
    return p;
}

/** The live OSD; `shared` only for a plain read (after a change, a read must start after it). */
async function readLive(host: Remote, cluster: string, osdFsid: string, shared = false): Promise<LiveOsd> {
    return parseRead(await clusterMaps(host, cluster, shared), osdFsid);
}

async function probe(host: Remote, inputs: CephOsdInputs): Promise<Probe> {
    const f = clusterFiles(inputs.cluster);
    const out = await host.exec(["sh", "-c", probeScript, "baremetal-ceph-probe", inputs.cluster, inputs.device, f.conf, f.bootstrapOsdKeyring], {
        what: `look at ${inputs.device} and cluster ${inputs.cluster}`,
        timeoutMs: 5 * 60_000,
    });
    const why = out.stderr.trim().split("\n").slice(-3).join("; ");
    switch (out.exitCode) {
        case 0:
            return parseProbe(out.stdout);
        case 10:
        case 11:
            throw new RefusedError(
                `${host.target} does not belong to Ceph cluster ${inputs.cluster}: ${why}`,
                `Make the box a cluster member first: copy ${f.conf}, ${f.adminKeyring} and ${f.bootstrapOsdKeyring} (ceph auth get client.bootstrap-osd) from a monitor`,
            );
        case 12:
            throw new RefusedError(`ceph-volume is not installed on ${host.target}`, "Install the ceph-osd package (it ships ceph-volume) on that box");
        case 13:
        case 14:
            throw new RefusedError(`device ${inputs.device} on ${host.target}: ${why}`, "Check the device field against `lsblk` on that box");
        default:
            throw new Error(`looking at ${inputs.device} and cluster ${inputs.cluster} on ${host.target} failed (exit ${out.exitCode}): ${why || out.stdout.trim().slice(-400)}\n  next: check that the monitors answer (\`ceph -s\` on that box)`);
    }
}

// ---- operations -------------------------------------------------------------------

function hostFor(conn: HostConnection, ctx: OperationContext): Remote {
    return ctx.remote(conn);
}

function stateFrom(inputs: CephOsdInputs, lv: Pick<CephVolumeLv, "lvPath" | "devices">, live: LiveOsd): CephOsdState {
    const entry = live.entry as OsdDumpEntry;
    const crush = live.crush;
    const weight = crush?.crushWeight ?? 0;
    const location = crush?.location ?? {};
    return {
        connection: inputs.connection,
        device: inputs.device,
        cluster: inputs.cluster,
        adopt: inputs.adopt,
        allowDataLoss: inputs.allowDataLoss,
        drainTimeoutSeconds: inputs.drainTimeoutSeconds,
        osdId: entry.id,
        osdFsid: entry.uuid,
        clusterFsid: live.dump.fsid,
        deviceClass: crush?.deviceClass ?? "",
        // The declared weight when CRUSH holds the same (it stores 16.16 fixed point): no diff on every refresh.
        crushWeight: inputs.crushWeight !== undefined && sameWeight(inputs.crushWeight, weight) ? inputs.crushWeight : weight,
        crushLocation: location,
        hostName: location.host ?? "",
        lvPath: lv.lvPath,
        devices: lv.devices,
        up: entry.up,
        in: entry.in,
        reweight: entry.weight,
    };
}

async function create(inputs: CephOsdInputs, ctx: OperationContext): Promise<{ id: string; outs: CephOsdState }> {
    const host = hostFor(inputs.connection, ctx);
    let before = await probe(host, inputs);
    if (before.intents.some((i) => i.real === before.real)) before = await recoverInterrupted(host, inputs, ctx);
    let lv = osdOnDevice(before, inputs.device);
    if (lv) {
        await adoptExisting(host, inputs, lv, before, ctx);
    } else {
        assertDeviceFree(host, inputs.device, before);
        ctx.log.info(`creating a bluestore OSD on ${inputs.device} (${before.real}) in cluster ${inputs.cluster} (${before.dump.fsid}); this takes a minute or more`);
        const t0 = Date.now();
        const osdFsid = randomUUID();
        await host.apply(planCreate(inputs, { osdFsid, real: before.real }));
        lv = osdOnDevice(await probe(host, inputs), inputs.device);
        if (!lv) throw new Error(`ceph-volume reported success but no OSD is found on ${inputs.device} on ${host.target}; see \`ceph-volume lvm list\` there`);
        ctx.log.info(`created osd.${lv.osdId} on ${inputs.device} in ${seconds(Date.now() - t0)}`);
        await host.apply([...planTag(lv.lvPath), ...planForgetIntent(osdFsid)]);
    }
    const live = await settleCrush(host, inputs, lv.osdFsid, ctx);
    ctx.log.info(`osd.${live.entry?.id} (${lv.osdFsid}) on ${inputs.device}: ${live.entry?.up ? "up" : "down"}, ${live.entry?.in ? "in" : "out"}`);
    return { id: lv.osdFsid, outs: stateFrom(inputs, lv, live) };
}

/**
 * An earlier create of this device was interrupted (its note is there): waits for
 * its ceph-volume to exit, looks again, and clears a half-made OSD away (or only
 * the note, when the OSD was finished). Returns a fresh probe.
 */
async function recoverInterrupted(host: Remote, inputs: CephOsdInputs, ctx: OperationContext): Promise<Probe> {
    await host.apply(planWaitInterrupted());
    const p = await probe(host, inputs);
    const r = interruptedCreate(p, inputs.device);
    const where = `${inputs.device} on ${host.target}`;
    switch (r.kind) {
        case "none":
        case "finish":
            // finish: adoptExisting (through the note) tags it and drops the note.
            return p;
        case "stale":
            ctx.log.info(`${where}: dropping the note of an old create of osd ${r.intent.osdFsid} (the device holds another OSD now)`);
            await host.apply(planForgetIntent(r.intent.osdFsid));
            return probe(host, inputs);
        case "rollback": {
            ctx.log.warn(
                `${where}: an earlier create was interrupted and left osd ${r.intent.osdFsid}${r.osdId !== undefined ? ` (osd.${r.osdId}, never booted)` : ""} half-made; clearing it away and creating again`,
            );
            const family = (await host.facts()).family;
            await host.apply(planRollback({ cluster: inputs.cluster, device: inputs.device, osdFsid: r.intent.osdFsid, osdId: r.osdId, zap: r.zap }, family));
            return probe(host, inputs);
        }
    }
}

/** Applies the declared CRUSH settings that differ from the live ones; returns the live state after. */
async function settleCrush(host: Remote, inputs: CephOsdInputs, osdFsid: string, ctx: OperationContext): Promise<LiveOsd> {
    let live = await readLive(host, inputs.cluster, osdFsid);
    if (!live.entry) throw new Error(`OSD ${osdFsid} on ${inputs.device} is not in the OSD map of cluster ${inputs.cluster} on ${host.target}; run \`pulumi refresh\``);
    if (!live.crush) {
        // A new OSD enters CRUSH when its daemon first boots; until then there is nothing to compare with.
        live = await waitInCrush(host, inputs, osdFsid, ctx);
    }
    const plan = planCrush(inputs.cluster, live.entry?.id as number, live.crush as OsdCrushInfo, inputs);
    if (plan.length === 0) return live;
    await host.apply(plan);
    return readLive(host, inputs.cluster, osdFsid);
}

async function waitInCrush(host: Remote, inputs: CephOsdInputs, osdFsid: string, ctx: OperationContext): Promise<LiveOsd> {
    const deadline = Date.now() + 10 * 60_000;
    for (;;) {
        const live = await readLive(host, inputs.cluster, osdFsid);
        if (live.crush) return live;
        if (Date.now() > deadline) {
            throw new Error(`osd.${live.entry?.id} on ${host.target} has not entered the CRUSH map after 10 minutes: its daemon probably did not start; see \`journalctl -u ceph-osd@${live.entry?.id}\` there`);
        }
        ctx.log.progress(`waiting for osd.${live.entry?.id} to boot and enter the CRUSH map`);
        await sleep(drainPollMs);
    }
}

/** Takes over an OSD found on the device: ours from an interrupted run, or anyone's with adopt. */
async function adoptExisting(host: Remote, inputs: CephOsdInputs, lv: CephVolumeLv, before: Probe, ctx: OperationContext): Promise<void> {
    const where = `${inputs.device} on ${host.target}`;
    if (lv.clusterFsid !== before.dump.fsid) {
        throw new RefusedError(
            `${where} carries osd.${lv.osdId} of another cluster (fsid ${lv.clusterFsid}; this cluster is ${before.dump.fsid})`,
            `If that data is not needed, wipe the device by hand (ceph-volume lvm zap --destroy ${inputs.device}), or choose another device`,
        );
    }
    const entry = before.dump.osds.find((o) => o.uuid === lv.osdFsid);
    if (!entry) {
        throw new RefusedError(
            `${where} carries the remains of osd.${lv.osdId} (fsid ${lv.osdFsid}), which is no longer in cluster ${inputs.cluster} (purged)`,
            `If that data is not needed, wipe the device by hand (ceph-volume lvm zap --destroy ${inputs.device}) and run \`pulumi up\` again`,
        );
    }
    // Ours: tagged, or the note of our own create of it is still there (cut before the tag step).
    const noted = before.intents.find((i) => i.osdFsid === lv.osdFsid);
    const ours = lv.tags.includes(ownTag) || noted !== undefined;
    if (!ours && !inputs.adopt) {
        throw new RefusedError(
            `${where} already holds osd.${entry.id} (fsid ${lv.osdFsid}, ${entry.up ? "up" : "down"}, ${entry.in ? "in" : "out"}), not created by pulumi-baremetal`,
            "Set adopt: true to manage that OSD (it is kept as it is, with its data), or choose another device",
        );
    }
    ctx.log.info(`${where} already holds osd.${entry.id} (${lv.osdFsid}): adopting it, not re-creating it`);
    if (!entry.up) {
        // Prepared but never activated (an interrupted create), or stopped: activate it (starts the daemon).
        await host.apply([
            step.run(["ceph-volume", "--cluster", inputs.cluster, "lvm", "activate", String(entry.id), lv.osdFsid], { lock: hostLocks.lvm, timeoutMs: 15 * 60_000, what: `activate osd.${entry.id}` }),
        ]);
    }
    if (!lv.tags.includes(ownTag)) await host.apply(planTag(lv.lvPath));
    if (noted) await host.apply(planForgetIntent(noted.osdFsid));
}

function assertDeviceFree(host: Remote, device: string, p: Probe): void {
    const sig = Object.entries(p.signature).filter(([k]) => ["TYPE", "PTTYPE", "PART_ENTRY_TYPE"].includes(k));
    if (sig.length > 0 || p.inUse !== "") {
        const what = [...sig.map(([k, v]) => `${k}=${v}`), ...(p.inUse ? [p.inUse] : [])].join(", ");
        throw new RefusedError(
            `${device} (${p.real}) on ${host.target} is not empty: ${what}`,
            "An OSD needs a device with no partition table, file system or LVM on it. If its data is not needed, wipe it by hand (wipefs -a, or ceph-volume lvm zap), or choose another device",
        );
    }
}

async function read(_id: string, stored: CephOsdState, ctx: OperationContext): Promise<CephOsdState | undefined> {
    // The state read becomes the new one: an old stack's opt-in moves to its current name here.
    const props = withCurrentOptIn(stored, "zapOnDelete");
    const host = hostFor(props.connection, ctx);
    const live = await readLive(host, props.cluster, props.osdFsid, true);
    if (!live.entry) return undefined;
    // The last value stands for the declared weight: it is kept when CRUSH still holds the same.
    return stateFrom({ ...props, deviceClass: props.deviceClass, crushLocation: props.crushLocation }, props, live);
}

async function update(_id: string, olds: CephOsdState, news: CephOsdInputs, ctx: OperationContext): Promise<CephOsdState> {
    const host = hostFor(news.connection, ctx);
    const live = await settleCrush(host, news, olds.osdFsid, ctx);
    return stateFrom(news, olds, live);
}

/** One answer of safe-to-destroy, with the text Ceph gave for it. */
export interface DrainAnswer extends SafeToDestroy {
    message: string;
}

export interface DrainDeps {
    ask(): Promise<DrainAnswer>;
    now(): number;
    sleep(ms: number): Promise<void>;
    progress(message: string): void;
}

export type DrainOutcome = { safe: true; waitedMs: number; asks: number } | { safe: false; waitedMs: number; asks: number; last: DrainAnswer };

/**
 * Asks safe-to-destroy until it says yes or the time is up. Pure sequencing:
 * the unit tier drives it with a fake answer sequence, the lab with the real ceph.
 */
export async function waitSafeToDestroy(id: number, timeoutMs: number, deps: DrainDeps, pollMs = drainPollMs): Promise<DrainOutcome> {
    const start = deps.now();
    for (let asks = 1; ; asks++) {
        const a = await deps.ask();
        const waitedMs = deps.now() - start;
        if (a.safe.includes(id)) return { safe: true, waitedMs, asks };
        if (waitedMs >= timeoutMs) return { safe: false, waitedMs, asks, last: a };
        deps.progress(`osd.${id}: not yet safe to destroy after ${Math.round(waitedMs / 1000)}s: ${describeDrain(id, a)}`);
        await deps.sleep(pollMs);
    }
}

export function describeDrain(id: number, a: DrainAnswer): string {
    const why: string[] = [];
    if (a.storedPgs.includes(id)) why.push("it still stores PGs");
    if (a.active.includes(id)) why.push("PGs are still mapped to it");
    if (a.missingStats.includes(id)) why.push("the manager has no PG stats for it yet");
    const msg = a.message.trim();
    return [why.join(", ") || "not safe", msg ? `(ceph: ${msg})` : ""].filter((s) => s !== "").join(" ");
}

async function askSafeToDestroy(host: Remote, cluster: string, id: number): Promise<DrainAnswer> {
    // Exit 16 (EBUSY) means "not safe yet"; the JSON still says why.
    const out = await host.run(cephArgv(cluster, "osd", "safe-to-destroy", osdName(id), "-f", "json"), { okExitCodes: [0, 16], what: `ask whether osd.${id} is safe to destroy`, timeoutMs: 5 * 60_000 });
    const text = out.stdout.trim();
    const answer = text.startsWith("{") ? parseSafeToDestroy(text) : { safe: [], active: [], missingStats: [], storedPgs: [] };
    return { ...answer, message: out.stderr.trim().split("\n").filter((l) => !/^\d{4}-\d\d-\d\dT/.test(l)).join(" ") };
}

async function remove(_id: string, stored: CephOsdState, ctx: OperationContext): Promise<void> {
    const props = withCurrentOptIn(stored, "zapOnDelete");
    const host = hostFor(props.connection, ctx);
    const family = (await host.facts()).family;
    const live = await readLive(host, props.cluster, props.osdFsid);
    const entry = live.entry;
    if (!entry) {
        ctx.log.info(`OSD ${props.osdFsid} (osd.${props.osdId}) is no longer in cluster ${props.cluster}: nothing to purge`);
        if (props.allowDataLoss) await zapIfStillOurs(host, props, ctx);
        return;
    }
    const id = entry.id;
    const where = `osd.${id} (${props.device} on ${host.target})`;
    if (entry.in) await host.apply(planOut(props.cluster, id));
    ctx.log.info(`${where} is out; waiting until \`ceph osd safe-to-destroy\` agrees (at most ${props.drainTimeoutSeconds}s)`);
    const outcome = await waitSafeToDestroy(id, props.drainTimeoutSeconds * 1000, {
        ask: () => askSafeToDestroy(host, props.cluster, id),
        now: () => Date.now(),
        sleep,
        progress: (m) => ctx.log.progress(m),
    });
    if (!outcome.safe) {
        throw new Error(
            `${where} is still not safe to destroy after ${Math.round(outcome.waitedMs / 1000)}s: ${describeDrain(id, outcome.last)}. ` +
                "It was NOT destroyed: it is marked out and still running, with its data.\n" +
                `  next: see why with \`ceph -s\` and \`ceph pg ls-by-osd ${id}\` (a full cluster, too few OSDs for a pool's size, or recovery paused by noout/nobackfill/norecover flags); ` +
                `when recovery is done run the delete again (or raise drainTimeoutSeconds). To keep the OSD instead: \`ceph osd in ${id}\``,
        );
    }
    ctx.log.info(`${where} is safe to destroy (after ${Math.round(outcome.waitedMs / 1000)}s, ${outcome.asks} asks): stopping and purging it${props.allowDataLoss ? ", then wiping the device" : "; the device keeps its LVM volumes (allowDataLoss is not set)"}`);
    const t0 = Date.now();
    await host.apply(planRemove({ ...props, osdId: id }, family));
    ctx.log.info(`removed osd.${id}: drained in ${seconds(outcome.waitedMs)}, stopped and purged${props.allowDataLoss ? " and wiped" : ""} in ${seconds(Date.now() - t0)}`);
}

/** With allowDataLoss, an OSD purged by hand still gets its device wiped, but only if the LV is still this OSD's. */
async function zapIfStillOurs(host: Remote, props: CephOsdState, ctx: OperationContext): Promise<void> {
    const p = await probe(host, props as unknown as CephOsdInputs);
    const lv = osdOnDevice(p, props.device);
    if (!lv || lv.osdFsid !== props.osdFsid) {
        ctx.log.info(`${props.device} no longer holds OSD ${props.osdFsid}: not wiping it`);
        return;
    }
    const family = (await host.facts()).family;
    await host.apply(planRemove(props, family).filter((s) => s.kind === "run" && s.argv[0] === "ceph-volume"));
}

function seconds(ms: number): string {
    return `${(ms / 1000).toFixed(1)} s`;
}

function sleep(ms: number): Promise<void> {
    return new Promise((r) => setTimeout(r, ms));
}

export const cephOsd: ResourceKind<CephOsdInputs, CephOsdState> = { spec, check, diff, create, read, update, delete: remove };
