// Plans as data. A resource says *what* should happen on a host as a list of
// steps; the OS adapter (os.ts) turns each step into exact commands; the
// executor (execute.ts) runs them. Because a plan is plain data it can be shown
// in a preview, logged, and compared in tests without a host.
import { LockName, assertLockName } from "./locks";
import { display, isSecret, MaybeSecret } from "./redact";
import { displayCommandLine } from "./quote";
import { assertServiceName, assertServiceSpec, ServiceRef, ServiceSpec } from "./service";

export interface RunStep {
    kind: "run";
    argv: MaybeSecret[];
    /** Fed to the command's stdin: the way to hand a secret to a program without putting it in argv. */
    stdin?: MaybeSecret;
    /** Hold this per-host lock (in this process and, via flock, on the host) while running. */
    lock?: LockName;
    /**
     * Exit codes that count as success; [0] when omitted. Any other than 0 listed
     * here is the command's "nothing to do" (`systemctl stop` of a unit that is
     * not loaded: 5): the step counts as unchanged (see commandChanged).
     */
    okExitCodes?: number[];
    timeoutMs?: number;
    /** What the step does, for previews ("create RAID1 /dev/md0"); the command line when omitted. */
    what?: string;
    /** false for read-only commands, so that they alone never trigger a persist. */
    changes?: boolean;
}

export interface WriteFileStep {
    kind: "writeFile";
    path: string;
    content: MaybeSecret;
    /** Octal, e.g. "0644". */
    mode: string;
    /** "user:group", e.g. "root:root". */
    owner: string;
}

export interface RemoveFileStep {
    kind: "removeFile";
    path: string;
}

export interface EnsurePackagesStep {
    kind: "ensurePackages";
    names: string[];
}

export type ServiceAction = "enable" | "disable" | "start" | "stop" | "restart" | "reload";

export interface ServiceStep {
    kind: "service";
    action: ServiceAction;
    name: string;
}

/** A script run once at every boot: /etc/local.d on Alpine, a oneshot unit on Debian. */
export interface BootScriptStep {
    kind: "bootScript";
    name: string;
    content: string;
}

/** Make the changes survive a reboot: `lbu commit` on diskless Alpine, nothing elsewhere. */
export interface PersistStep {
    kind: "persist";
}

/**
 * Put a service's definition in place (a systemd unit or an OpenRC script,
 * rendered from the description by the OS adapter). On systemd the units are
 * reloaded only when the file changed (or systemd still holds an older one).
 * Neither enables nor starts the service.
 */
export interface InstallServiceStep {
    kind: "installService";
    service: ServiceSpec;
}

/** Stop the service if it runs, take it out of the boot sequence and remove its definition. Quiet when it is not there. */
export interface UninstallServiceStep {
    kind: "uninstallService";
    service: ServiceRef;
}

export type AnyStep =
    | RunStep
    | WriteFileStep
    | RemoveFileStep
    | EnsurePackagesStep
    | ServiceStep
    | InstallServiceStep
    | UninstallServiceStep
    | BootScriptStep
    | PersistStep;

/**
 * A name a kind gives a step so that it can ask the plan's result whether that
 * step changed anything (`result.stepChanged("dhcp-config")`). Each kind names
 * its tags as a union of string literals, so a misspelt tag does not compile.
 */
export interface Tagged<T extends string> {
    tag?: T;
}

export type Step<T extends string = string> = AnyStep & Tagged<T>;

/** Steps in order. `T`: the tags its steps may carry (a closed union per kind). */
export type Plan<T extends string = string> = readonly Step<T>[];

/** Default time a step may take before it is killed. Generous: apk/apt over a slow mirror. */
export const defaultStepTimeoutMs = 10 * 60_000;

// Builders: the only way resources should make steps. They check what the
// resource's own `check` should already have refused, so a bug fails loudly
// here instead of running something unexpected on a host.

