// RaidArray: an mdadm software RAID array on a machine (the seed pairs disks
// into RAID1 and hands /dev/md0 to its SAN VM).
//
// ID: the array's UUID as mdadm prints it (e.g. `3b1e4c2a:6f0d9e11:...`).
// Data safety: delete stops the array and removes it from mdadm.conf but keeps
// the members' superblocks (the array can be assembled again) unless
// `allowDataLoss` (formerly `wipeOnDelete`) is set; changes that would re-create
// the array are refused unless `allowDataLoss` is set.
import { RefusedError } from "../core/errors";
import { CheckOutcome, DiffOutcome, OperationContext, ResourceKind } from "../core/resource";
import { checkByTable, diffByTable, erase, KindSpec, t } from "../core/fields";
import { applyDataLossAlias, dataLossFields, withCurrentOptIn } from "../core/dataLoss";
import { Validator } from "../core/validate";
import { connectionField, distributionOf, HostConnection, hostLocks, Plan, Remote, resolvePaths, step } from "../host";
import type { OsFamily } from "../host";
import { healthOf, MdDetail, MdHealth, membersWithState, parseDetailExport, parseExamineExport, parseSysfs } from "../parsers/mdadm";
import { parseSections } from "../parsers/sections";

export const raidLevels = ["raid0", "raid1", "raid5", "raid6", "raid10"] as const;
export type RaidLevel = (typeof raidLevels)[number];

export interface RaidArrayInputs {
    connection: HostConnection;
    device: string;
    level: RaidLevel;
    members: string[];
    metadata: "1.0" | "1.1" | "1.2";
    name?: string;
    allowDataLoss: boolean;
    wipeOnDelete?: boolean;
    waitForSync: boolean;
    syncTimeoutSeconds: number;
}

export interface RaidArrayState extends RaidArrayInputs {
    uuid: string;
    state: MdHealth;
    activeMembers: string[];
    failedMembers: string[];
    sizeBytes: number;
    syncPercent?: number;
}

const levelMinimum: Record<RaidLevel, number> = { raid0: 2, raid1: 2, raid5: 3, raid6: 4, raid10: 2 };
const devicePattern = /^\/dev\/md(12[0-7]|1[01][0-9]|[1-9]?[0-9])$/;

export const spec: KindSpec<RaidArrayInputs, RaidArrayState> = {
    kind: "RaidArray",
    doc: "An mdadm software RAID array on a machine. An existing array with the same members is adopted instead of re-created; members that all carry one array's superblocks are assembled; members that are mounted, in another array or LVM physical volumes are refused. A replacement (a new device, level, metadata, name or host) makes a new array out of the members and destroys the data: it is refused unless allowDataLoss is set.",
    id: "the array's UUID as mdadm prints it (`mdadm --detail --brief /dev/md0`), e.g. `3b1e4c2a:6f0d9e11:8a7c5b40:12de34f5`.",
    example: `new RaidArray("storage1-md0", {
    connection,
    device: "/dev/md0",
    members: ["/dev/disk/by-id/ata-DISK-A", "/dev/disk/by-id/ata-DISK-B"],
});`,
    exampleHost: "198.51.100.12",
    deleteBeforeReplace: true,
    inputs: {
        connection: connectionField("The machine that holds the member disks."),
        device: { type: t.string(), required: true, change: "replace", doc: "The md device, `/dev/md0` ... `/dev/md127`.", rule: { pattern: devicePattern, patternHint: "must be /dev/md0 ... /dev/md127" } },
        level: { type: t.string(raidLevels), default: "raid1", change: "replace", doc: "RAID level." },
        members: {
            type: t.array(t.string()),
            required: true,
            doc: "Member block devices; stable paths (`/dev/disk/by-id/...`) are best. Adding, removing or replacing a member happens in place (mdadm --add/--fail/--remove/--grow).",
            check: checkMembers,
        },
        metadata: { type: t.string(["1.0", "1.1", "1.2"]), default: "1.2", change: "replace", doc: "Superblock format." },
        name: {
            type: t.string(),
            change: "replace",
            doc: "Name stored in the superblock (what udev uses for /dev/md/<name>).",
            rule: { maxLength: 32, pattern: /^[A-Za-z0-9_.-]+$/, patternHint: "may only contain letters, digits, _ . -" },
        },
        ...dataLossFields(
            "wipeOnDelete",
            "Allow this array to destroy the data it holds: zero the members' superblocks on delete, and make a new array out of the members on a change that replaces it. Without it, delete stops the array and keeps its superblocks (it can be assembled again), and replacing changes are refused.",
        ),
        waitForSync: { type: t.boolean, default: false, doc: "After create or a member change, wait until the array is clean (progress in the log)." },
        syncTimeoutSeconds: { type: t.integer, default: 3600, doc: "Seconds to wait for a resync when waitForSync is set.", rule: { min: 1, max: 7 * 86400 } },
    },
    outputs: {
        uuid: { type: t.string(), required: true, stable: true, doc: "The array's UUID (the ID)." },
        state: { type: t.string(["clean", "degraded", "resyncing", "recovering", "checking", "inactive", "unknown"]), required: true, doc: "Health as last read." },
        activeMembers: { type: t.array(t.string()), required: true, doc: "Members in the array and not failed, by their declared names when they match." },
        failedMembers: { type: t.array(t.string()), required: true, doc: "Members marked faulty." },
        sizeBytes: { type: t.integer, required: true, doc: "Size of the array in bytes." },
        syncPercent: { type: t.number, doc: "Progress of a resync or recovery, when one runs." },
    },
};

