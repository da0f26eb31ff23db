// Errors that reach an operator. Each says what failed, where, and what to do next.

/** One invalid input: the field (dotted path, e.g. `keys.db/password`) and why. */
export interface FieldFailure {
    field: string;
    reason: string;
}

/** Bad input, found before anything ran on a host. */
export class InputError extends Error {
    constructor(readonly failures: FieldFailure[]) {
        super(failures.map((f) => `${f.field}: ${f.reason}`).join("\n"));
        this.name = "InputError";
    }
}

/**
 * An operation refused because it would destroy or hide data the user has not
 * opted to lose. Nothing was changed when this is thrown.
 */
export class RefusedError extends Error {
    constructor(what: string, howToProceed: string) {
        super(`${what}. Nothing was changed. ${howToProceed}`);
        this.name = "RefusedError";
    }
}

/** A remote system (a host, Consul) failed or could not be reached. */
export class RemoteError extends Error {
    constructor(
        readonly target: string,
        readonly operation: string,
        readonly detail: string,
        readonly hint: string,
    ) {
        super(`${operation} on ${target} failed: ${detail}${hint ? `\n  next: ${hint}` : ""}`);
        this.name = "RemoteError";
    }
}
