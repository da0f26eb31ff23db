// OS families and their adapters. A step says "install nbd-server"; the adapter
// says `apk add nbd-server` on Alpine and `apt-get install nbd-server` on Debian.
// Every command is an argv; the few multi-command steps run a constant script
// with `sh -c SCRIPT NAME ARGS...`, values reaching it only as positional
// parameters ("$1"), never spliced into the script text.
import { initSystemOf, OsFamily } from "./family";
import { LockName, hostLocks, remoteLockPath } from "./locks";
import { Plan, Step, describeStep, ServiceAction } from "./plan";
import { MaybeSecret, reveal } from "./redact";
import { displayCommandLine } from "./quote";
import { renderOpenrcScript, renderSystemdUnit, ServiceRef, serviceFilePath, serviceNameOn, ServiceSpec, serviceStateShell, systemdUnitName } from "./service";

export type { OsFamily } from "./family";

export interface OsFacts {
    family: OsFamily;
    /** ID from /etc/os-release, e.g. "alpine", "debian", "ubuntu". */
    id: string;
    versionId?: string;
    prettyName?: string;
    /**
     * An OpenRC box whose root is a tmpfs: changes are lost at reboot unless
     * persisted (`lbu commit` on Alpine's diskless or data-disk mode; the /etc
     * archive of the "debian-openrc" family, see persistEtcScript).
     */
    diskless: boolean;
}

/** One command of a lowered step. */
export interface RemoteCommand {
    argv: MaybeSecret[];
    stdin?: MaybeSecret;
    lock?: LockName;
    okExitCodes?: number[];
    timeoutMs?: number;
    /** false when the command only reads. */
    changes?: boolean;
}

/** Printed as the last stdout line by a command that found nothing to do. */
export const unchangedMarker = "=baremetal-unchanged=";

export interface OsAdapter {
    readonly family: OsFamily;
    readonly diskless: boolean;
    /** The commands that carry out one step (possibly none). */
    lower(step: Step): RemoteCommand[];
    /** argv run under the host-wide flock for `lock`. */
    withLock(lock: LockName, argv: MaybeSecret[]): MaybeSecret[];
}

/**
 * The command that tells the family apart: /etc/os-release names the
 * distribution; the init system that runs is probed (systemd's /run/systemd/system,
 * OpenRC's /run/openrc/softlevel: the runlevel it booted into), not guessed from
 * the name; /proc/mounts tells whether the root is a tmpfs (diskless).
 */
export const detectArgv = [
    "sh",
    "-c",
    `cat /etc/os-release; echo ${unchangedMarker}init; if [ -d /run/systemd/system ]; then echo systemd; elif [ -f /run/openrc/softlevel ]; then echo openrc; fi; echo ${unchangedMarker}mounts; cat /proc/mounts`,
];

/** Parses the output of detectArgv; a string says why the host is not supported. */
export function parseOsFacts(output: string): OsFacts | string {
    const [head, mounts = ""] = output.split(`${unchangedMarker}mounts`);
    const [osRelease, initText] = head.split(`${unchangedMarker}init`);
    const fields = parseOsRelease(osRelease);
    const id = fields.ID ?? "";
    const like = (fields.ID_LIKE ?? "").split(/\s+/);
    const init = (initText ?? "").trim();
    // Alpine is always OpenRC here; a Debian-like box is systemd unless OpenRC is what runs
    // (an older probe's output, without the init part, means systemd as before).
    const family: OsFamily | undefined =
        id === "alpine" || like.includes("alpine") ? "alpine" : id === "debian" || like.includes("debian") ? (init === "openrc" ? "debian-openrc" : "debian") : undefined;
    if (!family) return `/etc/os-release says ID=${JSON.stringify(id)}${fields.ID_LIKE ? ` ID_LIKE=${JSON.stringify(fields.ID_LIKE)}` : ""}, which is neither Alpine nor Debian-like`;
    const rootType = rootFsType(mounts);
    return {
        family,
        id,
        versionId: fields.VERSION_ID,
        prettyName: fields.PRETTY_NAME,
        diskless: initSystemOf(family) === "openrc" && (rootType === "tmpfs" || rootType === "ramfs"),
    };
}

