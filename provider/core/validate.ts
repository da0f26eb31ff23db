// Input validation shared by every resource's `check`. Pure: no I/O.
// A Validator collects every failure at once, so one preview shows them all.
//
// One validator per concept: a value that means the same thing in two kinds (a
// MAC, an IPv4 address, a device path, a size ...) is checked by the same method
// here, with the same message, so kinds cannot drift apart.
import { isIPv6 } from "net";
import { FieldFailure } from "./errors";
import { isIpv4Address, networkOf, parseCidr } from "./ipv4";

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

    // ---- concepts shared by kinds (each method: one rule, one message) ----------------

    /**
     * A NIC's MAC address, normalised to lower case with colons (52:54:00:12:34:56);
     * dashes are accepted in its place. Multicast and all-zero addresses are no NIC's.
     */
    mac(field: string, value: unknown, rule: { optional?: boolean } = {}): string | undefined {
        const raw = this.string(field, value, { optional: rule.optional, maxLength: 17 });
        if (raw === undefined || isUnknown(raw)) return raw;
        const mac = raw.toLowerCase().replace(/-/g, ":");
        if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(mac)) return this.fail(field, `${JSON.stringify(raw)} is not a MAC address like 52:54:00:12:34:56`);
        if (parseInt(mac.slice(0, 2), 16) & 1) return this.fail(field, `${mac} is a multicast address; a NIC's MAC has the lowest bit of its first octet clear`);
        if (mac === "00:00:00:00:00:00") return this.fail(field, "00:00:00:00:00:00 is not a NIC's address");
        return mac;
    }

    /** An IPv4 address: four decimal octets up to 255, no leading zeros, no prefix. */
    ipv4(field: string, value: unknown, rule: { optional?: boolean } = {}): string | undefined {
        const s = this.string(field, value, { optional: rule.optional, maxLength: 15 });
        if (s === undefined || isUnknown(s)) return s;
        return isIpv4Address(s) ? s : this.fail(field, `${JSON.stringify(s)} is not an IPv4 address like 198.51.100.20`);
    }

    /** An interface's IPv4 address with its prefix length (198.18.1.50/24): host bits are the point. */
    ipv4WithPrefix(field: string, value: unknown, rule: { optional?: boolean } = {}): string | undefined {
        const s = this.string(field, value, { optional: rule.optional, maxLength: 18 });
        if (s === undefined || isUnknown(s)) return s;
        return parseCidr(s) ? s : this.fail(field, `${JSON.stringify(s)} is not an IPv4 address with prefix length like 198.18.1.50/24`);
    }

    /** An IPv4 network in CIDR form whose host bits are zero (198.51.100.0/24), its prefix in the given range. */
    ipv4Network(field: string, value: unknown, rule: { minPrefix?: number; maxPrefix?: number } = {}): string | undefined {
        const [min, max] = [rule.minPrefix ?? 0, rule.maxPrefix ?? 32];
        const s = this.string(field, value, { maxLength: 18 });
        if (s === undefined || isUnknown(s)) return s;
        const c = parseCidr(s);
        if (!c || c.prefixLength < min || c.prefixLength > max) return this.fail(field, `${JSON.stringify(s)} is not an IPv4 network like 198.51.100.0/24 (prefix /${min} to /${max})`);
        const network = networkOf(c);
        return network === c.network ? s : this.fail(field, `${s} has host bits set; the network is ${network}/${c.prefixLength}`);
    }

    /** An IPv4 or IPv6 address, or a network of either (198.18.1.12, 198.18.1.0/24, fd00::/64). */
    ipOrNetwork(field: string, value: unknown): string | undefined {
        const s = this.string(field, value, { maxLength: 43 });
        if (s === undefined || isUnknown(s)) return s;
        return isIpOrNetwork(s) ? s : this.fail(field, `${JSON.stringify(s)} is not an IP address or network like 198.18.1.12 or 198.18.1.0/24`);
    }

    /**
     * A DNS name in lower case (RFC 1123 labels of at most 63 characters): a machine's
     * host name becomes a Consul node name and a dhcp-host name; a domain, a search domain.
     */
    hostname(field: string, value: unknown, rule: { optional?: boolean; domain?: boolean } = {}): string | undefined {
        const what = rule.domain ? "domain name" : "host name";
        const like = rule.domain ? "lab.example" : "storage1";
        return this.string(field, value, {
            optional: rule.optional,
            maxLength: 253,
            pattern: hostnamePattern,
            patternHint: `is not a ${what} (lower-case letters, digits and '-', dot-separated labels, like ${like})`,
        });
    }

    /** `host:port` (an IPv6 host in brackets): a host name or IP address and a port 1-65535. */
    hostPort(field: string, value: unknown, rule: { optional?: boolean; example?: string } = {}): string | undefined {
        const s = this.string(field, value, { optional: rule.optional, pattern: hostPortPattern, patternHint: `is not host:port, e.g. ${rule.example ?? "10.0.0.2:8500"}` });
        if (s === undefined || isUnknown(s)) return s;
        const [, host, port] = hostPortPattern.exec(s) ?? [];
        if (!isHostAddress(unbracket(host))) return this.fail(field, `${JSON.stringify(host)} is not a host name or IP address`);
        if (Number(port) < 1 || Number(port) > 65535) return this.fail(field, `port ${port} is out of range 1-65535`);
        return s;
    }

    /** An http(s) URL without credentials, whitespace or shell/iPXE metacharacters (it may end up in a kernel command line). */
    url(field: string, value: unknown, rule: { optional?: boolean } = {}): string | undefined {
        const s = this.string(field, value, { optional: rule.optional, maxLength: 2048 });
        if (s === undefined || isUnknown(s)) return s;
        let u: URL;
        try {
            u = new URL(s);
        } catch {
            return this.fail(field, `${JSON.stringify(s)} is not a URL like http://198.51.100.1/alpine/v3.20/main`);
        }
        if (u.protocol !== "http:" && u.protocol !== "https:") return this.fail(field, `${JSON.stringify(s)} must be an http:// or https:// URL`);
        if (u.username || u.password) return this.fail(field, "must not carry credentials (user:password@); they would be readable by every PXE client");
        if (!/^[A-Za-z0-9_.,:/@+%~?&=-]+$/.test(s)) {
            return this.fail(field, `${JSON.stringify(s)} contains characters a kernel command line or iPXE script cannot carry (spaces, quotes, $, {, }, ;, #)`);
        }
        return s;
    }

    /**
     * An absolute path on a host: letters, digits and _ . @ + : = - between slashes,
     * nothing a shell, an LXC config line or a unit file would read as more than a
     * path; no ".." segment. `/` itself only with `allowRoot` (the caller says why not).
     */
    absolutePath(field: string, value: unknown, rule: { optional?: boolean; where?: string; allowRoot?: boolean } = {}): string | undefined {
        const hint = `is not an absolute path${rule.where ? ` ${rule.where}` : ""}`;
        const s = this.string(field, value, { optional: rule.optional, pattern: absolutePathPattern, patternHint: hint });
        if (s === undefined || isUnknown(s)) return s;
        if (s.split("/").includes("..")) return this.fail(field, "must not contain ..");
        if (s === "/" && !rule.allowRoot) return this.fail(field, "must not be / itself");
        return s;
    }

    /**
     * A block device by its /dev path (stable ones, /dev/disk/by-id/..., are best),
     * without "." or ".." segments; with `logicalVolume`, LVM's `vg/lv` form as well.
     */
    devicePath(field: string, value: unknown, rule: { logicalVolume?: boolean } = {}): string | undefined {
        const s = rule.logicalVolume
            ? this.string(field, value, { pattern: deviceOrVolumePattern, patternHint: "is not a block device like /dev/sdb, /dev/disk/by-id/..., /dev/nbd0 or a logical volume vg/lv" })
            : this.string(field, value, { pattern: devicePattern, patternHint: "is not a /dev path like /dev/vdb or /dev/disk/by-id/..." });
        if (s === undefined || isUnknown(s)) return s;
        return s.split("/").some((seg) => seg === "." || seg === "..") ? this.fail(field, "must not contain . or .. path segments") : s;
    }

    /** A Linux network interface name (eth0, enp1s0, br-lan): at most 15 bytes, no '/' or whitespace. */
    interfaceName(field: string, value: unknown, rule: { optional?: boolean } = {}): string | undefined {
        return this.string(field, value, {
            optional: rule.optional,
            pattern: /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/,
            patternHint: "is not an interface name like eth0 (at most 15 characters: letters, digits, _ . -)",
        });
    }

    /**
     * A size with a binary unit, as text and in bytes: `256MiB`, `20GiB`, `1TiB`.
     * Nothing else: `20G` (LVM reads it as GiB, many tools as GB), decimal units
     * (`20GB`), fractions and bare numbers are refused with the size meant.
     */
    size(field: string, value: unknown, rule: { min: number; max: number; minName?: string }): { text: string; bytes: number } | undefined {
        const text = this.string(field, value, { maxLength: 16 });
        if (text === undefined) return undefined;
        if (isUnknown(text)) return { text, bytes: text as unknown as number };
        const bytes = parseSize(text);
        if (bytes === undefined) return this.fail(field, sizeMistake(text));
        if (bytes < rule.min) return this.fail(field, `${text} is below ${rule.minName ?? formatBytes(rule.min)}`);
        if (bytes > rule.max) return this.fail(field, `${text} is above ${formatBytes(rule.max)}`);
        return { text, bytes };
    }

    /** A Consul ACL token: a secret, never repeated in a message. */
    consulToken(field: string, value: unknown, rule: { optional?: boolean } = {}): string | undefined {
        return this.string(field, value, { optional: rule.optional, maxLength: 256, pattern: /^[A-Za-z0-9._~+/=-]+$/, patternHint: "is not a Consul ACL token", secret: true });
    }

    /** A Consul K/V key relative to a prefix or the root (`net/gateway`): no leading '/', no "." or ".." segment. */
    kvKey(field: string, value: unknown, rule: { optional?: boolean; maxLength?: number } = {}): string | undefined {
        const s = this.string(field, value, { ...kvKeyRule, optional: rule.optional, maxLength: rule.maxLength ?? kvKeyRule.maxLength });
        if (s === undefined || isUnknown(s)) return s;
        return hasDotSegment(s) ? this.fail(field, dotSegments) : s;
    }

    /** A Consul K/V subtree (`config/dns01/`), normalised to end in '/'. */
    kvPrefix(field: string, value: unknown, rule: { optional?: boolean } = {}): string | undefined {
        let p = this.string(field, value, { optional: rule.optional, maxLength: 512, pattern: /^[A-Za-z0-9_.@/-]+$/, patternHint: "may only contain letters, digits and _ . @ - /" });
        if (p === undefined || isUnknown(p)) return p;
        if (!p.endsWith("/")) p += "/";
        if (!/^([A-Za-z0-9_.@-]+\/)+$/.test(p)) return this.fail(field, `${JSON.stringify(p)} must be a relative path like "config/dns01/" (no leading "/", no empty segments)`);
        return hasDotSegment(p.slice(0, -1)) ? this.fail(field, dotSegments) : p;
    }

    /** K/V pairs: keys as `kvKey`, values free text (control characters included) up to `maxValueLength`. */
    kvMap(field: string, value: unknown, rule: { maxValueLength: number }): Record<string, string> | undefined {
        const map = this.stringMap(field, value, kvKeyRule, { maxLength: rule.maxValueLength, allowControl: true });
        for (const k of Object.keys(map && !isUnknown(map) ? map : {})) {
            if (hasDotSegment(k)) this.fail(`${field}.${k}`, dotSegments);
        }
        return map;
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
const hostnamePattern = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;
const hostPortPattern = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]{1,253}):([0-9]{1,5})$/;
/** Absolute; no whitespace, quotes, '#', '$', '%' or other bytes a config line or unit would read specially. */
const absolutePathPattern = /^\/[A-Za-z0-9_.@+:=\/-]*$/;
const devicePattern = /^\/dev\/[A-Za-z0-9][A-Za-z0-9_.:@+\/-]{0,200}$/;
const deviceOrVolumePattern = /^(?:\/dev\/[A-Za-z0-9][A-Za-z0-9_.:@+\/-]{0,200}|[A-Za-z0-9_.+-]{1,127}\/[A-Za-z0-9_.+-]{1,127})$/;
const kvKeyRule = { maxLength: 512, pattern: /^[A-Za-z0-9_.@-]+(\/[A-Za-z0-9_.@-]+)*$/, patternHint: 'is not a relative key like "net/gateway"' };

