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
import { BenchProject, benchProject, checkoutRoot, fullMode, peakMemoryOf, providerBytes, ratio, resourcesOf, Timed, timed } from "./lib/programs";
import type { PreviewJson } from "../test/helpers/pulumi";
import { summarise } from "./lib/traceSummary";
import { openvpnStaticKey } from "../test/helpers/keys";

/**
 * BENCH_PREVIEW_SIZES=10,250 picks other sizes; BENCH_PREVIEW_NO_UP=1 skips the floor's `up` (state size);
 * BENCH_PREVIEW_ROUNDS=1 runs each program once per size (quicker, noisier).
 */
const sizes = process.env.BENCH_PREVIEW_SIZES ? process.env.BENCH_PREVIEW_SIZES.split(",").map(Number) : fullMode ? [10, 100, 1000] : [10, 100];
const rounds = Math.max(1, Number(process.env.BENCH_PREVIEW_ROUNDS ?? 3));
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
}

/** A bench program set up once and previewed in every round. */
interface Subject {
    preview(): Promise<Run>;
    cleanup(): Promise<void>;
}

/** One timed preview with the program's peak memory sampled; the sampler stops whatever happens. */
async function measuredPreview(project: BenchProject): Promise<Run> {
    const memory = peakMemoryOf(project.dir);
    try {
        const t: Timed<PreviewJson> = await timed(() => project.stack.preview());
        return { ms: t.ms, cpuMs: t.cpuMs, peakMiB: memory.stop(), value: t.value };
    } finally {
        memory.stop();
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

async function seedSubject(machines: number, key: { hostKey: string; privateKey: string }): Promise<SeedSubject> {
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
        await p.stack.setConfig("sshPrivateKey", Buffer.from(key.privateKey).toString("base64"), true);
        await p.stack.setConfig("bmcPassword", "bench-bmc-password", true);
        await p.stack.setConfig("openvpnKey", Buffer.from(openvpnStaticKey()).toString("base64"), true);
        const countFile = path.join(p.dir, "property-count.json");
        p.stack.env[propertyCountFileVar] = countFile;
        const counter = path.join(checkoutRoot, "dist/bench/lib/countProperties.js");
        p.stack.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ""} --require ${counter}`.trim();
        return {
            preview: () => measuredPreview(p),
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
    return { project, preview: () => measuredPreview(project), cleanup: () => project.cleanup() };
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
    console.log(`${rounds} round(s) per size, each previewing the empty program, the seed, the floor and the property-matched floor; figures: least time of the rounds, median peak memory`);
    console.log("per-resource overhead = (preview time - the empty program's time: CLI, engine, language host) / resources previewed");
    console.log((await orReport("serialisation cost", serialisationCost)) ?? "serialising one Machine provider: not measured");
    const missing = seedMissing();
    let key: ReturnType<typeof keyPair> | undefined;
    try {
        key = keyPair();
    } catch (err) {
        console.log(`seed program: NOT BENCHED, no key pair for its boxes (ssh-keygen): ${(err as Error).message.split("\n")[0]}`);
    }
    const done: { machines: number; seed?: SeedFigures; floor: FloorFigures }[] = [];
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
            done.push(result);
        }
    } finally {
        key?.cleanup();
    }
}

/** Every program of one size, in rounds; prints its figures. Undefined when the seed or the floor could not be previewed. */
async function benchSize(machines: number, key: { hostKey: string; privateKey: string } | undefined): Promise<{ machines: number; seed: SeedFigures; floor: FloorFigures } | undefined> {
    const subjects: Subject[] = [];
    try {
        const empty = await orReport("empty program", () => emptySubject());
        if (!empty) return undefined;
        subjects.push(empty);
        const seed = key ? await orReport("seed program", () => seedSubject(machines, key)) : undefined;
        if (key && !seed) return undefined;
        if (seed) subjects.push(seed);
        const runs = { empty: [] as Run[], seed: [] as Run[], floor: [] as Run[], matched: [] as Run[] };
        let floor: (Subject & { project: BenchProject }) | undefined;
        let matched: Subject | undefined;
        let mean: number | undefined;
        for (let r = 0; r < rounds; r++) {
            const e = await orReport("empty program", () => twice("empty program", () => empty.preview()));
            const s = seed ? await orReport("seed program", () => twice("seed program", () => seed.preview())) : undefined;
            if (!e || (seed && !s)) return undefined;
            runs.empty.push(e);
            if (s) runs.seed.push(s);
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
        return { machines, seed: seedFigures, floor: floorFigures };
    } finally {
        for (const s of subjects) await s.cleanup();
    }
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
