// Where the machine's CPU went while the lab's files ran: each VM's qemu (its emulated
// guest), everything else on this machine (the pulumi CLI and its plugins, node, mocha,
// sshd, the e2e tier beside the lab), and what stayed idle. On 2 cores the lab tier is
// bound by CPU, so this, not the files' wall times, says where time can be won: idle
// left over means the schedule waits; a VM's share means its guest's work.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

/** Clock ticks per second of /proc's CPU times (USER_HZ; 100 on Linux for x86). */
const ticksPerSecond = 100;

export interface CpuSample {
    /** Ticks since boot, all cores: busy (user, nice, system, irq, softirq, steal) and idle (idle, iowait). */
    busy: number;
    idle: number;
    /** CPU ticks (utime + stime) of each VM's qemu process seen so far, by VM name. */
    qemu: Map<string, number>;
}

/** Busy and idle ticks of the machine from /proc/stat's first line. */
export function parseProcStat(text: string): { busy: number; idle: number } {
    const line = text.split("\n").find((l) => l.startsWith("cpu "));
    if (!line) throw new Error("/proc/stat: no aggregate cpu line");
    const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
    return { busy: user + nice + system + irq + softirq + (steal || 0), idle: idle + iowait };
}

/** utime + stime of a process from /proc/PID/stat (fields 14 and 15, after the command's parentheses). */
export function parsePidStat(text: string): number {
    const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
    // rest[0] is field 3 (state), so field n is rest[n - 3]
    return Number(rest[11]) + Number(rest[12]);
}

/**
 * Follows the lab's qemu processes by their pid files in the run directory. A VM powered off (or
 * power-cycled) ends its process: the last ticks seen are kept and a new process's ticks add to them.
 */
export class CpuAccount {
    private readonly start: { busy: number; idle: number };
    private readonly seen = new Map<string, { pid: number; ticks: number; before: number }>();
    private readonly timer: NodeJS.Timeout;

    constructor(private readonly runDir: string, private readonly vms: readonly string[]) {
        this.start = parseProcStat(fs.readFileSync("/proc/stat", "utf8"));
        this.sample(true);
        // often enough that a VM powered off between samples loses little of its count
        this.timer = setInterval(() => this.sample(false), 5_000);
        this.timer.unref();
    }

    private sample(atStart: boolean): void {
        for (const vm of this.vms) {
            let pid: number;
            let ticks: number;
            try {
                pid = Number(fs.readFileSync(path.join(this.runDir, vm, "qemu.pid"), "utf8").trim());
                ticks = parsePidStat(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
            } catch {
                continue; // not running now
            }
            const s = this.seen.get(vm);
            if (!s) this.seen.set(vm, { pid, ticks, before: atStart ? -ticks : 0 });
            else if (s.pid !== pid) this.seen.set(vm, { pid, ticks, before: s.before + s.ticks });
            else s.ticks = ticks;
        }
    }

    /** CPU seconds of each named VM's qemu so far (0 for a VM never seen running). */
    vmSeconds(vms: readonly string[]): Map<string, number> {
        this.sample(false);
        return new Map(vms.map((vm) => {
            const s = this.seen.get(vm);
            return [vm, s ? (s.before + s.ticks) / ticksPerSecond : 0];
        }));
    }

    /** One line for the log: core-seconds busy and idle, each VM's qemu, and the rest. */
    report(): string {
        this.sample(false);
        clearInterval(this.timer);
        const now = parseProcStat(fs.readFileSync("/proc/stat", "utf8"));
        const busy = now.busy - this.start.busy;
        const idle = now.idle - this.start.idle;
        const perVm = [...this.seen.entries()].map(([vm, s]) => [vm, s.before + s.ticks] as const).filter(([, t]) => t > 0).sort((a, b) => b[1] - a[1]);
        const qemu = perVm.reduce((sum, [, t]) => sum + t, 0);
        const s = (t: number) => `${Math.round(t / ticksPerSecond)}`;
        return `cpu: ${s(busy + idle)} core-seconds on ${os.cpus().length} cores, ${s(idle)} idle; ` +
            `qemu ${s(qemu)} (${perVm.map(([vm, t]) => `${vm} ${s(t)}`).join(", ")}); ` +
            `everything else (pulumi, node, sshd, the e2e tier beside) ${s(busy - qemu)}`;
    }
}

/**
 * The CPU seconds of the waited-for children from bash's `times` (its second line: "1m2.345s 0m5.000s",
 * user then system): every process of a test file's tree that its parent waited for adds up there.
 */
export function parseChildTimes(text: string): number {
    const line = text.trim().split("\n")[1] ?? "";
    const parts = [...line.matchAll(/(\d+)m([\d.]+)s/g)];
    if (parts.length !== 2) throw new Error(`bash times: expected "XmY.YYYs XmY.YYYs" on its second line, got ${JSON.stringify(text)}`);
    return parts.reduce((sum, m) => sum + Number(m[1]) * 60 + Number(m[2]), 0);
}
