// Services as data. A kind describes a long-running program once: what runs,
// how it restarts, what it starts after, how it stops. This module renders that
// description as a systemd unit (Debian) or an OpenRC init script (Alpine) and
// says where the file lives; the OS adapter (os.ts) lowers the install and
// uninstall steps (plan.ts) into commands. Kinds never write unit or
// init-script text themselves.
//
// Every word of a description ends up in a unit file or a shell script as is,
// so the renderer refuses anything that could change the file's meaning
// (whitespace, quotes, shell operators) instead of quoting it: a kind's `check`
// has already refused such values, and a bug must fail here, not on a host.
import { distributionOf, OsFamily, initSystemOf } from "./family";

/** A service on a host by name. */
export interface ServiceRef {
    /** e.g. "baremetal-guest-web01". */
    name: string;
    /**
     * One service of many made from a single description: systemd gets one
     * template unit NAME@.service whose `%i` is the instance, OpenRC one script
     * NAME.INSTANCE per instance with `%i` replaced. Without it, `%` is refused.
     */
    instance?: string;
}

/** A command run before the service's program starts. */
export interface ServiceHook {
    argv: string[];
    /** The service starts even when this command fails (e.g. removing a tap that is not there). */
    mayFail?: boolean;
}

export interface RestartPolicy {
    /** "always": also after a clean exit; "on-failure": only after a crash (systemd only: OpenRC supervises "always" alone). */
    when: "always" | "on-failure";
    /** Pause before a restart; the init system's default when omitted. */
    delaySeconds?: number;
}

export interface ServiceSpec extends ServiceRef {
    /** One line for `systemctl status` / `rc-status`. */
    description: string;
    /** Comment lines at the top of the file (after `#!` on OpenRC): e.g. an owner marker that create looks for. */
    comments?: string[];
    /**
     * The program and its arguments. A word `$NAME` is replaced by the value of
     * NAME from `environmentFile` (split into words; nothing when unset). On
     * OpenRC the program must be an absolute path.
     */
    command: string[];
    /** Run the program as this user (root when omitted). */
    user?: string;
    /**
     * How the program runs. Omitted: in the foreground, the init system's default
     * (no Type= line). "forking": it puts itself in the background and writes
     * `pidFile`. "oneshot": it runs to completion at start and the service then
     * counts as started (systemd only; OpenRC has boot scripts for that).
     */
    type?: "simple" | "forking" | "oneshot";
    /**
     * Where the main process's pid is: written by the program ("forking"), or by
     * OpenRC for a foreground program it does not supervise (restart is not "always").
     */
    pidFile?: string;
    /** KEY=value lines read before the program starts. OpenRC reads the file only when it exists. */
    environmentFile?: { path: string; optional: boolean };
    /** Commands run in order before the program; the first failing one that may not fail stops the start. */
    preStart?: ServiceHook[];
    /**
     * How the service stops gracefully: `command` runs first (its failure is
     * ignored), then whatever is still running is killed. `timeoutSeconds` bounds
     * the whole stop on systemd; OpenRC sends TERM, then KILL after 10 s.
     */
    stop?: { command: string[]; timeoutSeconds: number };
    /** Commands run after the program ended (clean-up), failures ignored: the service is down either way. */
    postStop?: string[][];
    /** The signal that makes the program re-read its configuration (`reload`). */
    reloadSignal?: "HUP";
    /** Restarted when its program ends; never when omitted. */
    restart?: RestartPolicy;
    /** "control-group": a stop also ends the program's children (systemd; OpenRC signals the main process only). */
    killMode?: "control-group";
    /** Where the program's stderr goes on OpenRC (systemd keeps it in the journal). */
    errorLog?: string;
    /*
     * Other services, by their name on this init system. Every service here
     * starts after the network is up (network-online.target / OpenRC's `net`).
     */
    /** Started first when both start (ordering only). */
    after?: string[];
    /** Started first, and started along with this one when enabled (systemd Wants=, OpenRC `use`). */
    wants?: string[];
    /** Started first and required: this one does not run without them (systemd Requires=, OpenRC `need`). */
    needs?: string[];
    /**
     * Names others may order themselves after (OpenRC `provide`: every service that
     * provides it; systemd has no counterpart here and ignores it).
     */
    provides?: string[];
}