/** The parts of a `host:port` that `Validator.hostPort` accepted (an IPv6 host without its brackets). */
export function splitHostPort(s: string): { host: string; port: number } | undefined {
    const m = hostPortPattern.exec(s);
    return m ? { host: unbracket(m[1]), port: Number(m[2]) } : undefined;
}

function unbracket(host: string): string {
    return host.replace(/^\[(.*)\]$/, "$1");
}

/** "." and ".." segments would walk out of a subtree in Consul's HTTP paths. */
const dotSegments = 'must not contain "." or ".." segments';

function hasDotSegment(key: string): boolean {
    return key.split("/").some((s) => s === "." || s === "..");
}

/** An IPv4 or IPv6 address, optionally with a prefix length (decimal, no leading zeros). */
function isIpOrNetwork(s: string): boolean {
    const [address, prefix, ...rest] = s.split("/");
    if (rest.length > 0) return false;
    const v6 = address.includes(":");
    if (v6 ? !/^[0-9a-fA-F:]{2,39}$/.test(address) || !isIPv6(address) : !isIpv4Address(address)) return false;
    return prefix === undefined || (/^(0|[1-9][0-9]{0,2})$/.test(prefix) && Number(prefix) <= (v6 ? 128 : 32));
}

const sizeUnits: Record<string, number> = { MiB: 2 ** 20, GiB: 2 ** 30, TiB: 2 ** 40 };

