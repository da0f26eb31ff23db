// LxcContainer: a system container in a guest or box (the seed runs every
// service in one: DNS, squid, web, LDAP, MariaDB ...). Created from an LXC
// template (no internet needed for `busybox`) or from a root file system that is
// already on the box; its network, mounts, autostart and limits are a managed
// block at the end of its LXC config; files and commands provision it.
//
// ID: `NAME@HOST`. A config change restarts the container; a template or rootfs
// change replaces it. Delete stops it (gracefully, then killed after the
// timeout) and destroys it; a container made from a given rootfs keeps that
// directory (it was not ours to delete).
//
// Provisioning `commands` run after every start this resource does (create, a
// restart for a config change), when they change, and when a create finds its
// own container (a re-run after a cut): make them idempotent.
import { RefusedError } from "../core/errors";
import { changedFields, CheckOutcome, DiffOutcome, OperationContext, ResourceKind } from "../core/resource";
import { isUnknown, Validator } from "../core/validate";
import { checkHostConnection, HostConnection, Plan, Remote, step } from "../host";
import type { OsFamily } from "../host";
import { configValues, LxcInfo, managedBegin, managedEnd, parseLxcInfo, parseManagedBlock } from "../parsers/lxc";
import { parseSections } from "../parsers/sections";

export interface LxcNic {
    /** Bridge on the box (Linux or Open vSwitch: LXC handles both). */
    bridge: string;
    hwaddr?: string;
    /** Static IPv4 in CIDR form, e.g. `198.18.1.50/24`. */
    ipv4?: string;
    gateway?: string;
}

export interface LxcMount {
    /** A path on the box, or `server:/export` for NFS. */
    source: string;
    /** Absolute path inside the container. */
    target: string;
    /** `none` (a bind mount, the default) or a file system type such as `nfs`. */
    type: string;
    options: string;
}

export interface LxcLimits {
    memoryMiB?: number;
    /** cgroup v2 cpu.weight, 1..10000 (100 is the default share). */
    cpuWeight?: number;
    pids?: number;
}

export interface LxcFile {
    /** Absolute path inside the container. */
    path: string;
    content: string;
    mode: string;
}

export interface LxcContainerInputs {
    connection: HostConnection;
    name: string;
    /** An LXC template (`busybox`, `alpine`, `download` ...); one of template or rootfs. */
    template?: string;
    templateArgs: string[];
    /** A root file system already on the box (a directory); one of template or rootfs. */
    rootfs?: string;
    network: LxcNic[];
    mounts: LxcMount[];
    autostart: boolean;
    limits: LxcLimits;
    files: LxcFile[];
    /** Commands (argv) run inside after the files are written. */
    commands: string[][];
    /** How long start waits for RUNNING, and stop for a clean halt. */
    timeoutSeconds: number;
    /** Take over an existing container of the same name that this stack did not create. */
    adopt: boolean;
}

export interface LxcContainerState extends LxcContainerInputs {
    /** RUNNING, STOPPED, FROZEN ... as lxc-info last said. */
    state: string;
    pid?: number;
    /** IPv4 addresses lxc-info reports. */
    addresses: string[];
    configPath: string;
}

// ---- check ----------------------------------------------------------------------------

const namePattern = /^[a-z][a-z0-9-]{0,62}$/;
const ifnamePattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;
const macPattern = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const ipv4 = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}";
const cidrPattern = new RegExp(`^${ipv4}/([0-9]|[12][0-9]|3[0-2])$`);
const ipv4Pattern = new RegExp(`^${ipv4}$`);
/** Absolute, no "..", no whitespace or '#' (an LXC config value ends at either). */
const pathPattern = /^\/[A-Za-z0-9_.@+:=\/-]*$/;
const mountSourcePattern = /^(\/[A-Za-z0-9_.@+:=\/-]*|[A-Za-z0-9.-]+:\/[A-Za-z0-9_.@+=\/-]*)$/;
const optionsPattern = /^[A-Za-z0-9_.,=:\/-]+$/;
const templatePattern = /^[a-z][a-z0-9_-]{0,31}$/;
const argPattern = /^[A-Za-z0-9_.,=:\/+@-]+$/;

