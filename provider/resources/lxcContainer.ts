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
import { checkByTable, diffByTable, erase, KindSpec, ObjectType, t } from "../core/fields";
import { isUnknown, Validator } from "../core/validate";
import { connectionType, HostConnection, objectLock, Plan, Remote, step } from "../host";
import type { ObjectLockName, OsFamily, Step } from "../host";
import { configValues, LxcInfo, LxcLimits, LxcMount, LxcNic, managedBegin, managedEnd, parseLxcInfo, parseManagedBlock } from "../parsers/lxc";
import { parseSections } from "../parsers/sections";

// The network, mount and limit entries are the managed block's: their shapes live
// with its parser (parsers never import a resource module).
export type { LxcLimits, LxcMount, LxcNic };

export interface LxcFile {
    path: string;
    content: string;
    mode: string;
}

export interface LxcContainerInputs {
    connection: HostConnection;
    name: string;
    template?: string;
    templateArgs: string[];
    rootfs?: string;
    network: LxcNic[];
    mounts: LxcMount[];
    autostart: boolean;
    limits: LxcLimits;
    files: LxcFile[];
    commands: string[][];
    timeoutSeconds: number;
    adopt: boolean;
}

export interface LxcContainerState extends LxcContainerInputs {
    state: string;
    pid?: number;
    addresses: string[];
    configPath: string;
}

// ---- the field table and check ------------------------------------------------------------

const namePattern = /^[a-z][a-z0-9-]{0,62}$/;
const mountSourcePattern = /^(\/[A-Za-z0-9_.@+:=\/-]*|[A-Za-z0-9.-]+:\/[A-Za-z0-9_.@+=\/-]*)$/;
const optionsPattern = /^[A-Za-z0-9_.,=:\/-]+$/;
const templatePattern = /^[a-z][a-z0-9_-]{0,31}$/;
const argPattern = /^[A-Za-z0-9_.,=:\/+@-]+$/;

const nicType: ObjectType = {
    name: "LxcNic",
    doc: "A NIC of the container: a veth pair whose host end is on a bridge of the box; `eth0`, `eth1` ... inside, in order.",
    fields: {
        bridge: {
            type: t.string(),
            required: true,
            doc: "The bridge on the box: a Linux or Open vSwitch bridge (LXC handles both).",
            check: (v, f, x) => v.interfaceName(f, x),
        },
        hwaddr: { type: t.string(), doc: "Fixed MAC address (lower-cased by check); LXC picks one when omitted.", check: (v, f, x) => v.mac(f, x) },
        ipv4: {
            type: t.string(),
            doc: "Static IPv4 address with prefix length, e.g. `198.18.1.50/24`.",
            check: (v, f, x) => v.ipv4WithPrefix(f, x),
        },
        gateway: { type: t.string(), doc: "Default gateway (an IPv4 address); needs ipv4.", check: (v, f, x) => v.ipv4(f, x) },
    },
};

const mountType: ObjectType = {
    name: "LxcMount",
    doc: "A mount inside the container: a bind mount of a path on the box, or an NFS share.",
    fields: {
        source: { type: t.string(), required: true, doc: "A path on the box, or `server:/export` for NFS.", check: checkMountSource },
        target: { type: t.string(), required: true, doc: "Absolute path inside the container.", check: checkMountTarget },
        type: {
            type: t.string(),
            default: "none",
            doc: "`none` for a bind mount, or a file system type such as `nfs`.",
            rule: { pattern: /^[a-z0-9]{1,16}$/, patternHint: "is not a file system type like none or nfs" },
        },
        options: {
            type: t.string(),
            defaultDoc: "`bind,create=dir` for a bind mount, `defaults,create=dir` otherwise",
            doc: "Mount options, comma-separated.",
            rule: { pattern: optionsPattern, patternHint: "is not a mount option list like bind,ro,create=dir" },
        },
    },
};

const limitsType: ObjectType = {
    name: "LxcLimits",
    doc: "cgroup v2 limits of the container; each one left out is not limited.",
    fields: {
        memoryMiB: { type: t.integer, doc: "Memory limit in MiB (`memory.max`).", rule: { min: 4, max: 4 * 1024 * 1024 } },
        cpuWeight: { type: t.integer, doc: "CPU share (`cpu.weight`), 1 to 10000; 100 is the default share.", rule: { min: 1, max: 10000 } },
        pids: { type: t.integer, doc: "Most processes at once (`pids.max`).", rule: { min: 1, max: 4194304 } },
    },
};

const fileType: ObjectType = {
    name: "LxcFile",
    doc: "A file written inside the container.",
    fields: {
        path: { type: t.string(), required: true, doc: "Absolute path inside the container.", check: checkFilePath },
        content: { type: t.string(), required: true, doc: "The file's content, as is.", rule: { allowEmpty: true, allowControl: true, maxLength: 1024 * 1024 } },
        mode: { type: t.string(), default: "0644", doc: "Octal mode, e.g. `0600`.", check: checkMode },
    },
};

