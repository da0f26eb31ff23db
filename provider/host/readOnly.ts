// A host that can only be read: the Remote `baremetal discover` works through.
// Every command is checked against a list of programs that only read (with the
// arguments that keep them so) BEFORE it is sent; anything else is refused with
// nothing run. Plans are refused whole (a plan is how kinds change a host), host
// locks are not taken (taking one creates a lock file on the host), and a
// constant `sh -c` script passes only when every command in it is on the list
// and it redirects output nowhere but /dev/null. The check lives here, in the
// host layer, so that read-only is a property of the host handed out, not a
// convention of the code that reads.
import { qmpScript } from "../qmp/script";
import type { CommandOutput, PlanResult, Remote, RunOptions } from "./execute";
import type { OsFacts } from "./os";
import type { Plan } from "./plan";
import { displayCommandLine } from "./quote";
import { MaybeSecret, reveal } from "./redact";
import { SimpleCommand, simpleCommands, UnreadableScript } from "./readOnlyShell";

/** A command a read-only host would not send. Nothing was run. */
export class WriteRefusedError extends Error {
    constructor(
        readonly target: string,
        readonly command: string,
        readonly why: string,
    ) {
        super(`${target}: refused to run \`${command}\` on a read-only host: ${why}. Nothing was run (discover only reads; this is a bug in what asked for it)`);
        this.name = "WriteRefusedError";
    }
}

type Args = string[];
/** Why these arguments would make the program change something, or undefined when they only read. */
type ArgRule = (args: Args, literal: boolean[]) => string | undefined;

const anyArgs: ArgRule = () => undefined;
const noArgs: ArgRule = (args) => (args.length === 0 ? undefined : "with arguments it changes the host");

/** The first argument that is not an option must be one of `allowed`, written literally. */
function subcommand(allowed: string[], optionsWithValue: string[] = []): ArgRule {
    return (args, literal) => {
        for (let k = 0; k < args.length; k++) {
            if (optionsWithValue.includes(args[k])) {
                k++;
                continue;
            }
            if (args[k].startsWith("-")) continue;
            if (!literal[k]) return "its subcommand is not written out";
            return allowed.includes(args[k]) ? undefined : `${args[k]} is not one of its reading subcommands (${allowed.join(", ")})`;
        }
        return "it has no subcommand";
    };
}

const ovsReading = ["show", "list", "get", "find", "list-br", "list-ports", "list-ifaces", "iface-to-br", "port-to-br", "br-exists", "br-to-vlan", "br-to-parent", "br-get-external-id"];

/**
 * The programs a read-only host may run, each with the rule its arguments must
 * keep. What is missing is refused. (`awk`, `sed`, `find`, `tee`, `dd`, `python3`
 * but for the QMP query script are missing on purpose: each can write files.)
 */
