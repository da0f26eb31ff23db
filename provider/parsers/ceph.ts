// Parsers of Ceph's JSON output: `ceph osd tree -f json`, `ceph osd dump -f json`,
// `ceph osd safe-to-destroy <id> -f json`, `ceph health -f json`,
// `ceph-volume lvm list --format json`, and ceph-volume's LVs as `lvs` reports them.
// Fixtures in test/unit/fixtures/ceph/ are captured from real runs in the lab
// (Debian's ceph 16.2, Pacific).
import type { LvWithDevices } from "./lvm";

/** One OSD as `ceph osd dump` lists it. */
export interface OsdDumpEntry {
    id: number;
    /** The OSD's own fsid (`ceph-volume`'s `osd fsid`). */
    uuid: string;
    up: boolean;
    in: boolean;
    /** The reweight (0 when out, 1 when fully in). */
    weight: number;
    /** The epoch it last came up in; 0 for an OSD that never booted (`osd new` only). */
    upFrom: number;
}

export interface OsdDump {
    /** The cluster's fsid. */
    fsid: string;
    epoch: number;
    /** Cluster flags set (`noout`, `nobackfill` ...). */
    flags: string[];
    osds: OsdDumpEntry[];
    pools: { id: number; name: string; size: number; minSize: number }[];
}

/** One node of `ceph osd tree`: a bucket (root, host ...) or an OSD (id >= 0). */
export interface CrushNode {
    id: number;
    name: string;
    /** `osd`, `host`, `rack`, `root` ... */
    type: string;
    children: number[];
    deviceClass?: string;
    crushWeight?: number;
    /** OSDs only: `up`, `down` or `destroyed`. */
    status?: string;
    reweight?: number;
}

export interface OsdTree {
    nodes: CrushNode[];
    /** OSDs that exist but are in no CRUSH bucket. */
    stray: CrushNode[];
}

/** What the CRUSH map says of one OSD. */
export interface OsdCrushInfo {
    id: number;
    deviceClass: string;
    crushWeight: number;
    /** Bucket type to bucket name, from the OSD's parent up to the root; empty for a stray OSD. */
    location: Record<string, string>;
    up: boolean;
    reweight: number;
}

/** The answer of `ceph osd safe-to-destroy`. */
export interface SafeToDestroy {
    safe: number[];
    /** OSDs that still hold or serve PGs. */
    active: number[];
    /** OSDs whose PG stats the manager has not seen yet. */
    missingStats: number[];
    /** OSDs that store PGs (data not yet copied elsewhere). */
    storedPgs: number[];
}

/** One logical volume of `ceph-volume lvm list`. */
export interface CephVolumeLv {
    osdId: number;
    osdFsid: string;
    clusterFsid: string;
    clusterName: string;
    /** `block`, `db` or `wal`. */
    type: string;
    lvPath: string;
    lvName: string;
    vgName: string;
    /** The physical devices under the LV. */
    devices: string[];
    /** The device class ceph-volume was asked for ("" when none). */
    crushDeviceClass: string;
    encrypted: boolean;
    tags: string[];
}

export interface CephHealth {
    status: string;
    /** Check code to its summary, e.g. `PG_DEGRADED: Degraded data redundancy: ...`. */
    checks: Record<string, string>;
}

function parse(text: string, what: string): unknown {
    const trimmed = text.trim();
    if (trimmed === "") throw new Error(`${what} printed nothing (expected JSON)`);
    try {
        return JSON.parse(trimmed);
    } catch {
        throw new Error(`${what} printed something that is not JSON:\n${trimmed.slice(0, 400)}`);
    }
}

function obj(v: unknown, what: string): Record<string, unknown> {
    if (!v || typeof v !== "object" || Array.isArray(v)) throw new Error(`${what}: expected a JSON object`);
    return v as Record<string, unknown>;
}

function list(v: unknown): unknown[] {
    return Array.isArray(v) ? v : [];
}

function num(v: unknown, what: string): number {
    const n = typeof v === "string" ? Number(v) : v;
    if (typeof n !== "number" || !Number.isFinite(n)) throw new Error(`${what}: ${JSON.stringify(v)} is not a number`);
    return n;
}

function str(v: unknown): string {
    return typeof v === "string" ? v : v === undefined || v === null ? "" : String(v);
}

function ids(v: unknown): number[] {
    return list(v).map((x) => num(x, "OSD id"));
}

export function parseOsdDump(text: string): OsdDump {
    const d = obj(parse(text, "ceph osd dump"), "ceph osd dump");
    return {
        fsid: str(d.fsid),
        epoch: num(d.epoch ?? 0, "osd dump epoch"),
        flags: list(d.flags_set).map(str),
        osds: list(d.osds).map((o) => {
            const e = obj(o, "ceph osd dump osds[]");
            return { id: num(e.osd, "osd"), uuid: str(e.uuid), up: e.up === 1 || e.up === true, in: e.in === 1 || e.in === true, weight: num(e.weight ?? 0, "weight"), upFrom: num(e.up_from ?? 0, "up_from") };
        }),
        pools: list(d.pools).map((p) => {
            const e = obj(p, "ceph osd dump pools[]");
            return { id: num(e.pool, "pool"), name: str(e.pool_name), size: num(e.size, "size"), minSize: num(e.min_size, "min_size") };
        }),
    };
}

function node(v: unknown): CrushNode {
    const e = obj(v, "ceph osd tree node");
    const n: CrushNode = { id: num(e.id, "id"), name: str(e.name), type: str(e.type), children: ids(e.children) };
    if (typeof e.device_class === "string") n.deviceClass = e.device_class;
    if (e.crush_weight !== undefined) n.crushWeight = num(e.crush_weight, "crush_weight");
    if (typeof e.status === "string") n.status = e.status;
    if (e.reweight !== undefined) n.reweight = num(e.reweight, "reweight");
    return n;
}

