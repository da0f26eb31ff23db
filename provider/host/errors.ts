// Failures of the host layer. Each is a RemoteError naming the host (target),
// what was being done, what happened, and what the operator can do next. Every
// text that reaches these has already been through the redactor.
import { RemoteError } from "../core/errors";

/** The host's key is not the pinned one, or no key is pinned. Nothing was run. */
export class HostKeyError extends RemoteError {
    constructor(target: string, detail: string, hint: string, readonly offeredKey: string, readonly offeredFingerprint: string) {
        super(target, "verify host key", `${detail}. Nothing was run`, hint);
        this.name = "HostKeyError";
    }
}

/** The server refused the credentials. Not retried: retrying could lock the account. */
export class AuthError extends RemoteError {
    constructor(target: string, detail: string, hint: string) {
        super(target, "log in", detail, hint);
        this.name = "AuthError";
    }
}

/** Every dial attempt failed (refused, unreachable, timed out). */
export class DialError extends RemoteError {
    constructor(target: string, readonly attempts: number, detail: string, hint: string) {
        super(target, "connect", detail, hint);
        this.name = "DialError";
    }
}

/** The connection dropped while a command ran: it may or may not have finished on the host. */
export class ConnectionLostError extends RemoteError {
    constructor(target: string, operation: string, detail: string) {
        super(
            target,
            operation,
            detail,
            "the command may or may not have completed on the host; check the host is up and the network path to it, then run again (steps are idempotent, so a re-run finishes the job)",
        );
        this.name = "ConnectionLostError";
    }
}

/** A command ran longer than its timeout and was killed. */
export class CommandTimeoutError extends RemoteError {
    constructor(target: string, operation: string, readonly timeoutMs: number, readonly stderr: string) {
        super(
            target,
            operation,
            `did not finish within ${formatSeconds(timeoutMs)}; it was abandoned and is killed on the host within two seconds${stderr ? `\n  stderr: ${indent(stderr)}` : ""}`,
            "look on the host for what the command waits on (a lock, a prompt, a slow disk); raise the step's timeout if it is merely slow",
        );
        this.name = "CommandTimeoutError";
    }
}

/** A command exited with a status the step does not accept. */
export class CommandError extends RemoteError {
    constructor(
        target: string,
        readonly step: string,
        readonly command: string,
        readonly exitCode: number | null,
        readonly signal: string | undefined,
        readonly stdout: string,
        readonly stderr: string,
        hint: string,
    ) {
        super(
            target,
            step,
            `${exitCode === null ? `killed by signal ${signal ?? "?"}` : `exit code ${exitCode}`} from \`${command}\`` +
                (stderr ? `\n  stderr: ${indent(stderr)}` : stdout ? `\n  stdout: ${indent(stdout)}` : ""),
            hint,
        );
        this.name = "CommandError";
    }
}

/** The host is not a system this layer can drive (neither Alpine nor Debian-like). */
export class UnsupportedHostError extends RemoteError {
    constructor(target: string, detail: string) {
        super(target, "detect OS family", detail, "this provider drives Alpine (OpenRC, apk) and Debian-like (systemd, apt) hosts only");
        this.name = "UnsupportedHostError";
    }
}

export function formatSeconds(ms: number): string {
    return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}

/** Keeps the tail of long output (the error is usually at the end) and indents continuation lines. */
function indent(text: string, limit = 2000): string {
    const t = text.trimEnd();
    const tail = t.length > limit ? `…${t.slice(-limit)}` : t;
    return tail.split("\n").join("\n          ");
}
