// ScriptedRemote: a TEST DOUBLE of a host. A kind drives it through the Remote
// interface exactly as it drives a real Host; plans are lowered by the real OS
// adapters (provider/host/os.ts), so the test sees the exact commands a host
// would get. Each command is answered by the script the test wrote (the last
// matching expectation wins); the files written and removed by plan steps live
// in a small in-memory file table, so a re-run sees "already so" like on a host.
// A command nothing answers fails the operation with UnexpectedCommandError and
// is kept in `unexpected`, so a kind that swallows the error still fails the test
// (call verify()).
import { Reporter, silentReporter } from "../../provider/core/reporter";
import { CommandError, ConnectionLostError } from "../../provider/host/errors";
import {
    briefCommand, commandChanged, CommandOutput, CommandRecord, hintFor, missingFileStatus, PlanResult, planResult, readFileScript, Remote, RunOptions, StepRecord, stepOutcome,
} from "../../provider/host/execute";
import { adapterFor, OsFacts, OsFamily, RemoteCommand, unchangedMarker } from "../../provider/host/os";
import { describeStep, Plan, Step } from "../../provider/host/plan";
import { MaybeSecret, reveal } from "../../provider/host/redact";

/** What the host answers to one command. */
export interface Reply {
    stdout?: string;
    stderr?: string;
    exitCode?: number;
}

/** One command as the host received it. */
export interface SeenCommand {
    /** The host that received it. */
    target: string;
    /** The program and arguments as the kind or the OS adapter made them (before sudo, timeout and flock), secrets revealed. */
    argv: string[];
    stdin?: string;
    /** The host lock it runs under, if any. */
    lock?: string;
    /** What it is for: `what` of run/exec, the plan step's description for a plan. */
    what: string;
    /** The plan step it was lowered from (plans only). */
    step?: Step;
    /** How it came: a plan (apply) or a direct command (run, exec, readFile). */
    via: "apply" | "run";
    /** false when the OS adapter marks it read-only. */
    changes?: boolean;
    /** The command line as logs show it (`sh -c <baremetal-write> /etc/x ...`). */
    line: string;
    /** The answer it got. */
    reply?: Required<Reply>;
}

/** Which commands an expectation answers; `description` names it in failure messages. */
export interface Matcher {
    (c: SeenCommand): boolean;
    description: string;
}

export type Answer = Reply | ((c: SeenCommand) => Reply);

/** The kind ran a command the test did not script. */
export class UnexpectedCommandError extends Error {
    constructor(
        readonly target: string,
        readonly command: SeenCommand,
        scripted: string[],
    ) {
        super(
            `ScriptedRemote ${target}: unexpected command (nothing in the test's script answers it)\n` +
                `  command: ${command.line}\n  for: ${command.what}\n  scripted: ${scripted.length > 0 ? scripted.join(" | ") : "(nothing)"}`,
        );
        this.name = "UnexpectedCommandError";
    }
}

export interface ScriptedRemoteOptions {
    family?: OsFamily;
    /** Alpine with a RAM root (persist steps run `lbu commit`). */
    diskless?: boolean;
    /** Files on the host before the operation (path → content). */
    files?: Record<string, string>;
    /** Where step progress goes, as a Host reports it. */
    log?: Reporter;
}

interface FileEntry {
    content: string;
    mode: string;
    owner: string;
}

const writeName = "baremetal-write";
/** A systemd unit's install: the write's arguments, then the unit (the reload is not modelled). */
const installUnitName = "baremetal-install-unit";
const removeName = "baremetal-remove";
/** A service's disable-and-remove: $2 the file ("" when a template's instance keeps the shared file). */
const removeServiceName = "baremetal-remove-service";

