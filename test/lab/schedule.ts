// The lab tier's schedule: which test files may run at the same time.
//
// On 2 cores the lab's wall time is set by its longest chain of tests that need
// the same VM, not by the sum of all tests. Each file declares the parts of the lab
// it holds for its whole run (VMs, or a narrower part of one such as svc1's Open
// vSwitch, where a file only adds its own named bridge beside others); two files
// that hold a common part never run at once. Among the files that can start, the
// one on the longest chain of work for one part (by the last measured CI run)
// starts first, so the chain that bounds the tier begins at once. The smoke test is not here: it resets the lab itself and
// runs alone, last (test/run.sh).
//
// `node dist/test/lab/schedule.js plan` prints the schedule the measured times
// give; `node dist/test/lab/schedule.js run FILE...` runs those files (compiled
// .js paths) with at most BAREMETAL_LAB_LANES (default 2) at once, each in its own
// mocha, printing each file's output whole when it ends. Two, not more: the lab's
// emulated VMs keep both cores busy, and a third lane measured slower, not faster
// (each file about twice as long; storage 941 s, import 269 s beside two others).
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { CpuAccount, parseChildTimes } from "./cpuAccount";
import { labJsonPath, LabShell, readLab } from "./lab";

/** A part of the lab a test file holds while it runs. */
export type LabPart = "pxe1" | "pxeclient1" | "storage1" | "svc1" | "ceph1" | "orc1" | "svc1:ovs";

/** A VM of the lab (a part such as "svc1:ovs" belongs to its VM). */
export type LabVmName = "pxe1" | "pxeclient1" | "storage1" | "svc1" | "ceph1" | "orc1";

export interface LabTestFile {
    /** File name without `.test.ts`. */
    name: string;
    holds: LabPart[];
    /**
     * Seconds it took in a measured full run with two lanes (a fresh clone's `CI=true .ci/run`: fc32 of
     * session 20, the first with the OpenRC file in it; until then fc27 of session 17); orders the start. A file's time depends on what ran beside it, so times taken under one order change the
     * next: fc20's times gave the order that ran the lab files in 2,560 s (fc21); fc21's own times started
     * ceph beside datacenter and the e2e tier, the ceph file then took 1,948 s instead of 919 and the Ceph
     * chain ran last, alone (CI 4,009 s; fc23 of session 15 the same). fc27's times keep the Ceph chain in
     * the middle (ceph after faultsGuests and storage, datacenter beside the Ceph faults) and end it beside
     * discover instead of leaving discover alone at the end (fc27: 192 s of one idle lane).
     */
    measuredSeconds: number;
    /**
     * VMs the file needs running without holding them (others may use them at the same time): e.g. the
     * state backend's RGW in ceph1. The Consul server's VM is needed by every file and is never listed.
     */
    uses?: LabVmName[];
    /**
     * Keeps its stacks' state in the lab's S3 (lab/rgw.sh, in ceph1). While no running file does, the
     * runner pauses that cluster (its idle daemons cost about a tenth of ceph1's one vCPU, which the Ceph
     * files want); the file's own lab/rgw.sh start resumes it.
     */
    rgw?: true;
}