/** The service's name for the init system's commands (`systemctl start NAME`, `rc-service NAME start`). */
export function serviceNameOn(ref: ServiceRef, family: OsFamily): string {
    if (ref.instance === undefined) return ref.name;
    return initSystemOf(family) === "openrc" ? `${ref.name}.${ref.instance}` : `${ref.name}@${ref.instance}`;
}

/**
 * Where the service's definition lives: /etc/systemd/system/NAME.service (a
 * template NAME@.service for instances) or /etc/init.d/NAME. The one rule.
 */
export function serviceFilePath(ref: ServiceRef, family: OsFamily): string {
    if (initSystemOf(family) === "openrc") return `/etc/init.d/${serviceNameOn(ref, family)}`;
    return `/etc/systemd/system/${ref.name}${ref.instance !== undefined ? "@" : ""}.service`;
}

/** The systemd unit that systemctl names for this service (an instance of a template: NAME@INSTANCE.service). */
export function systemdUnitName(ref: ServiceRef): string {
    return `${ref.name}${ref.instance !== undefined ? `@${ref.instance}` : ""}.service`;
}

/** The file text for the family's init system. */
export function renderService(spec: ServiceSpec, family: OsFamily): string {
    return initSystemOf(family) === "openrc" ? renderOpenrcScript(spec, family) : renderSystemdUnit(spec);
}

export function renderSystemdUnit(spec: ServiceSpec): string {
    assertServiceSpec(spec);
    const units = (names: string[] | undefined) => (names ?? []).map((n) => `${n}.service`);
    const restart = spec.restart;
    return [
        ...(spec.comments ?? []).map((c) => `# ${c}`),
        "[Unit]",
        `Description=${spec.description}`,
        `Wants=${["network-online.target", ...units(spec.wants)].join(" ")}`,
        ...(spec.needs?.length ? [`Requires=${units(spec.needs).join(" ")}`] : []),
        `After=${["network-online.target", ...units(spec.after), ...units(spec.wants), ...units(spec.needs)].join(" ")}`,
        "",
        "[Service]",
        ...(spec.type ? [`Type=${spec.type}`] : []),
        ...(spec.type === "oneshot" ? ["RemainAfterExit=yes"] : []),
        ...(spec.user ? [`User=${spec.user}`] : []),
        ...(spec.type === "forking" ? [`PIDFile=${spec.pidFile}`] : []),
        ...(spec.environmentFile ? [`EnvironmentFile=${spec.environmentFile.optional ? "-" : ""}${spec.environmentFile.path}`] : []),
        ...(spec.preStart ?? []).map((h) => `ExecStartPre=${h.mayFail ? "-" : ""}${h.argv.join(" ")}`),
        `ExecStart=${spec.command.join(" ")}`,
        ...(spec.reloadSignal ? [`ExecReload=/bin/kill -${spec.reloadSignal} $MAINPID`] : []),
        ...(spec.stop ? [`ExecStop=-${spec.stop.command.join(" ")}`] : []),
        ...(spec.postStop ?? []).map((argv) => `ExecStopPost=-${argv.join(" ")}`),
        ...(spec.killMode ? [`KillMode=${spec.killMode}`] : []),
        ...(spec.stop ? [`TimeoutStopSec=${spec.stop.timeoutSeconds}`] : []),
        ...(restart ? [`Restart=${restart.when}`] : []),
        ...(restart?.delaySeconds !== undefined ? [`RestartSec=${restart.delaySeconds}`] : []),
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ].join("\n");
}

/**
 * An openrc-run script. A program restarted "always" runs under
 * supervise-daemon; any other foreground program is put in the background by
 * start-stop-daemon with a pid file; a forking one writes its own.
 *
 * The family says whose start-stop-daemon that is: Alpine's OpenRC brings its
 * own, which takes `error_log` (--stderr); Debian's openrc uses dpkg's, which
 * refuses --stderr and has --output (stdout and stderr) instead (found on the
 * lab's OpenRC box: the guest's service did not start).
 */
