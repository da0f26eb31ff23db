// Running commands and plans on a host. A Host is a cheap handle (make one per
// operation); the SSH connection behind it lives in the pool and is shared.
import { Reporter, silentReporter } from "../core/reporter";
import { connectionDefaults, connectionSecrets, describeTarget, HostConnection, lockScope } from "./connection";
import { CommandError, UnsupportedHostError, formatSeconds } from "./errors";
import { LockName, NamedLocks } from "./locks";
import { adapterFor, detectArgv, OsAdapter, OsFacts, parseOsFacts, RemoteCommand, unchangedMarker } from "./os";
import { defaultStepTimeoutMs, describeStep, Plan, Step } from "./plan";
import { HostKeySeen, PooledHost, SshPool } from "./pool";
import { commandLine, displayCommandLine } from "./quote";
import { isSecret, MaybeSecret, Redactor, reveal } from "./redact";

// One pool and one lock registry per provider process. They live in this module
// only: the provider objects Pulumi serialises load this package by name at call
// time and never capture these.
let sharedPoolInstance: SshPool | undefined;
const sharedLocksInstance = new NamedLocks();

export function sharedPool(): SshPool {
    sharedPoolInstance ??= new SshPool();
    return sharedPoolInstance;
}

export interface HostOptions {
    /** The shared per-process pool when omitted. */
    pool?: SshPool;
    locks?: NamedLocks;
    /** Where step progress goes (the Pulumi log in a provider). */
    log?: Reporter;
    /**
     * Secret values that arrive as plain strings (Pulumi hands secrets to a
     * dynamic provider unwrapped) and must be scrubbed from records and errors.
     */
    secrets?: (MaybeSecret | undefined)[];
}

export interface RunOptions {
    stdin?: MaybeSecret;
    /** Exit codes that count as success; [0] when omitted. */
    okExitCodes?: number[];
    /** Killed after this long; 10 minutes when omitted. */
    timeoutMs?: number;
    /** Hold this per-host lock while the command runs (here and, via flock, on the host). */
    lock?: LockName;
    /** What the command is for, used in errors; the command line when omitted. */
    what?: string;
}

export interface CommandOutput {
    exitCode: number | null;
    signal?: string;
    /** Raw output for the caller to parse; never logged by this layer unredacted. */
    stdout: string;
    stderr: string;
    durationMs: number;
}

/** What one command of a step did, with secrets scrubbed: safe to log and keep. */
export interface CommandRecord {
    command: string;
    exitCode: number | null;
    stdout: string;
    stderr: string;
    durationMs: number;
    changed: boolean;
}

export interface StepRecord {
    /** 1-based position in the plan. */
    index: number;
    description: string;
    /** The step's tag, when the plan gave it one. */
    tag?: string;
    commands: CommandRecord[];
    changed: boolean;
    /** Why the step did not run, when it did not. */
    skipped?: string;
    durationMs: number;
}

export interface PlanResult<T extends string = string> {
    target: string;
    facts: OsFacts;
    steps: StepRecord[];
    /** Did anything change on the host? */
    changed: boolean;
    /** The host key that was accepted (what a TOFU resource outputs). */
    hostKey?: HostKeySeen;
    /** Did a step carrying one of these tags change something? (False for a tag no step carried.) */
    stepChanged(tag: T, ...more: T[]): boolean;
}

/**
 * The result of running `plan`: its records with each step's tag, whether
 * anything changed, and the question by tag. Every Remote builds its result here.
 */
export function planResult<T extends string>(plan: Plan<T>, run: { target: string; facts: OsFacts; steps: StepRecord[]; hostKey?: HostKeySeen }): PlanResult<T> {
    const steps = run.steps.map((r) => {
        const tag = plan[r.index - 1]?.tag;
        return tag === undefined ? r : { ...r, tag };
    });
    const result: PlanResult<T> = {
        target: run.target,
        facts: run.facts,
        steps,
        changed: steps.some((r) => r.changed),
        stepChanged: (...tags: T[]) => steps.some((r) => r.changed && r.tag !== undefined && (tags as string[]).includes(r.tag)),
    };
    if (run.hostKey) result.hostKey = run.hostKey;
    return result;
}

/**
 * What a resource kind needs from a host, and all it may use: kinds depend on
 * this, never on Host, so the unit tier can hand them a scripted double
 * (test/fakes/scriptedRemote.ts) and the lab tier a real host.
 */