/**
 * Bytes of a size like `256MiB` (units MiB, GiB, TiB), or undefined when it is
 * not one. Limits are the caller's (Validator.size).
 */
export function parseSize(text: string): number | undefined {
    const m = /^([1-9][0-9]{0,9})(MiB|GiB|TiB)$/.exec(text);
    return m ? Number(m[1]) * sizeUnits[m[2]] : undefined;
}

/** Why `text` is not a size, with the binary size meant when its unit was short or decimal. */
function sizeMistake(text: string): string {
    const base = `${JSON.stringify(text)} is not a size like 256MiB, 20GiB or 1TiB`;
    const near = /^([1-9][0-9]{0,9})\s*([MGT])(i?)(B?)$/i.exec(text);
    if (near) {
        const [, n, prefix, i, b] = near;
        const why = i && b ? "the unit follows the number directly, spelt MiB, GiB or TiB" : b ? `${prefix}${b} is a decimal unit` : `${prefix}${i} alone is ambiguous (GiB to LVM, GB to many tools)`;
        return `${base}: ${why}; did you mean ${n}${prefix.toUpperCase()}iB?`;
    }
    return `${base} (a whole number and a binary unit: MiB, GiB or TiB)`;
}

/** `256MiB`, `1TiB`: the largest binary unit that divides `n`; plain bytes otherwise. */
export function formatBytes(n: number): string {
    for (const [u, f] of [["TiB", 2 ** 40], ["GiB", 2 ** 30], ["MiB", 2 ** 20]] as const) if (n >= f && n % f === 0) return `${n / f}${u}`;
    return `${n} bytes`;
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