function noDotDot(v: Validator, field: string, p: string | undefined): void {
    if (p && !isUnknown(p) && p.split("/").includes("..")) v.fail(field, "must not contain ..");
}

function checkNic(v: Validator, field: string, raw: unknown): LxcNic | undefined {
    if (isUnknown(raw)) return raw as LxcNic;
    if (!raw || typeof raw !== "object" || Array.isArray(raw)) return v.fail(field, 'must be { bridge, hwaddr?, ipv4?: "198.18.1.50/24", gateway? }');
    const n = raw as Record<string, unknown>;
    for (const k of Object.keys(n)) if (!["bridge", "hwaddr", "ipv4", "gateway"].includes(k)) v.fail(`${field}.${k}`, "is not a network field (bridge, hwaddr, ipv4, gateway)");
    const bridge = v.string(`${field}.bridge`, n.bridge, { pattern: ifnamePattern, patternHint: "is not an interface name (at most 15 characters)" });
    const hwaddr = v.string(`${field}.hwaddr`, typeof n.hwaddr === "string" ? n.hwaddr.toLowerCase() : n.hwaddr, { optional: true, pattern: macPattern, patternHint: "is not a MAC address like 52:54:00:12:34:56" });
    if (hwaddr && !isUnknown(hwaddr) && parseInt(hwaddr.slice(0, 2), 16) & 1) v.fail(`${field}.hwaddr`, `${hwaddr} is a multicast address; use a unicast one (even first octet)`);
    if (hwaddr === "00:00:00:00:00:00") v.fail(`${field}.hwaddr`, "00:00:00:00:00:00 is not a NIC's address");
    const addr = v.string(`${field}.ipv4`, n.ipv4, { optional: true, pattern: cidrPattern, patternHint: "is not an IPv4 address with prefix length like 198.18.1.50/24" });
    const gateway = v.string(`${field}.gateway`, n.gateway, { optional: true, pattern: ipv4Pattern, patternHint: "is not an IPv4 address" });
    if (gateway && !addr) v.fail(`${field}.gateway`, "needs ipv4 as well");
    if (!bridge) return undefined;
    const out: LxcNic = { bridge };
    if (hwaddr) out.hwaddr = hwaddr;
    if (addr) out.ipv4 = addr;
    if (gateway) out.gateway = gateway;
    return out;
}

function checkMount(v: Validator, field: string, raw: unknown): LxcMount | undefined {
    if (isUnknown(raw)) return raw as LxcMount;
    if (!raw || typeof raw !== "object" || Array.isArray(raw)) return v.fail(field, 'must be { source, target, type?, options? }');
    const m = raw as Record<string, unknown>;
    for (const k of Object.keys(m)) if (!["source", "target", "type", "options"].includes(k)) v.fail(`${field}.${k}`, "is not a mount field (source, target, type, options)");
    const source = v.string(`${field}.source`, m.source, { pattern: mountSourcePattern, patternHint: "is not an absolute path or server:/export" });
    const target = v.string(`${field}.target`, m.target, { pattern: pathPattern, patternHint: "is not an absolute path inside the container" });
    if (target === "/") v.fail(`${field}.target`, "must not be the container's root");
    noDotDot(v, `${field}.source`, source);
    noDotDot(v, `${field}.target`, target);
    const type = v.string(`${field}.type`, m.type ?? "none", { pattern: /^[a-z0-9]{1,16}$/, patternHint: "is not a file system type like none or nfs" });
    const options = v.string(`${field}.options`, m.options ?? (type === "none" ? "bind,create=dir" : "defaults,create=dir"), { pattern: optionsPattern, patternHint: "is not a mount option list like bind,ro,create=dir" });
    if (!source || !target || !type || !options) return undefined;
    return { source, target, type, options };
}