export const spec: KindSpec<LxcContainerInputs, LxcContainerState> = {
    kind: "LxcContainer",
    doc: "A system container in a guest or box (the seed runs every service in one: DNS, squid, web, LDAP, MariaDB ...), created from an LXC template (`busybox` needs no internet) or from a root file system already on the box, and read through `lxc-info`. Its network, mounts, autostart and limits are a managed block at the end of its LXC config: a change restarts it. Files and commands provision it. A change of template, template arguments, rootfs, name or host replaces it, the old one first. Delete stops it (gracefully, then killed after the timeout) and destroys it; a container made from a given rootfs keeps that directory.",
    id: "`NAME@HOST`, e.g. `dns01@198.18.1.20`.",
    example: `import { LxcContainer } from "pulumi-baremetal";

new LxcContainer("web", {
    connection: { host: "198.18.1.20", privateKey: key, hostKey: "ssh-ed25519 AAAA..." },
    name: "web",
    template: "busybox",
    network: [{ bridge: "br-lan", ipv4: "198.18.1.50/24", gateway: "198.18.1.1" }],
    mounts: [{ source: "/srv/www", target: "/www" }],
    files: [{ path: "/www/index.html", content: "hello\\n" }],
    commands: [["/bin/busybox", "httpd", "-p", "80", "-h", "/www"]],
});`,
    deleteBeforeReplace: true,
    inputs: {
        connection: { type: t.object(connectionType), required: true, replaceOn: ["host"], doc: "The guest or box that runs the container." },
        name: {
            type: t.string(),
            required: true,
            change: "replace",
            doc: "Container name: lower-case letters, digits and '-', at most 63 characters (`/var/lib/lxc/<name>`).",
            rule: { pattern: namePattern, patternHint: "must be lower-case letters, digits and '-', starting with a letter" },
        },
        template: {
            type: t.string(),
            change: "replace",
            doc: "An LXC template (`busybox`, which needs no internet, `alpine`, `download` ...). Give exactly one of template or rootfs.",
            rule: { pattern: templatePattern, patternHint: "is not an LXC template name like busybox" },
        },
        templateArgs: {
            type: t.array(t.string()),
            default: [],
            change: "replace",
            doc: "Arguments for the template (passed after `--`); only with a template.",
            rule: { maxItems: 32, pattern: argPattern, patternHint: "has characters a template argument does not need" },
        },
        rootfs: {
            type: t.string(),
            change: "replace",
            doc: "A root file system directory already on the box, instead of a template; kept on delete (it was not ours to delete).",
            check: checkRootfs,
        },
        network: { type: t.array(t.object(nicType)), default: [], doc: "NICs (at most 8); a change restarts the container.", rule: { maxItems: 8 } },
        mounts: { type: t.array(t.object(mountType)), default: [], doc: "Mounts (at most 64), e.g. NFS shares; a change restarts the container.", rule: { maxItems: 64 } },
        autostart: { type: t.boolean, default: true, doc: "Start the container when the box boots (`lxc.start.auto`); a change restarts it." },
        limits: { type: t.object(limitsType), default: {}, doc: "cgroup v2 limits; a change restarts the container." },
        files: {
            type: t.array(t.object(fileType)),
            default: [],
            doc: "Files (at most 256) written inside after every start this resource does, and when they change.",
            rule: { maxItems: 256 },
        },
        commands: {
            type: t.array(t.array(t.string())),
            default: [],
            doc: "Commands (argv, at most 64) run inside after the files: after every start this resource does (create, a restart for a config change), when they change, and when a create finds its own container (a re-run after a cut). Keep them idempotent.",
            check: checkCommands,
        },
        timeoutSeconds: { type: t.integer, default: 60, doc: "Seconds start waits for RUNNING, and stop for a clean halt before the kill.", rule: { min: 1, max: 3600 } },
        adopt: { type: t.boolean, default: false, doc: "Take over an existing container of the same name that this stack did not create." },
    },
    outputs: {
        state: { type: t.string(), required: true, doc: "RUNNING, STOPPED, FROZEN ... as lxc-info last said; an update starts a container found stopped." },
        pid: { type: t.integer, doc: "PID of the container's init on the box, while it runs." },
        addresses: { type: t.array(t.string()), required: true, doc: "IPv4 addresses lxc-info reports." },
        configPath: { type: t.string(), required: true, stable: true, doc: "The container's LXC config: `/var/lib/lxc/<name>/config`." },
    },
};

function noDotDot(v: Validator, field: string, p: string | undefined): string | undefined {
    return p && !isUnknown(p) && p.split("/").includes("..") ? v.fail(field, "must not contain ..") : p;
}