export interface Remote {
    /** How errors and logs name the host (`root@198.51.100.11:22`). */
    readonly target: string;
    /** Runs a command; an exit status not in `okExitCodes` throws a CommandError naming the host. */
    run(argv: MaybeSecret[], options?: RunOptions): Promise<CommandOutput>;
    /** Runs a command and returns whatever exit status it had. */
    exec(argv: MaybeSecret[], options?: RunOptions): Promise<CommandOutput>;
    /** A file's content, or undefined when it does not exist. */
    readFile(path: string): Promise<string | undefined>;
    /** OS family and whether Alpine runs diskless. */
    facts(): Promise<OsFacts>;
    /** Runs the plan's steps in order (lowered by the host's OS adapter), stopping at the first failure. */
    apply<T extends string = string>(plan: Plan<T>): Promise<PlanResult<T>>;
}

/** What a kind may say about a host when it asks for one. */
export type RemoteOptions = Pick<HostOptions, "secrets">;

/** Exit status readFile uses for "no such file", distinct from cat's own failures. */
export const missingFileStatus = 3;
export const readFileScript = `[ -e "$1" ] || exit ${missingFileStatus}; exec cat "$1"`;

export class Host implements Remote {
    readonly target: string;
    private readonly pooled: PooledHost;
    private readonly locks: NamedLocks;
    private readonly log: Reporter;
    private readonly redactor: Redactor;

    constructor(
        readonly conn: HostConnection,
        options: HostOptions = {},
    ) {
        this.target = describeTarget(conn);
        this.pooled = (options.pool ?? sharedPool()).host(conn);
        this.locks = options.locks ?? sharedLocksInstance;
        this.log = options.log ?? silentReporter;
        this.redactor = new Redactor().add(...connectionSecrets(conn), ...(options.secrets ?? []));
    }

    /** The key the server presented, once connected; with trustOnFirstUse, what to pin. */
    get hostKeySeen(): HostKeySeen | undefined {
        return this.pooled.hostKeySeen;
    }

    /** Runs a command; a non-accepted exit status throws a CommandError. */
    async run(argv: MaybeSecret[], options: RunOptions = {}): Promise<CommandOutput> {
        const out = await this.exec(argv, options);
        const ok = options.okExitCodes ?? [0];
        if (out.exitCode === null || !ok.includes(out.exitCode)) {
            const redactor = this.redactorFor(argv, options.stdin);
            throw this.commandError(options.what ?? `run ${redactor.redact(displayCommandLine(argv))}`, undefined, argv, out, redactor);
        }
        return out;
    }

    /** Runs a command and returns whatever exit status it had. */
    async exec(argv: MaybeSecret[], options: RunOptions = {}): Promise<CommandOutput> {
        const command: RemoteCommand = { argv, stdin: options.stdin, lock: options.lock, timeoutMs: options.timeoutMs ?? defaultStepTimeoutMs };
        const redactor = this.redactorFor(argv, options.stdin);
        return this.execCommand(command, redactor, options.what);
    }

    /** A file's content, or undefined when it does not exist. */
    async readFile(path: string): Promise<string | undefined> {
        const out = await this.run(["sh", "-c", readFileScript, "baremetal-read", path], {
            okExitCodes: [0, missingFileStatus],
            what: `read ${path}`,
            timeoutMs: 60_000,
        });
        return out.exitCode === missingFileStatus ? undefined : out.stdout;
    }

    /** OS family and whether Alpine runs diskless; detected once per host and process. */
    async facts(): Promise<OsFacts> {
        let p = this.pooled.memo.get("facts") as Promise<OsFacts> | undefined;
        if (!p) {
            p = this.detect();
            this.pooled.memo.set("facts", p);
            // A failed detection (host down) must not stick: the next call tries again.
            p.catch(() => this.pooled.memo.delete("facts"));
        }
        return p;
    }

    async adapter(): Promise<OsAdapter> {
        return adapterFor(await this.facts());
    }

