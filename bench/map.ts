// `baremetal map` render time: the seed's data center (116 resources, the state
// test/helpers/seedState.ts makes from the seed's real preview) and the lab's state
// (test/e2e/fixtures/map/lab-state.json, when present). Two figures each: the whole
// command as a user runs it (a new Node process: start, module load, read, lay out,
// write), and the stages inside one process after the first run (model, ELK layout,
// HTML), with the CPU time beside the wall time (on a busy machine the wall time is
// mostly waiting for a core). Prints figures; never fails on a time.
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { renderMap } from "../provider/cli/map";
import { readStateFile } from "../provider/cli/map/state";
import { seedStateFixture } from "../test/helpers/seedState";

const repo = path.resolve(__dirname, "../..");
const runs = process.env.BENCH_FULL === "1" ? 20 : 5;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (x: number) => `${x.toFixed(0).padStart(5)} ms`;

/** Wall and CPU milliseconds of `baremetal map` in a new process (bash's `time` reads the child's CPU). */
function commandTimes(stateFile: string): { wall: number[]; cpu: number[] } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-map-"));
    const wall: number[] = [];
    const cpu: number[] = [];
    for (let i = 0; i < runs; i++) {
        const t = performance.now();
        const out = execFileSync("bash", ["-c", 'TIMEFORMAT="%U %S"; { time "$0" "$1" map --state "$2" --out "$3" 2>/dev/null; } 2>&1', process.execPath, path.join(repo, "bin", "baremetal"), stateFile, path.join(dir, "map.html")], { encoding: "utf8" });
        wall.push(performance.now() - t);
        const [user, sys] = out.trim().split(/\s+/).slice(-2).map(Number);
        cpu.push((user + sys) * 1000);
    }
    fs.rmSync(dir, { recursive: true, force: true });
    return { wall, cpu };
}

/** CPU milliseconds (user + system) this process spent since `since`. */
const cpuSince = (since: NodeJS.CpuUsage) => {
    const c = process.cpuUsage(since);
    return (c.user + c.system) / 1000;
};

async function inProcess(stateFile: string): Promise<{ first: number; read: number; model: number; layout: number; render: number; total: number; cpu: number; bytes: number }> {
    let t = performance.now();
    await renderMap(readStateFile(stateFile));
    const first = performance.now() - t;
    const rows: { read: number; model: number; layout: number; render: number; total: number; cpu: number }[] = [];
    let bytes = 0;
    for (let i = 0; i < runs; i++) {
        t = performance.now();
        const c0 = process.cpuUsage();
        const state = readStateFile(stateFile);
        const read = performance.now() - t;
        const m = await renderMap(state);
        bytes = Buffer.byteLength(m.text);
        rows.push({ read, ...m.timings, total: performance.now() - t, cpu: cpuSince(c0) });
    }
    const pick = (k: keyof (typeof rows)[number]) => median(rows.map((r) => r[k]));
    return { first, read: pick("read"), model: pick("model"), layout: pick("layout"), render: pick("render"), total: pick("total"), cpu: pick("cpu"), bytes };
}

async function bench(name: string, stateFile: string): Promise<void> {
    const state = readStateFile(stateFile);
    const count = state.resources.filter((r) => r.kind).length;
    console.log(`${name}: ${count} resources (${path.relative(repo, stateFile)}), median of ${runs}`);
    const cmd = commandTimes(stateFile);
    const p = await inProcess(stateFile);
    console.log(`  baremetal map --state ... --out map.html (new process)  ${ms(median(cmd.wall))}  (min ${ms(Math.min(...cmd.wall)).trim()}; CPU ${ms(median(cmd.cpu)).trim()})`);
    console.log(`  in one process, first map (ELK's code loads)             ${ms(p.first)}`);
    console.log(`  in one process, later maps                               ${ms(p.total)}  (CPU ${ms(p.cpu).trim()}, garbage collector threads included)`);
    console.log(`    read + redact ${ms(p.read).trim()}, model ${ms(p.model).trim()}, ELK layout ${ms(p.layout).trim()} (${((100 * p.layout) / p.total).toFixed(0)}%), HTML ${ms(p.render).trim()}; page ${(p.bytes / 1024).toFixed(0)} KiB`);
}

async function main(): Promise<void> {
    console.log(`machine: ${os.cpus().length} cores, load average ${os.loadavg().map((l) => l.toFixed(1)).join(" ")}`);
    await bench("seed data center", seedStateFixture);
    const lab = path.join(repo, "test/e2e/fixtures/map/lab-state.json");
    if (fs.existsSync(lab)) await bench("lab data center", lab);
    else console.log("lab data center: no test/e2e/fixtures/map/lab-state.json (export it after npm run demo)");
}

main().catch((err) => {
    console.error(err);
    process.exit(1);
});