function checkFile(v: Validator, field: string, raw: unknown): LxcFile | undefined {
    if (isUnknown(raw)) return raw as LxcFile;
    if (!raw || typeof raw !== "object" || Array.isArray(raw)) return v.fail(field, "must be { path, content, mode? }");
    const f = raw as Record<string, unknown>;
    for (const k of Object.keys(f)) if (!["path", "content", "mode"].includes(k)) v.fail(`${field}.${k}`, "is not a file field (path, content, mode)");
    const path = v.string(`${field}.path`, f.path, { pattern: /^\/[A-Za-z0-9_.@+:=\/-]+$/, patternHint: "is not an absolute path inside the container" });
    noDotDot(v, `${field}.path`, path);
    const content = v.string(`${field}.content`, f.content, { allowEmpty: true, allowControl: true, maxLength: 1024 * 1024 });
    const mode = v.string(`${field}.mode`, f.mode ?? "0644", { pattern: /^0?[0-7]{3}$/, patternHint: "is not an octal mode like 0644" });
    if (!path || content === undefined || !mode) return undefined;
    return { path, content, mode: mode.padStart(4, "0") };
}

function checkCommand(v: Validator, field: string, raw: unknown): string[] | undefined {
    return v.list(field, raw, (f, a) => v.string(f, a, { allowEmpty: true, maxLength: 8192 }), { min: 1, max: 256 });
}

function checkLimits(v: Validator, raw: unknown): LxcLimits | undefined {
    if (raw === undefined || raw === null) return {};
    if (isUnknown(raw)) return raw as LxcLimits;
    if (typeof raw !== "object" || Array.isArray(raw)) return v.fail("limits", "must be { memoryMiB?, cpuWeight?, pids? }");
    const l = raw as Record<string, unknown>;
    for (const k of Object.keys(l)) if (!["memoryMiB", "cpuWeight", "pids"].includes(k)) v.fail(`limits.${k}`, "is not a limit (memoryMiB, cpuWeight, pids)");
    const out: LxcLimits = {};
    const memoryMiB = v.integer("limits.memoryMiB", l.memoryMiB, { optional: true, min: 4, max: 4 * 1024 * 1024 });
    const cpuWeight = v.integer("limits.cpuWeight", l.cpuWeight, { optional: true, min: 1, max: 10000 });
    const pids = v.integer("limits.pids", l.pids, { optional: true, min: 1, max: 4194304 });
    if (memoryMiB !== undefined) out.memoryMiB = memoryMiB;
    if (cpuWeight !== undefined) out.cpuWeight = cpuWeight;
    if (pids !== undefined) out.pids = pids;
    return out;
}

export function check(_olds: Record<string, unknown>, news: Record<string, unknown>): CheckOutcome<LxcContainerInputs> {
    const v = new Validator();
    const connection = checkHostConnection(v, "connection", news.connection);
    const name = v.string("name", news.name, { pattern: namePattern, patternHint: "must be lower-case letters, digits and '-', starting with a letter" });
    const template = v.string("template", news.template, { optional: true, pattern: templatePattern, patternHint: "is not an LXC template name like busybox" });
    const templateArgs = v.list("templateArgs", news.templateArgs, (f, a) => v.string(f, a, { pattern: argPattern, patternHint: "has characters a template argument does not need" }), { optional: true, max: 32 });
    const rootfs = v.string("rootfs", news.rootfs, { optional: true, pattern: pathPattern, patternHint: "is not an absolute directory path" });
    noDotDot(v, "rootfs", rootfs);
    if (rootfs === "/") v.fail("rootfs", "must not be the box's own root");
    if ((template === undefined) === (rootfs === undefined)) v.fail("template", "give exactly one of template or rootfs");
    if (rootfs !== undefined && Array.isArray(templateArgs) && templateArgs.length > 0) v.fail("templateArgs", "only go with a template");
    const network = v.list("network", news.network, (f, n) => checkNic(v, f, n), { optional: true, max: 8 });
    const mounts = v.list("mounts", news.mounts, (f, m) => checkMount(v, f, m), { optional: true, max: 64 });
    const autostart = v.boolean("autostart", news.autostart, true);
    const limits = checkLimits(v, news.limits);
    const files = v.list("files", news.files, (f, x) => checkFile(v, f, x), { optional: true, max: 256 });
    const commands = v.list("commands", news.commands, (f, c) => checkCommand(v, f, c), { optional: true, max: 64 });
    const timeoutSeconds = v.integer("timeoutSeconds", news.timeoutSeconds ?? 60, { min: 1, max: 3600 });
    const adopt = v.boolean("adopt", news.adopt, false);
    if (!v.ok || !connection || !name || !templateArgs || !network || !mounts || !limits || !files || !commands || timeoutSeconds === undefined) return { failures: v.failures };
    const inputs: LxcContainerInputs = { connection, name, templateArgs, network, mounts, autostart, limits, files, commands, timeoutSeconds, adopt };
    if (template !== undefined) inputs.template = template;
    if (rootfs !== undefined) inputs.rootfs = rootfs;
    return { inputs, failures: [] };
}