export function renderOpenrcScript(spec: ServiceSpec, family: OsFamily = "alpine"): string {
    assertServiceSpec(spec);
    const [program, ...args] = spec.command;
    const supervised = spec.restart?.when === "always";
    const refuse = (why: string) => new Error(`service ${spec.name}: ${why}`);
    if (spec.type === "oneshot") throw refuse("a oneshot service has no OpenRC form here; use a boot script (step.bootScript)");
    if (!program.startsWith("/")) throw refuse(`OpenRC needs the program as an absolute path, not ${JSON.stringify(program)}`);
    if (supervised && spec.type === "forking") throw refuse("supervise-daemon (restart: always) needs a program that stays in the foreground");
    if (supervised && spec.stop) throw refuse("a stop command needs a pid file, which a supervised service (restart: always) does not have on OpenRC");
    if (!supervised && spec.pidFile === undefined) throw refuse("OpenRC needs a pidFile for a program it does not supervise");
    const env = spec.environmentFile?.path;
    const lines = [
        "#!/sbin/openrc-run",
        ...(spec.comments ?? []).map((c) => `# ${c}`),
        `description="${spec.description}"`,
        // Before command_args, so that its $NAME words see the file's values.
        ...(env ? [`[ -f ${env} ] && { set -a; . ${env}; set +a; }`] : []),
        `command=${program}`,
        `command_args="${args.join(" ")}"`,
        ...(spec.user ? [`command_user=${spec.user}`] : []),
        ...(supervised
            ? ["supervisor=supervise-daemon", ...(spec.restart?.delaySeconds !== undefined ? [`respawn_delay=${spec.restart.delaySeconds}`] : []), "respawn_max=0"]
            : [...(spec.type === "forking" ? [] : ["command_background=true"]), `pidfile=${spec.pidFile}`]),
        ...(spec.errorLog ? [supervised || distributionOf(family) === "alpine" ? `error_log=${spec.errorLog}` : `start_stop_daemon_args="--output ${spec.errorLog}"`] : []),
        ...(spec.reloadSignal ? ['extra_started_commands="reload"', `description_reload="Re-reads the configuration (SIG${spec.reloadSignal})"`] : []),
        "",
        "depend() {",
        `\tneed ${["net", ...(spec.needs ?? [])].join(" ")}`,
        ...(spec.wants?.length ? [`\tuse ${spec.wants.join(" ")}`] : []),
        ...(spec.after?.length ? [`\tafter ${spec.after.join(" ")}`] : []),
        ...(spec.provides?.length ? [`\tprovide ${spec.provides.join(" ")}`] : []),
        "}",
        ...shellFunction("start_pre", (spec.preStart ?? []).map((h) => (h.mayFail ? tolerated(h.argv) : `${h.argv.join(" ")} || return 1`))),
        ...(spec.stop
            ? shellFunction("stop", [
                  `ebegin "Stopping ${spec.description}"`,
                  tolerated(spec.stop.command),
                  'start-stop-daemon --stop --quiet --pidfile "$pidfile" --retry TERM/10/KILL/5 || true',
                  "eend 0",
              ])
            : []),
        ...shellFunction("stop_post", (spec.postStop ?? []).map(tolerated)),
        ...(spec.reloadSignal
            ? shellFunction("reload", [
                  `ebegin "Reloading ${spec.description}"`,
                  supervised ? `supervise-daemon "$RC_SVCNAME" --signal ${spec.reloadSignal}` : `start-stop-daemon --signal ${spec.reloadSignal} --pidfile "$pidfile"`,
                  "eend $?",
              ])
            : []),
        "",
    ].join("\n");
    return spec.instance === undefined ? lines : lines.split("%i").join(spec.instance);
}

function tolerated(argv: string[]): string {
    return `${argv.join(" ")} 2>/dev/null || true`;
}

function shellFunction(name: string, body: string[]): string[] {
    return body.length === 0 ? [] : ["", `${name}() {`, ...body.map((l) => `\t${l}`), "}"];
}

/**
 * A shell function for scripts that read a service's state along with other
 * things in one command: `baremetal_service_state NAME` prints systemd's word
 * (active, inactive, failed, activating ...) or, on OpenRC, active or inactive;
 * "unknown" when the init system says nothing. Put it at the top of a constant
 * script; the one status check every kind uses.
 *
 * Which init system runs is asked the way the OS probe asks it
 * (/run/systemd/system), not whether systemctl is installed: a Debian box booted
 * with OpenRC still has systemd's package, whose systemctl then answers
 * "offline" for every unit (found on the lab's OpenRC box).
 */