// "svc1:ovs" is the whole of svc1's network objects (OVS bridges, OpenVPN tunnels, and Open
// vSwitch itself): held by the file that surveys all of them (discover), by the files that stop
// or freeze Open vSwitch on svc1 (parallel: ovsdb-server frozen, then stopped; faultsGuests: stops
// it when its cuts leave no bridge), and by the OpenRC file, whose only objects on svc1 are its own
// bridge bmorc and tunnel vpnorc and which does not hold svc1. The other svc1 files hold svc1 and
// look only at their own names, so the OpenRC file runs beside them. (fc32 of session 20 ran the
// OpenRC file beside parallel: its refresh of bmorc met the frozen ovsdb-server and failed.)
export const labTestFiles: LabTestFile[] = [
    { name: "ceph", holds: ["ceph1"], measuredSeconds: 596 },
    { name: "ceph1FaultsOsd", holds: ["ceph1"], measuredSeconds: 353 },
    { name: "ceph1FaultsStorage", holds: ["ceph1"], measuredSeconds: 170 },
    // The state backend's S3 (RGW, lab/rgw.sh, made when the lab starts) runs in ceph1 as a cluster of its
    // own, apart from the Ceph tests' cluster. This file's two operators work ceph1's one vCPU hard: beside
    // the Ceph tests, an OSD create timed out; holding ceph1 keeps them apart. teamsStacks only keeps its
    // state there.
    { name: "cephTeams", holds: ["ceph1"], rgw: true, measuredSeconds: 272 },
    { name: "teamsStacks", holds: ["storage1", "svc1"], uses: ["ceph1"], rgw: true, measuredSeconds: 231 },
    // its before hook waits for every box of the lab data center to answer, ceph1 included (withCeph)
    { name: "datacenter", holds: ["pxe1", "pxeclient1", "storage1", "svc1"], uses: ["ceph1"], measuredSeconds: 433 },
    { name: "discover", holds: ["pxe1", "pxeclient1", "storage1", "svc1", "svc1:ovs"], measuredSeconds: 244 },
    { name: "guests", holds: ["pxe1", "storage1", "svc1"], measuredSeconds: 299 },
    { name: "parallel", holds: ["pxe1", "storage1", "svc1", "svc1:ovs"], measuredSeconds: 314 },
    { name: "pxe", holds: ["pxe1", "pxeclient1"], measuredSeconds: 540 },
    { name: "faultsPxe", holds: ["pxe1", "pxeclient1"], measuredSeconds: 264 },
    { name: "storage", holds: ["storage1", "svc1"], measuredSeconds: 429 },
    { name: "import", holds: ["storage1", "svc1"], measuredSeconds: 107 },
    { name: "faultsGuests", holds: ["svc1", "svc1:ovs"], measuredSeconds: 299 },
    // A whole OpenRC box booted, power-cycled and carrying a guest of its own, its PXE server booting
    // pxeclient1 (issue 19). 490 s alone in session 17, 645 s in session 20; in session 11's run (fc18)
    // 969 s beside the others. In the default run since session 20, when CI's benchmarks made room for it.
    { name: "openrc", holds: ["orc1", "pxeclient1", "svc1:ovs"], uses: ["svc1"], measuredSeconds: 792 },
];

/**
 * How urgent a waiting file is: the seconds of waiting work on its busiest part (its own included), so that
 * files on the lab's longest chain (the part most files need) start first; then the fewer parts it holds;
 * then its own seconds.
 */
function urgency(file: LabTestFile, waiting: readonly LabTestFile[]): [number, number, number] {
    const chain = (part: LabPart) => waiting.filter((w) => w.holds.includes(part)).reduce((s, w) => s + w.measuredSeconds, 0);
    // On the same chain, the file that holds fewer parts first: it leaves the others free for another lane.
    return [Math.max(file.measuredSeconds, ...file.holds.map(chain)), -file.holds.length, file.measuredSeconds];
}

/**
 * The next file to start: the most urgent of those waiting that holds nothing a running file holds;
 * undefined when none can start now.
 */
export function nextToStart(waiting: readonly LabTestFile[], running: readonly LabTestFile[]): LabTestFile | undefined {
    const held = new Set(running.flatMap((f) => f.holds));
    const ranked = waiting.map((f) => ({ f, u: urgency(f, waiting) })).sort((a, b) => b.u[0] - a.u[0] || b.u[1] - a.u[1] || b.u[2] - a.u[2]);
    return ranked.map((r) => r.f).find((f) => f.holds.every((p) => !held.has(p)));
}

export interface PlannedRun {
    name: string;
    lane: number;
    startSeconds: number;
    endSeconds: number;
}

interface Running {
    file: LabTestFile;
    lane: number;
    startSeconds: number;
    endSeconds: number;
}

/**
 * Runs the schedule forward from a state (files waiting, files running with their expected ends, now):
 * `choose` picks each file to start. Returns every run, the running ones included.
 */