// ---- diff -------------------------------------------------------------------------------------

/** Fields written to the config: a change restarts the container. */
const configFields: (keyof LxcContainerInputs)[] = ["network", "mounts", "autostart", "limits"];
const provisionFields: (keyof LxcContainerInputs)[] = ["files", "commands"];

export function diff(_id: string, olds: LxcContainerState, news: LxcContainerInputs): DiffOutcome {
    const replaces: string[] = [];
    for (const f of ["name", "template", "rootfs"] as const) if (olds[f] !== news[f]) replaces.push(f);
    if (JSON.stringify(olds.templateArgs ?? []) !== JSON.stringify(news.templateArgs)) replaces.push("templateArgs");
    if (olds.connection?.host !== news.connection.host) replaces.push("connection.host");
    const changed = changedFields(olds, news, [...configFields, ...provisionFields, "connection", "timeoutSeconds", "adopt"]);
    const stopped = olds.state !== undefined && olds.state !== "RUNNING";
    // Same name on the same box: the old container must go before the new one is made.
    return { changes: replaces.length + changed.length > 0 || stopped, replaces, deleteBeforeReplace: true, stables: ["name", "configPath"] };
}

// ---- what runs on the box ------------------------------------------------------------------------

export function configPath(name: string): string {
    return `/var/lib/lxc/${name}/config`;
}

/** The managed block: network, mounts, autostart, limits; every value validated in check. */
export function managedBlock(c: LxcContainerInputs): string {
    const lines = [managedBegin];
    c.network.forEach((n, i) => {
        lines.push(`lxc.net.${i}.type = veth`, `lxc.net.${i}.link = ${n.bridge}`, `lxc.net.${i}.flags = up`, `lxc.net.${i}.name = eth${i}`);
        if (n.hwaddr) lines.push(`lxc.net.${i}.hwaddr = ${n.hwaddr}`);
        if (n.ipv4) lines.push(`lxc.net.${i}.ipv4.address = ${n.ipv4}`);
        if (n.gateway) lines.push(`lxc.net.${i}.ipv4.gateway = ${n.gateway}`);
    });
    // LXC takes the target relative to the container's root.
    for (const m of c.mounts) lines.push(`lxc.mount.entry = ${m.source} ${m.target.slice(1)} ${m.type} ${m.options} 0 0`);
    lines.push(`lxc.start.auto = ${c.autostart ? 1 : 0}`);
    if (c.limits.memoryMiB !== undefined) lines.push(`lxc.cgroup2.memory.max = ${c.limits.memoryMiB}M`);
    if (c.limits.cpuWeight !== undefined) lines.push(`lxc.cgroup2.cpu.weight = ${c.limits.cpuWeight}`);
    if (c.limits.pids !== undefined) lines.push(`lxc.cgroup2.pids.max = ${c.limits.pids}`);
    lines.push(managedEnd, "");
    return lines.join("\n");
}

// Replaces the managed block at the end of config $1 with stdin; reports unchanged.
const configScript = [
    "set -eu",
    'conf=$1',
    '[ -f "$conf" ] || { echo "no container config $conf" >&2; exit 3; }',
    'tmp=$(mktemp "$conf.XXXXXX")',
    `awk -v b="${managedBegin}" -v e="${managedEnd}" '$0==b{skip=1} !skip{print} $0==e{skip=0}' "$conf" >"$tmp"`,
    'cat >>"$tmp"',
    'if cmp -s "$tmp" "$conf"; then rm -f "$tmp"; echo =baremetal-unchanged=; else mv "$tmp" "$conf"; fi',
].join("\n");

