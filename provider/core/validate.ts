// Input validation shared by every resource's `check`. Pure: no I/O.
// A Validator collects every failure at once, so one preview shows them all.
import { isIPv6 } from "net";
import { FieldFailure } from "./errors";

/**
 * What the engine sends during preview for a value not known yet (an output of
 * a resource that is still to be created). It passes validation: the engine
 * checks again with the real value before anything is created.
 */
export const unknownValue = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

export function isUnknown(v: unknown): boolean {
    return v === unknownValue;
}

/** True when any value inside `v` is not known yet. */
export function containsUnknown(v: unknown): boolean {
    if (isUnknown(v)) return true;
    if (Array.isArray(v)) return v.some(containsUnknown);
    if (v && typeof v === "object") return Object.values(v).some(containsUnknown);
    return false;
}

export class Validator {
    readonly failures: FieldFailure[] = [];

    fail(field: string, reason: string): undefined {
        this.failures.push({ field, reason });
        return undefined;
    }

    get ok(): boolean {
        return this.failures.length === 0;
    }

    /** A required string, trimmed of nothing: what the user wrote is what runs. */
    string(field: string, value: unknown, rule: StringRule = {}): string | undefined {
        if (isUnknown(value)) return value as string;
        if (value === "" && rule.allowEmpty) return "";
        if (value === undefined || value === null || value === "") {
            if (rule.optional) return undefined;
            return this.fail(field, "is required");
        }
        if (typeof value !== "string") return this.fail(field, `must be a string, got ${typeof value}`);
        if (value.length > (rule.maxLength ?? 4096)) {
            return this.fail(field, `is ${value.length} characters long; the limit is ${rule.maxLength ?? 4096}`);
        }
        if (!rule.allowControl && /[\u0000-\u001f\u007f]/.test(value)) {
            return this.fail(field, "must not contain control characters (newline, tab, NUL ...)");
        }
        if (rule.pattern && !rule.pattern.test(value)) {
            // A secret (a token) is never repeated, not even the part that is wrong.
            const shown = rule.secret ? "the value" : JSON.stringify(truncate(value));
            return this.fail(field, `${shown} ${rule.patternHint ?? `does not match ${rule.pattern}`}`);
        }
        return value;
    }

    /**
     * A host: a DNS name, an IPv4 address (four decimal octets up to 255) or an
     * IPv6 address. `999.1.1.1` and `a..b` are neither, though a loose pattern
     * would let them through to a resolver.
     */
    host(field: string, value: unknown, rule: { optional?: boolean } = {}): string | undefined {
        const s = this.string(field, value, { optional: rule.optional, maxLength: 253 });
        if (s === undefined || isUnknown(s)) return s;
        return isHostAddress(s) ? s : this.fail(field, `${JSON.stringify(truncate(s))} is not a host name or IP address`);
    }

    boolean(field: string, value: unknown, fallback: boolean): boolean {
        if (isUnknown(value)) return value as boolean;
        if (value === undefined || value === null) return fallback;
        if (typeof value !== "boolean") return this.fail(field, `must be true or false, got ${JSON.stringify(value)}`) ?? fallback;
        return value;
    }

    integer(field: string, value: unknown, rule: { min?: number; max?: number; optional?: boolean } = {}): number | undefined {
        if (isUnknown(value)) return value as number;
        if (value === undefined || value === null) {
            return rule.optional ? undefined : this.fail(field, "is required");
        }
        if (typeof value !== "number" || !Number.isInteger(value)) {
            return this.fail(field, `must be a whole number, got ${JSON.stringify(value)}`);
        }
        if (rule.min !== undefined && value < rule.min) return this.fail(field, `must be at least ${rule.min}, got ${value}`);
        if (rule.max !== undefined && value > rule.max) return this.fail(field, `must be at most ${rule.max}, got ${value}`);
        return value;
    }

    /**
     * A list checked item by item; an unknown list (preview) passes as is.
     * Returns undefined after a failure.
     */
    list<T>(field: string, value: unknown, item: (field: string, value: unknown) => T | undefined, rule: { min?: number; max?: number; optional?: boolean } = {}): T[] | undefined {
        if (isUnknown(value)) return value as T[];
        if (value === undefined || value === null) {
            return rule.optional ? [] : this.fail(field, "is required (a list)");
        }
        if (!Array.isArray(value)) return this.fail(field, `must be a list, got ${typeof value}`);
        if (rule.min !== undefined && value.length < rule.min) return this.fail(field, `needs at least ${rule.min} item(s), got ${value.length}`);
        if (rule.max !== undefined && value.length > rule.max) return this.fail(field, `allows at most ${rule.max} items, got ${value.length}`);
        const before = this.failures.length;
        const out = value.map((x, i) => item(`${field}[${i}]`, x));
        return this.failures.length > before ? undefined : (out as T[]);
    }

    /** A plain object of string values (e.g. K/V pairs, labels). */
    stringMap(field: string, value: unknown, key: StringRule, val: StringRule = {}): Record<string, string> | undefined {
        if (value === undefined || value === null) return {};
        if (isUnknown(value)) return value as Record<string, string>;
        if (typeof value !== "object" || Array.isArray(value)) return this.fail(field, "must be an object of string values");
        const out: Record<string, string> = {};
        for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
            const kk = this.string(`${field} key ${JSON.stringify(truncate(k))}`, k, key);
            const vv = this.string(`${field}.${truncate(k)}`, v, { ...val, optional: false, allowEmpty: true });
            if (kk !== undefined && vv !== undefined) out[kk] = vv;
        }
        return out;
    }
}

export interface StringRule {
    optional?: boolean;
    maxLength?: number;
    pattern?: RegExp;
    /** Completes "<value> ..." in the message, e.g. "is not a MAC address like 52:54:00:12:34:56". */
    patternHint?: string;
    allowControl?: boolean;
    allowEmpty?: boolean;
    /** The value is a secret: messages never repeat it. */
    secret?: boolean;
}

const dnsLabel = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** Four decimal octets, each 0-255, without leading zeros (which some tools read as octal). */
export function isIpv4Address(s: string): boolean {
    const parts = s.split(".");
    return parts.length === 4 && parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255);
}

/** A DNS name (RFC 1123 labels), an IPv4 address or an IPv6 address. */
export function isHostAddress(s: string): boolean {
    if (s.includes(":")) return isIPv6(s);
    // All digits and dots can only be an IPv4 address: no top-level domain is numeric.
    if (/^[0-9.]+$/.test(s)) return isIpv4Address(s);
    return s.length <= 253 && s.split(".").every((label) => dnsLabel.test(label));
}

export function truncate(s: string, n = 60): string {
    return s.length > n ? `${s.slice(0, n)}…` : s;
}