function simulate(waiting: LabTestFile[], running: Running[], now: number, lanes: number, choose: (w: LabTestFile[], r: Running[], now: number) => LabTestFile | undefined): PlannedRun[] {
    const done: PlannedRun[] = [];
    for (;;) {
        let next: LabTestFile | undefined;
        while (running.length < lanes && (next = choose(waiting, running, now))) {
            const file = next;
            waiting.splice(waiting.indexOf(file), 1);
            const lane = [...Array(lanes).keys()].find((l) => !running.some((r) => r.lane === l)) ?? 0;
            running.push({ file, lane, startSeconds: now, endSeconds: now + file.measuredSeconds });
        }
        if (running.length === 0) {
            if (waiting.length > 0) throw new Error(`no lab test can start: ${waiting.map((f) => f.name).join(", ")}`);
            return done;
        }
        running.sort((a, b) => a.endSeconds - b.endSeconds);
        const ended = running.shift()!;
        now = Math.max(now, ended.endSeconds);
        done.push({ name: ended.file.name, lane: ended.lane, startSeconds: ended.startSeconds, endSeconds: ended.endSeconds });
    }
}

const greedy = (w: LabTestFile[], r: Running[]) => nextToStart(w, r.map((x) => x.file));

/**
 * The file to start now: of those that can start, the one after which the rest of the schedule (each
 * later file by nextToStart) ends soonest by the measured times; on a tie, nextToStart's choice. One
 * step of look-ahead finds, e.g., that the PXE files are best run first beside the storage files, so
 * that the Ceph chain and the svc1 chain then run side by side to the end.
 */
export function bestToStart(waiting: readonly LabTestFile[], running: readonly Running[], now: number, lanes: number): LabTestFile | undefined {
    const held = new Set(running.flatMap((r) => r.file.holds));
    const startable = waiting.filter((f) => f.holds.every((p) => !held.has(p)));
    if (startable.length === 0) return undefined;
    const first = nextToStart(waiting, running.map((r) => r.file))!;
    const ends = (c: LabTestFile) => {
        const r = simulate(waiting.filter((f) => f !== c), [...running.map((x) => ({ ...x })), { file: c, lane: -1, startSeconds: now, endSeconds: now + c.measuredSeconds }], now, lanes, greedy);
        return Math.max(...r.map((x) => x.endSeconds));
    };
    let best = first;
    let bestEnd = ends(first);
    for (const c of startable) {
        const e = ends(c);
        if (e < bestEnd) [best, bestEnd] = [c, e];
    }
    return best;
}

/** The schedule the measured times give with `lanes` files at most at once (what `run` will do if times hold). */
export function plan(files: readonly LabTestFile[], lanes: number): PlannedRun[] {
    return simulate([...files], [], 0, lanes, (w, r, now) => bestToStart(w, r, now, lanes));
}

/** The table's entry for a compiled test file path; an unlisted file is an error (it must say what it holds). */
export function fileFor(jsPath: string): LabTestFile {
    const name = path.basename(jsPath).replace(/\.test\.js$/, "");
    const f = labTestFiles.find((t) => t.name === name);
    if (!f) throw new Error(`test/lab/${name}.test.ts is not in test/lab/schedule.ts: add it with the lab parts it holds`);
    return f;
}

/** The VM a part belongs to. */
function vmOf(part: LabPart): LabVmName {
    return part.split(":")[0] as LabVmName;
}

/**
 * The VMs that are on and that no file still to run (waiting or running) holds or uses, minus `keep`
 * (the Consul server): an idle VM still costs emulated CPU (its kernel's ticks, its Consul agent, a
 * Ceph cluster left in it: about a tenth of a core, half a core for ceph1), which on 2 cores is time
 * taken from the files still running. The runner powers them off through their BMCs.
 */
export function vmsNoLongerNeeded(remaining: readonly LabTestFile[], on: readonly string[], keep: readonly string[]): string[] {
    const needed = new Set<string>([...keep, ...remaining.flatMap((f) => [...f.holds.map(vmOf), ...(f.uses ?? [])])]);
    return on.filter((vm) => !needed.has(vm));
}

interface Finished {
    file: LabTestFile;
    ok: boolean;
    seconds: number;
    /** What it cost in CPU (cpuLine). */
    cpu: string;
}