function checkMembers(v: Validator, field: string, value: unknown): string[] | undefined {
    const members = v.list(field, value, (f, m) => v.devicePath(f, m));
    if (Array.isArray(members) && new Set(members).size !== members.length) return v.fail(field, "lists the same device twice");
    return members;
}

export function check(olds: Record<string, unknown>, news: Record<string, unknown>): CheckOutcome<RaidArrayInputs> {
    const v = new Validator();
    const inputs = checkByTable(v, erase(spec), news) as Partial<RaidArrayInputs>;
    applyDataLossAlias(v, inputs, news, "wipeOnDelete");
    const { level, members } = inputs;
    // Only when both are valid: a bad member must not also report "needs 2 members, got 0".
    if (level && Array.isArray(members) && members.length < levelMinimum[level]) {
        v.fail("members", `${level} needs at least ${levelMinimum[level]} members, got ${members.length}`);
    }
    // A change that re-creates the array destroys what it holds: opt-in only.
    if (olds.device !== undefined && inputs.allowDataLoss === false) {
        for (const f of diffByTable(erase(spec), olds, inputs).replaces) {
            v.fail(f, `changing ${f} re-creates the array and destroys its data; set allowDataLoss: true to allow it (nothing was changed)`);
        }
    }
    if (!v.ok) return { failures: v.failures };
    return { inputs: inputs as RaidArrayInputs, failures: [] };
}

export function diff(_id: string, olds: RaidArrayState, news: RaidArrayInputs): DiffOutcome {
    const d = diffByTable(erase(spec), withCurrentOptIn(olds, "wipeOnDelete") as unknown as Record<string, unknown>, news as unknown as Record<string, unknown>);
    // The new array is made from the same disks: the old one must go first.
    return { changes: d.changed.length > 0, replaces: d.replaces, stables: d.stables, deleteBeforeReplace: true };
}

/** Where mdadm reads its configuration on each family. */
export function mdadmConf(family: OsFamily): string {
    return distributionOf(family) === "alpine" ? "/etc/mdadm.conf" : "/etc/mdadm/mdadm.conf";
}

// Keeps exactly one ARRAY line for this UUID in mdadm.conf; $1 conf, $2 uuid, $3 the new line ("" removes).
const confScript = [
    'conf=$1 uuid=$2 line=$3',
    'mkdir -p "$(dirname "$conf")"; touch "$conf"',
    'tmp=$(mktemp "$conf.XXXXXX")',
    'grep -v -F "UUID=$uuid" "$conf" >"$tmp" || true',
    '[ -z "$line" ] || printf "%s\\n" "$line" >>"$tmp"',
    'if cmp -s "$tmp" "$conf"; then rm -f "$tmp"; echo =baremetal-unchanged=; else mv "$tmp" "$conf"; fi',
].join("\n");