/** The config of a container made from an existing rootfs (no template writes one). */
export function rootfsConfig(c: LxcContainerInputs): string {
    return [
        createdMarker(c.name),
        `# Container ${c.name} on the root file system ${c.rootfs}, written by pulumi-baremetal.`,
        "lxc.include = /usr/share/lxc/config/common.conf",
        `lxc.rootfs.path = dir:${c.rootfs}`,
        `lxc.uts.name = ${c.name}`,
        "",
    ].join("\n");
}

export function packagesFor(c: LxcContainerInputs, family: OsFamily): string[] {
    const nfs = c.mounts.some((m) => m.type.startsWith("nfs"));
    return family === "alpine"
        ? ["lxc", ...(c.template ? ["lxc-templates"] : []), ...(nfs ? ["nfs-utils"] : [])]
        : ["lxc", ...(c.template ? ["lxc-templates"] : []), ...(nfs ? ["nfs-common"] : [])];
}

/**
 * The first line of every config this resource makes (lxc-create copies the
 * comments of its -f file into the container's config). A create cut off before
 * the managed block was written finds this line on its re-run and carries on
 * with its own container instead of refusing it as someone else's.
 */
export function createdMarker(name: string): string {
    return `# pulumi-baremetal container ${name}: the managed block is written next`;
}

/**
 * Held (in this process and by flock on the box) around lxc-create and around
 * create's first look: a create re-run after a cut connection waits for an
 * lxc-create still running on the box instead of finding it half made.
 */
export function createLock(name: string): string {
    return `lxc-${name}`.slice(0, 32);
}

/** Packages, kernel modules for veth and bridges, then the container itself. */
export function planCreate(c: LxcContainerInputs, family: OsFamily): Plan {
    const empty = `/run/baremetal-lxc-${c.name}.conf`;
    const make: Plan = c.template
        ? [
              // An empty config for lxc-create: the box's default.conf must not add a network of its own.
              step.writeFile(empty, `${createdMarker(c.name)}\n# network and the rest: the managed block\n`),
              step.run(["lxc-create", "-q", "-n", c.name, "-t", c.template, "-f", empty, ...(c.templateArgs.length > 0 ? ["--", ...c.templateArgs] : [])], {
                  what: `create container ${c.name} from template ${c.template}`,
                  timeoutMs: 30 * 60_000,
                  lock: createLock(c.name),
              }),
              step.removeFile(empty),
          ]
        : [step.writeFile(configPath(c.name), rootfsConfig(c))];
    return [
        step.ensurePackages(...packagesFor(c, family)),
        step.run(["modprobe", "-a", "veth", "bridge"], { okExitCodes: [0, 1], changes: false, what: "load the veth and bridge modules" }),
        ...make,
        planConfig(c),
        step.persist(),
    ];
}

export function planConfig(c: LxcContainerInputs): Plan[number] {
    return step.run(["sh", "-c", configScript, "baremetal-lxc-config", configPath(c.name)], { stdin: managedBlock(c), what: `write ${c.name}'s network, mounts, autostart and limits` });
}

export function planStart(c: LxcContainerInputs): Plan {
    return [
        step.run(["lxc-start", "-n", c.name], { what: `start ${c.name}` }),
        step.run(["lxc-wait", "-n", c.name, "-s", "RUNNING", "-t", String(c.timeoutSeconds)], { timeoutMs: (c.timeoutSeconds + 30) * 1000, what: `wait until ${c.name} is RUNNING` }),
    ];
}

/** Clean halt (the container's init), killed after the timeout. */
export function planStop(c: Pick<LxcContainerInputs, "name" | "timeoutSeconds">): Plan {
    return [step.run(["lxc-stop", "-n", c.name, "-t", String(c.timeoutSeconds)], { okExitCodes: [0, 2], timeoutMs: (c.timeoutSeconds + 30) * 1000, what: `stop ${c.name} (up to ${c.timeoutSeconds}s, then kill)` })];
}

