// Parsers of QMP replies (qemu 7.2). Fixtures in test/unit/fixtures/qmp/ are
// captured from real guests in the lab.

/** What QMP query-status says: running, paused, inmigrate, postmigrate, shutdown ... */
export interface GuestStatus {
    status: string;
    running: boolean;
}

/** One block device as query-block lists it. */
export interface GuestBlockDevice {
    /** The -drive id, e.g. "disk0". */
    device: string;
    /** What is attached: `nbd://198.18.1.11:10810/guest0` or `/dev/vg/lv`; "" when empty. */
    file: string;
    /** Format driver of the attached image, e.g. "raw". */
    driver: string;
    readOnly: boolean;
}

/** A NIC and the host tap behind it, from `info network`. */
export interface GuestNicLive {
    id: string;
    model: string;
    mac: string;
    tap?: string;
}

export interface GuestLive extends GuestStatus {
    blockDevices: GuestBlockDevice[];
    memoryMiB: number;
    vcpus: number;
    nics: GuestNicLive[];
}

/** The queries a guest read sends, in this order (parseGuestReplies relies on it). */
export const guestQueries = [
    { execute: "query-status" },
    { execute: "query-block" },
    { execute: "query-memory-size-summary" },
    { execute: "query-cpus-fast" },
    // No QMP query names the host side of a NIC (its tap); the monitor's `info network` does.
    { execute: "human-monitor-command", arguments: { "command-line": "info network" } },
] as const;

interface Reply {
    return?: unknown;
    error?: { class: string; desc: string };
}

/** Parses the QMP client's output for guestQueries (a JSON list of replies). */
export function parseGuestReplies(text: string): GuestLive {
    const replies = JSON.parse(text) as Reply[];
    if (!Array.isArray(replies) || replies.length !== guestQueries.length) {
        throw new Error(`expected ${guestQueries.length} QMP replies, got: ${text.slice(0, 200)}`);
    }
    replies.forEach((r, i) => {
        if (r.error) throw new Error(`QMP ${guestQueries[i].execute} failed: ${r.error.class}: ${r.error.desc}`);
    });
    const [status, block, memory, cpus, network] = replies.map((r) => r.return);
    return {
        ...parseStatus(status),
        blockDevices: parseBlock(block),
        memoryMiB: Math.round(Number((memory as { "base-memory"?: number })["base-memory"] ?? 0) / 1048576),
        vcpus: Array.isArray(cpus) ? cpus.length : 0,
        nics: parseInfoNetwork(typeof network === "string" ? network : ""),
    };
}

export function parseStatus(ret: unknown): GuestStatus {
    const r = (ret ?? {}) as { status?: string; running?: boolean };
    return { status: r.status ?? "unknown", running: r.running === true };
}

export function parseBlock(ret: unknown): GuestBlockDevice[] {
    const list = Array.isArray(ret) ? (ret as { device?: string; qdev?: string; inserted?: { file?: string; drv?: string; ro?: boolean } }[]) : [];
    return list
        .filter((b) => b.inserted)
        .map((b) => ({
            device: b.device || (b.qdev ?? ""),
            file: b.inserted?.file ?? "",
            driver: b.inserted?.drv ?? "",
            readOnly: b.inserted?.ro === true,
        }));
}

/**
 * `info network` prints each NIC followed by its backend, indented:
 *   nic0: index=0,type=nic,model=virtio-net-pci,macaddr=52:54:00:aa:00:01
 *    \ net0: index=0,type=tap,ifname=vm525400aa0001,script=no,downscript=no
 */
export function parseInfoNetwork(text: string): GuestNicLive[] {
    const nics: GuestNicLive[] = [];
    for (const raw of text.split(/\r?\n/)) {
        const line = raw.trimEnd();
        const m = /^(\s*\\\s*)?([\w.-]+): (.*)$/.exec(line);
        if (!m) continue;
        const fields = Object.fromEntries(m[3].split(",").map((kv) => kv.split("=", 2) as [string, string]));
        if (!m[1] && fields.type === "nic") {
            nics.push({ id: m[2], model: fields.model ?? "", mac: (fields.macaddr ?? "").toLowerCase() });
        } else if (m[1] && fields.type === "tap" && nics.length > 0) {
            nics[nics.length - 1].tap = fields.ifname;
        }
    }
    return nics;
}

/** What query-migrate reports when a migration ends. */
export interface MigrationResult {
    status: string;
    /** Milliseconds from start to end, as qemu measured it. */
    totalTimeMs?: number;
    /** Milliseconds the guest was paused (the last copy round and the switch-over). */
    downtimeMs?: number;
    setupTimeMs?: number;
    ramTransferredBytes?: number;
    ramTotalBytes?: number;
    errorDesc?: string;
}

export function parseMigrate(text: string): MigrationResult {
    const reply = JSON.parse(text) as Reply;
    if (reply.error) return { status: "failed", errorDesc: `${reply.error.class}: ${reply.error.desc}` };
    const r = (reply.return ?? {}) as Record<string, unknown>;
    const ram = (r.ram ?? {}) as Record<string, unknown>;
    const num = (v: unknown) => (typeof v === "number" ? v : undefined);
    const out: MigrationResult = { status: String(r.status ?? "unknown") };
    const fields: [keyof MigrationResult, unknown][] = [
        ["totalTimeMs", r["total-time"]],
        ["downtimeMs", r.downtime],
        ["setupTimeMs", r["setup-time"]],
        ["ramTransferredBytes", ram.transferred],
        ["ramTotalBytes", ram.total],
    ];
    for (const [k, v] of fields) if (num(v) !== undefined) (out as unknown as Record<string, number>)[k] = num(v) as number;
    if (typeof r["error-desc"] === "string") out.errorDesc = r["error-desc"];
    return out;
}

/** The line the QMP client's powerdown mode writes: "powered-off 3.2" or "quit 60.0". */
export function parseStopOutcome(text: string): { outcome: "powered-off" | "quit"; seconds: number } | undefined {
    const m = /^(powered-off|quit) ([0-9.]+)\s*$/.exec(text.trim());
    return m ? { outcome: m[1] as "powered-off" | "quit", seconds: Number(m[2]) } : undefined;
}
