// Progress and command output into the Pulumi engine's log, attributed to the
// resource, the way a native provider's host.Log does. The dynamic-provider host
// is started with the engine's address as its first argument but gives providers
// no way to log, so we open our own client to that address.
import type * as grpcTypes from "@grpc/grpc-js";
import { InputError, RefusedError, RemoteError } from "./core/errors";
import { Reporter } from "./core/resource";

interface EngineClient {
    log(req: unknown, cb: (err: Error | null) => void): void;
}

let client: EngineClient | null | undefined;
/** The engine's address when a plugin of ours was started with it (the native provider). */
let attachedAddress: string | undefined;

/** Log to the engine at this address (the native provider's entry calls it with its first argument). */
export function attachEngine(address: string): void {
    attachedAddress = address;
    client = undefined;
}

/** The engine client, or null when this process is neither a dynamic-provider host nor the native plugin. */
function engine(): EngineClient | null {
    if (client !== undefined) return client;
    client = null;
    const address = attachedAddress ?? process.argv[2];
    const served = attachedAddress !== undefined || /dynamic-provider/.test(process.argv[1] ?? "");
    if (!served || !address || !/^[\w.-]+:\d+$/.test(address)) return client;
    try {
        // Loaded from the @pulumi/pulumi that runs this process, so versions match.
        const grpc: typeof grpcTypes = require("@grpc/grpc-js");
        const { EngineClient: Client } = require("@pulumi/pulumi/proto/engine_grpc_pb");
        client = new Client(address, grpc.credentials.createInsecure()) as EngineClient;
    } catch {
        client = null;
    }
    return client;
}

const severity = { info: 1, warning: 2 } as const;

function send(urn: string, level: keyof typeof severity, message: string, ephemeral: boolean): boolean {
    const c = engine();
    if (!c) return false;
    const { LogRequest } = require("@pulumi/pulumi/proto/engine_pb");
    const req = new LogRequest();
    req.setSeverity(severity[level]);
    req.setMessage(message);
    req.setUrn(urn);
    req.setEphemeral(ephemeral);
    c.log(req, () => {
        /* logging is best effort: an operation never fails because a log line was lost */
    });
    return true;
}

/** A Reporter for one resource operation; falls back to stderr outside the engine. */
export function engineReporter(urn: string | undefined): Reporter {
    const emit = (level: keyof typeof severity, message: string, ephemeral: boolean) => {
        if (!urn || !send(urn, level, message, ephemeral)) process.stderr.write(`${level === "warning" ? "warning: " : ""}${message}\n`);
    };
    return {
        info: (m) => emit("info", m, false),
        warn: (m) => emit("warning", m, false),
        progress: (m) => emit("info", m, true),
    };
}

// ---- an operator's error, once -------------------------------------------------------

/**
 * What Pulumi's dynamic-provider host prints to its stderr for an error thrown by
 * check, diff, read or delete (create and update return theirs without it),
 * just before it hands the same error to the engine: the message twice on one
 * line, then a stack trace. The engine shows that print as one more diagnostic,
 * so a refusal read three times, with a trace that helps nobody.
 */
export function hostEchoOf(e: Error): string {
    return `${e}: ${e.stack}`;
}

/** Errors written for an operator (core/errors.ts): the message says what failed and what to do next. */
function isOperatorError(e: unknown): e is Error {
    return e instanceof RefusedError || e instanceof InputError || e instanceof RemoteError;
}

/** Echoes still to drop (one entry per error: two resources may fail with the same words at once). */
const expectedEchoes: { text: string }[] = [];
let echoFilterInstalled = false;

/**
 * Lets an operator error reach the engine's log once, as the operation's error:
 * the host's echo of exactly this error is dropped. Every other print, and every
 * other error (a bug keeps its stack trace), gets through. The host prints in the
 * same turn as the rejection; an echo that did not come by the next turn is forgotten.
 */
export function printOnce(e: unknown): void {
    if (!isOperatorError(e)) return;
    installEchoFilter();
    const entry = { text: hostEchoOf(e) };
    expectedEchoes.push(entry);
    setImmediate(() => drop(entry));
}

function installEchoFilter(): void {
    if (echoFilterInstalled) return;
    echoFilterInstalled = true;
    const print = console.error;
    console.error = (...args: unknown[]) => {
        const entry = args.length === 1 ? expectedEchoes.find((x) => x.text === args[0]) : undefined;
        if (entry) return drop(entry);
        print.apply(console, args);
    };
}

function drop(entry: { text: string }): void {
    const i = expectedEchoes.indexOf(entry);
    if (i >= 0) expectedEchoes.splice(i, 1);
}