    /**
     * Runs the steps in order, stopping at the first failure with an error that
     * names the step. A `persist` step runs only if an earlier step changed something.
     */
    async apply<T extends string = string>(plan: Plan<T>): Promise<PlanResult<T>> {
        const facts = await this.facts();
        const adapter = adapterFor(facts);
        const redactor = this.redactor.merge(secretsOfPlan(plan));
        const steps: StepRecord[] = [];
        let changedSoFar = false;
        for (const [i, s] of plan.entries()) {
            const label = `${this.target}: [${i + 1}/${plan.length}] ${redactor.redact(describeStep(s))}`;
            if (s.kind === "persist" && !changedSoFar) {
                steps.push({ index: i + 1, description: redactor.redact(describeStep(s)), commands: [], changed: false, skipped: "nothing changed", durationMs: 0 });
                continue;
            }
            this.log.progress(label);
            const record = await this.runStep(s, i + 1, plan.length, adapter, redactor);
            steps.push(record);
            changedSoFar ||= record.changed;
            this.log.info(`${label}: ${stepOutcome(record)} (${formatSeconds(record.durationMs)})`);
        }
        return planResult(plan, { target: this.target, facts, steps, hostKey: this.hostKeySeen });
    }

    private async runStep(s: Step, index: number, total: number, adapter: OsAdapter, redactor: Redactor): Promise<StepRecord> {
        const started = Date.now();
        const description = redactor.redact(describeStep(s));
        const operation = `step ${index}/${total} (${description})`;
        const commands: CommandRecord[] = [];
        for (const c of adapter.lower(s)) {
            const out = await this.execCommand({ ...c, timeoutMs: c.timeoutMs ?? defaultStepTimeoutMs }, redactor, operation, adapter);
            const ok = c.okExitCodes ?? [0];
            if (out.exitCode === null || !ok.includes(out.exitCode)) throw this.commandError(operation, s, c.argv, out, redactor);
            commands.push({
                command: redactor.redact(briefCommand(c.argv)),
                exitCode: out.exitCode,
                stdout: redactor.redact(withoutMarker(out.stdout)),
                stderr: redactor.redact(out.stderr),
                durationMs: out.durationMs,
                changed: commandChanged(c, out),
            });
        }
        return { index, description, commands, changed: commands.some((c) => c.changed), durationMs: Date.now() - started };
    }

    /** Locks (in-process, then flock on the host), sudo, quoting, and the pool. */
    private async execCommand(c: RemoteCommand, redactor: Redactor, what?: string, knownAdapter?: OsAdapter): Promise<CommandOutput> {
        let argv = c.argv;
        if (c.lock) argv = (knownAdapter ?? (await this.adapter())).withLock(c.lock, argv);
        const display = redactor.redact(briefCommand(this.withSudo(argv)));
        argv = this.withSudo(withRemoteTimeout(argv, c.timeoutMs));
        const go = async (): Promise<CommandOutput> => {
            const r = await this.pooled.exec({
                command: commandLine(argv),
                display,
                operation: what ? redactor.redact(what) : undefined,
                redactor,
                stdin: c.stdin === undefined ? undefined : Buffer.from(reveal(c.stdin), "utf8"),
                timeoutMs: c.timeoutMs,
            });
            return { exitCode: r.exitCode, signal: r.signal, stdout: r.stdout.toString("utf8"), stderr: r.stderr.toString("utf8"), durationMs: r.durationMs };
        };
        return c.lock ? this.locks.with(lockScope(this.conn), c.lock, go) : go();
    }

    /** sudo -n: never prompt (there is no terminal); fail with a clear message instead. */
    private withSudo(argv: MaybeSecret[]): MaybeSecret[] {
        return this.conn.sudo && (this.conn.user ?? connectionDefaults.user) !== "root" ? ["sudo", "-n", "--", ...argv] : argv;
    }

    private async detect(): Promise<OsFacts> {
        const out = await this.run(detectArgv, { what: "detect OS family (read /etc/os-release)", timeoutMs: 60_000 });
        const facts = parseOsFacts(out.stdout);
        if (typeof facts === "string") throw new UnsupportedHostError(this.target, facts);
        return facts;
    }

    private redactorFor(argv: MaybeSecret[], stdin: MaybeSecret | undefined): Redactor {
        return this.redactor.merge(new Redactor().addFrom([...argv, stdin]));
    }

    private commandError(operation: string, s: Step | undefined, argv: MaybeSecret[], out: CommandOutput, redactor: Redactor): CommandError {
        const stderr = redactor.redact(out.stderr);
        return new CommandError(
            this.target,
            operation,
            redactor.redact(briefCommand(this.withSudo(argv))),
            out.exitCode,
            out.signal,
            redactor.redact(withoutMarker(out.stdout)),
            stderr,
            hintFor(s, out.exitCode, stderr),
        );
    }
}

