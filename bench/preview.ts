// Bench: `pulumi preview` (real CLI, local file backend) of the seed data-center
// program over generated inventories of 10, 100 (and, with BENCH_FULL=1, 1,000)
// machines, against the engine's floor: a program of the same number of no-op
// dynamic resources (bench/fixtures/floor, a benchmark baseline). Prints total
// time, per-resource overhead and its ratio to the floor, resources previewed,
// SSH connections opened (must be 0: counted from the host trace AND by
// listeners every host of the inventory points at), serialised provider bytes
// per resource and the state size of the floor after an `up`; and, to tell the
// engine's share from ours, the floor again with as many properties per resource
// as the seed's resources have (counted by bench/lib/countProperties.ts).
// Each size runs in rounds (BENCH_PREVIEW_ROUNDS, default 3): the empty program,
// the seed, the floor and the property-matched floor one after the other, so a
// burst of load on the shared machine lands on all of them alike; a figure is the
// least time of its rounds (noise only ever adds time) and the median peak memory.
// Prints figures; never fails on a time. Every size prints its `preview-ratio`
// line, with n/a when a program failed to preview twice in a row.
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { validateInventory } from "../examples/datacenter/program/validate";
import { dynamicProvider } from "../sdk/provider";
import { freePort } from "../test/helpers/net";
import { generateInventory, inventoryYaml, loopbackAddress, sshEndpoints } from "./lib/inventoryGen";
import { CountingListeners } from "./lib/listeners";
import { PropertyCount, propertyCountFileVar } from "./lib/countProperties";
import { BenchProject, benchProject, checkoutRoot, fullMode, peakMemoryByProcess, peakMemoryOf, ProcessPeaks, providerBytes, ratio, resourcesOf, Timed, timed } from "./lib/programs";
import { CallCount, callCountFileVar, providerProcess, readCallCount } from "./lib/countCalls";
import type { PreviewJson } from "../test/helpers/pulumi";
import { summarise } from "./lib/traceSummary";
import { openvpnStaticKey } from "../test/helpers/keys";

/**
 * BENCH_PREVIEW_SIZES=10,250 picks other sizes; BENCH_PREVIEW_NO_UP=1 skips the floor's `up` (state size);
 * BENCH_PREVIEW_ROUNDS=1 runs each program once per size (quicker, noisier).
 */
const sizes = process.env.BENCH_PREVIEW_SIZES ? process.env.BENCH_PREVIEW_SIZES.split(",").map(Number) : fullMode ? [10, 100, 1000] : [10, 100];
const rounds = Math.max(1, Number(process.env.BENCH_PREVIEW_ROUNDS ?? 3));
/** BENCH_PREVIEW_NATIVE=0 leaves out the seed through the native plugin (issue #20's comparison). */
const nativeWanted = !["0", "false"].includes(process.env.BENCH_PREVIEW_NATIVE ?? "");
/**
 * Rounds that also preview the seed through the native plugin (the first ones):
 * BENCH_PREVIEW_NATIVE_ROUNDS, default 2 in the small mode (it keeps the
 * bench quick) and every round in full mode. The native seed is compared with the
 * dynamic seed, the floor and the empty program of the same rounds only.
 */
const nativeRounds = Math.min(rounds, Math.max(1, Number(process.env.BENCH_PREVIEW_NATIVE_ROUNDS ?? (fullMode ? rounds : 2))));
const seedDir = path.join(checkoutRoot, "examples/datacenter/program");
const seedEntry = path.join(checkoutRoot, "examples/datacenter/index.ts");

interface ProgramFigures {
    ms: number;
    cpuMs: number;
    /** Peak resident memory of the program's process (MiB). */
    peakMiB: number;
    resources: number;
    providerBytes: number;
}

interface SeedFigures extends ProgramFigures {
    machines: number;
    traceConnections: number;
    traceDials: number;
    traceCommands: number;
    tcpConnections: number;
    udpDatagrams: number;
    listeners: number;
    /** Properties the program's resources handed to the Pulumi SDK; undefined when they could not be counted. */
    properties?: PropertyCount;
}

/** The seed through the native plugin: what it touched, which calls reached the kind code, its processes' peaks. */
interface NativeFigures extends ProgramFigures {
    observed: Omit<SeedFigures, keyof ProgramFigures | "machines">;
    /** The calls of each round's preview. */
    calls: CallCount[];
    /** Resources the preview planned with a native type token (baremetal:index:<Kind>). */
    nativeTyped: number;
    processes: ProcessPeaks;
}

