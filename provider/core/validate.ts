// Input validation shared by every resource's `check`. Pure: no I/O.
// A Validator collects every failure at once, so one preview shows them all.
import { FieldFailure } from "./errors";

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
            return this.fail(field, `${JSON.stringify(truncate(value))} ${rule.patternHint ?? `does not match ${rule.pattern}`}`);
        }
        return value;
    }

    boolean(field: string, value: unknown, fallback: boolean): boolean {
        if (value === undefined || value === null) return fallback;
        if (typeof value !== "boolean") return this.fail(field, `must be true or false, got ${JSON.stringify(value)}`) ?? fallback;
        return value;
    }

    integer(field: string, value: unknown, rule: { min?: number; max?: number; optional?: boolean } = {}): number | undefined {
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

    /** A plain object of string values (e.g. K/V pairs, labels). */
    stringMap(field: string, value: unknown, key: StringRule, val: StringRule = {}): Record<string, string> | undefined {
        if (value === undefined || value === null) return {};
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
}

export function truncate(s: string, n = 60): string {
    return s.length > n ? `${s.slice(0, n)}…` : s;
}