// Writes stdin to $1 inside the container with mode $2 (runs under lxc-attach).
const fileScript = 'mkdir -p "$(dirname "$1")" && cat >"$1" && chmod "$2" "$1"';

export function planProvision(c: LxcContainerInputs): Plan {
    return [
        ...c.files.map((f) => step.run(["lxc-attach", "-n", c.name, "--", "/bin/sh", "-c", fileScript, "baremetal-lxc-file", f.path, f.mode], { stdin: f.content, what: `write ${f.path} in ${c.name}` })),
        ...c.commands.map((argv) => step.run(["lxc-attach", "-n", c.name, "--", ...argv], { what: `run in ${c.name}: ${argv.join(" ").slice(0, 80)}` })),
    ];
}

/**
 * lxc-destroy deletes the rootfs too: right for a template's, wrong for a
 * rootfs that was on the box before (that only loses its config).
 */
export function planDestroy(c: Pick<LxcContainerInputs, "name" | "rootfs" | "timeoutSeconds">): Plan {
    return [
        ...planStop(c),
        c.rootfs
            ? step.run(["sh", "-c", 'rm -f "$1/config" && rmdir "$1"', "baremetal-lxc-forget", `/var/lib/lxc/${c.name}`], { what: `remove ${c.name}'s config (its rootfs ${c.rootfs} stays)` })
            : step.run(["lxc-destroy", "-n", c.name], { what: `destroy ${c.name} and its rootfs` }),
        step.persist(),
    ];
}

// ---- reading ------------------------------------------------------------------------------------

// lxc-info, then the config after a separator; exit 3 when there is no such container.
export const containerReadScript = ['[ -f "/var/lib/lxc/$1/config" ] || exit 3', 'lxc-info -n "$1" || exit 3', "echo ==config==", 'cat "/var/lib/lxc/$1/config"'].join("\n");

export interface LiveContainer {
    info: LxcInfo;
    config: string;
}

export function parseRead(text: string): LiveContainer {
    const { preamble: info, parts } = parseSections(text, ["config"] as const);
    return { info: parseLxcInfo(info), config: parts.config ?? "" };
}

async function readLive(host: Remote, name: string, waitForCreate = false): Promise<LiveContainer | undefined> {
    const lock = waitForCreate ? { lock: createLock(name), timeoutMs: 31 * 60_000 } : { timeoutMs: 60_000 };
    const out = await host.run(["sh", "-c", containerReadScript, "baremetal-lxc-read", name], { okExitCodes: [0, 3], what: `read container ${name}`, ...lock });
    return out.exitCode === 0 ? parseRead(out.stdout) : undefined;
}

/** The state: declared values, with what the config and lxc-info say overlaid (drift). */
export function stateOf(c: LxcContainerInputs, live: LiveContainer): LxcContainerState {
    const block = parseManagedBlock(live.config);
    const state: LxcContainerState = {
        ...c,
        state: live.info.state,
        addresses: live.info.ips.filter((ip) => ip.includes(".")),
        configPath: configPath(c.name),
    };
    if (live.info.pid !== undefined) state.pid = live.info.pid;
    if (block) {
        state.network = block.network;
        state.mounts = block.mounts;
        state.autostart = block.autostart;
        state.limits = block.limits;
    }
    return state;
}

function hostFor(conn: HostConnection, ctx: OperationContext): Remote {
    return ctx.remote(conn);
}

/**
 * Whether create made this container: its managed block, or the marker of a
 * create that was cut off before writing it, and the declared rootfs or template.
 */
export function madeByCreate(c: LxcContainerInputs, config: string): boolean {
    const marked = parseManagedBlock(config) !== undefined || config.split("\n").includes(createdMarker(c.name));
    return marked && sameSource(c, config);
}

/** Whether the config's rootfs is the one declared. */
function sameSource(c: LxcContainerInputs, config: string): boolean {
    const rootfs = configValues(config, "lxc.rootfs.path")[0] ?? "";
    return c.rootfs ? rootfs === `dir:${c.rootfs}` : rootfs === `dir:/var/lib/lxc/${c.name}/rootfs` && config.includes(`/lxc-${c.template}\n`);
}