function checkMountSource(v: Validator, field: string, value: unknown): string | undefined {
    return noDotDot(v, field, v.string(field, value, { pattern: mountSourcePattern, patternHint: "is not an absolute path or server:/export" }));
}

function checkMountTarget(v: Validator, field: string, value: unknown): string | undefined {
    const target = v.absolutePath(field, value, { where: "inside the container", allowRoot: true });
    return target === "/" ? v.fail(field, "must not be the container's root") : target;
}

function checkFilePath(v: Validator, field: string, value: unknown): string | undefined {
    return v.absolutePath(field, value, { where: "inside the container" });
}

/** Octal, normalised to four digits (`644` -> `0644`). */
function checkMode(v: Validator, field: string, value: unknown): string | undefined {
    const mode = v.string(field, value, { pattern: /^0?[0-7]{3}$/, patternHint: "is not an octal mode like 0644" });
    return mode === undefined || isUnknown(mode) ? mode : mode.padStart(4, "0");
}

function checkRootfs(v: Validator, field: string, value: unknown): string | undefined {
    const rootfs = v.absolutePath(field, value, { where: "on the box", allowRoot: true });
    return rootfs === "/" ? v.fail(field, "must not be the box's own root") : rootfs;
}

/** Each command a non-empty argv; its words are data (the host layer quotes them). */
function checkCommands(v: Validator, field: string, value: unknown): string[][] | undefined {
    const argv = (f: string, c: unknown) => v.list(f, c, (g, a) => v.string(g, a, { allowEmpty: true, maxLength: 8192 }), { min: 1, max: 256 });
    return v.list(field, value, argv, { max: 64 });
}

/** A mount's options when left out: what its type needs. */
function withDefaultOptions(m: LxcMount): LxcMount {
    if (typeof m !== "object" || (m as Partial<LxcMount>).options !== undefined) return m;
    return { ...m, options: m.type === "none" ? "bind,create=dir" : "defaults,create=dir" };
}

export function check(_olds: Record<string, unknown>, news: Record<string, unknown>): CheckOutcome<LxcContainerInputs> {
    const v = new Validator();
    const inputs = checkByTable(v, erase(spec), news) as Partial<LxcContainerInputs>;
    const { rootfs, templateArgs, network, mounts } = inputs;
    // By what was sent, so a malformed template is one error, not also "give exactly one".
    const given = (k: string) => news[k] !== undefined && news[k] !== null;
    if (given("template") === given("rootfs")) v.fail("template", "give exactly one of template or rootfs");
    if (rootfs !== undefined && Array.isArray(templateArgs) && templateArgs.length > 0) v.fail("templateArgs", "only go with a template");
    if (Array.isArray(network)) {
        network.forEach((n, i) => {
            if (typeof n === "object" && n.gateway !== undefined && n.ipv4 === undefined) v.fail(`network[${i}].gateway`, "needs ipv4 as well");
        });
    }
    if (Array.isArray(mounts)) inputs.mounts = mounts.map(withDefaultOptions);
    if (!v.ok) return { failures: v.failures };
    return { inputs: inputs as LxcContainerInputs, failures: [] };
}

// ---- diff -------------------------------------------------------------------------------------

/** Fields written to the config: a change restarts the container. */
const configFields: (keyof LxcContainerInputs)[] = ["network", "mounts", "autostart", "limits"];
const provisionFields: (keyof LxcContainerInputs)[] = ["files", "commands"];

export function diff(_id: string, olds: LxcContainerState, news: LxcContainerInputs): DiffOutcome {
    const d = diffByTable(erase(spec), olds as unknown as Record<string, unknown>, news as unknown as Record<string, unknown>);
    // A container found stopped (refresh) is started again by an update.
    const stopped = olds.state !== undefined && olds.state !== "RUNNING";
    // Same name on the same box: the old container must go before the new one is made.
    return { changes: d.changed.length > 0 || d.replaces.length > 0 || stopped, replaces: d.replaces, deleteBeforeReplace: true, stables: d.stables };
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
export function createLock(name: string): ObjectLockName {
    return objectLock("lxc-create", name);
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

/** The step create and update ask about: "config" (the managed block changed, so a running container restarts). */
export type LxcContainerStep = "config";

export function planConfig(c: LxcContainerInputs): Step<LxcContainerStep> {
    return step.run(["sh", "-c", configScript, "baremetal-lxc-config", configPath(c.name)], {
        stdin: managedBlock(c),
        what: `write ${c.name}'s network, mounts, autostart and limits`,
        tag: "config",
    });
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
        const changed = (await host.apply([step.ensurePackages(...packagesFor(inputs, family)), planConfig(inputs), step.persist()])).stepChanged("config");
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
    const written = (await host.apply([step.ensurePackages(...packagesFor(news, family)), planConfig(news), step.persist()])).stepChanged("config");
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

export const lxcContainer: ResourceKind<LxcContainerInputs, LxcContainerState> = { spec, check, diff, create, read, update, delete: remove };
