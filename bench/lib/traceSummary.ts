// Reads a host trace (PULUMI_BAREMETAL_TRACE, format in bench/README.md and
// provider/host/trace.ts) and sums it up: SSH connections per host, commands,
// the sum of the commands' own durations and the span they cover. Used by the
// benchmarks and by the lab end-to-end test for the `up` figures.
//
// It lives in bench/lib/ so that bench/run.sh (every dist/bench/*.js) does not run it.
//
//   node dist/bench/lib/traceSummary.js <trace file>     prints the summary
import * as fs from "fs";
import type { CommandEvent, ConnectEvent, TraceEvent } from "../../provider/host";
import { traceFormatVersion } from "../../provider/host/trace";

export interface HostFigures {
    /** `user@host:port` (with ` via ...` for a jump chain). */
    target: string;
    connectionsOpened: number;
    /** Dial attempts that failed (refused, unreachable, auth, host key). */
    dialsFailed: number;
    commands: number;
    /** Commands that exited non-zero or had no exit status. */
    commandsFailed: number;
    /** Sum of the commands' own durations. */
    commandMs: number;
}

export interface TraceSummary {
    /** Successful SSH connections, all hosts. */
    connectionsOpened: number;
    dialsFailed: number;
    commands: number;
    commandsFailed: number;
    /** Sum of every command's own duration (ms): the work, as if run one after the other. */
    sumCommandMs: number;
    /** Sum of the successful dials' durations (ms). */
    sumConnectMs: number;
    /** First event's start to the last event's end (ms); 0 when the trace is empty. */
    spanMs: number;
    /** Processes that wrote to the trace. */
    processes: number;
    hosts: HostFigures[];
    /** Command count and total ms by operation (the step, or the command when no step was named). */
    byOperation: { operation: string; commands: number; ms: number }[];
}

/** Parses a trace file; a missing file is an empty trace (nothing was traced: no connection, no command). */
export function readTrace(file: string): TraceEvent[] {
    if (!fs.existsSync(file)) return [];
    const events: TraceEvent[] = [];
    for (const [i, line] of fs.readFileSync(file, "utf8").split("\n").entries()) {
        if (line.trim() === "") continue;
        let e: TraceEvent;
        try {
            e = JSON.parse(line) as TraceEvent;
        } catch {
            throw new Error(`${file}:${i + 1}: not a JSON line: ${line.slice(0, 120)}`);
        }
        if (e.v !== traceFormatVersion) throw new Error(`${file}:${i + 1}: trace format v${String(e.v)}, this reader knows v${traceFormatVersion}`);
        events.push(e);
    }
    return events;
}

export function targetOf(e: TraceEvent): string {
    const self = `${e.user}@${e.host.includes(":") ? `[${e.host}]` : e.host}:${e.port}`;
    return e.via.length === 0 ? self : `${self} via ${[...e.via].reverse().join(" via ")}`;
}

export function summariseEvents(events: TraceEvent[]): TraceSummary {
    const hosts = new Map<string, HostFigures>();
    const ops = new Map<string, { operation: string; commands: number; ms: number }>();
    const hostOf = (e: TraceEvent): HostFigures => {
        const target = targetOf(e);
        let h = hosts.get(target);
        if (!h) {
            h = { target, connectionsOpened: 0, dialsFailed: 0, commands: 0, commandsFailed: 0, commandMs: 0 };
            hosts.set(target, h);
        }
        return h;
    };
    let sumConnectMs = 0;
    let first = Infinity;
    let last = -Infinity;
    for (const e of events) {
        first = Math.min(first, e.start);
        last = Math.max(last, e.start + e.durationMs);
        const h = hostOf(e);
        if (e.event === "connect") {
            if (e.ok) {
                h.connectionsOpened++;
                sumConnectMs += e.durationMs;
            } else h.dialsFailed++;
        } else {
            h.commands++;
            h.commandMs += e.durationMs;
            if (e.exitCode !== 0) h.commandsFailed++;
            const key = e.operation ?? e.command;
            const op = ops.get(key) ?? { operation: key, commands: 0, ms: 0 };
            op.commands++;
            op.ms += e.durationMs;
            ops.set(key, op);
        }
    }
    const all = [...hosts.values()].sort((a, b) => a.target.localeCompare(b.target));
    const sum = (f: (h: HostFigures) => number): number => all.reduce((n, h) => n + f(h), 0);
    return {
        connectionsOpened: sum((h) => h.connectionsOpened),
        dialsFailed: sum((h) => h.dialsFailed),
        commands: sum((h) => h.commands),
        commandsFailed: sum((h) => h.commandsFailed),
        sumCommandMs: sum((h) => h.commandMs),
        sumConnectMs,
        spanMs: events.length === 0 ? 0 : last - first,
        processes: new Set(events.map((e) => e.pid)).size,
        hosts: all,
        byOperation: [...ops.values()].sort((a, b) => b.ms - a.ms),
    };
}

/** The summary of a trace file (see bench/README.md for the format). */
export function summarise(traceFile: string): TraceSummary {
    return summariseEvents(readTrace(traceFile));
}

/** The summary as lines a person reads; `wallMs` (the run's own clock) adds the ratio to the command time. */
export function formatSummary(s: TraceSummary, wallMs?: number): string[] {
    const lines = [
        `SSH connections opened: ${s.connectionsOpened} (failed dials: ${s.dialsFailed}) to ${s.hosts.length} host(s), from ${s.processes} process(es)`,
        `commands: ${s.commands} (failed: ${s.commandsFailed}); sum of their durations ${s.sumCommandMs} ms; dialling ${s.sumConnectMs} ms; span of the trace ${s.spanMs} ms`,
    ];
    if (s.spanMs > 0 && s.sumCommandMs > 0) {
        lines.push(`span ${s.spanMs} ms = ${(s.spanMs / s.sumCommandMs).toFixed(2)}x the sum of the command durations (mean commands in flight: ${(s.sumCommandMs / s.spanMs).toFixed(1)})`);
    }
    if (wallMs !== undefined && s.sumCommandMs > 0) {
        lines.push(`wall time ${wallMs} ms = ${(wallMs / s.sumCommandMs).toFixed(2)}x the sum of the command durations`);
    }
    for (const h of s.hosts) {
        lines.push(`  ${h.target}: ${h.connectionsOpened} connection(s), ${h.dialsFailed} failed dial(s), ${h.commands} command(s) (${h.commandsFailed} failed), ${h.commandMs} ms`);
    }
    return lines;
}

export function isCommand(e: TraceEvent): e is CommandEvent {
    return e.event === "command";
}

export function isConnect(e: TraceEvent): e is ConnectEvent {
    return e.event === "connect";
}

if (require.main === module) {
    const file = process.argv[2];
    if (!file) {
        console.error("usage: node dist/bench/lib/traceSummary.js <trace file>");
        process.exit(2);
    }
    const s = summarise(file);
    for (const l of formatSummary(s)) console.log(l);
    for (const o of s.byOperation.slice(0, 20)) console.log(`  ${String(o.commands).padStart(5)} × ${String(o.ms).padStart(7)} ms  ${o.operation}`);
}
