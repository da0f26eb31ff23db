// A trace of what the host layer did on the wire: one JSON line per SSH dial
// attempt and per command, appended to the file named by PULUMI_BAREMETAL_TRACE.
// It is how benchmarks and the lab tests count connections and commands of a
// whole `pulumi preview` / `up`, whose work happens in provider processes the
// caller cannot reach. Off (one env lookup) when the variable is unset.
//
// Several processes append to one file at once (the engine may run more than
// one provider host; resources run in parallel), so each event is written as a
// single write(2) in O_APPEND mode: whole lines, never interleaved.
//
// Only what the caller has already made safe goes in: the target's address,
// port, user and jump chain (never a key, password or passphrase) and the
// redacted command summary the pool uses for errors.
import * as fs from "fs";
import { connectionDefaults, HostConnection } from "./connection";

export const traceEnvVar = "PULUMI_BAREMETAL_TRACE";
/** Bumped when a field changes meaning; readers check it. */
export const traceFormatVersion = 1;

/** Where a connection leads: user@host:port, and the jump hosts in dialling order. */
export interface TraceTarget {
    host: string;
    port: number;
    user: string;
    /** `user@host:port` of each jump host, outermost first; empty without a jump host. */
    via: string[];
}

/** One dial attempt: TCP, key exchange and authentication. */
export interface ConnectEvent extends TraceTarget {
    v: typeof traceFormatVersion;
    event: "connect";
    /** Epoch milliseconds when the dial started. */
    start: number;
    durationMs: number;
    ok: boolean;
    /** Why it failed (already redacted), when it failed. */
    error?: string;
    pid: number;
}

/** One command run on a channel of a pooled connection. */
export interface CommandEvent extends TraceTarget {
    v: typeof traceFormatVersion;
    event: "command";
    /** What it was for: the step (`step 2/5 (install packages mdadm)`) or the caller's purpose; absent when none was given. */
    operation?: string;
    /** The command line with secrets replaced and constant scripts shown by name. */
    command: string;
    /** Epoch milliseconds when the command was sent. */
    start: number;
    durationMs: number;
    /** null: killed by a signal, timed out, or the connection was lost (see error). */
    exitCode: number | null;
    signal?: string;
    /** Why there is no exit status (already redacted). */
    error?: string;
    pid: number;
}

export type TraceEvent = ConnectEvent | CommandEvent;

/** The trace file of this process right now, or undefined when tracing is off. */
export function traceFile(): string | undefined {
    const f = process.env[traceEnvVar];
    return f === undefined || f === "" ? undefined : f;
}

/** The address fields of a trace event for a connection (no credentials). */
export function traceTarget(c: HostConnection): TraceTarget {
    const via: string[] = [];
    for (let p = c.proxy; p; p = p.proxy) via.unshift(`${p.user ?? connectionDefaults.user}@${p.host}:${p.port ?? connectionDefaults.port}`);
    return { host: c.host, port: c.port ?? connectionDefaults.port, user: c.user ?? connectionDefaults.user, via };
}

/**
 * Appends one event when tracing is on. Never throws: a trace that cannot be
 * written must not fail a deployment (the first failure is reported once on stderr).
 */
export function recordTrace(event: Omit<ConnectEvent, "v" | "pid"> | Omit<CommandEvent, "v" | "pid">): void {
    const file = traceFile();
    if (file === undefined) return;
    try {
        // Opened per line (a few µs beside a command's milliseconds) so that a file
        // removed or rotated between runs never swallows lines through a stale descriptor.
        fs.appendFileSync(file, `${JSON.stringify({ v: traceFormatVersion, ...event, pid: process.pid })}\n`, { mode: 0o600 });
    } catch (err) {
        if (!warned) process.stderr.write(`pulumi-baremetal: cannot write the host trace to ${file} (${traceEnvVar}): ${(err as Error).message}\n`);
        warned = true;
    }
}

let warned = false;