const programs: Record<string, ArgRule> = {
    cat: anyArgs, head: anyArgs, tail: anyArgs, ls: anyArgs, stat: anyArgs, readlink: anyArgs, realpath: anyArgs,
    basename: anyArgs, dirname: anyArgs, echo: anyArgs, printf: anyArgs, true: anyArgs, false: anyArgs, test: anyArgs, "[": anyArgs,
    grep: anyArgs, tr: anyArgs, cut: anyArgs, sort: (a) => (a.some((x) => x === "-o" || x.startsWith("--output")) ? "-o writes a file" : undefined),
    uniq: (a) => (a.filter((x) => !x.startsWith("-")).length > 1 ? "a second file argument is written" : undefined),
    wc: anyArgs, od: anyArgs, uname: anyArgs, id: anyArgs, pgrep: anyArgs, ps: anyArgs,
    hostname: noArgs,
    ip: (args, literal) => {
        const k = args.findIndex((x) => !x.startsWith("-"));
        if (k < 0 || !literal[k] || !["addr", "address", "a", "link", "l", "route", "r", "neigh", "n"].includes(args[k])) return "only ip addr/link/route/neigh are read";
        if (args.some((x) => /^-(b|batch|force)$/.test(x))) return "-batch runs commands from a file";
        const verb = args.find((x, j) => j > k && (!literal[j] || ["add", "del", "delete", "set", "change", "replace", "flush", "append", "prepend", "save", "restore"].includes(x)));
        return verb === undefined ? undefined : `ip ${args[k]} ${verb} may change the host`;
    },
    lsblk: anyArgs,
    blkid: (args) => (args.includes("-p") ? undefined : "only the low-level probe (blkid -p) leaves the blkid cache alone"),
    // mdadm's first option sets its mode, and it refuses a second mode option.
    mdadm: (args, literal) => (literal[0] && ["--detail", "-D", "--examine", "-E", "--query", "-Q"].includes(args[0]) ? undefined : "only mdadm --detail, --examine and --query read"),
    lvs: anyArgs, vgs: anyArgs, pvs: anyArgs,
    "lxc-ls": anyArgs, "lxc-info": anyArgs,
    "ovs-vsctl": (args, literal) => {
        // Several commands may be chained with `--`: each must read.
        const commands: number[] = [];
        let expect = true;
        args.forEach((a, k) => {
            if (a === "--") expect = true;
            else if (expect && !a.startsWith("-")) {
                commands.push(k);
                expect = false;
            }
        });
        if (commands.length === 0) return "it has no command";
        const bad = commands.find((k) => !literal[k] || !ovsReading.includes(args[k]));
        return bad === undefined ? undefined : `${args[bad]} is not one of its reading commands (${ovsReading.join(", ")})`;
    },
    systemctl: subcommand(["is-active", "is-enabled", "is-failed", "show", "cat", "status", "list-units", "list-unit-files"], ["-p", "--property", "-t", "--type", "--state"]),
    "rc-service": (args) => (args.length === 2 && args[1] === "status" ? undefined : "only rc-service NAME status reads"),
    "rc-status": anyArgs,
    "ceph-volume": (args) => (args[0] === "lvm" && args[1] === "list" ? undefined : "only ceph-volume lvm list reads"),
    ceph: (args) => {
        const words = args.filter((x) => !x.startsWith("-"));
        const ok = [["osd", "dump"], ["osd", "tree"], ["osd", "metadata"], ["status"], ["health"], ["fsid"], ["df"]];
        return ok.some((w) => w.every((x, k) => words[k] === x)) ? undefined : `ceph ${words.slice(0, 2).join(" ")} is not one of its reading commands`;
    },
    "dnsmasq": (args) => (args.length === 1 && (args[0] === "--version" || args[0] === "-v") ? undefined : "only dnsmasq --version reads"),
};

/** Shell builtins a read script may use beside the programs. */
const builtins: Record<string, ArgRule> = {
    exit: anyArgs, return: anyArgs, shift: anyArgs, local: anyArgs, continue: anyArgs, break: anyArgs, read: anyArgs,
    set: (a) => (a.every((x) => /^[-+][eux]+$/.test(x)) ? undefined : "only set -e/-u/-x"),
    command: (a) => (a[0] === "-v" ? undefined : "only command -v"),
    exec: anyArgs, // checked as the command it runs (see commandOf)
    cd: anyArgs,
};

/** The program a simple command runs and its arguments (past `exec`). */
function commandOf(c: SimpleCommand): { name: string; literal: boolean; args: Args; literals: boolean[] } | undefined {
    const words = c.words[0]?.text === "exec" && c.words[0].literal ? c.words.slice(1) : c.words;
    if (words.length === 0) return undefined;
    return { name: words[0].text, literal: words[0].literal, args: words.slice(1).map((w) => w.text), literals: words.slice(1).map((w) => w.literal) };
}

function refusalOfArgv(argv: string[], stdin: string | undefined, inScript: boolean): string | undefined {
    const [name, ...args] = argv;
    const literals = args.map(() => true);
    if (name === "sh" && args[0] === "-c" && !inScript) return refusalOfScript(args[1] ?? "");
    if (name === "python3" && args[0] === "-c") return refusalOfQmp(args.slice(1), stdin);
    const rule = programs[name] ?? (inScript ? builtins[name] : undefined);
    if (!rule) return `${name} is not on the read-only list`;
    return rule(args, literals);
}

