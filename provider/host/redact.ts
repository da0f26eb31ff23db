// Secrets on their way to a host: a wrapper that never prints its value, and a
// redactor that scrubs known secret values out of any text (command output,
// error messages, step records) before it reaches a log or an error.
import { inspect } from "util";

export const redactedMark = "[secret]";

/**
 * A value that must never be logged. `String(s)`, `JSON.stringify(s)` and
 * `util.inspect(s)` all give "[secret]"; only `reveal()` gives the value, and
 * only the executor calls it, when the bytes go to the host.
 */
export class Secret {
    readonly #value: string;

    constructor(value: string) {
        this.#value = value;
    }

    reveal(): string {
        return this.#value;
    }

    toString(): string {
        return redactedMark;
    }

    toJSON(): string {
        return redactedMark;
    }

    [inspect.custom](): string {
        return redactedMark;
    }
}

/** A string, or a secret string: what a command argument or file content may be. */
export type MaybeSecret = string | Secret;

export function isSecret(v: unknown): v is Secret {
    return v instanceof Secret;
}

export function reveal(v: MaybeSecret): string {
    return isSecret(v) ? v.reveal() : v;
}

/** The text form safe for logs: secrets become "[secret]". */
export function display(v: MaybeSecret): string {
    return isSecret(v) ? redactedMark : v;
}

/** Secrets shorter than this are not scrubbed from free text: "a" would blank every "a". */
const minScrubLength = 3;

/**
 * Scrubs every known secret value from text. Besides the raw value it scrubs the
 * forms a command line or a base64 dump would carry, because a failing command
 * often echoes its own arguments.
 */
export class Redactor {
    private readonly values = new Set<string>();

    add(...secrets: (MaybeSecret | undefined)[]): this {
        for (const s of secrets) {
            if (s === undefined) continue;
            const raw = reveal(s);
            if (raw.length < minScrubLength) continue;
            this.values.add(raw);
            this.values.add(Buffer.from(raw, "utf8").toString("base64"));
            // Multi-line secrets (private keys): each long line on its own, as a
            // tool may print only the line it choked on.
            for (const line of raw.split(/\r?\n/)) if (line.trim().length >= 16) this.values.add(line.trim());
        }
        return this;
    }

    /** Adds every Secret found in a list of arguments. */
    addFrom(values: readonly (MaybeSecret | undefined)[]): this {
        return this.add(...values.filter(isSecret));
    }

    /** A redactor holding this one's secrets and another's. */
    merge(other: Redactor): Redactor {
        const r = new Redactor();
        for (const v of this.values) r.values.add(v);
        for (const v of other.values) r.values.add(v);
        return r;
    }

    redact(text: string): string {
        // Longest first, so a secret that contains another is scrubbed whole.
        const ordered = [...this.values].sort((a, b) => b.length - a.length);
        let out = text;
        for (const v of ordered) out = out.split(v).join(redactedMark);
        return out;
    }

    get size(): number {
        return this.values.size;
    }
}
