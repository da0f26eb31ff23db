// Parsers of LVM2 reports (`vgs`/`pvs`/`lvs --reportformat json --units b --nosuffix`)
// and of the device probe the VolumeGroup runs before pvcreate. Fixtures in
// test/unit/fixtures/lvm/ are captured from real runs in the lab.

/** The options every report is run with: JSON, sizes as plain byte counts. */
export const reportOptions = ["--reportformat", "json", "--units", "b", "--nosuffix"];

export const vgFields = "vg_name,vg_uuid,vg_size,vg_free,vg_extent_size,lv_count,pv_count,vg_tags";
export const pvFields = "pv_name,vg_name,pv_uuid,pv_size";
export const lvFields = "lv_name,vg_name,lv_uuid,lv_size,lv_path,lv_tags,lv_active";

/** LVM's own rule for VG names, minus `+` (kept out so names are safe in file and unit names). */
export const vgNamePattern = /^(?!-)(?!\.{1,2}$)[A-Za-z0-9_.-]{1,63}$/;

/** The tag pulumi-baremetal puts on what it creates, so that a re-run after a crash recognises its own work. */
export const ownTag = "pulumi-baremetal";

export interface VgReport {
    name: string;
    uuid: string;
    sizeBytes: number;
    freeBytes: number;
    extentBytes: number;
    lvCount: number;
    pvCount: number;
    tags: string[];
}

export interface PvReport {
    device: string;
    /** "" when the PV belongs to no volume group. */
    vg: string;
    uuid: string;
    sizeBytes: number;
}

export interface LvReport {
    name: string;
    vg: string;
    uuid: string;
    sizeBytes: number;
    path: string;
    tags: string[];
    active: boolean;
}

type Row = Record<string, string>;

/**
 * The rows of one report kind. LVM prints `{"report":[{"vg":[...]}]}` even when
 * nothing matched (with an error on stderr and exit status 5), so an empty
 * list is a normal answer, not a parse failure.
 */
function rows(text: string, kind: "vg" | "pv" | "lv"): Row[] {
    let parsed: unknown;
    try {
        parsed = JSON.parse(text);
    } catch {
        throw new Error(`LVM printed no JSON report (expected --reportformat json output):\n${text.slice(0, 400)}`);
    }
    const reports = (parsed as { report?: Record<string, Row[]>[] }).report;
    if (!Array.isArray(reports)) throw new Error(`LVM report has no "report" list:\n${text.slice(0, 400)}`);
    return reports.flatMap((r) => r[kind] ?? []);
}

function num(row: Row, field: string): number {
    const n = Number(row[field]);
    if (!Number.isFinite(n)) throw new Error(`LVM report field ${field}=${JSON.stringify(row[field])} is not a number (run with --units b --nosuffix)`);
    return n;
}

function tags(value: string | undefined): string[] {
    return (value ?? "").split(",").filter((t) => t !== "");
}

export function parseVgs(text: string): VgReport[] {
    return rows(text, "vg").map((r) => ({
        name: r.vg_name,
        uuid: r.vg_uuid,
        sizeBytes: num(r, "vg_size"),
        freeBytes: num(r, "vg_free"),
        extentBytes: num(r, "vg_extent_size"),
        lvCount: num(r, "lv_count"),
        pvCount: num(r, "pv_count"),
        tags: tags(r.vg_tags),
    }));
}

export function parsePvs(text: string): PvReport[] {
    return rows(text, "pv").map((r) => ({ device: r.pv_name, vg: r.vg_name ?? "", uuid: r.pv_uuid, sizeBytes: num(r, "pv_size") }));
}

export function parseLvs(text: string): LvReport[] {
    return rows(text, "lv").map(parseLvRow);
}

function parseLvRow(r: Row): LvReport {
    return {
        name: r.lv_name,
        vg: r.vg_name,
        uuid: r.lv_uuid,
        sizeBytes: num(r, "lv_size"),
        path: r.lv_path,
        tags: tags(r.lv_tags),
        active: r.lv_active === "active",
    };
}

/**
 * LVs with the physical devices under them: `devices` is a field of each segment, so
 * LVM prints a row per segment ("/dev/vda(0)": device and first extent); merged here
 * into one LV with its devices, in order, each once.
 */
export const lvDeviceFields = `${lvFields},devices`;

export interface LvWithDevices extends LvReport {
    devices: string[];
}

export function parseLvsWithDevices(text: string): LvWithDevices[] {
    const byUuid = new Map<string, LvWithDevices>();
    for (const r of rows(text, "lv")) {
        const lv = byUuid.get(r.lv_uuid) ?? { ...parseLvRow(r), devices: [] };
        byUuid.set(r.lv_uuid, lv);
        for (const d of (r.devices ?? "").split(",")) {
            const dev = d.replace(/\(\d+\)$/, "");
            if (dev !== "" && !lv.devices.includes(dev)) lv.devices.push(dev);
        }
    }
    return [...byUuid.values()];
}

/** What the device probe (volumeGroup.ts `probeScript`) found on one would-be PV. */
export interface DeviceProbe {
    /** As declared. */
    device: string;
    /** Kernel path (`readlink -f`). */
    path: string;
    missing: boolean;
    /** Where it is mounted, "" when it is not. */
    mountpoint: string;
    /** Kernel devices stacked on it (md arrays, device-mapper). */
    holders: string[];
    /** blkid's signature type: LVM2_member, linux_raid_member, ext4 ..., "" when blank. */
    signature: string;
    /** The VG of the PV on it, "" when none. */
    pvVg: string;
}

/** Parses the probe's `key=value` blocks, each ended by `end=1`. */
export function parseDeviceProbe(text: string): DeviceProbe[] {
    const out: DeviceProbe[] = [];
    let cur: Record<string, string> = {};
    for (const line of text.split("\n")) {
        const i = line.indexOf("=");
        if (i < 0) continue;
        const k = line.slice(0, i);
        const v = line.slice(i + 1);
        if (k === "end") {
            out.push({
                device: cur.device ?? "",
                path: cur.path ?? "",
                missing: cur.missing === "1",
                mountpoint: cur.mounted ?? "",
                holders: (cur.holders ?? "").split(/\s+/).filter((h) => h !== ""),
                signature: cur.fs_TYPE ?? "",
                pvVg: cur.pv_vg ?? "",
            });
            cur = {};
        } else {
            cur[k] = v;
        }
    }
    return out;
}
