// Bench: `pulumi preview` (real CLI, local file backend) of the seed data-center
// program over generated inventories of 10, 100 (and, with BENCH_FULL=1, 1,000)
// machines, against the engine's floor: a program of the same number of no-op
// dynamic resources (bench/fixtures/floor, a benchmark baseline). Prints total
// time, per-resource overhead and its ratio to the floor, resources previewed,
// SSH connections opened (must be 0: counted from the host trace AND by
// listeners every host of the inventory points at), serialised provider bytes
// per resource and the state size of the floor after an `up`.
// Prints figures; never fails on a time.
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
import { benchProject, checkoutRoot, fullMode, peakMemoryOf, providerBytes, ratio, resourcesOf, timed } from "./lib/programs";
import { summarise } from "./lib/traceSummary";
import { openvpnStaticKey } from "../test/helpers/keys";

/** BENCH_PREVIEW_SIZES=10,250 picks other sizes; BENCH_PREVIEW_NO_UP=1 skips the floor's `up` (state size). */
const sizes = process.env.BENCH_PREVIEW_SIZES ? process.env.BENCH_PREVIEW_SIZES.split(",").map(Number) : fullMode ? [10, 100, 1000] : [10, 100];
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

async function emptyPreview(): Promise<{ ms: number; cpuMs: number }> {
    const p = await benchProject("empty");
    try {
        const t = await timed(() => p.stack.preview());
        return { ms: t.ms, cpuMs: t.cpuMs };
    } finally {
        await p.cleanup();
    }
}

async function seedPreview(machines: number, key: { hostKey: string; privateKey: string }): Promise<SeedFigures> {
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
    const project = await benchProject("datacenter", files);
    try {
        fs.symlinkSync(seedDir, path.join(project.dir, "program"));
        await project.stack.setConfig("sshPrivateKey", Buffer.from(key.privateKey).toString("base64"), true);
        await project.stack.setConfig("bmcPassword", "bench-bmc-password", true);
        await project.stack.setConfig("openvpnKey", Buffer.from(openvpnStaticKey()).toString("base64"), true);
        const memory = peakMemoryOf(project.dir);
        const t = await timed(() => project.stack.preview());
        const peakMiB = memory.stop();
        // Late connections (a process still dialling as the CLI exits) would land here.
        await new Promise((r) => setTimeout(r, 500));
        const trace = summarise(project.traceFile);
        return {
            machines,
            ms: t.ms,
            cpuMs: t.cpuMs,
            peakMiB,
            resources: resourcesOf(t.value),
            providerBytes: providerBytes(t.value).perResource,
            traceConnections: trace.connectionsOpened,
            traceDials: trace.dialsFailed,
            traceCommands: trace.commands,
            tcpConnections: listeners.tcpConnections,
            udpDatagrams: listeners.udpDatagrams,
            listeners: listeners.listening,
        };
    } finally {
        await project.cleanup();
        await listeners.stop();
    }
}

async function floorPreview(resources: number, withUp: boolean): Promise<FloorFigures> {
    const project = await benchProject("floor");
    try {
        await project.stack.setConfig("count", String(resources));
        const memory = peakMemoryOf(project.dir);
        const t = await timed(() => project.stack.preview());
        const out: FloorFigures = { ms: t.ms, cpuMs: t.cpuMs, peakMiB: memory.stop(), resources: resourcesOf(t.value), providerBytes: providerBytes(t.value).perResource };
        if (withUp) {
            out.upMs = (await timed(() => project.stack.up())).ms;
            out.stateBytes = Buffer.byteLength(await project.stack.exportState());
        }
        return out;
    } finally {
        await project.cleanup();
    }
}

/**
 * What serialising one pulumi-baremetal provider costs. The SDK caches the text by
 * provider object, so a program pays it once per distinct object handed to
 * pulumi.dynamic.Resource (sdk/provider.ts makes one per resource).
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
    const fixed = await emptyPreview();
    console.log(`preview of an empty program (fixed cost: CLI, engine, language host): ${fixed.ms} ms wall, ${fixed.cpuMs} ms CPU`);
    console.log("per-resource overhead = (preview time - that fixed cost) / resources previewed");
    console.log(await serialisationCost());
    const missing = seedMissing();
    const key = keyPair();
    const done: { machines: number; seed?: SeedFigures; floor: FloorFigures }[] = [];
    try {
        for (const machines of sizes) {
            console.log(`--- ${machines} machines (load average ${os.loadavg()[0].toFixed(1)})`);
            let seed: SeedFigures | undefined;
            if (missing) {
                console.log(`seed program: NOT BENCHED, examples/datacenter/program lacks ${missing}`);
            } else {
                try {
                    seed = await seedPreview(machines, key);
                } catch (err) {
                    console.log(`seed program: FAILED to preview: ${(err as Error).message.split("\n").slice(0, 12).join("\n  ")}`);
                }
            }
            // Same number of resources as the seed program; its 8.6 per machine (the generator's mix) when it could not run.
            const count = seed?.resources ?? Math.round(machines * 8.6);
            // The state per resource hardly depends on the size: one `up` (the smallest, and 100 machines in full mode) says it.
            const floor = await floorPreview(count, !process.env.BENCH_PREVIEW_NO_UP && (done.length === 0 || (fullMode && machines === 100)));
            const floorPer = perResource(floor, fixed);
            if (seed) {
                console.log(describeProgram("seed program:", seed, perResource(seed, fixed), floorPer));
                console.log(`  SSH connections opened during preview: ${seed.traceConnections} by the host trace (failed dials ${seed.traceDials}, host commands ${seed.traceCommands}); ` +
                    `${seed.tcpConnections} TCP connections and ${seed.udpDatagrams} UDP datagrams at the ${seed.listeners} listeners every SSH, BMC and Consul address points at (must all be 0)`);
                console.log(`  serialised provider: ${seed.providerBytes} bytes per resource`);
                // The one line issue #16 tracks (ratios to the engine floor at the same size).
                const per = perResource(seed, fixed);
                console.log(`preview-ratio machines=${machines} cpu=${(per.cpu / floorPer.cpu).toFixed(2)} wall=${(per.wall / floorPer.wall).toFixed(2)} memory=${(seed.peakMiB / floor.peakMiB).toFixed(2)}`);
            }
            console.log(`${describeProgram("engine floor:", floor, floorPer)}; serialised provider ${floor.providerBytes} bytes per resource`);
            if (floor.stateBytes !== undefined) {
                console.log(`  after up (${floor.upMs} ms): state ${floor.stateBytes} bytes, ${Math.round(floor.stateBytes / floor.resources)} bytes per resource`);
            }
            const prev = done[done.length - 1];
            if (prev) console.log(marginal(prev, { machines, seed, floor }));
            done.push({ machines, seed, floor });
        }
    } finally {
        key.cleanup();
    }
}

main().catch((err) => {
    console.error(err);
    process.exitCode = 1;
});
