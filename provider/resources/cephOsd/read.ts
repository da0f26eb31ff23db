// CephOsd, part read: looking at the box and the cluster (the probe before create,
// the maps every read shares, safe-to-destroy) and what an interrupted create left.
import { RefusedError } from "../../core/errors";
import { hostLocks, Remote } from "../../host";
import {
    CephVolumeLv, cephVolumeLvsOf, OsdCrushInfo, osdCrushInfo, OsdDump, OsdDumpEntry, parseOsdDump, parseOsdTree, parseSafeToDestroy, SafeToDestroy,
} from "../../parsers/ceph";
import { lvDeviceFields, parseLvsWithDevices, reportOptions } from "../../parsers/lvm";
import { parseSections, requirePart } from "../../parsers/sections";
import { CephCommand, clientArgv, clientCommand, clientInput } from "./client";
import { clusterFiles, connectTimeoutSeconds, CreateIntent, intentDir, osdName, zapTimeoutMs } from "./plan";
import type { CephOsdInputs } from "./spec";

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
    // ceph-volume's LVs as LVM reports them (its tags say which OSD each is): what
    // `ceph-volume lvm list` prints, without its Python start (3 s of a small box's CPU, measured).
    `lvs ${reportOptions.join(" ")} -o ${lvDeviceFields} >"$t" || exit 15`,
    'echo ==list==; cat "$t"',
    'echo ==lvreal==',
    'lvs --noheadings -o lv_path | while read -r p; do [ -z "$p" ] || echo "$p $(readlink -f -- "$p")"; done',
    'echo ==blkid==',
    'blkid -p -o export -- "$real" 2>/dev/null',
    'echo ==use==',
    'grep -E "^$real[0-9p]*[[:space:]]" /proc/mounts',
    'h=$(ls "/sys/class/block/${real##*/}/holders" 2>/dev/null | tr "\\n" " "); [ -z "$h" ] || echo "held by $h"',
    'echo ==dump==',
    `echo '${clientInput([{ prefix: "osd dump", format: "json" }])}' | ${clientCommand} "$c" "$conf" ${connectTimeoutSeconds} || exit 16`,
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
    return { real, lvs: cephVolumeLvsOf(parseLvsWithDevices(section("list"))), lvReal, signature, inUse: section("use").trim(), dump: parseOsdDump(section("dump")), intents };
}

/** The block LV of the OSD that lives on the declared device, if any. */
export function osdOnDevice(probe: Pick<Probe, "real" | "lvs" | "lvReal">, device: string): CephVolumeLv | undefined {
    return probe.lvs.find(
        (lv) =>
            lv.type === "block" &&
            (lv.devices.includes(probe.real) || lv.lvPath === device || `${lv.vgName}/${lv.lvName}` === device || probe.lvReal.get(lv.lvPath) === probe.real),
    );
}

/** The OSD map and the CRUSH tree, from one client (see client.ts): one document a line, in this order. */
export const readCommands: readonly CephCommand[] = [
    { prefix: "osd dump", format: "json" },
    { prefix: "osd tree", format: "json" },
];

export interface LiveOsd {
    dump: OsdDump;
    entry?: OsdDumpEntry;
    crush?: OsdCrushInfo;
}

/**
 * Parses what the client printed for readCommands (one JSON document per line,
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
    const p = host.run(clientArgv(cluster), { stdin: clientInput(readCommands), what: `read the OSD map and CRUSH tree of cluster ${cluster}`, timeoutMs: 5 * 60_000 }).then((o) => o.stdout);
    if (shared) {
        inFlight.set(key, p);
        const forget = () => inFlight.get(key) === p && inFlight.delete(key);
        p.then(forget, forget);
    }
    return p;
}

/** The live OSD; `shared` only for a plain read (after a change, a read must start after it). */
export async function readLive(host: Remote, cluster: string, osdFsid: string, shared = false): Promise<LiveOsd> {
    return parseRead(await clusterMaps(host, cluster, shared), osdFsid);
}

/**
 * `afterLvm`: look only once no LVM command on the box still runs (one of a cut
 * connection's, e.g. a zap, holds the LVM lock until it exits), so that the look
 * sees what it left, not a device half-way through; the wait counts against the
 * timeout, which grows by as much as such a command may take.
 */
export async function probe(host: Remote, inputs: CephOsdInputs, { afterLvm = false }: { afterLvm?: boolean } = {}): Promise<Probe> {
    const f = clusterFiles(inputs.cluster);
    const out = await host.exec(["sh", "-c", probeScript, "baremetal-ceph-probe", inputs.cluster, inputs.device, f.conf, f.bootstrapOsdKeyring], {
        what: `look at ${inputs.device} and cluster ${inputs.cluster}`,
        ...(afterLvm ? { lock: hostLocks.lvm, timeoutMs: 5 * 60_000 + zapTimeoutMs } : { timeoutMs: 5 * 60_000 }),
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

/** One answer of safe-to-destroy, with the text Ceph gave for it. */
export interface DrainAnswer extends SafeToDestroy {
    message: string;
}

export async function askSafeToDestroy(host: Remote, cluster: string, id: number): Promise<DrainAnswer> {
    // Exit 16 (EBUSY) means "not safe yet"; the JSON still says why. Exit 11 (EAGAIN) too: right
    // after the OSD is marked out its PGs peer, and Ceph says "1 pgs have unknown state; cannot draw
    // any conclusions" (seen in the lab): an answer to wait on, not a failure of the delete.
    const out = await host.run(clientArgv(cluster), {
        stdin: clientInput([{ prefix: "osd safe-to-destroy", ids: [osdName(id)], format: "json" }]),
        okExitCodes: [0, 11, 16],
        what: `ask whether osd.${id} is safe to destroy`,
        timeoutMs: 5 * 60_000,
    });
    const text = out.stdout.trim();
    const answer = text.startsWith("{") ? parseSafeToDestroy(text) : { safe: [], active: [], missingStats: [], storedPgs: [] };
    return { ...answer, message: out.stderr.trim().split("\n").filter((l) => !/^\d{4}-\d\d-\d\dT/.test(l)).join(" ") };
}