/** The steps that create the array and record it in mdadm.conf. */
export function planCreate(inputs: RaidArrayInputs, family: OsFamily): Plan {
    const argv = [
        "mdadm", "--create", inputs.device, "--run", `--level=${inputs.level}`,
        `--raid-devices=${inputs.members.length}`, `--metadata=${inputs.metadata}`,
        ...(inputs.name ? [`--name=${inputs.name}`] : []),
        ...inputs.members,
    ];
    return [
        step.ensurePackages("mdadm"),
        step.run(argv, { lock: hostLocks.mdadm, what: `create ${inputs.level} ${inputs.device} from ${inputs.members.join(", ")}` }),
        ...planRecord(inputs.device, family),
    ];
}

// With $3 = keep: an ARRAY line already naming the array (its UUID or its device) is left as it is.
const keepScript = '[ "${3:-}" = keep ] && [ -f "$1" ] && { grep -q -F "UUID=$uuid" "$1" || grep -q -E "^ARRAY[[:space:]]+$2([[:space:]]|$)" "$1"; } && { echo =baremetal-unchanged=; exit 0; }';

/**
 * Records the assembled array's ARRAY line in mdadm.conf (and persists on diskless
 * Alpine). `keepExisting` (adoption): a line the operator already has for it stays
 * as written, so adopting changes nothing on the box.
 */
export function planRecord(device: string, family: OsFamily, keepExisting = false): Plan {
    const script = `line=$(mdadm --detail --brief "$2" | head -n 1) || exit 1; uuid=\${line##*UUID=}; uuid=\${uuid%% *}\n${keepScript}\nset -- "$1" "$uuid" "$line"\n${confScript}`;
    return [
        step.run(["sh", "-c", script, "baremetal-mdadm-conf", mdadmConf(family), device, ...(keepExisting ? ["keep"] : [])], { lock: hostLocks.mdadm, what: `record ${device} in ${mdadmConf(family)}` }),
        step.persist(),
    ];
}

/**
 * The steps that take the array down; superblocks are zeroed only when wiping.
 * Wiping also erases the signatures inside the array (an LVM label, a file system)
 * while it still runs: zeroing the superblocks leaves the data area as it was, and
 * a new array made later on the same disks with the same layout would show the old
 * PV label again, to be mistaken for live data (and refused by VolumeGroup).
 * `running: false` is the re-run of a delete cut after `mdadm --stop` ran: the
 * array is stopped, but its ARRAY line (and, when wiping, the superblocks) remain.
 */
export function planDelete(state: RaidArrayState, family: OsFamily, memberDevices: string[], running = true): Plan {
    const wiping = state.allowDataLoss === true;
    return [
        ...(running && wiping
            ? [
                  step.ensurePackages(distributionOf(family) === "alpine" ? "wipefs" : "util-linux"),
                  step.run(["wipefs", "-q", "-a", state.device], { lock: hostLocks.mdadm, what: `erase the signatures (LVM label, file system) inside ${state.device}` }),
              ]
            : []),
        ...(running ? [step.run(["mdadm", "--stop", state.device], { lock: hostLocks.mdadm, what: `stop ${state.device}` })] : []),
        step.run(["sh", "-c", confScript, "baremetal-mdadm-conf", mdadmConf(family), state.uuid, ""], { lock: hostLocks.mdadm, what: `remove ${state.device} from ${mdadmConf(family)}` }),
        ...(wiping && memberDevices.length > 0
            ? [step.run(["mdadm", "--zero-superblock", ...memberDevices], { lock: hostLocks.mdadm, what: `zero the md superblocks of ${memberDevices.join(", ")}` })]
            : []),
        step.persist(),
    ];
}

/** In-place member changes: fail and remove what left the list, add what joined it, resize. */
export function planMembers(state: RaidArrayState, news: RaidArrayInputs, family: OsFamily, raidDevices: number): Plan {
    const current = [...state.activeMembers, ...state.failedMembers];
    const leaving = current.filter((m) => !news.members.includes(m));
    const joining = news.members.filter((m) => !current.includes(m));
    const plan: Plan = [
        ...leaving.flatMap((m) => [
            step.run(["mdadm", state.device, "--fail", m], { lock: hostLocks.mdadm, okExitCodes: [0, 1], what: `mark ${m} failed in ${state.device}` }),
            step.run(["mdadm", state.device, "--remove", m], { lock: hostLocks.mdadm, what: `remove ${m} from ${state.device}` }),
        ]),
        ...joining.map((m) => step.run(["mdadm", state.device, "--add", m], { lock: hostLocks.mdadm, what: `add ${m} to ${state.device}` })),
        ...(news.members.length !== raidDevices && news.level !== "raid0"
            ? [step.run(["mdadm", "--grow", state.device, `--raid-devices=${news.members.length}`], { lock: hostLocks.mdadm, what: `resize ${state.device} to ${news.members.length} members` })]
            : []),
    ];
    return plan.length > 0 ? [...plan, ...planRecord(state.device, family)] : plan;
}