export class ScriptedRemote implements Remote {
    /** Every command, in order. */
    readonly commands: SeenCommand[] = [];
    /** Every plan applied, in order. */
    readonly plans: Plan[] = [];
    /** Commands nothing answered (each also failed its operation). */
    readonly unexpected: SeenCommand[] = [];
    private readonly fileTable = new Map<string, FileEntry>();
    private readonly script: { match: Matcher; answer: Answer }[] = [];
    private readonly osFacts: OsFacts;
    private readonly log: Reporter;
    /** Commands of a cut run still running on the host, by the host lock they hold (see cutWhileRunning). */
    private readonly orphans: { lock: string; land: () => void }[] = [];

    constructor(
        readonly target: string,
        options: ScriptedRemoteOptions = {},
    ) {
        const family = options.family ?? "debian";
        this.osFacts = { family, id: family, diskless: family === "alpine" && options.diskless === true };
        this.log = options.log ?? silentReporter;
        for (const [path, content] of Object.entries(options.files ?? {})) this.fileTable.set(path, { content, mode: "0644", owner: "root:root" });
    }

    /** Answers the commands `match` selects with `answer` (a later expectation wins over an earlier one). */
    on(match: Matcher, answer: Answer = {}): this {
        this.script.push({ match, answer });
        return this;
    }

    /** The host's files (as plan steps left them) by path. */
    get files(): ReadonlyMap<string, string> {
        return new Map([...this.fileTable].map(([p, e]) => [p, e.content]));
    }

    /** Puts a file on the host, as a scripted command's side effect would (`undefined` removes it). */
    putFile(path: string, content: string | undefined): void {
        if (content === undefined) this.fileTable.delete(path);
        else this.fileTable.set(path, { content, mode: "0644", owner: "root:root" });
    }

    /** The commands `match` selects, in order. */
    ran(match: Matcher): SeenCommand[] {
        return this.commands.filter(match);
    }

    /** The descriptions of every plan step applied, in order (what `pulumi up` logs). */
    stepsApplied(): string[] {
        return this.plans.flatMap((p) => p.map(describeStep));
    }

    /**
     * An answer for a command whose connection drops while it runs on: the
     * operation fails as a cut makes it fail, but the command goes on on the host,
     * holding its host lock (flock) until it ends. Its `effect` lands when the next
     * command that takes the same lock starts (flock waits for the orphan to end);
     * commands outside that lock run beside it and see the host as it was. A
     * command without a lock has nothing to wait for: its effect lands at once.
     */
    cutWhileRunning(effect: (c: SeenCommand) => void = () => {}): (c: SeenCommand) => Reply {
        return (c) => {
            if (c.lock === undefined) effect(c);
            else this.orphans.push({ lock: c.lock, land: () => effect(c) });
            throw new ConnectionLostError(c.target, c.what, "the connection dropped (scripted cut; the command runs on)");
        };
    }

    /** Fails when a command ran that the script did not answer (even if the kind caught the error). */
    verify(): void {
        if (this.unexpected.length > 0) {
            throw new Error(`ScriptedRemote ${this.target}: ${this.unexpected.length} unexpected command(s):\n${this.unexpected.map((c) => `  ${c.line}  (for: ${c.what})`).join("\n")}`);
        }
    }

    // ---- Remote ------------------------------------------------------------------------

    async facts(): Promise<OsFacts> {
        return { ...this.osFacts };
    }

