// QMP on a guest's box, through the host layer: each call is one command that
// runs the constant script of script.ts with `python3 -c`, requests on stdin.
import type { Remote } from "../host";
import { qmpNotRunning, qmpScript } from "./script";

export interface QmpRequest {
    execute: string;
    arguments?: Record<string, unknown>;
}

/** One QMP reply: `return` on success, `error` otherwise. */
export interface QmpReply {
    return?: unknown;
    error?: { class: string; desc: string };
}

function argv(mode: string, ...args: string[]): string[] {
    return ["python3", "-c", qmpScript, mode, ...args];
}

/** The replies in request order, or undefined when no qemu listens on the socket. */
export async function qmpCall(host: Remote, socket: string, requests: QmpRequest[]): Promise<QmpReply[] | undefined> {
    const out = await host.run(argv("call", socket), {
        stdin: JSON.stringify(requests),
        okExitCodes: [0, qmpNotRunning],
        timeoutMs: 60_000,
        what: `QMP ${requests.map((r) => r.execute).join(", ")} on ${socket}`,
    });
    if (out.exitCode === qmpNotRunning) return undefined;
    return JSON.parse(out.stdout) as QmpReply[];
}

/** The `return` of each reply; a QMP error throws, naming the command. */
export async function qmpQuery(host: Remote, socket: string, requests: QmpRequest[]): Promise<unknown[] | undefined> {
    const replies = await qmpCall(host, socket, requests);
    if (!replies) return undefined;
    return replies.map((r, i) => {
        if (r.error) throw new Error(`QMP ${requests[i].execute} on ${host.target} failed: ${r.error.class}: ${r.error.desc}`);
        return r.return;
    });
}

export type PowerdownOutcome = { outcome: "powered-off" | "quit"; seconds: number } | { outcome: "not-running" };

/** ACPI power button, wait up to `timeoutSeconds` for the guest to power off, then quit. */
export async function qmpPowerdown(host: Remote, socket: string, timeoutSeconds: number): Promise<PowerdownOutcome> {
    const out = await host.run(argv("powerdown", socket, String(timeoutSeconds)), {
        okExitCodes: [0, qmpNotRunning],
        timeoutMs: (timeoutSeconds + 30) * 1000,
        what: `power down the guest on ${socket}`,
    });
    if (out.exitCode === qmpNotRunning) return { outcome: "not-running" };
    const [word, seconds] = out.stdout.trim().split(/\s+/);
    return { outcome: word === "powered-off" ? "powered-off" : "quit", seconds: Number(seconds) };
}

/** Starts a migration to `uri` and returns the final query-migrate `return`. */
export async function qmpMigrate(host: Remote, socket: string, uri: string, timeoutSeconds: number): Promise<QmpReply | undefined> {
    const out = await host.run(argv("migrate", socket, uri, String(timeoutSeconds)), {
        okExitCodes: [0, qmpNotRunning],
        timeoutMs: (timeoutSeconds + 30) * 1000,
        what: `migrate the guest on ${socket} to ${uri}`,
    });
    if (out.exitCode === qmpNotRunning) return undefined;
    return JSON.parse(out.stdout) as QmpReply;
}

/** Waits until QMP answers on the socket; its query-status reply, or undefined on timeout. */
export async function qmpWait(host: Remote, socket: string, timeoutSeconds: number): Promise<QmpReply | undefined> {
    const out = await host.run(argv("wait", socket, String(timeoutSeconds)), {
        okExitCodes: [0, qmpNotRunning],
        timeoutMs: (timeoutSeconds + 30) * 1000,
        what: `wait for QMP on ${socket}`,
    });
    return out.exitCode === qmpNotRunning ? undefined : (JSON.parse(out.stdout) as QmpReply);
}