// ---- reading the live array ------------------------------------------------------

const readScript = [
    'dev=$1',
    '[ -b "$dev" ] || exit 3',
    'mdadm --detail --export "$dev" || exit 4',
    'echo ==sysfs==',
    'sys=/sys/block/$(basename "$(readlink -f "$dev")")',
    'for f in array_state degraded sync_action sync_completed; do printf "%s=%s\\n" "$f" "$(cat "$sys/md/$f" 2>/dev/null)"; done',
    'printf "size=%s\\n" "$(cat "$sys/size")"',
    'for d in "$sys"/md/dev-*; do [ -e "$d/block" ] && printf "member_%s=%s\\n" "$(basename "$(readlink -f "$d/block")")" "$(tr , + <"$d/state")"; done',
    'exit 0',
].join("\n");

export interface LiveArray {
    detail: MdDetail;
    members: { device: string; state: "active" | "faulty" | "spare" }[];
    state: MdHealth;
    sizeBytes: number;
    syncPercent?: number;
}

/** The array as mdadm and sysfs show it now, or undefined when there is none (also what `baremetal discover` reads). */
export async function readLive(host: Remote, device: string, lock?: typeof hostLocks.mdadm): Promise<LiveArray | undefined> {
    const out = await host.run(["sh", "-c", readScript, "baremetal-md-read", device], { okExitCodes: [0, 3, 4], what: `read ${device}`, ...(lock ? { lock } : {}) });
    return out.exitCode === 0 ? parseRead(out.stdout) : undefined;
}

/**
 * The read that create, update, delete and refresh act on, under the mdadm lock
 * every mdadm step holds. A step of an earlier run whose connection was cut may
 * still be running on the host (`mdadm --create` writing superblocks, `--add`,
 * `--grow`, `--stop`); read beside it, the array looks half made and the re-run
 * would refuse its own members as another array's, issue the command again, or
 * record the half state. Under the lock the read waits for it to end.
 */
function readSettled(host: Remote, device: string): Promise<LiveArray | undefined> {
    return readLive(host, device, hostLocks.mdadm);
}

/** Parses the read script's output (exported for tests on captured output). */
export function parseRead(text: string): LiveArray {
    const { preamble: detailText, parts } = parseSections(text, ["sysfs"] as const);
    const sysText = parts.sysfs ?? "";
    const sys = parseSysfs(sysText);
    const detail = parseDetailExport(detailText);
    return { detail, members: membersWithState(detail, sys), state: healthOf(sys), sizeBytes: sys.sizeBytes, syncPercent: sys.syncPercent };
}

/** Kernel path of each declared member (`readlink -f`), so by-id paths compare with mdadm's output. */
async function resolveMembers(host: Remote, members: string[]): Promise<Map<string, string>> {
    const resolved = await resolvePaths(host, members, "resolve member devices");
    const missing = members.filter((m) => resolved.get(m) === undefined);
    if (missing.length > 0) throw new RefusedError(`member device(s) ${missing.join(", ")} do not exist on ${host.target}`, "Check the members list against `lsblk` on that machine.");
    return new Map(members.map((m) => [m, resolved.get(m) as string]));
}

function stateFrom(inputs: RaidArrayInputs, live: LiveArray, resolved: Map<string, string>): RaidArrayState {
    const declaredName = (kernel: string) => [...resolved].find(([, k]) => k === kernel)?.[0] ?? kernel;
    // In declared order (mdadm lists by its own order): otherwise every refresh shows a member change.
    const rank = (m: string) => (inputs.members.includes(m) ? inputs.members.indexOf(m) : inputs.members.length);
    const active = live.members
        .filter((m) => m.state !== "faulty")
        .map((m) => declaredName(m.device))
        .sort((a, b) => rank(a) - rank(b));
    const failed = live.members.filter((m) => m.state === "faulty").map((m) => declaredName(m.device));
    const state: RaidArrayState = {
        ...inputs,
        members: active,
        uuid: live.detail.uuid,
        state: live.state,
        activeMembers: active,
        failedMembers: failed,
        sizeBytes: live.sizeBytes,
    };
    if (live.syncPercent !== undefined) state.syncPercent = live.syncPercent;
    return state;
}

