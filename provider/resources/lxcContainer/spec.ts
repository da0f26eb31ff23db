// LxcContainer, part spec: the inputs and state, the nested object types, the
// field table and the validators it names.
import { KindSpec, ObjectType, t } from "../../core/fields";
import { isUnknown, Validator } from "../../core/validate";
import { connectionField, HostConnection } from "../../host";
import type { LxcLimits, LxcMount, LxcNic } from "../../parsers/lxc";

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

// ---- the field table ------------------------------------------------------------------------

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
    example: `new LxcContainer("web", {
    connection,
    name: "web",
    template: "busybox",
    network: [{ bridge: "br-lan", ipv4: "198.18.1.50/24", gateway: "198.18.1.1" }],
    mounts: [{ source: "/srv/www", target: "/www" }],
    files: [{ path: "/www/index.html", content: "hello\\n" }],
    commands: [["/bin/busybox", "httpd", "-p", "80", "-h", "/www"]],
});`,
    exampleHost: "198.18.1.20",
    deleteBeforeReplace: true,
    inputs: {
        connection: connectionField("The guest or box that runs the container."),
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