/** Runs the files, at most `lanes` at once, each in its own mocha; prints each file's output when it ends. */
async function runFiles(jsPaths: string[], lanes: number): Promise<boolean> {
    const byName = new Map(jsPaths.map((p) => [fileFor(p).name, p]));
    const all = jsPaths.map(fileFor);
    const waiting = [...all];
    const idle = new IdleVms();
    await idle.powerOff([...waiting]);
    const rgw = new RgwPause();
    const cpu = fs.existsSync(labJsonPath) ? new CpuAccount(path.dirname(labJsonPath), Object.keys(readLab().vms)) : undefined;
    const running = new Map<string, Promise<Finished>>();
    // What is running, with the end its measured time gives (for bestToStart's look-ahead).
    const inFlight = new Map<string, Running>();
    const results: Finished[] = [];
    const started = Date.now();
    const elapsed = () => Math.round((Date.now() - started) / 1000);
    for (;;) {
        let next: LabTestFile | undefined;
        while (running.size < lanes && (next = bestToStart(waiting, [...inFlight.values()], elapsed(), lanes))) {
            waiting.splice(waiting.indexOf(next), 1);
            inFlight.set(next.name, { file: next, lane: 0, startSeconds: elapsed(), endSeconds: elapsed() + next.measuredSeconds });
            console.log(`=== lab file ${next.name}: started at ${elapsed()}s (holds ${next.holds.join(", ") || "nothing exclusive"})`);
            running.set(next.name, runOne(next, byName.get(next.name)!, cpu));
        }
        if (running.size === 0) break;
        // after the starts: a file that starts now resumes it itself
        if (!idle.isOff(rgw.vm)) await rgw.pauseUnlessUsed([...inFlight.values()].map((r) => r.file));
        const finished = await Promise.race(running.values());
        running.delete(finished.file.name);
        inFlight.delete(finished.file.name);
        results.push(finished);
        console.log(`=== lab file ${finished.file.name}: ${finished.ok ? "passed" : "FAILED"} in ${finished.seconds}s (ended at ${elapsed()}s); ${finished.cpu}`);
        await idle.powerOff([...waiting, ...[...inFlight.values()].map((r) => r.file)]);
    }
    console.log(`=== lab files: ${results.filter((r) => r.ok).length} of ${results.length} passed in ${elapsed()}s; ` +
        results.map((r) => `${r.file.name} ${r.seconds}s`).join(", "));
    if (cpu) console.log(`=== lab files' ${cpu.report()}`);
    return results.every((r) => r.ok);
}

/** Powers off, through their BMCs, the lab's VMs that no file still to run needs (vmsNoLongerNeeded). */
class IdleVms {
    private readonly lab = fs.existsSync(labJsonPath) ? readLab() : undefined;
    private readonly off = new Set<string>();

    /** Whether the runner powered the VM off. */
    isOff(vm: string): boolean {
        return this.off.has(vm);
    }

    async powerOff(remaining: LabTestFile[]): Promise<void> {
        if (!this.lab) return;
        const lab = this.lab;
        const sh = new LabShell(lab);
        try {
            const candidates = Object.keys(lab.vms).filter((vm) => !this.off.has(vm));
            for (const vm of vmsNoLongerNeeded(remaining, candidates, [lab.consul.server])) {
                this.off.add(vm);
                const status = await sh.ipmi(vm, "chassis", "power", "status").catch((e: Error) => e.message);
                if (!/is on/.test(status)) continue;
                const r = await sh.ipmi(vm, "chassis", "power", "off").then(() => "powered off through its BMC", (e: Error) => `left on: ${e.message}`);
                console.log(`=== lab: ${vm} ${r} (no file still to run holds or uses it; its emulated CPU goes to those that do)`);
            }
        } finally {
            sh.cleanup();
        }
    }
}

/** Pauses the lab's S3 cluster (lab/rgw.sh pause) whenever no running file keeps its state there. */
class RgwPause {
    /** Its VM (lab/rgw.sh's LAB_RGW_VM). */
    readonly vm = process.env.LAB_RGW_VM ?? "ceph1";
    private paused = false;