/** Refuses members that are mounted, in another array, or LVM physical volumes. */
async function assertMembersFree(host: Remote, resolved: Map<string, string>): Promise<string | undefined> {
    const uuids = new Set<string>();
    for (const [declared, kernel] of resolved) {
        const ex = parseExamineExport((await host.run(["mdadm", "--examine", "--export", kernel], { okExitCodes: [0, 1, 2], what: `examine ${declared}` })).stdout);
        if (ex.uuid) uuids.add(ex.uuid);
        else uuids.add("");
        // Holders: a member of a *running* array (or under device-mapper) is busy; assembling or creating over it fails half-way.
        const mounts = await host.run(["sh", "-c", 'grep -E "^$1[0-9p]*[[:space:]]" /proc/mounts; [ -x "$(command -v pvs)" ] && pvs --noheadings -o pv_name,vg_name 2>/dev/null | grep -E "^[[:space:]]*$1[0-9p]*[[:space:]]"; h=$(ls "/sys/class/block/${1##*/}/holders" 2>/dev/null | tr "\\n" " "); [ -z "$h" ] || echo "held by $h(a running md array or device-mapper device)"; exit 0', "baremetal-in-use", kernel]);
        if (mounts.stdout.trim() !== "") {
            throw new RefusedError(`${declared} (${kernel}) on ${host.target} is in use: ${mounts.stdout.trim()}`, "Unmount it or remove it from its volume group, or choose another disk.");
        }
    }
    if (uuids.size === 1 && !uuids.has("")) return [...uuids][0];
    const foreign = [...uuids].filter((u) => u !== "");
    if (foreign.length > 0) {
        throw new RefusedError(
            `some members on ${host.target} already carry the superblock of another md array (${foreign.join(", ")})`,
            "Stop that array and zero its superblocks (mdadm --zero-superblock) if its data is not needed, or choose other disks.",
        );
    }
    return undefined;
}

async function waitClean(host: Remote, inputs: RaidArrayInputs, ctx: OperationContext): Promise<void> {
    const deadline = Date.now() + inputs.syncTimeoutSeconds * 1000;
    for (;;) {
        const live = await readLive(host, inputs.device);
        if (!live) throw new Error(`${inputs.device} disappeared from ${host.target} while waiting for it to sync`);
        if (live.state === "clean") return;
        if (live.state === "degraded") throw new Error(`${inputs.device} on ${host.target} is degraded and not rebuilding; check its members with mdadm --detail`);
        if (Date.now() > deadline) throw new Error(`${inputs.device} on ${host.target} is still ${live.state} after ${inputs.syncTimeoutSeconds}s; raise syncTimeoutSeconds or set waitForSync: false`);
        ctx.log.progress(`${inputs.device}: ${live.state} ${live.syncPercent ?? 0}%`);
        await new Promise((r) => setTimeout(r, 2000));
    }
}

function hostFor(conn: HostConnection, ctx: OperationContext): Remote {
    return ctx.remote(conn);
}

async function create(inputs: RaidArrayInputs, ctx: OperationContext): Promise<{ id: string; outs: RaidArrayState }> {
    const host = hostFor(inputs.connection, ctx);
    const family = (await host.facts()).family;
    const resolved = await resolveMembers(host, inputs.members);
    const existing = await readSettled(host, inputs.device);
    const ours = (a: LiveArray) => a.detail.members.length === resolved.size && a.detail.members.every((m) => [...resolved.values()].includes(m.device));
    if (existing && !ours(existing)) {
        throw new RefusedError(
            `${inputs.device} on ${host.target} already exists with other members (${existing.detail.members.map((m) => m.device).join(", ")})`,
            "Choose another device name, or stop that array first.",
        );
    }
    if (existing) {
        ctx.log.info(`${inputs.device} already exists with the same members: adopting it (uuid ${existing.detail.uuid}; it runs on, an mdadm.conf line for it is kept as written)`);
        await host.apply(planRecord(inputs.device, family, true));
    } else {
        const uuid = await assertMembersFree(host, resolved);
        if (uuid) {
            // Every member carries the same array's superblock: assemble it instead of re-creating.
            ctx.log.info(`the members already form array ${uuid}: assembling it as ${inputs.device}`);
            await host.apply([
                step.run(["mdadm", "--assemble", inputs.device, `--uuid=${uuid}`, ...resolved.values()], { lock: hostLocks.mdadm, what: `assemble ${inputs.device}` }),
                ...planRecord(inputs.device, family),
            ]);
        } else {
            await host.apply(planCreate(inputs, family));
        }
    }
    if (inputs.waitForSync) await waitClean(host, inputs, ctx);
    const live = await readLive(host, inputs.device);
    if (!live) throw new Error(`${inputs.device} was created on ${host.target} but cannot be read back`);
    return { id: live.detail.uuid, outs: stateFrom(inputs, live, resolved) };
}