export const step = {
    run<T extends string = never>(argv: MaybeSecret[], options: Omit<RunStep, "kind" | "argv"> & Tagged<T> = {}): RunStep & Tagged<T> {
        if (argv.length === 0) throw new Error("a run step needs a program");
        if (isSecret(argv[0])) throw new Error("the program name of a run step must not be a secret");
        if (options.lock !== undefined) assertLockName(options.lock);
        return { kind: "run", argv: [...argv], ...options };
    },

    writeFile<T extends string = never>(path: string, content: MaybeSecret, options: { mode?: string; owner?: string } & Tagged<T> = {}): WriteFileStep & Tagged<T> {
        assertPath(path);
        const mode = options.mode ?? "0644";
        const owner = options.owner ?? "root:root";
        if (!/^0?[0-7]{3}$/.test(mode)) throw new Error(`file mode ${JSON.stringify(mode)} must be octal like 0644`);
        if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*:[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(owner)) {
            throw new Error(`file owner ${JSON.stringify(owner)} must be user:group like root:root`);
        }
        return { kind: "writeFile", path, content, mode: mode.padStart(4, "0"), owner, ...tagOf(options) };
    },

    removeFile<T extends string = never>(path: string, options: Tagged<T> = {}): RemoveFileStep & Tagged<T> {
        assertPath(path);
        return { kind: "removeFile", path, ...tagOf(options) };
    },

    ensurePackages(...names: string[]): EnsurePackagesStep {
        if (names.length === 0) throw new Error("ensurePackages needs at least one package name");
        for (const n of names) {
            if (!/^[a-z0-9][a-z0-9+._-]{0,127}$/.test(n)) throw new Error(`package name ${JSON.stringify(n)} is not a package name`);
        }
        return { kind: "ensurePackages", names: [...names] };
    },

    service<T extends string = never>(action: ServiceAction, name: string, options: Tagged<T> = {}): ServiceStep & Tagged<T> {
        assertServiceName(name);
        return { kind: "service", action, name, ...tagOf(options) };
    },

    installService<T extends string = never>(service: ServiceSpec, options: Tagged<T> = {}): InstallServiceStep & Tagged<T> {
        assertServiceSpec(service);
        return { kind: "installService", service, ...tagOf(options) };
    },

    /** Takes the description itself or just its name (and instance). */
    uninstallService<T extends string = never>(service: ServiceRef, options: Tagged<T> = {}): UninstallServiceStep & Tagged<T> {
        assertServiceName(service.name);
        if (service.instance !== undefined) assertServiceName(service.instance);
        const ref: ServiceRef = service.instance === undefined ? { name: service.name } : { name: service.name, instance: service.instance };
        return { kind: "uninstallService", service: ref, ...tagOf(options) };
    },

    bootScript(name: string, content: string): BootScriptStep {
        if (!/^[a-z0-9][a-z0-9_-]{0,63}$/.test(name)) throw new Error(`boot script name ${JSON.stringify(name)} must be lower-case letters, digits, '-' or '_'`);
        if (!content.startsWith("#!")) throw new Error(`boot script ${name} must start with #! (e.g. #!/bin/sh)`);
        return { kind: "bootScript", name, content };
    },

    persist(): PersistStep {
        return { kind: "persist" };
    },
};

/** Only a tag that is there: steps stay plain data without undefined fields. */
function tagOf<T extends string>(options: Tagged<T>): Tagged<T> {
    return options.tag === undefined ? {} : { tag: options.tag };
}

/** Absolute, normalised paths only: no "..", no "//", no control characters. */
export function assertPath(path: string): void {
    const ok =
        path.startsWith("/") &&
        path.length > 1 &&
        path.length <= 4096 &&
        !path.endsWith("/") &&
        !/[\u0000-\u001f\u007f]/.test(path) &&
        !path.split("/").slice(1).some((seg) => seg === "" || seg === "." || seg === "..");
    if (!ok) throw new Error(`${JSON.stringify(path)} is not an absolute, normalised file path`);
}

/** One line a person reads in a preview or a log. Secrets show as [secret]. */
export function describeStep(s: Step): string {
    switch (s.kind) {
        case "run":
            return s.what ?? `run ${displayCommandLine(s.argv)}`;
        case "writeFile":
            return `write ${s.path} (mode ${s.mode}, owner ${s.owner}, ${isSecret(s.content) ? "secret content" : `${Buffer.byteLength(s.content)} bytes`})`;
        case "removeFile":
            return `remove ${s.path}`;
        case "ensurePackages":
            return `install package${s.names.length > 1 ? "s" : ""} ${s.names.join(" ")} (if missing)`;
        case "service":
            return `${s.action} service ${s.name}`;
        case "installService":
            return `install service ${serviceLabel(s.service)}`;
        case "uninstallService":
            return `stop, disable and remove service ${serviceLabel(s.service)} (if present)`;
        case "bootScript":
            return `install boot script ${s.name} (run at every boot)`;
        case "persist":
            return "persist configuration across reboots";
    }
}

/** A service as a step names it, the same on every family. */
function serviceLabel(ref: ServiceRef): string {
    return ref.instance === undefined ? ref.name : `${ref.name} (instance ${ref.instance})`;
}

/** The plan as numbered lines, e.g. for `pulumi preview` details or a test's expected text. */
export function renderPlan(plan: Plan): string {
    return plan.map((s, i) => `${i + 1}. ${describeStep(s)}`).join("\n");
}

/** The plan as JSON-safe data with secrets replaced, for step records and snapshots. */
export function planAsData(plan: Plan): unknown[] {
    return JSON.parse(JSON.stringify(plan, (_k, v: unknown) => (isSecret(v) ? display(v) : v))) as unknown[];
}