export const serviceStateShell = [
    "baremetal_service_state() {",
    "  if [ -d /run/systemd/system ]; then",
    '    _bm_state=$(systemctl is-active "$1" 2>/dev/null)',
    '    echo "${_bm_state:-unknown}"',
    '  elif rc-service "$1" status >/dev/null 2>&1; then echo active',
    "  else echo inactive; fi",
    "}",
].join("\n");

// ---- validation ------------------------------------------------------------------------

const servicePattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function assertServiceName(name: string): void {
    if (!/^[A-Za-z0-9][A-Za-z0-9@._-]{0,127}$/.test(name)) throw new Error(`service name ${JSON.stringify(name)} is not a service name`);
}

/** Refuses a description that would not render to the file it says (see the top of this module). */
export function assertServiceSpec(spec: ServiceSpec): void {
    const where = `service ${JSON.stringify(spec.name)}`;
    const fail = (what: string, why: string): never => {
        throw new Error(`${where}: ${what} ${why}`);
    };
    if (!servicePattern.test(spec.name)) fail("name", "must be letters, digits, '.', '_' or '-'");
    if (spec.instance !== undefined && !servicePattern.test(spec.instance)) fail("instance", `${JSON.stringify(spec.instance)} must be letters, digits, '.', '_' or '-'`);
    const templated = spec.instance !== undefined;
    const checkPercent = (what: string, text: string) => {
        const rest = templated ? text.split("%i").join("") : text;
        if (rest.includes("%")) fail(what, `${JSON.stringify(text)} may hold '%' only as %i, in a service with an instance`);
    };
    const checkText = (what: string, text: string) => {
        if (text === "" || /[\u0000-\u001f\u007f"`$\\]/.test(text)) fail(what, `${JSON.stringify(text)} must be one line without quotes, '$', '\`' or '\\'`);
        checkPercent(what, text);
    };
    const checkWord = (what: string, word: string) => {
        if (/^\$[A-Z_][A-Z0-9_]*$/.test(word)) return;
        if (word === "" || /[\s"'`$\\;&|<>(){}*?]/.test(word)) fail(what, `word ${JSON.stringify(word)} must not be empty or hold whitespace, quotes or shell operators`);
        checkPercent(what, word);
    };
    const checkArgv = (what: string, argv: string[]) => {
        if (argv.length === 0) fail(what, "needs a program");
        argv.forEach((w) => checkWord(what, w));
    };
    const checkPath = (what: string, path: string) => {
        checkWord(what, path);
        if (!path.startsWith("/")) fail(what, `${JSON.stringify(path)} must be an absolute path`);
    };
    checkText("description", spec.description);
    (spec.comments ?? []).forEach((c) => {
        if (/[\u0000-\u001f\u007f]/.test(c)) fail("comment", `${JSON.stringify(c)} must be one line`);
        checkPercent("comment", c);
    });
    checkArgv("command", spec.command);
    if (spec.user !== undefined && !/^[a-z_][a-z0-9_-]{0,31}$/.test(spec.user)) fail("user", `${JSON.stringify(spec.user)} is not a user name`);
    if (spec.pidFile !== undefined) checkPath("pidFile", spec.pidFile);
    if (spec.type === "forking" && spec.pidFile === undefined) fail("pidFile", "is needed for a forking program");
    if (spec.environmentFile) checkPath("environmentFile", spec.environmentFile.path);
    if (spec.errorLog !== undefined) checkPath("errorLog", spec.errorLog);
    (spec.preStart ?? []).forEach((h) => checkArgv("preStart", h.argv));
    (spec.postStop ?? []).forEach((argv) => checkArgv("postStop", argv));
    if (spec.stop) {
        checkArgv("stop.command", spec.stop.command);
        if (!Number.isInteger(spec.stop.timeoutSeconds) || spec.stop.timeoutSeconds < 1) fail("stop.timeoutSeconds", "must be a positive whole number");
    }
    const delay = spec.restart?.delaySeconds;
    if (delay !== undefined && (!Number.isInteger(delay) || delay < 0)) fail("restart.delaySeconds", "must be a whole number of seconds");
    for (const [what, names] of [["after", spec.after], ["wants", spec.wants], ["needs", spec.needs], ["provides", spec.provides]] as const) {
        for (const n of names ?? []) if (!servicePattern.test(n)) fail(what, `${JSON.stringify(n)} is not a service name`);
    }
}
