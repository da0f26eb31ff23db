// Parsers of mdadm and md sysfs output. Fixtures in test/unit/fixtures/mdadm/
// are captured from real runs in the lab.

/** One member as `mdadm --detail --export` lists it. */
export interface MdMember {
    /** Kernel device path, e.g. /dev/vdb. */
    device: string;
    /** Slot number as a string ("0", "1"), or "spare" / "faulty" / "journal". */
    role: string;
}

export interface MdDetail {
    level: string;
    raidDevices: number;
    metadata: string;
    uuid: string;
    /** e.g. "md0" */
    devname?: string;
    /** Array name as stored in the superblock, e.g. "storage1:data". */
    name?: string;
    members: MdMember[];
}

/** Parses `mdadm --detail --export DEVICE`. */
export function parseDetailExport(text: string): MdDetail {
    const kv = parseShellVars(text);
    const members = new Map<string, MdMember>();
    for (const [k, v] of Object.entries(kv)) {
        const m = /^MD_DEVICE_(.+)_(ROLE|DEV)$/.exec(k);
        if (!m) continue;
        const entry = members.get(m[1]) ?? { device: "", role: "" };
        if (m[2] === "DEV") entry.device = v;
        else entry.role = v;
        members.set(m[1], entry);
    }
    if (!kv.MD_UUID) throw new Error(`mdadm --detail --export printed no MD_UUID:\n${text}`);
    return {
        level: kv.MD_LEVEL ?? "",
        raidDevices: Number(kv.MD_DEVICES ?? "0"),
        metadata: kv.MD_METADATA ?? "",
        uuid: kv.MD_UUID,
        devname: kv.MD_DEVNAME,
        name: kv.MD_NAME,
        members: [...members.values()].filter((m) => m.device !== ""),
    };
}

/** What `mdadm --examine --export DEVICE` says of a would-be member. */
export interface MdExamine {
    /** The UUID of the array whose superblock the device carries. */
    uuid?: string;
    level?: string;
    name?: string;
}

export function parseExamineExport(text: string): MdExamine {
    const kv = parseShellVars(text);
    return { uuid: kv.MD_UUID, level: kv.MD_LEVEL, name: kv.MD_NAME };
}

/** The array's health, from /sys/block/mdN/md/*. */
export type MdHealth = "clean" | "degraded" | "resyncing" | "recovering" | "checking" | "inactive" | "unknown";

export interface MdSysfs {
    arrayState: string;
    /** State of each member by kernel name (loop10, vdb): in_sync, faulty, spare, ... */
    memberStates: Record<string, string>;
    degraded: number;
    syncAction: string;
    /** Percent of the current resync/recovery, when one runs. */
    syncPercent?: number;
    /** Array size in bytes. */
    sizeBytes: number;
}

/** Parses `key=value` lines printed by the read script (array_state=clean ...). */
export function parseSysfs(text: string): MdSysfs {
    const kv = parseShellVars(text);
    const [done, total] = (kv.sync_completed ?? "none").split("/").map((s) => Number(s.trim()));
    const memberStates: Record<string, string> = {};
    for (const [k, v] of Object.entries(kv)) if (k.startsWith("member_")) memberStates[k.slice("member_".length)] = v;
    return {
        arrayState: kv.array_state ?? "",
        memberStates,
        degraded: Number(kv.degraded ?? "0"),
        syncAction: kv.sync_action ?? "idle",
        syncPercent: total > 0 && Number.isFinite(done) ? Math.floor((done / total) * 1000) / 10 : undefined,
        sizeBytes: Number(kv.size ?? "0") * 512,
    };
}

export function healthOf(s: MdSysfs): MdHealth {
    if (s.arrayState === "inactive" || s.arrayState === "clear") return "inactive";
    if (s.syncAction === "recover") return "recovering";
    if (s.syncAction === "resync") return "resyncing";
    if (s.syncAction === "check" || s.syncAction === "repair") return "checking";
    if (s.degraded > 0) return "degraded";
    if (["clean", "active", "active-idle", "write-pending", "readonly", "read-auto"].includes(s.arrayState)) return "clean";
    return "unknown";
}

/**
 * Members with their real condition. mdadm 4.2's --export calls a failed member
 * "spare"; the kernel (md/dev-NAME/state) says "faulty".
 */
export function membersWithState(detail: MdDetail, sys: MdSysfs): { device: string; state: "active" | "faulty" | "spare" }[] {
    return detail.members.map((m) => {
        const kernelState = sys.memberStates[m.device.replace(/^\/dev\//, "")] ?? "";
        const state = kernelState.split("+").includes("faulty") ? "faulty" : /^[0-9]+$/.test(m.role) ? "active" : "spare";
        return { device: m.device, state };
    });
}

/** `KEY=value` lines (mdadm --export, our own sysfs dump); values may be single-quoted. */
export function parseShellVars(text: string): Record<string, string> {
    const out: Record<string, string> = {};
    for (const line of text.split("\n")) {
        const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line.trim());
        if (m) out[m[1]] = m[2].replace(/^'(.*)'$/, "$1");
    }
    return out;
}