async function create(inputs: LxcContainerInputs, ctx: OperationContext): Promise<{ id: string; outs: LxcContainerState }> {
    const host = hostFor(inputs.connection, ctx);
    const family = (await host.facts()).family;
    const existing = await readLive(host, inputs.name, true);
    if (existing) {
        const ours = madeByCreate(inputs, existing.config);
        if (!ours && !inputs.adopt) {
            throw new RefusedError(
                `container ${inputs.name} already exists on ${host.target} (${existing.info.state})`,
                "Set adopt: true on this LxcContainer to take it over (its managed config block is rewritten and it is restarted), or choose another name.",
            );
        }
        ctx.log.info(`${inputs.name}: ${ours ? "found the container an earlier run created" : "adopting the existing container"} on ${host.target}`);
        const changed = (await host.apply([step.ensurePackages(...packagesFor(inputs, family)), planConfig(inputs), step.persist()])).changed;
        // The earlier run may have been cut after the start, before or while provisioning: provision in any case.
        await converge(host, inputs, existing.info.state, changed, ctx, true);
    } else {
        await host.apply(planCreate(inputs, family));
        await converge(host, inputs, "STOPPED", true, ctx);
    }
    const live = await readLive(host, inputs.name);
    if (!live) throw new Error(`container ${inputs.name} was created on ${host.target} but cannot be read back`);
    return { id: `${inputs.name}@${inputs.connection.host}`, outs: stateOf(inputs, live) };
}

/** (Re)starts the container when needed, then provisions it (or provisions it anyway). */
async function converge(host: Remote, c: LxcContainerInputs, state: string, configChanged: boolean, ctx: OperationContext, provisionAnyway = false): Promise<void> {
    if (state === "RUNNING" && configChanged) {
        ctx.log.info(`${c.name}: config changed; restarting`);
        await host.apply(planStop(c));
    }
    if (state !== "RUNNING" || configChanged) await host.apply(planStart(c));
    if (state !== "RUNNING" || configChanged || provisionAnyway) await host.apply(planProvision(c));
}

/**
 * Whether the running container must restart: its config changed now, or it
 * differs from the last applied one (olds) because an earlier attempt wrote the
 * config and was cut off before the restart that applies it.
 */
export function needsRestart(olds: LxcContainerState, news: LxcContainerInputs, writtenNow: boolean): boolean {
    return writtenNow || changedFields(olds, news, configFields).length > 0;
}

async function read(_id: string, props: LxcContainerState, ctx: OperationContext): Promise<LxcContainerState | undefined> {
    const live = await readLive(hostFor(props.connection, ctx), props.name);
    return live ? stateOf(props, live) : undefined;
}

async function update(_id: string, olds: LxcContainerState, news: LxcContainerInputs, ctx: OperationContext): Promise<LxcContainerState> {
    const host = hostFor(news.connection, ctx);
    const family = (await host.facts()).family;
    const before = await readLive(host, news.name);
    if (!before) throw new Error(`container ${news.name} no longer exists on ${host.target}; run \`pulumi refresh\` and then \`pulumi up\` to create it again`);
    const written = (await host.apply([step.ensurePackages(...packagesFor(news, family)), planConfig(news), step.persist()])).changed;
    const configChanged = needsRestart(olds, news, written);
    const running = before.info.state === "RUNNING";
    await converge(host, news, before.info.state, configChanged, ctx);
    // Running and not restarted: provision only when what is provisioned changed.
    if (running && !configChanged && changedFields(olds, news, provisionFields).length > 0) await host.apply(planProvision(news));
    const live = await readLive(host, news.name);
    if (!live) throw new Error(`container ${news.name} disappeared from ${host.target} during the update`);
    return stateOf(news, live);
}

async function remove(_id: string, props: LxcContainerState, ctx: OperationContext): Promise<void> {
    const host = hostFor(props.connection, ctx);
    const live = await readLive(host, props.name);
    if (!live) {
        ctx.log.info(`${props.name}: already gone from ${host.target}`);
        return;
    }
    await host.apply(planDestroy(props));
}

export const lxcContainer: ResourceKind<LxcContainerInputs, LxcContainerState> = { check, diff, create, read, update, delete: remove };