/**
 * Wraps a command in timeout(1) (coreutils on Debian, BusyBox on Alpine) so
 * that the host kills it even when this side is gone: sshd does not kill a
 * command when its channel closes, and ignores "signal" requests for root
 * logins. One second later than the local timer, so the local error wins.
 */
export function withRemoteTimeout(argv: MaybeSecret[], timeoutMs: number | undefined): MaybeSecret[] {
    if (timeoutMs === undefined) return argv;
    return ["timeout", "-s", "KILL", String(Math.ceil(timeoutMs / 1000) + 1), ...argv];
}

/** Secrets carried by a plan's steps (arguments, stdin, file contents). */
export function secretsOfPlan(plan: Plan): Redactor {
    const r = new Redactor();
    for (const s of plan) {
        if (s.kind === "run") r.addFrom([...s.argv, s.stdin]);
        if (s.kind === "writeFile" && isSecret(s.content)) r.add(s.content);
    }
    return r;
}

/**
 * A command line for logs and errors. The constant scripts of os.ts are long
 * and always the same, so they are shown by name (`sh -c <baremetal-write>`),
 * followed by the arguments that differ.
 */
export function briefCommand(argv: readonly MaybeSecret[]): string {
    const i = argv.findIndex((a, k) => k >= 2 && argv[k - 2] === "sh" && argv[k - 1] === "-c" && typeof argv[k + 1] === "string" && (argv[k + 1] as string).startsWith("baremetal-"));
    if (i < 0) return displayCommandLine(argv);
    const head = displayCommandLine(argv.slice(0, i - 2));
    const rest = displayCommandLine(argv.slice(i + 2));
    return [head, `sh -c <${argv[i + 1] as string}>`, rest].filter((x) => x !== "").join(" ");
}

/** What an operator can do about a failed command. */
export function hintFor(s: Step | undefined, exitCode: number | null, stderr: string): string {
    if (/sudo: (a terminal is required|a password is required)/.test(stderr)) {
        return "connection.sudo needs passwordless sudo (NOPASSWD) for the login user; grant it or log in as root";
    }
    if (exitCode === 127) return "a program is missing on the host: install it (add an ensurePackages step) or fix its name";
    if (exitCode === 126 || /Permission denied|Operation not permitted/.test(stderr)) {
        return "the login user lacks permission: log in as root or set connection.sudo";
    }
    if (s?.kind === "ensurePackages") {
        return "check the host's package repositories and its network path to them (apk update / apt-get update), then run again";
    }
    if (s?.kind === "service") return `look at the service's own log on the host (rc-service ${s.name} status / journalctl -u ${s.name}), fix it, then run again`;
    if (s?.kind === "installService" || s?.kind === "uninstallService") {
        return `look at the service ${s.service.name} on the host (rc-service / systemctl status and its log), fix the cause, then run again`;
    }
    return "run the command by hand on the host to see the full error, fix the cause, then run again (finished steps are idempotent)";
}

/**
 * Did a command of a step change anything, by its own report? Not when it is
 * read-only (`changes: false`), printed the unchanged marker last, or exited with
 * a code other than 0 that its step accepts: in a plan such a code is always the
 * command's "nothing to do" (`systemctl stop` of a unit that is not loaded: 5,
 * `lxc-stop` of a stopped container: 2). Otherwise it ran, and counts as a change.
 * Call only for a command that succeeded. One rule for Host and every Remote.
 */
export function commandChanged(c: Pick<RemoteCommand, "changes">, out: { exitCode: number | null; stdout: string }): boolean {
    return c.changes !== false && out.exitCode === 0 && lastLine(out.stdout) !== unchangedMarker;
}

/** What the log says a finished step did: "done" only when one of its commands reported a change. */
export function stepOutcome(record: Pick<StepRecord, "changed">): "done" | "already so" {
    return record.changed ? "done" : "already so";
}

function lastLine(text: string): string {
    const lines = text.trimEnd().split("\n");
    return lines[lines.length - 1] ?? "";
}

function withoutMarker(text: string): string {
    return text
        .split("\n")
        .filter((l) => l !== unchangedMarker)
        .join("\n");
}
