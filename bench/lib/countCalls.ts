// Loaded into every process of a benchmark stack with `node --require` (through
// NODE_OPTIONS) by bench/preview.ts: in a provider process (the native plugin
// `pulumi-resource-baremetal`, or Pulumi's dynamic-provider host) it counts the
// calls that reach pulumi-baremetal's kind code, by operation. Both front doors
// take a kind's operations from provider/index.ts `providerFor` (the native
// plugin in provider/native/server.ts, the dynamic resources' serialised provider
// in sdk/provider.ts), so the count says that the plugin really checked every
// resource of a preview, and which process did it.
//
// The engine kills provider processes without an exit, so each call is recorded
// as it happens: one line per call ("<process> <operation>") written with one
// write(2) on an O_APPEND descriptor (a few microseconds; no line is lost when
// the process is killed, and processes never interleave within a line).
// Other processes (the CLI, the program) load nothing. Only observes: the wrapped
// operation is called as before, with the same arguments.
import * as fs from "fs";
import * as path from "path";

export const callCountFileVar = "BENCH_CALL_COUNT_FILE";

/** Which front door a process serves, from its command line; undefined for any other process. */
export function providerProcess(argv: readonly string[]): "native" | "dynamic" | undefined {
    if (argv.some((a) => path.basename(a) === "pulumi-resource-baremetal")) return "native";
    if (argv.some((a) => /[\\/]cmd[\\/]dynamic-provider([\\/]|$)/.test(a) || path.basename(a) === "pulumi-resource-pulumi-nodejs")) return "dynamic";
    return undefined;
}

export interface CallCount {
    /** Calls by front door and operation: `native.check`, `dynamic.diff` ... */
    calls: Record<string, number>;
    /** Distinct provider processes that served calls. */
    processes: number;
}

/** Sums the lines a run wrote (see the top of this file); a missing file is no call at all. */
export function readCallCount(file: string): CallCount {
    const calls: Record<string, number> = {};
    const pids = new Set<string>();
    if (!fs.existsSync(file)) return { calls, processes: 0 };
    for (const line of fs.readFileSync(file, "utf8").split("\n")) {
        const m = /^(\d+) (native|dynamic) ([a-z]+)$/.exec(line.trim());
        if (!m) continue;
        pids.add(m[1]);
        const key = `${m[2]}.${m[3]}`;
        calls[key] = (calls[key] ?? 0) + 1;
    }
    return { calls, processes: pids.size };
}

type Operations = Record<string, unknown>;

function install(file: string, door: "native" | "dynamic"): void {
    // The checkout's provider entry (dist/provider/index.js), the module both front doors call.
    const index = path.resolve(__dirname, "../../provider/index.js");
    let mod: { providerFor?: (kind: string) => Operations };
    try {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        mod = require(index);
    } catch {
        return; // no build to count against: nothing counted, the bench says so
    }
    const original = mod.providerFor;
    if (typeof original !== "function") return;
    const fd = fs.openSync(file, "a", 0o600);
    const wrapped = new Map<string, Operations>();
    mod.providerFor = (kind: string): Operations => {
        let w = wrapped.get(kind);
        if (!w) {
            const ops = original(kind);
            w = Object.fromEntries(Object.entries(ops).map(([op, f]) => [op, typeof f !== "function" ? f : (...args: unknown[]) => {
                fs.writeSync(fd, `${process.pid} ${door} ${op}\n`);
                return (f as (...a: unknown[]) => unknown).apply(ops, args);
            }]));
            wrapped.set(kind, w);
        }
        return w;
    };
}

const target = process.env[callCountFileVar];
const door = providerProcess(process.argv);
if (target && door) install(target, door);