/** A constant script: every command on the list, output only to /dev/null or another descriptor. */
function refusalOfScript(script: string): string | undefined {
    let commands: SimpleCommand[];
    try {
        commands = simpleCommands(script);
    } catch (err) {
        if (err instanceof UnreadableScript) return `the script uses ${err.message}, which the read-only check cannot follow`;
        throw err;
    }
    for (const c of commands) {
        const into = c.outputs.find((o) => o !== "/dev/null" && !/^&(\d+|-)$/.test(o));
        if (into !== undefined) return `the script writes into ${into}`;
        const cmd = commandOf(c);
        if (!cmd) continue;
        if (!cmd.literal) return `the script runs a command named by an expansion (${cmd.name})`;
        if (cmd.name === "sh" || cmd.name === "bash" || cmd.name === "eval" || cmd.name === "." || cmd.name === "source") return `the script runs ${cmd.name}`;
        const rule = programs[cmd.name] ?? builtins[cmd.name];
        if (!rule) return `the script runs ${cmd.name}, which is not on the read-only list`;
        const why = rule(cmd.args, cmd.literals);
        if (why) return `in the script, ${cmd.name}: ${why}`;
    }
    return undefined;
}

/** Only the project's QMP script, in its `call` mode, with query-* requests only. */
function refusalOfQmp(args: string[], stdin: string | undefined): string | undefined {
    if (args[0] !== qmpScript || args[1] !== "call") return "python3 runs only the QMP script's call mode";
    let requests: unknown;
    try {
        requests = JSON.parse(stdin ?? "");
    } catch {
        return "the QMP requests are not JSON";
    }
    if (!Array.isArray(requests)) return "the QMP requests are not a list";
    const bad = requests.find((r) => !isQmpQuery(r));
    return bad === undefined ? undefined : `QMP ${JSON.stringify((bad as { execute?: unknown })?.execute)} is not a query`;
}

/** A query-* command, or the human monitor's `info ...` (the only way to learn a NIC's tap). */
function isQmpQuery(r: unknown): boolean {
    if (typeof r !== "object" || r === null) return false;
    const { execute, arguments: args } = r as { execute?: unknown; arguments?: { "command-line"?: unknown } };
    if (typeof execute === "string" && /^query-[a-z-]+$/.test(execute)) return true;
    return execute === "human-monitor-command" && typeof args?.["command-line"] === "string" && /^info [a-z-]+$/.test(args["command-line"]);
}

/** Why `argv` (with `stdin`) could change a host, or undefined when it only reads. */
export function readOnlyRefusal(argv: readonly MaybeSecret[], stdin?: MaybeSecret): string | undefined {
    return refusalOfArgv(argv.map(reveal), stdin === undefined ? undefined : reveal(stdin), false);
}

/** A Remote that runs only commands that read (see the top of this file); every other call is refused unsent. */
export class ReadOnlyRemote implements Remote {
    /** Commands sent to the host, for figures (discover reports its command count). */
    sent = 0;

    constructor(private readonly inner: Remote) {}

    get target(): string {
        return this.inner.target;
    }

    async run(argv: MaybeSecret[], options: RunOptions = {}): Promise<CommandOutput> {
        this.admit(argv, options.stdin);
        return this.inner.run(argv, withoutLock(options));
    }

    async exec(argv: MaybeSecret[], options: RunOptions = {}): Promise<CommandOutput> {
        this.admit(argv, options.stdin);
        return this.inner.exec(argv, withoutLock(options));
    }

    async readFile(path: string): Promise<string | undefined> {
        this.sent++;
        return this.inner.readFile(path);
    }

    async facts(): Promise<OsFacts> {
        return this.inner.facts();
    }

    async apply<T extends string = string>(plan: Plan<T>): Promise<PlanResult<T>> {
        throw new WriteRefusedError(this.target, `a plan of ${plan.length} step(s)`, "plans change hosts");
    }

    private admit(argv: MaybeSecret[], stdin: MaybeSecret | undefined): void {
        const why = readOnlyRefusal(argv, stdin);
        if (why !== undefined) throw new WriteRefusedError(this.target, briefLine(argv), why);
        this.sent++;
    }
}

/** A read takes no host lock: the lock is a file the host would get (reads beside a running change may see it half done). */
function withoutLock(options: RunOptions): RunOptions {
    const { lock: _lock, ...rest } = options;
    return rest;
}

/** The command line for the refusal, a long constant script shortened. */
function briefLine(argv: readonly MaybeSecret[]): string {
    const line = displayCommandLine(argv.map((a) => (typeof a === "string" && a.length > 120 ? `${a.slice(0, 60)}...` : a)));
    return line.length > 300 ? `${line.slice(0, 300)}...` : line;
}