async function read(_id: string, stored: RaidArrayState, ctx: OperationContext): Promise<RaidArrayState | undefined> {
    // The state read becomes the new one: an old stack's opt-in moves to its current name here.
    const props = withCurrentOptIn(stored, "wipeOnDelete");
    const host = hostFor(props.connection, ctx);
    const live = await readSettled(host, props.device);
    if (!live) return undefined;
    const resolved = await resolveMembers(host, props.members.length > 0 ? props.members : props.activeMembers).catch(() => new Map<string, string>());
    return stateFrom(props, live, resolved);
}

async function update(_id: string, olds: RaidArrayState, news: RaidArrayInputs, ctx: OperationContext): Promise<RaidArrayState> {
    const host = hostFor(news.connection, ctx);
    const family = (await host.facts()).family;
    const before = await readSettled(host, olds.device);
    if (!before) throw new Error(`${olds.device} no longer exists on ${host.target}; run \`pulumi refresh\` and then \`pulumi up\` to create it again`);
    const resolved = await resolveMembers(host, news.members);
    const current = stateFrom(olds, before, new Map([...(await resolveMembers(host, olds.members).catch(() => new Map<string, string>())), ...resolved]));
    const plan = planMembers(current, news, family, before.detail.raidDevices);
    if (plan.length > 0) await host.apply(plan);
    if (news.waitForSync) await waitClean(host, news, ctx);
    const live = await readLive(host, news.device);
    if (!live) throw new Error(`${news.device} disappeared from ${host.target} during the update`);
    return stateFrom(news, live, resolved);
}

async function remove(_id: string, stored: RaidArrayState, ctx: OperationContext): Promise<void> {
    const props = withCurrentOptIn(stored, "wipeOnDelete");
    const host = hostFor(props.connection, ctx);
    const family = (await host.facts()).family;
    const live = await readSettled(host, props.device);
    if (!live) {
        // Stopped already (e.g. an earlier delete lost its connection after `mdadm --stop`):
        // finish what that delete did not, or the array comes back at boot from mdadm.conf.
        const carrying = props.allowDataLoss ? await membersCarrying(host, props) : [];
        const done = await host.apply(planDelete(props, family, carrying, false));
        if (!done.changed) ctx.log.info(`${props.device} is already gone from ${host.target}`);
        return;
    }
    if (live.detail.uuid !== props.uuid) {
        throw new RefusedError(`${props.device} on ${host.target} is now a different array (uuid ${live.detail.uuid}, expected ${props.uuid})`, "Refresh the stack to see what happened; nothing was stopped.");
    }
    await host.apply(planDelete(props, family, live.detail.members.map((m) => m.device)));
}

/** The declared members (any that were ever in the state) that still carry this array's superblock. */
async function membersCarrying(host: Remote, props: RaidArrayState): Promise<string[]> {
    const examined: { device: string; uuid?: string }[] = [];
    for (const device of new Set([...props.members, ...props.activeMembers, ...props.failedMembers])) {
        const out = await host.run(["mdadm", "--examine", "--export", device], { okExitCodes: [0, 1, 2], what: `examine ${device}` });
        examined.push({ device, uuid: out.exitCode === 0 ? parseExamineExport(out.stdout).uuid : undefined });
    }
    return superblocksOf(props.uuid, examined);
}

/** Which examined devices carry the superblock of array `uuid` (never another array's). */
export function superblocksOf(uuid: string, examined: { device: string; uuid?: string }[]): string[] {
    return examined.filter((e) => e.uuid === uuid).map((e) => e.device);
}

export const raidArray: ResourceKind<RaidArrayInputs, RaidArrayState> = {
    spec, check, diff, create, read, update, delete: remove };