    async exec(argv: MaybeSecret[], options: RunOptions = {}): Promise<CommandOutput> {
        const seen = this.see({ argv, stdin: options.stdin, lock: options.lock }, options.what ?? `run ${briefCommand(argv)}`, "run");
        const r = this.answer(seen);
        return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr, durationMs: 0 };
    }

    async run(argv: MaybeSecret[], options: RunOptions = {}): Promise<CommandOutput> {
        const out = await this.exec(argv, options);
        if (!(options.okExitCodes ?? [0]).includes(out.exitCode as number)) {
            const what = options.what ?? `run ${briefCommand(argv)}`;
            throw new CommandError(this.target, what, briefCommand(argv), out.exitCode, undefined, out.stdout, out.stderr, hintFor(undefined, out.exitCode, out.stderr));
        }
        return out;
    }

    async readFile(path: string): Promise<string | undefined> {
        const out = await this.run(["sh", "-c", readFileScript, "baremetal-read", path], { okExitCodes: [0, missingFileStatus], what: `read ${path}` });
        return out.exitCode === missingFileStatus ? undefined : out.stdout;
    }

    /** As Host.apply: steps in order, the first failure throws naming the step, persist only after a change. */
    async apply(plan: Plan): Promise<PlanResult> {
        this.plans.push(plan);
        const adapter = adapterFor(this.osFacts);
        const steps: StepRecord[] = [];
        let changedSoFar = false;
        for (const [i, s] of plan.entries()) {
            const description = describeStep(s);
            const label = `${this.target}: [${i + 1}/${plan.length}] ${description}`;
            if (s.kind === "persist" && !changedSoFar) {
                steps.push({ index: i + 1, description, commands: [], changed: false, skipped: "nothing changed", durationMs: 0 });
                continue;
            }
            this.log.progress(label);
            const commands: CommandRecord[] = [];
            for (const c of adapter.lower(s)) {
                const seen = this.see(c, description, "apply", s);
                const r = this.answer(seen);
                if (!(c.okExitCodes ?? [0]).includes(r.exitCode)) {
                    throw new CommandError(this.target, `step ${i + 1}/${plan.length} (${description})`, seen.line, r.exitCode, undefined, withoutMarker(r.stdout), r.stderr, hintFor(s, r.exitCode, r.stderr));
                }
                commands.push({ command: seen.line, exitCode: r.exitCode, stdout: withoutMarker(r.stdout), stderr: r.stderr, durationMs: 0, changed: commandChanged(c, r) });
            }
            const record: StepRecord = { index: i + 1, description, commands, changed: commands.some((c) => c.changed), durationMs: 0 };
            steps.push(record);
            changedSoFar ||= record.changed;
            this.log.info(`${label}: ${stepOutcome(record)} (0.0 s)`);
        }
        return planResult(plan, { target: this.target, facts: { ...this.osFacts }, steps });
    }

    // ---- answering -----------------------------------------------------------------------

    private see(c: Pick<RemoteCommand, "argv" | "stdin" | "lock" | "changes">, what: string, via: SeenCommand["via"], step?: Step): SeenCommand {
        const seen: SeenCommand = { target: this.target, argv: c.argv.map(reveal), what, via, line: briefCommand(c.argv) };
        if (c.stdin !== undefined) seen.stdin = reveal(c.stdin);
        if (c.lock !== undefined) seen.lock = c.lock;
        if (c.changes !== undefined) seen.changes = c.changes;
        if (step) seen.step = step;
        this.commands.push(seen);
        return seen;
    }

    private answer(seen: SeenCommand): Required<Reply> {
        this.landOrphans(seen.lock);
        const hit = [...this.script].reverse().find((e) => e.match(seen));
        const reply = hit ? (typeof hit.answer === "function" ? hit.answer(seen) : hit.answer) : this.fileModel(seen);
        if (!reply) {
            this.unexpected.push(seen);
            throw new UnexpectedCommandError(this.target, seen, this.script.map((e) => e.match.description));
        }
        seen.reply = { stdout: reply.stdout ?? "", stderr: reply.stderr ?? "", exitCode: reply.exitCode ?? 0 };
        return seen.reply;
    }

    /** A command under `lock` starts only after the orphans holding that lock have ended. */
    private landOrphans(lock: string | undefined): void {
        if (lock === undefined) return;
        for (const o of this.orphans.filter((x) => x.lock === lock)) {
            this.orphans.splice(this.orphans.indexOf(o), 1);
            o.land();
        }
    }

    /** The constant scripts of os.ts and execute.ts that write, remove and read files, against the file table. */
    private fileModel(c: SeenCommand): Reply | undefined {
        if (c.argv[0] !== "sh" || c.argv[1] !== "-c") return undefined;
        const [name, path, mode, owner] = c.argv.slice(3);
        if (name === writeName || name === installUnitName) {
            const was = this.fileTable.get(path);
            const now = { content: c.stdin ?? "", mode, owner };
            if (was && was.content === now.content && was.mode === now.mode && was.owner === now.owner) return { stdout: `${unchangedMarker}\n` };
            this.fileTable.set(path, now);
            return {};
        }
        if (name === removeName) return this.fileTable.delete(path) ? {} : { stdout: `${unchangedMarker}\n` };
        if (name === removeServiceName) {
            const file = c.argv[5]; // after the service's name; the links are not modelled
            return file !== "" && this.fileTable.delete(file) ? {} : { stdout: `${unchangedMarker}\n` };
        }
        if (name === "baremetal-read") {
            const f = this.fileTable.get(path);
            return f ? { stdout: f.content } : { exitCode: missingFileStatus };
        }
        return undefined;
    }
}