/** KEY=value lines, values optionally quoted (os-release(5)). */
export function parseOsRelease(text: string): Record<string, string> {
    const out: Record<string, string> = {};
    for (const line of text.split("\n")) {
        const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
        if (!m) continue;
        let v = m[2];
        if (/^".*"$/.test(v)) v = v.slice(1, -1).replace(/\\(["\\$`])/g, "$1");
        else if (/^'.*'$/.test(v)) v = v.slice(1, -1);
        out[m[1]] = v;
    }
    return out;
}

/** The type of the file system mounted last on "/" (the one that is visible). */
function rootFsType(mounts: string): string | undefined {
    let type: string | undefined;
    for (const line of mounts.split("\n")) {
        const [, mountpoint, fstype] = line.trim().split(/\s+/);
        if (mountpoint === "/") type = fstype;
    }
    return type;
}

// Constant scripts. Arguments arrive as "$1"...; nothing is ever spliced in.

/**
 * Atomic write: the content goes to a temporary file beside the target (same
 * file system, so `mv` is a rename), gets its mode and owner, then replaces the
 * target in one step. A reader never sees a half-written file. An identical file
 * is left alone and reported unchanged.
 *
 * The byte count travels as an argument because a connection cut while the
 * content is streaming ends `cat` with a clean end of input: without the count
 * the script would install the truncated file (found by the lab's fault tests).
 */
export const writeFileScript = atomicWriteScript([`  echo ${unchangedMarker}; exit 0`], []);

/**
 * The atomic write with what to do when the file is already so (`sameFile`,
 * lines that must end the script) and after it was replaced (`afterWrite`).
 *
 * Every program it starts is a fork and an exec, tens of milliseconds on a small
 * box and more under emulation, and a plan writes dozens of files: the directory is
 * taken by the shell itself, one stat tells the received size and the target's size,
 * mode and owner, and the contents are compared only when those agree.
 */
function atomicWriteScript(sameFile: string[], afterWrite: string[]): string {
    return [
        "set -eu",
        'target=$1; mode=$2; owner=$3; want_mode=$4; want_bytes=$5',
        'dir=${target%/*}; dir=${dir:-/}',
        '[ -d "$dir" ] || mkdir -p "$dir"',
        'tmp=$(mktemp "$dir/.baremetal-write.XXXXXX")',
        "trap 'rm -f \"$tmp\"' EXIT",
        'cat >"$tmp"',
        // `size mode user:group` of the temporary file, then of the target when there is one
        // (stat names the missing one on stderr and fails; the first line is there all the same)
        "baremetal_stats() { set -- $(stat -c '%s %a %U:%G' \"$tmp\" \"$target\" 2>/dev/null || true); got=$1; tmp_owner=$3; target_stat=\"${4:-} ${5:-} ${6:-}\"; }",
        "baremetal_stats",
        'if [ "$got" -ne "$want_bytes" ]; then',
        '  echo "received $got of $want_bytes bytes for $target (the input was cut short); $target was left as it was" >&2',
        "  exit 75",
        "fi",
        'if [ -f "$target" ] && [ ! -L "$target" ] && [ "$target_stat" = "$want_bytes $want_mode $owner" ] && cmp -s "$tmp" "$target"; then',
        ...sameFile,
        "fi",
        'chmod "$mode" "$tmp"',
        '[ "$tmp_owner" = "$owner" ] || chown "$owner" "$tmp"',
        'mv -f "$tmp" "$target"',
        "trap - EXIT",
        ...afterWrite,
    ].join("\n");
}

/**
 * Whether systemd holds the unit named $1 as it is on disk, so that no daemon-reload is
 * needed. `systemctl show` loads a unit it has not loaded yet (a new unit file is read on
 * first use: systemd 252 looks again once its unit directories changed), and says
 * NeedDaemonReload=yes for a loaded unit whose file changed since. A reload costs seconds
 * on a small box (3.5 s on the lab's, all of its CPU), and most installs are of a new unit.
 * Measured on the lab's systemd 252: a new file reads `LoadState=loaded`,
 * `NeedDaemonReload=no` at once; a changed one `NeedDaemonReload=yes`.
 */
export const unitCurrentShell = [
    "baremetal_unit_current() {",
    '  s=$(systemctl show -p LoadState -p NeedDaemonReload "$1" 2>/dev/null) || return 1',
    '  case "$s" in *LoadState=loaded*) ;; *) return 1 ;; esac',
    '  case "$s" in *NeedDaemonReload=no*) return 0 ;; esac',
    "  return 1",
    "}",
].join("\n");

/**
 * Writes a systemd unit like writeFileScript ($6: the unit systemctl names) and
 * reloads systemd only when it holds another version than the file: after the
 * file changed under a loaded unit, or when the file is already so but systemd
 * holds an older one (a run cut between the write and the reload). A new unit
 * needs no reload (unitCurrentShell).
 */
export const installUnitScript = [
    unitCurrentShell,
    atomicWriteScript(
        [
            `  if baremetal_unit_current "$6"; then echo ${unchangedMarker}; exit 0; fi`,
            "  systemctl daemon-reload; exit 0",
        ],
        ['baremetal_unit_current "$6" || systemctl daemon-reload'],
    ),
].join("\n");

export const removeFileScript = [
    "set -eu",
    `if [ -e "$1" ] || [ -L "$1" ]; then rm -f "$1"; else echo ${unchangedMarker}; fi`,
].join("\n");

/**
 * flock(1) on a file under /run/lock keeps other processes (a second `pulumi up`,
 * an operator's shell using the same convention) out while the command runs.
 */
const lockScript = 'mkdir -p /run/lock && exec flock "$@"';

/**
 * No flock -w (BusyBox's flock lacks it): the wait is bounded by the step's
 * timeout, whose error names a lock as the usual suspect.
 */
function underFlock(lock: LockName, argv: MaybeSecret[]): MaybeSecret[] {
    return ["sh", "-c", lockScript, "baremetal-lock", remoteLockPath(lock), ...argv];
}

/** Installs only what is missing, so a re-run does not touch apt at all. */
export const debianInstallScript = [
    "set -eu",
    "missing=",
    'for p in "$@"; do',
    '  dpkg-query -W -f=\'${Status}\' "$p" 2>/dev/null | grep -q " installed$" || missing="$missing $p"',
    "done",
    `[ -n "$missing" ] || { echo ${unchangedMarker}; exit 0; }`,
    "export DEBIAN_FRONTEND=noninteractive",
    // Package names are validated ([a-z0-9+._-]), so the unquoted word split is safe.
    "apt_install() { apt-get -q -y -o DPkg::Lock::Timeout=300 install --no-install-recommends $missing; }",
    // Stale or missing package lists are the usual cause of "unable to locate package".
    "apt_install || { apt-get -q -y -o DPkg::Lock::Timeout=300 update && apt_install; }",
].join("\n");

const alpineEnableScript = `[ -L "/etc/runlevels/$2/$1" ] && echo ${unchangedMarker} || rc-update add "$1" "$2"`;
const alpineDisableScript = `if [ -L "/etc/runlevels/$2/$1" ]; then rc-update del "$1" "$2"; else echo ${unchangedMarker}; fi`;

/** The positional parameters of writeFileScript (and installUnitScript): target, mode, owner, mode as stat prints it, byte count. */
function writeArgs(path: string, content: MaybeSecret, mode: string, owner: string): string[] {
    const wantMode = String(parseInt(mode, 8).toString(8));
    const bytes = String(Buffer.byteLength(reveal(content), "utf8"));
    return [path, mode, owner, wantMode, bytes];
}

function writeFileCommand(path: string, content: MaybeSecret, mode: string, owner: string): RemoteCommand {
    return { argv: ["sh", "-c", writeFileScript, "baremetal-write", ...writeArgs(path, content, mode, owner)], stdin: content };
}

// Services (service.ts renders their files). Stopping comes first, outside the
// services lock (a graceful stop may take minutes); the links and the file are
// then changed under it.

/** $1: the service. Stops it unless it is already down. */
function stopIfRunningScript(stop: string): string {
    return [serviceStateShell, `case "$(baremetal_service_state "$1")" in inactive|failed|unknown) echo ${unchangedMarker} ;; *) ${stop} ;; esac`].join("\n");
}

export const debianStopServiceScript = stopIfRunningScript('systemctl stop "$1"');
export const alpineStopServiceScript = stopIfRunningScript('rc-service "$1" stop');

/**
 * $1 the unit, $2 its file ("" for an instance: its template serves the other instances).
 * Disabling only unlinks (--no-reload: read at boot). systemd is reloaded only when the
 * unit's file was removed and systemd still holds the unit: a stopped unit nothing refers
 * to is dropped by systemd itself, and a reload costs seconds on a small box (3.5 s on the lab's).
 */
export const debianRemoveServiceScript = [
    "set -eu",
    "c=; removed=",
    'if systemctl is-enabled --quiet "$1" 2>/dev/null; then systemctl --quiet --no-reload disable "$1"; c=1; fi',
    'if [ -n "$2" ] && { [ -e "$2" ] || [ -L "$2" ]; }; then rm -f "$2"; c=1; removed=1; fi',
    `[ -n "$c" ] || { echo ${unchangedMarker}; exit 0; }`,
    'if [ -n "$removed" ] && [ "$(systemctl show -p LoadState --value "$1" 2>/dev/null || true)" = loaded ]; then systemctl daemon-reload; fi',
].join("\n");

/** $1 the service, $2 its script, $3 the runlevel it was enabled in. */
export const alpineRemoveServiceScript = [
    "set -eu",
    "c=",
    'if [ -L "/etc/runlevels/$3/$1" ]; then rc-update del "$1" "$3"; c=1; fi',
    'if [ -e "$2" ] || [ -L "$2" ]; then rm -f "$2"; c=1; fi',
    `[ -n "$c" ] || echo ${unchangedMarker}`,
].join("\n");

function installUnitCommand(spec: ServiceSpec): RemoteCommand {
    const path = serviceFilePath(spec, "debian");
    const content = renderSystemdUnit(spec);
    return { argv: ["sh", "-c", installUnitScript, "baremetal-install-unit", ...writeArgs(path, content, "0644", "root:root"), systemdUnitName(spec)], stdin: content };
}

/** The systemd counterpart of an Alpine /etc/local.d script. */
function bootService(name: string): ServiceSpec {
    return {
        name: `baremetal-local-${name}`,
        description: `pulumi-baremetal boot script ${name}`,
        type: "oneshot",
        command: [`/etc/baremetal/local.d/${name}.start`],
    };
}

/** Steps that are the same on every family. */
function lowerCommon(step: Extract<Step, { kind: "run" | "writeFile" | "removeFile" }>): RemoteCommand[] {
    switch (step.kind) {
        case "run":
            return [{ argv: step.argv, stdin: step.stdin, lock: step.lock, okExitCodes: step.okExitCodes, timeoutMs: step.timeoutMs, changes: step.changes }];
        case "writeFile":
            return [writeFileCommand(step.path, step.content, step.mode, step.owner)];
        case "removeFile":
            return [{ argv: ["sh", "-c", removeFileScript, "baremetal-remove", step.path] }];
    }
}

/**
 * What every family lowers the same way; a family says only how it installs packages,
 * runs service actions, installs and removes service files, runs boot scripts and persists.
 */
abstract class FamilyAdapter implements OsAdapter {
    abstract readonly family: OsFamily;
    abstract readonly diskless: boolean;

    lower(step: Step): RemoteCommand[] {
        switch (step.kind) {
            case "run":
            case "writeFile":
            case "removeFile":
                return lowerCommon(step);
            case "ensurePackages":
                return [this.installPackages(step.names)];
            case "service":
                return [this.serviceCommand(step.action, step.name)];
            case "installService":
                return [this.installService(step.service)];
            case "uninstallService":
                return this.uninstallService(step.service);
            case "bootScript":
                return this.bootScript(step.name, step.content);
            case "persist":
                return this.persist();
            default:
                return unreachable(step);
        }
    }

    withLock(lock: LockName, argv: MaybeSecret[]): MaybeSecret[] {
        return underFlock(lock, argv);
    }

    protected abstract installPackages(names: string[]): RemoteCommand;
    protected abstract serviceCommand(action: ServiceAction, name: string): RemoteCommand;
    protected abstract installService(spec: ServiceSpec): RemoteCommand;
    /** Stop (outside the services lock: a graceful stop may take minutes), then unlink and remove. */
    protected abstract uninstallService(ref: ServiceRef): RemoteCommand[];
    protected abstract bootScript(name: string, content: string): RemoteCommand[];
    protected abstract persist(): RemoteCommand[];
}

/**
 * rc-service $2 on service $1, waiting while another rc-service holds the
 * service's exclusive lock. OpenRC fails a second start at once ("Call to flock
 * failed") where systemd joins the running job: a re-run after a connection cut
 * mid-start, whose first rc-service still runs on the box, failed instead of
 * converging (found by the lab's fault test on the OpenRC box). Waits as long as
 * the step's timeout allows.
 */
export const openrcServiceScript = [
    'while :; do',
    '  out=$(rc-service "$1" "$2" 2>&1) && { [ -z "$out" ] || printf "%s\\n" "$out"; exit 0; }',
    '  rc=$?',
    '  case "$out" in *"Call to flock failed"*) sleep 1 ;; *) printf "%s\\n" "$out" >&2; exit $rc ;; esac',
    "done",
].join("\n");

/** The OpenRC half of a family: service scripts, runlevels, boot scripts. Alpine and "debian-openrc" share it. */
abstract class OpenrcAdapter extends FamilyAdapter {
    /** @param runlevel where `enable` adds services (OpenRC's "default" unless a profile says otherwise). */
    constructor(
        readonly diskless: boolean,
        readonly runlevel = "default",
    ) {
        super();
    }

    protected serviceCommand(action: ServiceAction, name: string): RemoteCommand {
        switch (action) {
            case "enable":
                return { argv: ["sh", "-c", alpineEnableScript, "baremetal-enable", name, this.runlevel], lock: hostLocks.services };
            case "disable":
                return { argv: ["sh", "-c", alpineDisableScript, "baremetal-disable", name, this.runlevel], lock: hostLocks.services };
            case "reload":
                return { argv: ["rc-service", name, action] };
            default:
                return { argv: ["sh", "-c", openrcServiceScript, "baremetal-rc-service", name, action] };
        }
    }

    protected installService(spec: ServiceSpec): RemoteCommand {
        return writeFileCommand(serviceFilePath(spec, this.family), renderOpenrcScript(spec, this.family), "0755", "root:root");
    }

    protected uninstallService(ref: ServiceRef): RemoteCommand[] {
        const name = serviceNameOn(ref, this.family);
        return [
            { argv: ["sh", "-c", alpineStopServiceScript, "baremetal-stop-service", name] },
            { argv: ["sh", "-c", alpineRemoveServiceScript, "baremetal-remove-service", name, serviceFilePath(ref, this.family), this.runlevel], lock: hostLocks.services },
        ];
    }
}

export class AlpineAdapter extends OpenrcAdapter {
    readonly family = "alpine";

    protected installPackages(names: string[]): RemoteCommand {
        // apk add is idempotent; it also records the package in /etc/apk/world, which lbu persists.
        return { argv: ["apk", "add", "--quiet", "--no-progress", ...names], lock: hostLocks.packages };
    }

    protected bootScript(name: string, content: string): RemoteCommand[] {
        // OpenRC's `local` service runs /etc/local.d/*.start at boot.
        return [writeFileCommand(`/etc/local.d/${name}.start`, content, "0755", "root:root"), this.serviceCommand("enable", "local")];
    }

    protected persist(): RemoteCommand[] {
        // Only a diskless root loses changes at reboot; an on-disk Alpine keeps them.
        return this.diskless ? [{ argv: ["lbu", "commit"], lock: hostLocks.persist }] : [];
    }
}

/**
 * Where a diskless "debian-openrc" box keeps what must survive a reboot: the file
 * system mounted here (the stand-in for lbu's LBU_MEDIA). The box's boot unpacks
 * <hostname>.etc.tar.gz from it over the fresh root, as Alpine's initramfs unpacks
 * <hostname>.apkovl.tar.gz.
 */
export const persistMedia = "/media/persist";

/**
 * What the "debian-openrc" persist step keeps, relative to /: all of /etc, and
 * Open vSwitch's database, which Debian keeps in /var/lib/openvswitch (its
 * /etc/openvswitch/conf.db is only a symlink there; Alpine's is a file in /etc,
 * which lbu keeps). Without it a rebooted box had lost its bridges (found by a
 * power cycle of the lab's OpenRC box).
 */
export const persistedPaths = ["etc", "var/lib/openvswitch/conf.db"];

/**
 * The "debian-openrc" persist step, this family's counterpart of `lbu commit`
 * (Debian has no lbu): persistedPaths (those that exist) as one gzip'd tar on the
 * persist medium, written beside the old one and renamed over it (a cut leaves
 * the old archive whole), mode 0600 (it holds the box's keys and tokens, as an
 * apkovl does). gzip -n makes the archive of unchanged files byte for byte the
 * same: unchanged. $1: the medium's mount point.
 */
export const persistEtcScript = [
    "set -eu",
    'media=$1; shift; name=$(hostname); archive="$media/$name.etc.tar.gz"',
    'set --; for p in ' + persistedPaths.join(" ") + '; do if [ -e "/$p" ]; then set -- "$@" "$p"; fi; done',
    'if ! mountpoint -q "$media"; then',
    '  echo "no persist medium: nothing is mounted at $media (mount the file system that keeps this diskless box\'s configuration there, as LBU_MEDIA is for lbu)" >&2',
    "  exit 1",
    "fi",
    'tmp="$media/.$name.etc.tar.gz.new"',
    "trap 'rm -f \"$tmp\"' EXIT",
    "umask 077",
    'tar -C / -cf - "$@" | gzip -n >"$tmp"',
    `if [ -f "$archive" ] && cmp -s "$tmp" "$archive"; then echo ${unchangedMarker}; exit 0; fi`,
    'sync "$tmp" 2>/dev/null || sync',
    'mv -f "$tmp" "$archive"',
    "trap - EXIT",
    "sync",
].join("\n");

/**
 * Debian's packages and file layout with OpenRC as the init system. Packages as
 * on Debian (apt); services as on Alpine (openrc-run scripts, rc-update); boot
 * scripts as OpenRC scripts of their own (Debian's openrc has no `local`
 * service); persistence on a diskless root: persistEtcScript.
 */
export class DebianOpenrcAdapter extends OpenrcAdapter {
    readonly family = "debian-openrc";

    protected installPackages(names: string[]): RemoteCommand {
        return { argv: ["sh", "-c", debianInstallScript, "baremetal-install", ...names], lock: hostLocks.packages };
    }

    protected bootScript(name: string, content: string): RemoteCommand[] {
        const script = `/etc/baremetal/local.d/${name}.start`;
        const service = `baremetal-local-${name}`;
        const init = ["#!/sbin/openrc-run", `description="pulumi-baremetal boot script ${name}"`, "", "depend() {", "\tneed net", "}", "", "start() {", `\tebegin "Running ${script}"`, `\t${script}`, "\teend $?", "}", ""].join("\n");
        return [writeFileCommand(script, content, "0755", "root:root"), writeFileCommand(`/etc/init.d/${service}`, init, "0755", "root:root"), this.serviceCommand("enable", service)];
    }

    protected persist(): RemoteCommand[] {
        return this.diskless ? [{ argv: ["sh", "-c", persistEtcScript, "baremetal-persist", persistMedia], lock: hostLocks.persist }] : [];
    }
}

/**
 * Enables a unit only when it is not enabled yet. `--no-reload`: enabling only links the unit
 * into its target's wants (read from disk at boot); systemd holds the unit as its file is already
 * (installUnitScript sees to it, or it came with a package). systemctl's own reload
 * after enable took 3.5 s of the 3.7 s on the lab's boxes, measured.
 */
const debianEnableScript = 'systemctl is-enabled --quiet "$1" 2>/dev/null || systemctl --quiet --no-reload enable "$1"';

export class DebianAdapter extends FamilyAdapter {
    readonly family = "debian";
    readonly diskless = false;

    protected installPackages(names: string[]): RemoteCommand {
        return { argv: ["sh", "-c", debianInstallScript, "baremetal-install", ...names], lock: hostLocks.packages };
    }

    protected serviceCommand(action: ServiceAction, name: string): RemoteCommand {
        switch (action) {
            // `enable` of a unit with a SysV script runs update-rc.d (perl): seconds
            // per call on a slow box, and every resource on the box ensures it.
            case "enable":
                return { argv: ["sh", "-c", debianEnableScript, "baremetal-enable", name], lock: hostLocks.services };
            // No reload either way: disabling only unlinks it from its target's wants (see enable).
            case "disable":
                return { argv: ["systemctl", "--quiet", "--no-reload", "disable", name], lock: hostLocks.services };
            default:
                return { argv: ["systemctl", action, name] };
        }
    }

    protected installService(spec: ServiceSpec): RemoteCommand {
        return installUnitCommand(spec);
    }

    protected uninstallService(ref: ServiceRef): RemoteCommand[] {
        const name = serviceNameOn(ref, "debian");
        // An instance's file is its template's, which serves the other instances.
        const file = ref.instance === undefined ? serviceFilePath(ref, "debian") : "";
        return [
            { argv: ["sh", "-c", debianStopServiceScript, "baremetal-stop-service", name] },
            { argv: ["sh", "-c", debianRemoveServiceScript, "baremetal-remove-service", name, file], lock: hostLocks.services },
        ];
    }

    protected bootScript(name: string, content: string): RemoteCommand[] {
        const unit = bootService(name);
        return [writeFileCommand(`/etc/baremetal/local.d/${name}.start`, content, "0755", "root:root"), installUnitCommand(unit), this.serviceCommand("enable", unit.name)];
    }

    protected persist(): RemoteCommand[] {
        return [];
    }
}

export function adapterFor(facts: Pick<OsFacts, "family" | "diskless">): OsAdapter {
    switch (facts.family) {
        case "alpine":
            return new AlpineAdapter(facts.diskless);
        case "debian-openrc":
            return new DebianOpenrcAdapter(facts.diskless);
        case "debian":
            return new DebianAdapter();
    }
}

/** The exact commands a plan runs on a host of this family, as text: what a preview or a test shows. */
export function renderCommands(plan: Plan, adapter: OsAdapter): string[] {
    const lines: string[] = [];
    plan.forEach((s, i) => {
        lines.push(`# ${i + 1}. ${describeStep(s)}`);
        for (const c of adapter.lower(s)) {
            const argv = c.lock ? adapter.withLock(c.lock, c.argv) : c.argv;
            lines.push(displayCommandLine(argv) + (c.stdin !== undefined ? " < (content)" : ""));
        }
    });
    return lines;
}

function unreachable(x: never): never {
    throw new Error(`unhandled step ${JSON.stringify(x)}`);
}