/** What one size gave, for the marginal costs between sizes. */
interface SizeResult {
    machines: number;
    seed: SeedFigures;
    floor: FloorFigures;
    /** The native seed, and the dynamic seed and the floor over the same rounds. */
    native?: { figures: NativeFigures; seed: ProgramFigures; floor: ProgramFigures };
}

interface FloorFigures extends ProgramFigures {
    upMs?: number;
    stateBytes?: number;
}

/** A key pair made for the run: the boxes' host key line and the private key the program is configured with. */
function keyPair(): { hostKey: string; privateKey: string; cleanup(): void } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-key-"));
    const file = path.join(dir, "id");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "bench", "-f", file]);
    const out = { hostKey: fs.readFileSync(`${file}.pub`, "utf8").trim().split(" ").slice(0, 2).join(" "), privateKey: fs.readFileSync(file, "utf8") };
    return { ...out, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** What is missing for the seed program to be benchmarked, or undefined when it looks usable. */
function seedMissing(): string | undefined {
    const need: [string, RegExp][] = [
        ["datacenter.ts", /export function declareDataCenter\(/],
        ["datacenter.ts", /export function secretsFromConfig\(/],
        ["validate.ts", /export function loadInventory\(/],
        ["inventory.ts", /export interface Inventory\b/],
    ];
    const missing = need.filter(([file, re]) => !fs.existsSync(path.join(seedDir, file)) || !re.test(fs.readFileSync(path.join(seedDir, file), "utf8")));
    return missing.length === 0 ? undefined : missing.map(([f, re]) => `${f} (${re.source.replace(/\\/g, "")})`).join(", ");
}

/** One preview of a bench program: its times, its program's peak memory and what it planned. */
interface Run {
    ms: number;
    cpuMs: number;
    peakMiB: number;
    value: PreviewJson;
    /** Peaks by process (the seed programs and the floor only). */
    processes?: ProcessPeaks;
    /** Calls this preview made to pulumi-baremetal's kind code (the seed programs only). */
    calls?: CallCount;
}

/** A bench program set up once and previewed in every round. */
interface Subject {
    preview(): Promise<Run>;
    cleanup(): Promise<void>;
}

/**
 * One timed preview with the program's peak memory sampled (and, with `byProcess`,
 * the peak of each kind of process); the samplers stop whatever happens.
 */
async function measuredPreview(project: BenchProject, byProcess = false): Promise<Run> {
    const memory = peakMemoryOf(project.dir);
    const processes = byProcess ? peakMemoryByProcess(project.dir, (argv) => providerProcess(argv) !== undefined) : undefined;
    try {
        const t: Timed<PreviewJson> = await timed(() => project.stack.preview());
        return { ms: t.ms, cpuMs: t.cpuMs, peakMiB: memory.stop(), value: t.value, ...(processes ? { processes: processes.stop() } : {}) };
    } finally {
        memory.stop();
        processes?.stop();
    }
}

/**
 * Runs a benchmark step, once more if it fails (the machine is shared: a preview
 * has been seen to lose its engine connection under load); says so when it did.
 */
async function twice<T>(what: string, step: () => Promise<T>): Promise<T> {
    try {
        return await step();
    } catch (err) {
        console.log(`${what}: failed, trying once more: ${(err as Error).message.split("\n").slice(0, 6).join("\n  ")}`);
        return step();
    }
}

/** The step's value, or undefined after printing why it failed. */
async function orReport<T>(what: string, step: () => Promise<T>): Promise<T | undefined> {
    try {
        return await step();
    } catch (err) {
        console.log(`${what}: FAILED: ${(err as Error).message.split("\n").slice(0, 12).join("\n  ")}`);
        return undefined;
    }
}

/** The rounds of one program: the least times (load only adds time) and the median peak memory. */
function best(runs: Run[]): ProgramFigures {
    const peaks = runs.map((r) => r.peakMiB).sort((a, b) => a - b);
    return {
        ms: Math.min(...runs.map((r) => r.ms)),
        cpuMs: Math.min(...runs.map((r) => r.cpuMs)),
        peakMiB: peaks[Math.floor(peaks.length / 2)],
        resources: resourcesOf(runs[0].value),
        providerBytes: providerBytes(runs[0].value).perResource,
    };
}

async function emptySubject(): Promise<Subject> {
    const project = await benchProject("empty");
    return { preview: () => measuredPreview(project), cleanup: () => project.cleanup() };
}

/** The seed program over a generated inventory of `machines`, every host pointed at counting listeners. */
interface SeedSubject extends Subject {
    /** What the previews so far touched and how many properties the program's resources have. */
    observed(): Promise<Omit<SeedFigures, keyof ProgramFigures | "machines">>;
}

/**
 * The seed through the dynamic provider (the seed as users run it), or with
 * `native` through the native plugin (config `native: true`: the same resources,
 * registered as baremetal:index:<Kind>; bin/pulumi-resource-baremetal on PATH).
 */
async function seedSubject(machines: number, key: { hostKey: string; privateKey: string }, native = false): Promise<SeedSubject> {
    const port = await freePort();
    const inv = generateInventory(machines, {
        hostKey: key.hostKey,
        consulAddress: `127.0.0.1:${port}`,
        sshEndpoint: (k) => ({ host: loopbackAddress(k), port }),
        bmcEndpoint: (k) => ({ host: loopbackAddress(50_000 + k), port }),
    });
    const problems = validateInventory(JSON.parse(JSON.stringify(inv)));
    if (problems.length > 0) {
        throw new Error(`the generated inventory of ${machines} machines is not valid for the seed program:\n${problems.slice(0, 10).map((p) => `  ${p.field}: ${p.message}`).join("\n")}`);
    }
    const listeners = await new CountingListeners().start(
        [...sshEndpoints(inv), { host: "127.0.0.1", port }],
        inv.machines.filter((m) => m.bmc).map((m) => ({ host: m.bmc!.address, port: m.bmc!.port ?? 623 })),
    );
    // The seed's own entry point when it exists (it reads inventory.yaml from the project dir), else the fixture's.
    const files: Record<string, string> = { "inventory.yaml": inventoryYaml(inv) };
    if (fs.existsSync(seedEntry)) files["index.ts"] = fs.readFileSync(seedEntry, "utf8");
    let project: BenchProject | undefined;
    try {
        project = await benchProject("datacenter", files);
        const p = project;
        fs.symlinkSync(seedDir, path.join(p.dir, "program"));
        if (native) {
            await p.stack.setConfig("native", "true");
            // The plugin as the CLI finds it (lab/env.sh does the same): this checkout's bin/ on PATH.
            p.stack.env.PATH = `${path.join(checkoutRoot, "bin")}${path.delimiter}${p.stack.env.PATH ?? ""}`;
        }
        await p.stack.setConfig("sshPrivateKey", Buffer.from(key.privateKey).toString("base64"), true);
        await p.stack.setConfig("bmcPassword", "bench-bmc-password", true);
        await p.stack.setConfig("openvpnKey", Buffer.from(openvpnStaticKey()).toString("base64"), true);
        const countFile = path.join(p.dir, "property-count.json");
        p.stack.env[propertyCountFileVar] = countFile;
        const counter = path.join(checkoutRoot, "dist/bench/lib/countProperties.js");
        // Calls to the kind code, counted in the provider processes (bench/lib/countCalls.ts), for both seeds alike.
        const callFile = path.join(p.dir, "provider-calls.txt");
        p.stack.env[callCountFileVar] = callFile;
        const callCounter = path.join(checkoutRoot, "dist/bench/lib/countCalls.js");
        p.stack.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ""} --require ${counter} --require ${callCounter}`.trim();
        return {
            async preview() {
                fs.rmSync(callFile, { force: true });
                return { ...(await measuredPreview(p, true)), calls: readCallCount(callFile) };
            },
            async observed() {
                // Late connections (a process still dialling as the CLI exits) would land here.
                await new Promise((r) => setTimeout(r, 500));
                const trace = summarise(p.traceFile);
                return {
                    traceConnections: trace.connectionsOpened,
                    traceDials: trace.dialsFailed,
                    traceCommands: trace.commands,
                    tcpConnections: listeners.tcpConnections,
                    udpDatagrams: listeners.udpDatagrams,
                    listeners: listeners.listening,
                    properties: fs.existsSync(countFile) ? (JSON.parse(fs.readFileSync(countFile, "utf8")) as PropertyCount) : undefined,
                };
            },
            async cleanup() {
                await p.cleanup();
                await listeners.stop();
            },
        };
    } catch (err) {
        await project?.cleanup();
        await listeners.stop();
        throw err;
    }
}

/** The floor's own properties per resource: its five plain inputs and the __provider the SDK adds. */
const floorProperties = 6;

/** The engine floor of `resources` no-op resources, each with `extraProps` more plain properties. */
async function floorSubject(resources: number, extraProps = 0): Promise<Subject & { project: BenchProject }> {
    const project = await benchProject("floor");
    try {
        await project.stack.setConfig("count", String(resources));
        if (extraProps > 0) await project.stack.setConfig("extraProps", String(extraProps));
    } catch (err) {
        await project.cleanup();
        throw err;
    }
    // The plain floor's processes are told apart too, for the side-by-side figures of the native seed.
    return { project, preview: () => measuredPreview(project, extraProps === 0), cleanup: () => project.cleanup() };
}

/** The floor's state after an `up`: bytes per resource hardly depend on the size. */
async function floorState(project: BenchProject): Promise<{ upMs: number; stateBytes: number }> {
    const upMs = (await timed(() => project.stack.up())).ms;
    return { upMs, stateBytes: Buffer.byteLength(await project.stack.exportState()) };
}

/**
 * What serialising one pulumi-baremetal provider costs. The SDK caches the text by
 * provider object, so a program pays it once per distinct object handed to
 * pulumi.dynamic.Resource (sdk/provider.ts makes one per kind).
 */
async function serialisationCost(): Promise<string> {
    const n = 50;
    // The first call loads the closure serialiser (and the TypeScript compiler it uses): a one-time cost.
    const first = dynamicProvider("Machine");
    await pulumi.runtime.serializeFunction(() => first, { allowSecrets: true });
    const before = process.cpuUsage();
    const started = Date.now();
    for (let i = 0; i < n; i++) {
        const provider = dynamicProvider("Machine");
        await pulumi.runtime.serializeFunction(() => provider, { allowSecrets: true });
    }
    const cpu = process.cpuUsage(before);
    return `serialising one Machine provider (pulumi.runtime.serializeFunction, ${n} times in this process): ${((Date.now() - started) / n).toFixed(2)} ms wall, ${((cpu.user + cpu.system) / 1000 / n).toFixed(2)} ms CPU each`;
}

/** (time - the empty program's) / resources: what one more resource costs. */
function perResource(f: { ms: number; cpuMs: number; resources: number }, fixed: { ms: number; cpuMs: number }): { wall: number; cpu: number } {
    const n = Math.max(1, f.resources);
    return { wall: (f.ms - fixed.ms) / n, cpu: (f.cpuMs - fixed.cpuMs) / n };
}

function describeProgram(label: string, f: ProgramFigures, per: { wall: number; cpu: number }, floorPer?: { wall: number; cpu: number }): string {
    const vs = floorPer ? ` = ${ratio(per.wall, floorPer.wall)} (wall) / ${ratio(per.cpu, floorPer.cpu)} (CPU) the floor's` : "";
    return `${label} ${f.resources} resources previewed in ${f.ms} ms wall, ${f.cpuMs} ms CPU; per resource ${per.wall.toFixed(2)} ms wall, ${per.cpu.toFixed(2)} ms CPU${vs}; program process peak ${f.peakMiB} MiB resident`;
}

/**
 * The cost of one more resource between two sizes: the difference of the times
 * over the difference of the resources. Free of every fixed cost (CLI start,
 * compiling the program), so it is the figure to compare with the floor.
 */
function marginal(a: { machines: number; seed?: SeedFigures; floor: FloorFigures }, b: { machines: number; seed?: SeedFigures; floor: FloorFigures }): string {
    const slope = (x: ProgramFigures, y: ProgramFigures) => ({ wall: (y.ms - x.ms) / (y.resources - x.resources), cpu: (y.cpuMs - x.cpuMs) / (y.resources - x.resources) });
    const floor = slope(a.floor, b.floor);
    const head = `marginal cost per resource from ${a.machines} to ${b.machines} machines:`;
    const floorText = `floor ${floor.wall.toFixed(2)} ms wall, ${floor.cpu.toFixed(2)} ms CPU`;
    if (!a.seed || !b.seed) return `${head} ${floorText}`;
    const seed = slope(a.seed, b.seed);
    return `${head} seed ${seed.wall.toFixed(2)} ms wall, ${seed.cpu.toFixed(2)} ms CPU; ${floorText}; seed/floor ${ratio(seed.wall, floor.wall)} wall, ${ratio(seed.cpu, floor.cpu)} CPU`;
}

async function main(): Promise<void> {
    console.log(`machine: ${os.cpus().length} CPU(s), load average ${os.loadavg().map((l) => l.toFixed(1)).join(" ")} at the start (the wall times are only as quiet as the machine; CPU times are steadier)`);
    console.log(`${rounds} round(s) per size, each previewing the empty program, the seed${nativeWanted ? ` (and in ${nativeRounds === rounds ? "every round" : `the first ${nativeRounds}`} the seed through the native plugin)` : ""}, the floor and the property-matched floor; figures: least time of the rounds, median peak memory`);
    console.log("per-resource overhead = (preview time - the empty program's time: CLI, engine, language host) / resources previewed");
    console.log((await orReport("serialisation cost", serialisationCost)) ?? "serialising one Machine provider: not measured");
    const missing = seedMissing();
    let key: ReturnType<typeof keyPair> | undefined;
    try {
        key = keyPair();
    } catch (err) {
        console.log(`seed program: NOT BENCHED, no key pair for its boxes (ssh-keygen): ${(err as Error).message.split("\n")[0]}`);
    }
    const done: SizeResult[] = [];
    try {
        for (const machines of sizes) {
            console.log(`--- ${machines} machines (load average ${os.loadavg()[0].toFixed(1)})`);
            if (missing) console.log(`seed program: NOT BENCHED, examples/datacenter/program lacks ${missing}`);
            const result = await benchSize(machines, missing ? undefined : key);
            if (!result) {
                console.log(`preview-ratio machines=${machines} cpu=n/a wall=n/a memory=n/a`);
                continue;
            }
            const prev = done[done.length - 1];
            if (prev) console.log(marginal(prev, result));
            if (prev?.native && result.native) console.log(nativeMarginal(prev, result));
            done.push(result);
        }
    } finally {
        key?.cleanup();
    }
}

/** Every program of one size, in rounds; prints its figures. Undefined when the seed or the floor could not be previewed. */
async function benchSize(machines: number, key: { hostKey: string; privateKey: string } | undefined): Promise<SizeResult | undefined> {
    const subjects: Subject[] = [];
    try {
        const empty = await orReport("empty program", () => emptySubject());
        if (!empty) return undefined;
        subjects.push(empty);
        const seed = key ? await orReport("seed program", () => seedSubject(machines, key)) : undefined;
        if (key && !seed) return undefined;
        if (seed) subjects.push(seed);
        // The same seed through the native plugin: its figures are printed beside the others, never needed for them.
        const native = seed && nativeWanted ? await orReport("native seed program", () => seedSubject(machines, key!, true)) : undefined;
        if (native) subjects.push(native);
        const runs = { empty: [] as Run[], seed: [] as Run[], native: [] as Run[], floor: [] as Run[], matched: [] as Run[] };
        let nativeFailed = false;
        let floor: (Subject & { project: BenchProject }) | undefined;
        let matched: Subject | undefined;
        let mean: number | undefined;
        for (let r = 0; r < rounds; r++) {
            const e = await orReport("empty program", () => twice("empty program", () => empty.preview()));
            const s = seed ? await orReport("seed program", () => twice("seed program", () => seed.preview())) : undefined;
            if (!e || (seed && !s)) return undefined;
            runs.empty.push(e);
            if (s) runs.seed.push(s);
            const nv = native;
            const n = nv && !nativeFailed && r < nativeRounds ? await orReport("native seed program", () => twice("native seed program", () => nv.preview())) : undefined;
            if (n) runs.native.push(n);
            else if (nv && r < nativeRounds) nativeFailed = true;
            if (!floor) {
                // Same number of resources as the seed program; its 8.6 per machine (the generator's mix) when it is not benched.
                const count = s ? resourcesOf(s.value) : Math.round(machines * 8.6);
                floor = await orReport("engine floor", () => floorSubject(count));
                if (!floor) return undefined;
                subjects.push(floor);
                const counted = seed ? (await seed.observed()).properties : undefined;
                if (counted) {
                    mean = counted.properties / counted.resources;
                    matched = await orReport("property-matched floor", () => floorSubject(count, Math.max(0, Math.round(mean!) - floorProperties)));
                    if (matched) subjects.push(matched);
                }
            }
            const f = floor;
            const fl = await orReport("engine floor", () => twice("engine floor", () => f.preview()));
            if (!fl) return undefined;
            runs.floor.push(fl);
            const m = matched;
            const mr = m ? await orReport("property-matched floor", () => twice("property-matched floor", () => m.preview())) : undefined;
            if (mr) runs.matched.push(mr);
        }
        const fixed = best(runs.empty);
        console.log(`empty program (fixed cost): ${fixed.ms} ms wall, ${fixed.cpuMs} ms CPU`);
        const floorFigures: FloorFigures = best(runs.floor);
        // The state per resource hardly depends on the size: one `up` (the smallest, and 100 machines in full mode) says it.
        if (floor && !process.env.BENCH_PREVIEW_NO_UP && (machines === sizes[0] || (fullMode && machines === 100))) {
            const f = floor;
            Object.assign(floorFigures, await orReport("engine floor up", () => floorState(f.project)));
        }
        const floorPer = perResource(floorFigures, fixed);
        if (!seed) {
            console.log(`${describeProgram("engine floor:", floorFigures, floorPer)}; serialised provider ${floorFigures.providerBytes} bytes per resource`);
            return undefined;
        }
        const seedFigures: SeedFigures = { machines, ...best(runs.seed), ...(await seed.observed()) };
        const per = perResource(seedFigures, fixed);
        console.log(describeProgram("seed program:", seedFigures, per, floorPer));
        console.log(`  SSH connections opened during preview: ${seedFigures.traceConnections} by the host trace (failed dials ${seedFigures.traceDials}, host commands ${seedFigures.traceCommands}); ` +
            `${seedFigures.tcpConnections} TCP connections and ${seedFigures.udpDatagrams} UDP datagrams at the ${seedFigures.listeners} listeners every SSH, BMC and Consul address points at (must all be 0)`);
        console.log(`  serialised provider: ${seedFigures.providerBytes} bytes per resource`);
        // The one line issue #16 tracks (ratios to the engine floor at the same size).
        console.log(`preview-ratio machines=${machines} cpu=${(per.cpu / floorPer.cpu).toFixed(2)} wall=${(per.wall / floorPer.wall).toFixed(2)} memory=${(seedFigures.peakMiB / floorFigures.peakMiB).toFixed(2)}`);
        console.log(`${describeProgram("engine floor:", floorFigures, floorPer)}; serialised provider ${floorFigures.providerBytes} bytes per resource`);
        if (floorFigures.stateBytes !== undefined) {
            console.log(`  after up (${floorFigures.upMs} ms): state ${floorFigures.stateBytes} bytes, ${Math.round(floorFigures.stateBytes / floorFigures.resources)} bytes per resource`);
        }
        describeMatched(seedFigures, per, runs.matched, fixed, mean);
        const nativeFigures = native && !nativeFailed && runs.native.length === nativeRounds ? await nativeFiguresOf(native, runs.native) : undefined;
        // The others over the rounds the native seed ran in, so that all three saw the same load.
        const k = runs.native.length;
        const same = { fixed: best(runs.empty.slice(0, k)), seed: { ...seedFigures, ...(k > 0 ? best(runs.seed.slice(0, k)) : {}) }, floor: k > 0 ? best(runs.floor.slice(0, k)) : floorFigures };
        describeNative(machines, { seed: same.seed, seedRuns: runs.seed.slice(0, k), nativeRuns: runs.native, native: nativeFigures, floor: same.floor, floorRuns: runs.floor.slice(0, k), fixed: same.fixed }, native !== undefined);
        return { machines, seed: seedFigures, floor: floorFigures, ...(nativeFigures ? { native: { figures: nativeFigures, seed: same.seed, floor: same.floor } } : {}) };
    } finally {
        for (const s of subjects) await s.cleanup();
    }
}

/** The median of each kind of process's peak over the rounds (zeros when not sampled). */
function medianPeaks(runs: Run[]): ProcessPeaks {
    const median = (f: (p: ProcessPeaks) => number): number => {
        const xs = runs.flatMap((r) => (r.processes ? [f(r.processes)] : [])).sort((a, b) => a - b);
        return xs.length === 0 ? 0 : xs[Math.floor(xs.length / 2)];
    };
    return { program: median((p) => p.program), provider: median((p) => p.provider), other: median((p) => p.other) };
}

/** Resources of a preview whose type is the native plugin's (`baremetal:index:<Kind>`). */
function nativeTypedOf(p: PreviewJson): number {
    return p.steps.filter((s) => (s.type ?? s.urn.split("::")[2] ?? "").startsWith("baremetal:index:")).length;
}

async function nativeFiguresOf(native: SeedSubject, runs: Run[]): Promise<NativeFigures> {
    return { ...best(runs), observed: await native.observed(), calls: runs.map((r) => r.calls ?? { calls: {}, processes: 0 }), nativeTyped: nativeTypedOf(runs[0].value), processes: medianPeaks(runs) };
}

/** Network contacts a seed preview made (host trace and listeners): all must be 0. */
function contacts(o: Omit<SeedFigures, keyof ProgramFigures | "machines">): number {
    return o.traceConnections + o.traceDials + o.traceCommands + o.tcpConnections + o.udpDatagrams;
}

/** `n/a`-safe ratio of two plain numbers, as `1.23`. */
function plainRatio(a: number, b: number): string {
    return b === 0 ? "n/a" : (a / b).toFixed(2);
}

/**
 * The seed through the native plugin beside the same seed through the dynamic
 * provider and the engine floor, same run, same rounds: what a resource costs
 * each (per resource over the empty program), the peak of the program's process
 * and of the provider's, and their ratios. A preview that reached a host, or a
 * native preview whose resources were not all checked by the plugin, is reported
 * as a failure (process exit code 1): that is a bug, not a time.
 */
function describeNative(
    machines: number,
    f: { seed: SeedFigures; seedRuns: Run[]; native?: NativeFigures; nativeRuns: Run[]; floor: FloorFigures; floorRuns: Run[]; fixed: { ms: number; cpuMs: number } },
    attempted: boolean,
): void {
    if (!f.native) {
        console.log(attempted ? "native seed program: failed (see above); no native-ratio line for this size" : nativeWanted ? "native seed program: not run" : "native seed program: left out (BENCH_PREVIEW_NATIVE=0)");
        return;
    }
    const n = f.native;
    const nativeRunsMs = f.nativeRuns.reduce((a, r) => a + r.ms, 0);
    const seedPer = perResource(f.seed, f.fixed);
    const nativePer = perResource(n, f.fixed);
    const floorPer = perResource(f.floor, f.fixed);
    console.log(describeProgram("native seed program (the same seed and inventory, every resource registered as baremetal:index:<Kind> with the plugin pulumi-resource-baremetal):", n, nativePer, floorPer));
    const count = (c: CallCount | undefined, key: string): number => c?.calls[key] ?? 0;
    const checks = n.calls.map((c) => count(c, "native.check"));
    const dynamicCalls = n.calls.reduce((a, c) => a + Object.entries(c.calls).filter(([k]) => k.startsWith("dynamic.")).reduce((x, [, v]) => x + v, 0), 0);
    const seedChecks = f.seedRuns.map((r) => count(r.calls, "dynamic.check"));
    console.log(`  native resources planned: ${n.nativeTyped} of ${n.resources} (the dynamic seed: ${f.seed.resources}); check calls served by the native plugin per preview: ${checks.join(", ")} ` +
        `(from ${Math.max(...n.calls.map((c) => c.processes))} plugin process per preview); diff calls ${n.calls.reduce((a, c) => a + count(c, "native.diff"), 0)} (a new stack has no state to diff against); ` +
        `calls served by the dynamic provider: ${dynamicCalls}; the dynamic seed's check calls per preview: ${seedChecks.join(", ")}`);
    const o = n.observed;
    console.log(`  SSH connections opened during the native previews: ${o.traceConnections} by the host trace (failed dials ${o.traceDials}, host commands ${o.traceCommands}); ` +
        `${o.tcpConnections} TCP connections and ${o.udpDatagrams} UDP datagrams at the ${o.listeners} listeners (must all be 0)`);
    const problems: string[] = [];
    if (contacts(o) > 0) problems.push(`the native previews reached hosts (${contacts(o)} contacts)`);
    if (contacts(f.seed) > 0) problems.push(`the dynamic previews reached hosts (${contacts(f.seed)} contacts)`);
    if (n.resources !== f.seed.resources) problems.push(`the native seed planned ${n.resources} resources, the dynamic seed ${f.seed.resources}`);
    if (n.nativeTyped !== n.resources) problems.push(`${n.resources - n.nativeTyped} of the native seed's resources were not of a baremetal:index type`);
    if (checks.some((c) => c !== n.resources)) problems.push(`the native plugin checked ${checks.join(", ")} resources in previews of ${n.resources}`);
    if (dynamicCalls > 0) problems.push(`${dynamicCalls} calls of the native seed went to the dynamic provider`);
    if (problems.length > 0) {
        console.log(`  NATIVE SEED PREVIEW WRONG: ${problems.join("; ")}`);
        process.exitCode = 1;
    }
    const seedPeaks = medianPeaks(f.seedRuns);
    const floorPeaks = medianPeaks(f.floorRuns);
    const row = (label: string, x: ProgramFigures, per: { wall: number; cpu: number }, peaks: ProcessPeaks): string =>
        `  ${label.padEnd(13)} ${String(x.resources).padStart(9)} ${String(x.ms).padStart(9)} ${String(x.cpuMs).padStart(9)} ${per.wall.toFixed(2).padStart(9)} ${per.cpu.toFixed(2).padStart(9)} ${String(peaks.program).padStart(11)} ${String(peaks.provider).padStart(12)}`;
    const nativeSeconds = Math.round(nativeRunsMs / 1000);
    const which = f.nativeRuns.length === rounds ? "all rounds" : `rounds 1-${f.nativeRuns.length}, the ones the native seed ran in`;
    console.log(`  side by side, ${machines} machines (${which}; per resource: over the empty program; peaks: median of the rounds, resident MiB; the native previews took ${nativeSeconds} s of this run):`);
    console.log(`  ${"".padEnd(13)} ${"resources".padStart(9)} ${"wall ms".padStart(9)} ${"CPU ms".padStart(9)} ${"wall/res".padStart(9)} ${"CPU/res".padStart(9)} ${"program MiB".padStart(11)} ${"provider MiB".padStart(12)}`);
    console.log(row("engine floor", f.floor, floorPer, floorPeaks));
    console.log(row("dynamic seed", f.seed, seedPer, seedPeaks));
    console.log(row("native seed", n, nativePer, n.processes));
    const part = (label: string, per: { wall: number; cpu: number }, peaks: ProcessPeaks, base: { wall: number; cpu: number }, basePeaks: ProcessPeaks): string =>
        `${label} cpu=${plainRatio(per.cpu, base.cpu)} wall=${plainRatio(per.wall, base.wall)} program-memory=${plainRatio(peaks.program, basePeaks.program)} provider-memory=${plainRatio(peaks.provider, basePeaks.provider)}`;
    // One line per size: the native seed and the dynamic seed against the floor, and against each other.
    console.log(`native-ratio machines=${machines} ${part("native/floor", nativePer, n.processes, floorPer, floorPeaks)} ${part("dynamic/floor", seedPer, seedPeaks, floorPer, floorPeaks)} ${part("native/dynamic", nativePer, n.processes, seedPer, seedPeaks)}`);
}

/** The marginal cost per resource of the native seed beside the dynamic one's (same rounds), between two sizes. */
function nativeMarginal(a: SizeResult, b: SizeResult): string {
    const slope = (x: ProgramFigures, y: ProgramFigures) => ({ wall: (y.ms - x.ms) / (y.resources - x.resources), cpu: (y.cpuMs - x.cpuMs) / (y.resources - x.resources) });
    const native = slope(a.native!.figures, b.native!.figures);
    const seed = slope(a.native!.seed, b.native!.seed);
    // A slope below zero says the load changed between the sizes, not what a resource costs.
    const r = (x: number, y: number) => (x > 0 && y > 0 ? ratio(x, y) : "n/a (the load changed between the sizes)");
    return `marginal cost per resource from ${a.machines} to ${b.machines} machines: native seed ${native.wall.toFixed(2)} ms wall, ${native.cpu.toFixed(2)} ms CPU; ` +
        `dynamic seed (same rounds) ${seed.wall.toFixed(2)} ms wall, ${seed.cpu.toFixed(2)} ms CPU; native/dynamic ${r(native.wall, seed.wall)} wall, ${r(native.cpu, seed.cpu)} CPU`;
}

/**
 * The floor again, each resource with as many properties as the seed's have on
 * average. The SDK's cost per resource grows with its properties (four promises
 * and an Output each); what the seed costs beyond this floor is ours.
 */
function describeMatched(seed: SeedFigures, per: { wall: number; cpu: number }, runs: Run[], fixed: { ms: number; cpuMs: number }, mean: number | undefined): void {
    if (mean === undefined || runs.length === 0) {
        console.log("property-matched floor: not run (the seed's properties could not be counted by bench/lib/countProperties.ts, or the floor failed)");
        return;
    }
    const matched = best(runs);
    const matchedPer = perResource(matched, fixed);
    const props = floorProperties + Math.max(0, Math.round(mean) - floorProperties);
    console.log(describeProgram(`property-matched floor (${props} properties per resource; the seed's mean is ${mean.toFixed(1)}, the floor's ${floorProperties}):`, matched, matchedPer));
    console.log(`  seed / property-matched floor: cpu ${ratio(per.cpu, matchedPer.cpu)}, wall ${ratio(per.wall, matchedPer.wall)}, memory ${ratio(seed.peakMiB, matched.peakMiB)} ` +
        "(beyond 1.00: our own cost per resource; the rest of the seed's ratio to the floor is the SDK's cost per property)");
}

main().catch((err) => {
    console.error(err);
    process.exitCode = 1;
});