function withoutMarker(text: string): string {
    return text
        .split("\n")
        .filter((l) => l !== unchangedMarker)
        .join("\n");
}

// ---- matchers -------------------------------------------------------------------------

function matcher(description: string, test: (c: SeenCommand) => boolean): Matcher {
    return Object.assign((c: SeenCommand) => test(c), { description });
}

/** Commands whose argv starts with these words (`argv("mdadm", "--create")`). */
export function argv(...prefix: string[]): Matcher {
    return matcher(`argv starts with ${prefix.join(" ")}`, (c) => prefix.every((p, i) => c.argv[i] === p));
}

/** A constant script run as `sh -c SCRIPT NAME ...`, by its name (`baremetal-md-read`). */
export function script(name: string): Matcher {
    return matcher(`script ${name}`, (c) => c.argv[0] === "sh" && c.argv[1] === "-c" && c.argv[3] === name);
}

/** The QMP script (provider/qmp/script.ts) in one mode: `call`, `wait`, `migrate`, `powerdown`. */
export function qmp(mode: string): Matcher {
    return matcher(`QMP ${mode}`, (c) => c.argv[0] === "python3" && c.argv[1] === "-c" && c.argv[3] === mode);
}

/** Commands whose purpose (`what`, or the plan step's description) matches. */
export function what(pattern: RegExp): Matcher {
    return matcher(`what ${pattern}`, (c) => pattern.test(c.what));
}

/** The commands of plan steps of this kind (`service`, `ensurePackages` ...), optionally only those `also` selects. */
export function stepKind(kind: Step["kind"], also?: (s: Step) => boolean): Matcher {
    return matcher(`${kind} steps`, (c) => c.step?.kind === kind && (also ? also(c.step) : true));
}

/** Writes of this file (a writeFile step, or a service definition installed by an installService step). */
export function writes(path: string): Matcher {
    return matcher(`write ${path}`, (c) => (c.argv[3] === writeName || c.argv[3] === installUnitName) && c.argv[4] === path);
}

/** Every file write, whichever file (the path is argv[4]). */
export const fileWrites: Matcher = matcher("file writes", (c) => c.argv[3] === writeName || c.argv[3] === installUnitName);

/** Any of the matchers. */
export function anyOf(...ms: Matcher[]): Matcher {
    return matcher(ms.map((m) => m.description).join(" or "), (c) => ms.some((m) => m(c)));
}

// ---- replies ---------------------------------------------------------------------------

export function ok(stdout = ""): Reply {
    return { stdout };
}

/** What a command prints when it found nothing to do (a step reported "already so"). */
export const unchanged: Reply = { stdout: `${unchangedMarker}\n` };

export function exit(exitCode: number, stderr = "", stdout = ""): Reply {
    return { exitCode, stderr, stdout };
}

/**
 * The command runs on the host (`effect` is what it did there) but the
 * connection drops before its answer arrives: the operation fails as a cut
 * connection makes it fail, and the host keeps what the command did.
 */
export function droppedAfter(effect: (c: SeenCommand) => void = () => {}): (c: SeenCommand) => Reply {
    return (c) => {
        effect(c);
        throw new ConnectionLostError(c.target, c.what, "the connection dropped (scripted cut)");
    };
}