    async pauseUnlessUsed(running: LabTestFile[]): Promise<void> {
        if (running.some((f) => f.rgw)) {
            this.paused = false; // its file's lab/rgw.sh start resumed it
            return;
        }
        if (this.paused || !fs.existsSync(path.join(path.dirname(labJsonPath), "rgw.json"))) return;
        this.paused = true;
        const r = await new Promise<string>((resolve) => {
            const child = spawn("bash", [path.join(__dirname, "../../../lab/rgw.sh"), "pause"], { stdio: ["ignore", "pipe", "pipe"] });
            let err = "";
            child.stderr.on("data", (d: Buffer) => (err += d.toString()));
            child.on("exit", (code) => resolve(code === 0 ? "paused" : `left running: lab/rgw.sh pause exited ${code}: ${err.trim()}`));
        });
        console.log(`=== lab: the S3 state cluster in ceph1 ${r} (no running file keeps state there; its idle daemons cost ceph1's vCPU)`);
    }
}

/**
 * What a file cost in CPU: its own process tree (mocha, the pulumi CLI and plugins, ssh: bash's `times`
 * after mocha) and the qemu of each VM it holds while it runs (held VMs run only its work; a VM it only
 * uses is shared and not counted).
 */
function cpuLine(hostSeconds: number | undefined, vmBefore: Map<string, number> | undefined, cpu: CpuAccount | undefined): string {
    const parts = [hostSeconds === undefined ? "its processes ?" : `its processes ${Math.round(hostSeconds)}`];
    if (cpu && vmBefore) {
        for (const [vm, s] of cpu.vmSeconds([...vmBefore.keys()])) parts.push(`${vm} ${Math.round(s - vmBefore.get(vm)!)}`);
    }
    return `cpu seconds: ${parts.join(", ")}`;
}

function runOne(file: LabTestFile, jsPath: string, cpu: CpuAccount | undefined): Promise<Finished> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "baremetal-lab-file-"));
    const log = path.join(dir, `${file.name}.log`);
    const timesFile = path.join(dir, "times");
    const out = fs.openSync(log, "w");
    const t0 = Date.now();
    const vmBefore = cpu?.vmSeconds([...new Set(file.holds.map(vmOf))]);
    // bash waits for mocha and then prints its children's CPU times: the whole tree's, as each parent waited for its own
    const child = spawn("bash", ["-c", 'npx mocha --config test/.mocharc.json "$1"; s=$?; times >"$2"; exit $s', "lab-file", jsPath, timesFile], { stdio: ["ignore", out, out] });
    return new Promise((resolve) => {
        child.on("exit", (code, signal) => {
            fs.closeSync(out);
            const seconds = Math.round((Date.now() - t0) / 1000);
            let hostSeconds: number | undefined;
            try {
                hostSeconds = parseChildTimes(fs.readFileSync(timesFile, "utf8"));
            } catch {
                hostSeconds = undefined; // killed before `times` ran
            }
            console.log(`=== lab file ${file.name} (log: ${log}):`);
            process.stdout.write(fs.readFileSync(log, "utf8"));
            if (signal) console.log(`mocha for ${file.name} ended by ${signal}`);
            resolve({ file, ok: code === 0, seconds, cpu: cpuLine(hostSeconds, vmBefore, cpu) });
        });
    });
}

function lanesFromEnv(): number {
    const raw = process.env.BAREMETAL_LAB_LANES ?? "2";
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1) throw new Error(`BAREMETAL_LAB_LANES: expected a whole number of 1 or more, got ${JSON.stringify(raw)}`);
    return n;
}

if (require.main === module) {
    const [cmd, ...args] = process.argv.slice(2);
    const lanes = lanesFromEnv();
    if (cmd === "plan") {
        const runs = plan(labTestFiles, lanes);
        for (const r of runs.sort((a, b) => a.startSeconds - b.startSeconds)) console.log(`lane ${r.lane + 1}  ${String(r.startSeconds).padStart(5)}s → ${String(r.endSeconds).padStart(5)}s  ${r.name}`);
        console.log(`lab files end after ${Math.max(...runs.map((r) => r.endSeconds))}s by the measured times (${lanes} lanes); one after another: ${runs.reduce((s, r) => s + r.endSeconds - r.startSeconds, 0)}s`);
    } else if (cmd === "run") {
        runFiles(args, lanes).then((ok) => process.exit(ok ? 0 : 1), (e: Error) => { console.error(e.message); process.exit(2); });
    } else {
        console.error("usage: schedule.js plan | run FILE.test.js...");
        process.exit(2);
    }
}