export function parseOsdTree(text: string): OsdTree {
    const d = obj(parse(text, "ceph osd tree"), "ceph osd tree");
    return { nodes: list(d.nodes).map(node), stray: list(d.stray).map(node) };
}

/** One OSD's CRUSH facts, or undefined when the tree does not list it. */
export function osdCrushInfo(tree: OsdTree, id: number): OsdCrushInfo | undefined {
    const osd = [...tree.nodes, ...tree.stray].find((n) => n.id === id && n.type === "osd");
    if (!osd) return undefined;
    const parentOf = new Map<number, CrushNode>();
    for (const n of tree.nodes) for (const c of n.children) parentOf.set(c, n);
    const location: Record<string, string> = {};
    // Walk up to the root; a bucket seen twice would be a broken map, so stop there.
    for (let p = parentOf.get(osd.id), seen = 0; p && seen < 64; p = parentOf.get(p.id), seen++) location[p.type] = p.name;
    return {
        id,
        deviceClass: osd.deviceClass ?? "",
        // `ceph osd tree` prints weights as floats (0.005889892578125): keep 5 decimals like its plain output.
        crushWeight: roundWeight(osd.crushWeight ?? 0),
        location,
        up: osd.status === "up",
        reweight: osd.reweight ?? 0,
    };
}

/** CRUSH weights are 16.16 fixed point; 5 decimals are what Ceph prints and what a person writes. */
export function roundWeight(w: number): number {
    return Math.round(w * 100000) / 100000;
}

export function parseSafeToDestroy(text: string): SafeToDestroy {
    const d = obj(parse(text, "ceph osd safe-to-destroy"), "ceph osd safe-to-destroy");
    return { safe: ids(d.safe_to_destroy), active: ids(d.active), missingStats: ids(d.missing_stats), storedPgs: ids(d.stored_pgs) };
}

export function parseHealth(text: string): CephHealth {
    const d = obj(parse(text, "ceph health"), "ceph health");
    const checks: Record<string, string> = {};
    for (const [code, c] of Object.entries(obj(d.checks ?? {}, "ceph health checks"))) {
        const summary = (c as { summary?: { message?: string } })?.summary?.message;
        checks[code] = str(summary);
    }
    return { status: str(d.status), checks };
}

/** Every LV of `ceph-volume lvm list --format json` (an empty object when there is none). */
export function parseCephVolumeList(text: string): CephVolumeLv[] {
    const d = obj(parse(text, "ceph-volume lvm list"), "ceph-volume lvm list");
    return Object.values(d).flatMap((lvs) =>
        list(lvs).map((v) => {
            const e = obj(v, "ceph-volume lvm list entry");
            const t = obj(e.tags ?? {}, "ceph-volume tags");
            return {
                osdId: num(t["ceph.osd_id"], "ceph.osd_id"),
                osdFsid: str(t["ceph.osd_fsid"]),
                clusterFsid: str(t["ceph.cluster_fsid"]),
                clusterName: str(t["ceph.cluster_name"]) || "ceph",
                type: str(e.type ?? t["ceph.type"]),
                lvPath: str(e.lv_path ?? e.path),
                lvName: str(e.lv_name ?? e.name),
                vgName: str(e.vg_name),
                devices: list(e.devices).map(str),
                crushDeviceClass: str(t["ceph.crush_device_class"]),
                encrypted: str(t["ceph.encrypted"]) === "1",
                tags: str(e.lv_tags).split(",").filter((x) => x !== "" && !x.startsWith("ceph.")),
            };
        }),
    );
}

/**
 * ceph-volume's LVs read from LVM's own report (`lvs` with devices, lvm.ts), as
 * `ceph-volume lvm list` would list them: ceph-volume keeps everything it knows of an
 * OSD in its LV's tags (ceph.osd_id, ceph.osd_fsid, ceph.type ...) and its list is
 * those tags read back through lvs, after a Python start that costs a small box
 * seconds. An LV is an OSD's when its tags name an OSD id that is not "null"
 * (ceph-volume's own test).
 */
export function cephVolumeLvsOf(lvs: readonly LvWithDevices[]): CephVolumeLv[] {
    const out: CephVolumeLv[] = [];
    for (const lv of lvs) {
        const t = new Map<string, string>();
        for (const tag of lv.tags) {
            const i = tag.indexOf("=");
            if (tag.startsWith("ceph.") && i > 0) t.set(tag.slice(0, i), tag.slice(i + 1));
        }
        const osdId = t.get("ceph.osd_id");
        if (osdId === undefined || osdId === "null") continue;
        out.push({
            osdId: num(osdId, `ceph.osd_id of ${lv.path}`),
            osdFsid: t.get("ceph.osd_fsid") ?? "",
            clusterFsid: t.get("ceph.cluster_fsid") ?? "",
            clusterName: t.get("ceph.cluster_name") || "ceph",
            type: t.get("ceph.type") ?? "",
            lvPath: lv.path,
            lvName: lv.name,
            vgName: lv.vg,
            // by name, as ceph-volume lists them (its PVs in pvs' order), not in segment order
            devices: [...lv.devices].sort(),
            crushDeviceClass: t.get("ceph.crush_device_class") ?? "",
            encrypted: t.get("ceph.encrypted") === "1",
            tags: lv.tags.filter((x) => !x.startsWith("ceph.")),
        });
    }
    return out;
}
