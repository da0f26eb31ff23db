// Running a benchmark program under the real `pulumi` CLI: a copy of a fixture
// project in a temp dir (with the checkout's node_modules linked in, so it
// imports pulumi-baremetal by name), a stack on a local file backend, and the
// host trace switched on for every process the CLI starts.
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { traceEnvVar } from "../../provider/host";
import { PreviewJson, PulumiStack } from "../../test/helpers/pulumi";

/** The checkout's root (dist/bench/lib/ is three levels below it). */
export const checkoutRoot = path.resolve(__dirname, "../../..");

export interface BenchProject {
    dir: string;
    stack: PulumiStack;
    /** The host trace every process of this stack's CLI runs writes to. */
    traceFile: string;
    cleanup(): Promise<void>;
}

/** A fresh project from bench/fixtures/<fixture> (plus extra files), with a new stack. */
export async function benchProject(fixture: string, files: Record<string, string> = {}): Promise<BenchProject> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `bench-${fixture}-`));
    execFileSync("cp", ["-rT", path.join(checkoutRoot, "bench/fixtures", fixture), dir]);
    fs.symlinkSync(path.join(checkoutRoot, "node_modules"), path.join(dir, "node_modules"));
    for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), content);
    const stack = await PulumiStack.init(dir, "bench");
    const traceFile = path.join(dir, "host-trace.jsonl");
    stack.env[traceEnvVar] = traceFile;
    return {
        dir,
        stack,
        traceFile,
        async cleanup() {
            await stack.cleanup();
            fs.rmSync(dir, { recursive: true, force: true });
        },
    };
}

export interface Timed<T> {
    /** Wall time. */
    ms: number;
    /**
     * CPU time (user + system) of the child processes that ended meanwhile: the
     * CLI and everything it started and waited for (engine, language host,
     * program, provider hosts). Steadier than wall time on a busy machine.
     */
    cpuMs: number;
    value: T;
}

/** Clock ticks per second of /proc's times (USER_HZ, 100 on Linux). */
const userHz = 100;

/** CPU ms of this process's waited-for children so far (cutime + cstime of /proc/self/stat). */
export function childrenCpuMs(): number {
    const stat = fs.readFileSync("/proc/self/stat", "utf8");
    // Fields after the parenthesised command name; cutime and cstime are fields 16 and 17.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[13]) + Number(fields[14])) * 1000) / userHz;
}

/**
 * Samples, while a CLI run lasts, the peak resident memory (VmHWM) of every
 * process whose command line names `dir` (the program and provider processes
 * the CLI starts for that project). Returns the largest, in MiB.
 */
export function peakMemoryOf(dir: string, everyMs = 500): { stop(): number } {
    let peakKiB = 0;
    const sample = (): void => {
        for (const pid of fs.readdirSync("/proc")) {
            if (!/^\d+$/.test(pid)) continue;
            const p = residentPeak(pid);
            if (p && p.argv.some((a) => a.includes(dir))) peakKiB = Math.max(peakKiB, p.kib);
        }
    };
    return sampling(sample, everyMs, () => Math.round(peakKiB / 1024));
}

/** A process's command line and peak resident memory (VmHWM, KiB); undefined when it has exited. */
function residentPeak(pid: string | number): { argv: string[]; kib: number } | undefined {
    try {
        const argv = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter((a) => a !== "");
        const hwm = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
        return hwm ? { argv, kib: Number(hwm[1]) } : undefined;
    } catch {
        return undefined; // exited meanwhile
    }
}

/** Calls `sample` every `everyMs` until stop(), which samples once more and returns `result()`. */
function sampling<T>(sample: () => void, everyMs: number, result: () => T): { stop(): T } {
    const timer = setInterval(sample, everyMs);
    return {
        stop() {
            clearInterval(timer);
            sample();
            return result();
        },
    };
}

export async function timed<T>(f: () => Promise<T>): Promise<Timed<T>> {
    const cpu = childrenCpuMs();
    const started = process.hrtime.bigint();
    const value = await f();
    return { ms: Math.round(Number(process.hrtime.bigint() - started) / 1e6), cpuMs: Math.round(childrenCpuMs() - cpu), value };
}

/** Resources a preview plans (every step but the stack itself). */
export function resourcesOf(p: PreviewJson): number {
    return p.steps.filter((s) => !(s.urn.includes("::pulumi:pulumi:Stack::") || s.type === "pulumi:pulumi:Stack")).length;
}

/** Mean bytes of the serialised dynamic provider (`__provider`) per resource in a preview, and how many carried one. */
export function providerBytes(p: PreviewJson): { perResource: number; resources: number } {
    const sizes: number[] = [];
    for (const s of p.steps) {
        const inputs = (s.newState as { inputs?: Record<string, unknown> } | undefined)?.inputs;
        const provider = inputs?.__provider;
        if (typeof provider === "string") sizes.push(Buffer.byteLength(provider));
    }
    return { perResource: sizes.length === 0 ? 0 : Math.round(sizes.reduce((a, b) => a + b, 0) / sizes.length), resources: sizes.length };
}

export function ratio(a: number, b: number): string {
    return b === 0 ? "n/a" : `${(a / b).toFixed(2)}x`;
}

export const fullMode = process.env.BENCH_FULL === "1" || process.env.BENCH_FULL === "true";

/** Peak resident memory (MiB) of the processes of one CLI run, by what they are. */
export interface ProcessPeaks {
    /** The program's process (the language host's Node.js process that runs the project's code). */
    program: number;
    /** The provider process(es) serving pulumi-baremetal's resources: the native plugin or the dynamic-provider host. */
    provider: number;
    /** The CLI and the language host, and anything else the run started. */
    other: number;
}

/**
 * Samples, while a CLI run lasts, the peak resident memory (VmHWM) of every
 * descendant of this process, by kind: the program (its command line names
 * `dir`), a provider (`classify` says so from its command line), the rest.
 * Processes are told apart by ancestry, so another run on the machine is never counted.
 */
export function peakMemoryByProcess(dir: string, isProvider: (argv: string[]) => boolean, everyMs = 500): { stop(): ProcessPeaks } {
    const peaks = { program: 0, provider: 0, other: 0 };
    const sample = (): void => {
        const parent = new Map<number, number>();
        for (const entry of fs.readdirSync("/proc")) {
            if (!/^\d+$/.test(entry)) continue;
            try {
                const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
                parent.set(Number(entry), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
            } catch {
                /* exited meanwhile */
            }
        }
        const mine = (pid: number): boolean => {
            for (let p = parent.get(pid), hops = 0; p !== undefined && p > 1 && hops < 64; p = parent.get(p), hops++) {
                if (p === process.pid) return true;
            }
            return false;
        };
        for (const pid of parent.keys()) {
            if (!mine(pid)) continue;
            const p = residentPeak(pid);
            if (!p) continue;
            const role = isProvider(p.argv) ? "provider" : p.argv.some((a) => a.includes(dir)) ? "program" : "other";
            peaks[role] = Math.max(peaks[role], p.kib);
        }
    };
    return sampling(sample, everyMs, () => ({ program: Math.round(peaks.program / 1024), provider: Math.round(peaks.provider / 1024), other: Math.round(peaks.other / 1024) }));
}
