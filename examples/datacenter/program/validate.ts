// Loading and validating the inventory. Every problem is reported at once, each
// with its field path and the line of the YAML file it is on, before any
// resource is declared: a typo must never reach a host.
import * as fs from "fs";
import * as path from "path";
import { isMap, isPair, isScalar, isSeq, LineCounter, Node, parseDocument } from "yaml";
import type {
    ContainerSpec, GuestSpec, HostCommon, Inventory, MachineSpec, NetworkSpec, OsName, ProfileSpec, VolumeSpec,
} from "./inventory";

export type FieldPath = (string | number)[];

export interface InventoryProblem {
    path: FieldPath;
    /** The path as text: `machines[3].bmc.address`. */
    field: string;
    message: string;
    /** 1-based line in the YAML file, when the problem is in a file. */
    line?: number;
}

/** Every problem found in an inventory file; the message lists them one a line. */
export class InventoryError extends Error {
    constructor(readonly file: string, readonly problems: InventoryProblem[]) {
        const shown = problems.slice(0, 50).map((p) => `${file}${p.line ? `:${p.line}` : ""}: ${p.field ? `${p.field}: ` : ""}${p.message}`);
        if (problems.length > shown.length) shown.push(`... and ${problems.length - shown.length} more`);
        super(`the inventory ${file} has ${problems.length} problem(s); nothing was changed:\n${shown.join("\n")}`);
        this.name = "InventoryError";
    }
}

export interface LoadOptions {
    /**
     * Completes the parsed YAML before it is validated, e.g. with facts read from
     * elsewhere (the lab program fills in addresses, MACs and keys from lab.json).
     * Problems in fields it added point at the line of their parent.
     */
    complete?: (raw: unknown) => unknown;
}

/** Reads, parses and validates an inventory file; throws InventoryError naming field and line. */
export function loadInventory(file: string, options: LoadOptions = {}): Inventory {
    let text: string;
    try {
        text = fs.readFileSync(file, "utf8");
    } catch (err) {
        throw new Error(`cannot read the inventory ${file}: ${(err as Error).message}`);
    }
    return parseInventory(text, displayName(file), options);
}

function displayName(file: string): string {
    const rel = path.relative(process.cwd(), file);
    return rel && !rel.startsWith("..") && !path.isAbsolute(rel) ? rel : file;
}

/** Parses and validates inventory YAML text; `file` only names it in errors. */
export function parseInventory(text: string, file = "inventory.yaml", options: LoadOptions = {}): Inventory {
    const lineCounter = new LineCounter();
    const doc = parseDocument(text, { lineCounter, uniqueKeys: true });
    const syntax = [...doc.errors, ...doc.warnings];
    if (doc.errors.length > 0) {
        throw new InventoryError(file, syntax.map((e) => ({
            path: [], field: "", line: e.linePos?.[0].line, message: `YAML: ${e.message.split("\n")[0]}`,
        })));
    }
    const parsed: unknown = doc.toJS({ maxAliasCount: 100 });
    const raw = options.complete ? options.complete(parsed) : parsed;
    const problems = validateInventory(raw);
    if (problems.length > 0) {
        for (const p of problems) p.line = lineOf(doc.contents, p.path, lineCounter);
        throw new InventoryError(file, problems);
    }
    return raw as Inventory;
}

/** The line of the deepest node on the path that exists (a missing field points at its parent). */
function lineOf(root: unknown, p: FieldPath, lc: LineCounter): number | undefined {
    let node: unknown = root;
    let best: Node | undefined = isNodeWithRange(root) ? root : undefined;
    for (const seg of p) {
        let next: unknown;
        if (isMap(node)) {
            const pair = node.items.find((it) => isPair(it) && isScalar(it.key) && String(it.key.value) === String(seg));
            if (pair) {
                // Point at the value, or at the key when the value is empty or the key itself is the problem.
                next = pair.value ?? pair.key;
                if (isNodeWithRange(pair.key) && !isNodeWithRange(pair.value)) best = pair.key;
            }
        } else if (isSeq(node) && typeof seg === "number") {
            next = node.items[seg];
        }
        if (next === undefined || next === null) break;
        node = next;
        if (isNodeWithRange(node)) best = node;
    }
    return best?.range ? lc.linePos(best.range[0]).line : undefined;
}

function isNodeWithRange(n: unknown): n is Node {
    return typeof n === "object" && n !== null && "range" in n && Array.isArray((n as Node).range);
}

export function formatPath(p: FieldPath): string {
    let out = "";
    for (const seg of p) {
        if (typeof seg === "number") out += `[${seg}]`;
        else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) out += out === "" ? seg : `.${seg}`;
        else out += `[${JSON.stringify(seg)}]`;
    }
    return out;
}

// ---- patterns --------------------------------------------------------------------------------

const namePattern = /^[a-z][a-z0-9-]{0,30}$/;
const nameHint = "must be lower-case letters, digits and '-', starting with a letter, at most 31 characters";
// Network names become part of tunnel interface names (at most 15 characters).
const networkPattern = /^[a-z][a-z0-9]{0,6}$/;
const ifnamePattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;
const macPattern = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;
const devicePattern = /^\/dev\/[A-Za-z0-9][A-Za-z0-9_.:@+/-]{0,200}$/;
const mdPattern = /^\/dev\/md(12[0-7]|1[01][0-9]|[1-9]?[0-9])$/;
const hostKeyPattern = /^(?:(?:ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521)) [A-Za-z0-9+/]+={0,3}(?: \S+)?|SHA256:[A-Za-z0-9+/]{43}=?)$/;
const hostnamePattern = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const sizePattern = /^[1-9][0-9]{0,9}(MiB|GiB|TiB)$/;
const absPathPattern = /^\/(?:[A-Za-z0-9_.@+-]+\/?)*$/;
const relPathPattern = /^[A-Za-z0-9_.@+-]+(\/[A-Za-z0-9_.@+-]+)*$/;
const urlPattern = /^https?:\/\/[A-Za-z0-9.:[\]-]+(?::[0-9]{1,5})?(\/[A-Za-z0-9_.~%/+@=,-]*)?$/;
const sha256Pattern = /^[0-9a-f]{64}$/;
const wordPattern = /^[A-Za-z0-9_.,:=/+@%-]{1,256}$/;
const lvPattern = /^(?!-)(?!snapshot$|pvmove$)[A-Za-z0-9_.-]{1,63}$/;
const templatePattern = /^[a-z][a-z0-9_-]{0,31}$/;
const modePattern = /^0?[0-7]{3,4}$/;
const nfsOptionsPattern = /^[a-z0-9_=,]{1,200}$/;
const mountOptionsPattern = /^[A-Za-z0-9_=,.:/-]{1,200}$/;
const osNames: OsName[] = ["alpine", "debian"];

export function isIpv4(s: string): boolean {
    const parts = s.split(".");
    return parts.length === 4 && parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255);
}

function ipToInt(s: string): number {
    return s.split(".").reduce((n, p) => n * 256 + Number(p), 0);
}

function parseCidr(s: string): { base: number; prefix: number } | undefined {
    const m = /^([0-9.]+)\/([0-9]{1,2})$/.exec(s);
    if (!m || !isIpv4(m[1]) || Number(m[2]) > 32) return undefined;
    return { base: ipToInt(m[1]), prefix: Number(m[2]) };
}

/** Is the address a usable host address of the network (not its network or broadcast address)? */
function inCidr(address: string, cidr: string): boolean {
    const c = parseCidr(cidr);
    if (!c || !isIpv4(address)) return false;
    const size = 2 ** (32 - c.prefix);
    const start = c.base - (c.base % size);
    const a = ipToInt(address);
    if (a < start || a >= start + size) return false;
    return c.prefix >= 31 || (a !== start && a !== start + size - 1);
}

// ---- the checker -----------------------------------------------------------------------------

type Obj = Record<string, unknown>;

class Check {
    readonly problems: InventoryProblem[] = [];

    fail(p: FieldPath, message: string): undefined {
        this.problems.push({ path: p, field: formatPath(p), message });
        return undefined;
    }

    /** A mapping with only the given keys; unknown keys are reported (typos must not pass silently). */
    obj(p: FieldPath, v: unknown, keys: readonly string[], required = true): Obj | undefined {
        if (v === undefined || v === null) return required ? this.fail(p, "is required") : undefined;
        if (typeof v !== "object" || Array.isArray(v)) return this.fail(p, `must be a mapping of ${keys.join(", ")}`);
        for (const k of Object.keys(v)) {
            if (!keys.includes(k)) this.fail([...p, k], `is not a field here (expected one of ${keys.join(", ")})`);
        }
        return v as Obj;
    }

    /** A mapping with free keys. */
    record(p: FieldPath, v: unknown, required = true): Obj | undefined {
        if (v === undefined || v === null) return required ? this.fail(p, "is required") : undefined;
        if (typeof v !== "object" || Array.isArray(v)) return this.fail(p, "must be a mapping");
        return v as Obj;
    }

    list(p: FieldPath, v: unknown, required = false, min = 0): unknown[] | undefined {
        if (v === undefined || v === null) return required ? this.fail(p, "is required") : undefined;
        if (!Array.isArray(v)) return this.fail(p, "must be a list");
        if (v.length < min) return this.fail(p, `must have at least ${min} item(s)`);
        return v;
    }

    str(p: FieldPath, v: unknown, rule: { pattern?: RegExp; hint?: string; optional?: boolean; max?: number } = {}): string | undefined {
        if (v === undefined || v === null) return rule.optional ? undefined : this.fail(p, "is required");
        if (typeof v !== "string") {
            // YAML reads 3.20 as a number and yes as a boolean: say so.
            return this.fail(p, `must be a string, got ${JSON.stringify(v)} (${typeof v}); quote it in the YAML`);
        }
        if (v.length > (rule.max ?? 4096)) return this.fail(p, `is ${v.length} characters long; the limit is ${rule.max ?? 4096}`);
        if (rule.pattern && !rule.pattern.test(v)) return this.fail(p, `${show(v)} ${rule.hint ?? `does not match ${rule.pattern}`}`);
        return v;
    }

    text(p: FieldPath, v: unknown, optional = false): string | undefined {
        if (v === undefined || v === null) return optional ? undefined : this.fail(p, "is required");
        if (typeof v !== "string") return this.fail(p, `must be a string, got ${JSON.stringify(v)}`);
        if (v.length > 1 << 20) return this.fail(p, "is longer than 1 MiB");
        return v;
    }

    oneOf<T extends string>(p: FieldPath, v: unknown, values: readonly T[], optional = true): T | undefined {
        if (v === undefined || v === null) return optional ? undefined : this.fail(p, "is required");
        if (typeof v !== "string" || !values.includes(v as T)) return this.fail(p, `${show(v)} must be one of ${values.join(", ")}`);
        return v as T;
    }

    int(p: FieldPath, v: unknown, min: number, max: number, optional = true): number | undefined {
        if (v === undefined || v === null) return optional ? undefined : this.fail(p, "is required");
        if (typeof v !== "number" || !Number.isInteger(v)) return this.fail(p, `must be a whole number, got ${show(v)}`);
        if (v < min || v > max) return this.fail(p, `must be between ${min} and ${max}, got ${v}`);
        return v;
    }

    num(p: FieldPath, v: unknown, min: number, max: number): number | undefined {
        if (v === undefined || v === null) return undefined;
        if (typeof v !== "number" || !Number.isFinite(v)) return this.fail(p, `must be a number, got ${show(v)}`);
        if (v < min || v > max) return this.fail(p, `must be between ${min} and ${max}, got ${v}`);
        return v;
    }

    bool(p: FieldPath, v: unknown): boolean | undefined {
        if (v === undefined || v === null) return undefined;
        if (typeof v !== "boolean") return this.fail(p, `must be true or false, got ${show(v)}`);
        return v;
    }

    ipv4(p: FieldPath, v: unknown, optional = true): string | undefined {
        const s = this.str(p, v, { optional, max: 15 + 1 });
        if (s === undefined) return undefined;
        return isIpv4(s) ? s : this.fail(p, `${show(s)} is not an IPv4 address`);
    }

    cidr(p: FieldPath, v: unknown): string | undefined {
        const s = this.str(p, v, { max: 18 + 1 });
        if (s === undefined) return undefined;
        return parseCidr(s) ? s : this.fail(p, `${show(s)} is not an IPv4 network like 198.18.64.0/24`);
    }

    name(p: FieldPath, v: unknown): string | undefined {
        return this.str(p, v, { pattern: namePattern, hint: nameHint });
    }

    mac(p: FieldPath, v: unknown, optional = false): string | undefined {
        const s = this.str(p, v, { optional, pattern: macPattern, hint: "is not a MAC address like 52:54:00:12:34:56" });
        if (s !== undefined && (parseInt(s.slice(0, 2), 16) & 1) === 1) return this.fail(p, `${show(s)} is a multicast address; a NIC needs a unicast MAC`);
        return s;
    }

    device(p: FieldPath, v: unknown): string | undefined {
        const s = this.str(p, v, { pattern: devicePattern, hint: "is not a /dev path like /dev/md0 or /dev/disk/by-id/..." });
        if (s !== undefined && s.split("/").includes("..")) return this.fail(p, `${show(s)} must not contain ..`);
        return s;
    }

    words(p: FieldPath, v: unknown): string[] | undefined {
        const l = this.list(p, v);
        return l?.map((w, i) => this.str([...p, i], w, { pattern: wordPattern, hint: "is not one word (letters, digits, _ . , : = / + @ % -)" }) ?? "");
    }

    strings(p: FieldPath, v: unknown): Record<string, string> | undefined {
        const r = this.record(p, v, false);
        if (!r) return undefined;
        for (const [k, val] of Object.entries(r)) {
            this.str([...p, k], k, { pattern: /^[A-Za-z0-9_.@-]+(\/[A-Za-z0-9_.@-]+)*$/, hint: "is not a key path like net/address" });
            this.text([...p, k], val);
        }
        return r as Record<string, string>;
    }
}

function show(v: unknown): string {
    const s = JSON.stringify(v) ?? String(v);
    return s.length > 70 ? `${s.slice(0, 67)}..."` : s;
}

// ---- the inventory, section by section ---------------------------------------------------------

const topKeys = ["datacenter", "domain", "networks", "consul", "pxe", "lxc", "ceph", "defaults", "machines", "guests", "volumes", "containers", "consulKeys"] as const;

/** Validates a parsed inventory; returns every problem (none: it is an Inventory). */
export function validateInventory(raw: unknown): InventoryProblem[] {
    const c = new Check();
    const top = c.obj([], raw, topKeys);
    if (!top) return c.problems;
    c.name(["datacenter"], top.datacenter);
    c.str(["domain"], top.domain, { optional: true, pattern: hostnamePattern, hint: "is not a DNS domain" });
    const networks = checkNetworks(c, top.networks);
    const consul = c.obj(["consul"], top.consul, ["address", "datacenter"], false);
    if (consul) {
        c.str(["consul", "address"], consul.address, { pattern: /^[A-Za-z0-9.-]+:[0-9]{1,5}$/, hint: "is not host:port like 198.18.64.11:8500" });
        c.str(["consul", "datacenter"], consul.datacenter, { optional: true, pattern: /^[A-Za-z0-9_-]{1,64}$/, hint: "is not a Consul datacenter name" });
    }
    // Without a pxe section the site does not boot by PXE: no PXE servers, no boot entries.
    const profiles = top.pxe === undefined ? {} : checkPxe(c, top.pxe);
    checkLxc(c, top.lxc);
    const ceph = c.obj(["ceph"], top.ceph, ["cluster"], false);
    if (ceph) c.str(["ceph", "cluster"], ceph.cluster, { optional: true, pattern: /^[a-z][a-z0-9_-]{0,31}$/, hint: "is not a cluster name" });
    const defaults = c.obj(["defaults"], top.defaults, ["sshUser", "bmcUser", "profile", "containerOs"], false);
    if (defaults) {
        c.str(["defaults", "sshUser"], defaults.sshUser, { optional: true, pattern: /^[a-z_][a-z0-9_-]{0,31}$/, hint: "is not a user name" });
        c.str(["defaults", "bmcUser"], defaults.bmcUser, { optional: true, max: 64 });
        c.str(["defaults", "profile"], defaults.profile, { optional: true, pattern: namePattern, hint: nameHint });
        c.oneOf(["defaults", "containerOs"], defaults.containerOs, osNames);
    }

    const machines = c.list(["machines"], top.machines, true, 1) ?? [];
    machines.forEach((m, i) => checkMachine(c, ["machines", i], m));
    const guests = c.list(["guests"], top.guests) ?? [];
    guests.forEach((g, i) => checkGuest(c, ["guests", i], g));
    const volumes = c.list(["volumes"], top.volumes) ?? [];
    volumes.forEach((v, i) => checkVolume(c, ["volumes", i], v));
    const containers = c.list(["containers"], top.containers) ?? [];
    containers.forEach((ct, i) => checkContainer(c, ["containers", i], ct));
    const kvs = c.list(["consulKeys"], top.consulKeys) ?? [];
    kvs.forEach((k, i) => checkConsulKeys(c, ["consulKeys", i], k));
    if (kvs.length > 0 && !consul) c.fail(["consulKeys"], "needs the consul section (the agent to write them to)");

    // References between sections are only worth checking once every item has its shape.
    if (c.problems.length === 0 && networks && profiles) {
        checkReferences(c, raw as Inventory);
    }
    return c.problems;
}

function checkNetworks(c: Check, v: unknown): Record<string, NetworkSpec> | undefined {
    const nets = c.record(["networks"], v);
    if (!nets) return undefined;
    if (Object.keys(nets).length === 0) return c.fail(["networks"], "must name at least one network (lan)");
    const bridges = new Map<string, string>();
    for (const [name, n] of Object.entries(nets)) {
        const p = ["networks", name];
        c.str(p, name, { pattern: networkPattern, hint: "is not a network name (lower-case letters and digits, at most 7 characters: it names tunnel interfaces)" });
        const net = c.obj(p, n, ["cidr", "gateway", "dns", "bridge", "tunnelHub", "tunnelPort"]);
        if (!net) continue;
        const cidr = c.cidr([...p, "cidr"], net.cidr);
        const gw = c.ipv4([...p, "gateway"], net.gateway);
        if (cidr && gw && !inCidr(gw, cidr)) c.fail([...p, "gateway"], `${show(gw)} is not a host address in ${cidr}`);
        c.list([...p, "dns"], net.dns)?.forEach((d, i) => c.ipv4([...p, "dns", i], d, false));
        const bridge = c.str([...p, "bridge"], net.bridge, { optional: true, pattern: ifnamePattern, hint: "is not an interface name (at most 15 characters: letters, digits, _ . -)" });
        if (bridge !== undefined) {
            if (bridges.has(bridge)) c.fail([...p, "bridge"], `${show(bridge)} is also the bridge of network ${bridges.get(bridge)}`);
            bridges.set(bridge, name);
        }
        if (net.tunnelHub !== undefined) c.name([...p, "tunnelHub"], net.tunnelHub);
        c.int([...p, "tunnelPort"], net.tunnelPort, 1, 65535 - 16);
    }
    return nets as Record<string, NetworkSpec>;
}

function checkFile(c: Check, p: FieldPath, v: unknown, required: boolean): void {
    const f = c.obj(p, v, ["url", "sha256", "path"], required);
    if (!f) return;
    if ((f.url === undefined) === (f.path === undefined)) {
        c.fail(p, "must have exactly one of url (with an optional sha256) or path");
        return;
    }
    if (f.url !== undefined) {
        c.str([...p, "url"], f.url, { pattern: urlPattern, hint: "is not an http(s) URL" });
        c.str([...p, "sha256"], f.sha256, { optional: true, pattern: sha256Pattern, hint: "is not 64 lower-case hex digits" });
    } else {
        if (f.sha256 !== undefined) c.fail([...p, "sha256"], "only applies to a url");
        c.str([...p, "path"], f.path, { pattern: absPathPattern, hint: "is not an absolute path" });
    }
}

function checkPxe(c: Check, v: unknown): Record<string, ProfileSpec> | undefined {
    const pxe = c.obj(["pxe"], v, ["network", "httpPort", "lockKey", "consulBinary", "leaseSeconds", "ipxeBootloaders", "profiles"]);
    if (!pxe) return undefined;
    c.str(["pxe", "network"], pxe.network, { optional: true, pattern: networkPattern, hint: "is not a network name" });
    c.int(["pxe", "httpPort"], pxe.httpPort, 1, 65535);
    c.str(["pxe", "lockKey"], pxe.lockKey, { optional: true, pattern: relPathPattern, hint: "is not a K/V key like baremetal/pxe/leader" });
    c.str(["pxe", "consulBinary"], pxe.consulBinary, { optional: true, pattern: absPathPattern, hint: "is not an absolute path" });
    c.int(["pxe", "leaseSeconds"], pxe.leaseSeconds, 120, 31_536_000);
    c.bool(["pxe", "ipxeBootloaders"], pxe.ipxeBootloaders);
    const profiles = c.record(["pxe", "profiles"], pxe.profiles);
    if (!profiles) return undefined;
    if (Object.keys(profiles).length === 0) return c.fail(["pxe", "profiles"], "must name at least one profile");
    for (const [name, raw] of Object.entries(profiles)) {
        const p = ["pxe", "profiles", name];
        c.str(p, name, { pattern: namePattern, hint: `is not a profile name (${nameHint})` });
        const pr = c.obj(p, raw, ["kind", "kernel", "initramfs", "modloop", "repository", "packages", "overlay", "cmdline"]);
        if (!pr) continue;
        const kind = c.oneOf([...p, "kind"], pr.kind, osNames) ?? "alpine";
        checkFile(c, [...p, "kernel"], pr.kernel, true);
        checkFile(c, [...p, "initramfs"], pr.initramfs, true);
        checkFile(c, [...p, "modloop"], pr.modloop, false);
        c.str([...p, "repository"], pr.repository, { optional: true, pattern: urlPattern, hint: "is not an http(s) URL" });
        c.list([...p, "packages"], pr.packages)?.forEach((x, i) => c.str([...p, "packages", i], x, { pattern: /^[a-z0-9][a-z0-9_.+-]{0,63}$/, hint: "is not a package name" }));
        const overlay = c.record([...p, "overlay"], pr.overlay, false);
        if (overlay) {
            for (const [k, content] of Object.entries(overlay)) {
                c.str([...p, "overlay", k], k, { pattern: relPathPattern, hint: "is not a relative path like etc/hostname" });
                c.text([...p, "overlay", k], content);
            }
        }
        c.words([...p, "cmdline"], pr.cmdline);
        if (kind === "debian") {
            for (const k of ["modloop", "repository", "packages", "overlay"] as const) {
                if (pr[k] !== undefined) c.fail([...p, k], "only applies to an alpine profile");
            }
        }
    }
    return profiles as Record<string, ProfileSpec>;
}

function checkLxc(c: Check, v: unknown): void {
    const lxc = c.obj(["lxc"], v, ["server", "releases", "arch"], false);
    if (!lxc) return;
    c.str(["lxc", "server"], lxc.server, { optional: true, pattern: hostnamePattern, hint: "is not a host name or address" });
    const rel = c.obj(["lxc", "releases"], lxc.releases, osNames, false);
    if (rel) for (const os of osNames) c.str(["lxc", "releases", os], rel[os], { optional: true, pattern: /^[a-z0-9][a-z0-9._-]{0,31}$/, hint: "is not a release like 3.20 or bookworm" });
    c.str(["lxc", "arch"], lxc.arch, { optional: true, pattern: /^[a-z0-9_]{1,16}$/, hint: "is not an architecture like amd64" });
}

function checkSsh(c: Check, p: FieldPath, v: unknown, required: boolean): void {
    const s = c.obj(p, v, ["hostKey", "host", "port", "user"], required);
    if (!s) return;
    c.str([...p, "hostKey"], s.hostKey, { pattern: hostKeyPattern, hint: "is not an OpenSSH public key line (ssh-ed25519 AAAA...) or a SHA256: fingerprint" });
    c.str([...p, "host"], s.host, { optional: true, pattern: hostnamePattern, hint: "is not a host name or IPv4 address" });
    c.int([...p, "port"], s.port, 1, 65535);
    c.str([...p, "user"], s.user, { optional: true, pattern: /^[a-z_][a-z0-9_-]{0,31}$/, hint: "is not a user name" });
}

function checkSan(c: Check, p: FieldPath, v: unknown): void {
    const s = c.obj(p, v, ["volumeGroup", "devices", "exportNetwork", "adopt"], false);
    if (!s) return;
    c.bool([...p, "adopt"], s.adopt);
    c.str([...p, "volumeGroup"], s.volumeGroup, { pattern: /^(?!-)[A-Za-z0-9_.+-]{1,127}$/, hint: "is not a VG name" });
    c.list([...p, "devices"], s.devices, true, 1)?.forEach((d, i) => c.device([...p, "devices", i], d));
    c.str([...p, "exportNetwork"], s.exportNetwork, { optional: true, pattern: networkPattern, hint: "is not a network name" });
}

const hostCommonKeys = ["name", "role", "profile", "kernelArgs", "ssh", "san", "bridges", "config", "consulAgent", "adopt"] as const;

function checkHostCommon(c: Check, p: FieldPath, h: Obj, sshRequired: boolean): void {
    c.name([...p, "name"], h.name);
    c.str([...p, "role"], h.role, { pattern: /^[a-z][a-z0-9-]{0,31}$/, hint: "is not a role (lower-case letters, digits, -)" });
    c.str([...p, "profile"], h.profile, { optional: true, pattern: namePattern, hint: nameHint });
    c.words([...p, "kernelArgs"], h.kernelArgs);
    checkSsh(c, [...p, "ssh"], h.ssh, sshRequired);
    checkSan(c, [...p, "san"], h.san);
    c.list([...p, "bridges"], h.bridges)?.forEach((b, i) => c.str([...p, "bridges", i], b, { pattern: networkPattern, hint: "is not a network name" }));
    c.strings([...p, "config"], h.config);
    c.bool([...p, "consulAgent"], h.consulAgent);
    c.bool([...p, "adopt"], h.adopt);
}

const servicePattern = /^[A-Za-z0-9][A-Za-z0-9@._-]{0,127}$/;

/** `asFound` of a guest or volume: how it runs now; only on an object that is adopted. */
function checkAsFound(c: Check, p: FieldPath, v: unknown, fileKey: "qmpSocket" | "config", adopt: unknown): void {
    const a = c.obj(p, v, ["service", fileKey], false);
    if (!a) return;
    c.str([...p, "service"], a.service, { optional: true, pattern: servicePattern, hint: "is not a service name like vm1.service" });
    c.str([...p, fileKey], a[fileKey], { pattern: absPathPattern, hint: "is not an absolute path" });
    if (adopt !== true) c.fail(p, "keeps an existing object as it runs, so it needs adopt: true beside it");
}

function checkMachine(c: Check, p: FieldPath, v: unknown): void {
    const m = c.obj(p, v, [...hostCommonKeys, "nics", "bmc", "power", "waitForSshSeconds", "disks", "raid", "ceph", "pxeServer"]);
    if (!m) return;
    checkHostCommon(c, p, m, true);
    const nics = c.list([...p, "nics"], m.nics, true, 1) ?? [];
    nics.forEach((n, i) => {
        const q = [...p, "nics", i];
        const nic = c.obj(q, n, ["name", "network", "mac", "address"]);
        if (!nic) return;
        c.str([...q, "name"], nic.name, { pattern: ifnamePattern, hint: "is not an interface name" });
        c.str([...q, "network"], nic.network, { pattern: networkPattern, hint: "is not a network name" });
        c.mac([...q, "mac"], nic.mac);
        c.ipv4([...q, "address"], nic.address);
    });
    const bmc = c.obj([...p, "bmc"], m.bmc, ["address", "port", "user", "interface", "cipherSuite"], false);
    if (bmc) {
        c.ipv4([...p, "bmc", "address"], bmc.address, false);
        c.int([...p, "bmc", "port"], bmc.port, 1, 65535);
        c.str([...p, "bmc", "user"], bmc.user, { optional: true, max: 64, pattern: /^[A-Za-z0-9_.@-]+$/, hint: "is not a BMC user name" });
        c.oneOf([...p, "bmc", "interface"], bmc.interface, ["lanplus", "lan"] as const);
        c.int([...p, "bmc", "cipherSuite"], bmc.cipherSuite, 0, 17);
    }
    const power = c.obj([...p, "power"], m.power, ["onCreate", "cycleOnBootChange", "offOnDelete"], false);
    if (power) {
        const onCreate = c.oneOf([...p, "power", "onCreate"], power.onCreate, ["none", "on", "pxe"] as const);
        c.bool([...p, "power", "cycleOnBootChange"], power.cycleOnBootChange);
        c.bool([...p, "power", "offOnDelete"], power.offOnDelete);
        if (onCreate && onCreate !== "none" && !bmc) c.fail([...p, "power", "onCreate"], `is ${onCreate} but the machine has no bmc`);
    }
    c.int([...p, "waitForSshSeconds"], m.waitForSshSeconds, 10, 7200);
    c.list([...p, "disks"], m.disks)?.forEach((d, i) => c.device([...p, "disks", i], d));
    c.list([...p, "raid"], m.raid)?.forEach((r, i) => {
        const q = [...p, "raid", i];
        const raid = c.obj(q, r, ["device", "members", "level", "name"]);
        if (!raid) return;
        c.str([...q, "device"], raid.device, { pattern: mdPattern, hint: "must be /dev/md0 ... /dev/md127" });
        c.list([...q, "members"], raid.members, true, 1)?.forEach((d, j) => c.device([...q, "members", j], d));
        c.oneOf([...q, "level"], raid.level, ["raid0", "raid1", "raid5", "raid6", "raid10"] as const);
        c.str([...q, "name"], raid.name, { optional: true, max: 32, pattern: /^[A-Za-z0-9_.-]+$/, hint: "may only contain letters, digits, _ . -" });
    });
    const ceph = c.obj([...p, "ceph"], m.ceph, ["osds"], false);
    if (ceph) {
        c.list([...p, "ceph", "osds"], ceph.osds, true, 1)?.forEach((o, i) => {
            const q = [...p, "ceph", "osds", i];
            const osd = c.obj(q, o, ["device", "deviceClass", "crushWeight", "adopt"]);
            if (!osd) return;
            c.bool([...q, "adopt"], osd.adopt);
            c.device([...q, "device"], osd.device);
            c.str([...q, "deviceClass"], osd.deviceClass, { optional: true, pattern: /^[a-z][a-z0-9_-]{0,31}$/, hint: "is not a device class like hdd or ssd" });
            c.num([...q, "crushWeight"], osd.crushWeight, 0, 1000);
        });
    }
    const pxe = c.obj([...p, "pxeServer"], m.pxeServer, ["interface"], false);
    if (pxe) c.str([...p, "pxeServer", "interface"], pxe.interface, { optional: true, pattern: ifnamePattern, hint: "is not an interface name" });
}

function checkGuest(c: Check, p: FieldPath, v: unknown): void {
    const g = c.obj(p, v, [...hostCommonKeys, "host", "memoryMiB", "vcpus", "boot", "nics", "disks", "nfs", "machineType", "shutdownTimeoutSeconds", "asFound"]);
    if (!g) return;
    checkAsFound(c, [...p, "asFound"], g.asFound, "qmpSocket", g.adopt);
    checkHostCommon(c, p, g, false);
    c.name([...p, "host"], g.host);
    c.int([...p, "memoryMiB"], g.memoryMiB, 16, 4 << 20, false);
    c.int([...p, "vcpus"], g.vcpus, 1, 256);
    c.oneOf([...p, "boot"], g.boot, ["network", "disk"] as const);
    c.int([...p, "shutdownTimeoutSeconds"], g.shutdownTimeoutSeconds, 1, 3600);
    c.str([...p, "machineType"], g.machineType, { optional: true, pattern: /^[a-z0-9][a-z0-9._-]{0,63}$/, hint: "is not a qemu machine type like pc or q35" });
    c.list([...p, "nics"], g.nics, true, 1)?.forEach((n, i) => {
        const q = [...p, "nics", i];
        const nic = c.obj(q, n, ["network", "mac", "address"]);
        if (!nic) return;
        c.str([...q, "network"], nic.network, { pattern: networkPattern, hint: "is not a network name" });
        c.mac([...q, "mac"], nic.mac);
        c.ipv4([...q, "address"], nic.address);
    });
    c.list([...p, "disks"], g.disks)?.forEach((d, i) => {
        const q = [...p, "disks", i];
        const disk = c.obj(q, d, ["device", "volume", "readOnly"]);
        if (!disk) return;
        if ((disk.device === undefined) === (disk.volume === undefined)) c.fail(q, "must have exactly one of device (on the host) or volume (an NBD volume's name)");
        else if (disk.device !== undefined) c.device([...q, "device"], disk.device);
        else c.str([...q, "volume"], disk.volume, { pattern: lvPattern, hint: "is not a volume name" });
        c.bool([...q, "readOnly"], disk.readOnly);
    });
    const nfs = c.obj([...p, "nfs"], g.nfs, ["volume", "mountpoint", "exports"], false);
    if (nfs) {
        c.str([...p, "nfs", "volume"], nfs.volume, { pattern: lvPattern, hint: "is not a volume name" });
        c.str([...p, "nfs", "mountpoint"], nfs.mountpoint, { pattern: absPathPattern, hint: "is not an absolute path" });
        c.list([...p, "nfs", "exports"], nfs.exports, true, 1)?.forEach((e, i) => {
            const q = [...p, "nfs", "exports", i];
            const ex = c.obj(q, e, ["path", "clients", "options"]);
            if (!ex) return;
            c.str([...q, "path"], ex.path, { pattern: absPathPattern, hint: "is not an absolute path" });
            c.list([...q, "clients"], ex.clients, true, 1)?.forEach((cl, j) => {
                const s = c.str([...q, "clients", j], cl);
                if (s !== undefined && !networkPattern.test(s) && !parseCidr(s) && !isIpv4(s)) c.fail([...q, "clients", j], `${show(s)} is not a network name, an IPv4 address or a CIDR`);
            });
            c.str([...q, "options"], ex.options, { optional: true, pattern: nfsOptionsPattern, hint: "is not an exports(5) option list like rw,sync,no_subtree_check" });
        });
    }
}

function checkVolume(c: Check, p: FieldPath, v: unknown): void {
    const vol = c.obj(p, v, ["name", "san", "size", "port", "owner", "exportName", "readOnly", "allowedClients", "adopt", "asFound"]);
    if (!vol) return;
    c.bool([...p, "adopt"], vol.adopt);
    checkAsFound(c, [...p, "asFound"], vol.asFound, "config", vol.adopt);
    c.str([...p, "name"], vol.name, { pattern: lvPattern, hint: "is not an LV name (letters, digits, _ . -; not snapshot or pvmove)" });
    c.name([...p, "san"], vol.san);
    c.str([...p, "size"], vol.size, { pattern: sizePattern, hint: "is not a size with a binary unit like 512MiB, 20GiB or 1TiB" });
    c.int([...p, "port"], vol.port, 1024, 65535, false);
    c.name([...p, "owner"], vol.owner);
    c.str([...p, "exportName"], vol.exportName, { optional: true, pattern: /^(?!generic$)[A-Za-z0-9_.-]{1,64}$/, hint: "is not an export name (letters, digits, _ . -; not \"generic\")" });
    c.bool([...p, "readOnly"], vol.readOnly);
    c.list([...p, "allowedClients"], vol.allowedClients)?.forEach((cl, i) => {
        const s = c.str([...p, "allowedClients", i], cl);
        if (s !== undefined && !isIpv4(s) && !parseCidr(s)) c.fail([...p, "allowedClients", i], `${show(s)} is not an IPv4 address or network`);
    });
}

function checkContainer(c: Check, p: FieldPath, v: unknown): void {
    const ct = c.obj(p, v, ["name", "host", "service", "os", "template", "templateArgs", "rootfs", "nics", "mounts", "memoryMiB", "autostart", "files", "commands", "adopt"]);
    if (!ct) return;
    c.bool([...p, "adopt"], ct.adopt);
    c.str([...p, "rootfs"], ct.rootfs, { optional: true, pattern: absPathPattern, hint: "is not an absolute path on the host" });
    if (ct.rootfs !== undefined && (ct.template !== undefined || ct.templateArgs !== undefined)) c.fail([...p, "rootfs"], "is a root file system already on the host: leave template and templateArgs out");
    c.name([...p, "name"], ct.name);
    c.name([...p, "host"], ct.host);
    c.str([...p, "service"], ct.service, { pattern: /^[a-z][a-z0-9-]{0,31}$/, hint: "is not a service name (lower-case letters, digits, -)" });
    c.oneOf([...p, "os"], ct.os, osNames);
    c.str([...p, "template"], ct.template, { optional: true, pattern: templatePattern, hint: "is not an LXC template name like busybox or download" });
    c.words([...p, "templateArgs"], ct.templateArgs);
    c.list([...p, "nics"], ct.nics)?.forEach((n, i) => {
        const q = [...p, "nics", i];
        const nic = c.obj(q, n, ["network", "address", "mac", "gateway"]);
        if (!nic) return;
        c.str([...q, "network"], nic.network, { pattern: networkPattern, hint: "is not a network name" });
        c.ipv4([...q, "address"], nic.address);
        c.mac([...q, "mac"], nic.mac, true);
        c.ipv4([...q, "gateway"], nic.gateway);
    });
    c.list([...p, "mounts"], ct.mounts)?.forEach((m, i) => {
        const q = [...p, "mounts", i];
        const mount = c.obj(q, m, ["target", "nfs", "source", "type", "options"]);
        if (!mount) return;
        c.str([...q, "target"], mount.target, { pattern: absPathPattern, hint: "is not an absolute path inside the container" });
        if ((mount.nfs === undefined) === (mount.source === undefined)) {
            c.fail(q, "must have exactly one of nfs ({ server, path }) or source");
        } else if (mount.nfs !== undefined) {
            const nfs = c.obj([...q, "nfs"], mount.nfs, ["server", "path"]);
            if (nfs) {
                c.name([...q, "nfs", "server"], nfs.server);
                c.str([...q, "nfs", "path"], nfs.path, { pattern: absPathPattern, hint: "is not an absolute path" });
            }
            if (mount.type !== undefined) c.fail([...q, "type"], "is nfs for an nfs mount; leave it out");
        } else {
            c.str([...q, "source"], mount.source, { pattern: /^(?:\/[A-Za-z0-9_.@+/-]*|[A-Za-z0-9.-]+:\/[A-Za-z0-9_.@+/-]*)$/, hint: "is not an absolute path or server:/export" });
            c.str([...q, "type"], mount.type, { optional: true, pattern: /^[a-z0-9]{1,16}$/, hint: "is not a file system type like none or nfs" });
        }
        c.str([...q, "options"], mount.options, { optional: true, pattern: mountOptionsPattern, hint: "is not a mount option list like ro,create=dir" });
    });
    c.int([...p, "memoryMiB"], ct.memoryMiB, 16, 1 << 20);
    c.bool([...p, "autostart"], ct.autostart);
    c.list([...p, "files"], ct.files)?.forEach((f, i) => {
        const q = [...p, "files", i];
        const file = c.obj(q, f, ["path", "content", "mode"]);
        if (!file) return;
        c.str([...q, "path"], file.path, { pattern: absPathPattern, hint: "is not an absolute path inside the container" });
        c.text([...q, "content"], file.content);
        c.str([...q, "mode"], file.mode, { optional: true, pattern: modePattern, hint: "is not an octal mode like 0644" });
    });
    c.list([...p, "commands"], ct.commands)?.forEach((cmd, i) => {
        const argv = c.list([...p, "commands", i], cmd, true, 1);
        argv?.forEach((a, j) => c.text([...p, "commands", i, j], a));
    });
}

function checkConsulKeys(c: Check, p: FieldPath, v: unknown): void {
    const k = c.obj(p, v, ["prefix", "keys", "adopt"]);
    if (!k) return;
    c.str([...p, "prefix"], k.prefix, { pattern: /^[A-Za-z0-9_.@-]+(\/[A-Za-z0-9_.@-]+)*\/$/, hint: "is not a K/V prefix like config/dns01/ (ending in /)" });
    const keys = c.strings([...p, "keys"], k.keys);
    if (keys && Object.keys(keys).length === 0) c.fail([...p, "keys"], "declares no key");
    if (!keys && k.keys === undefined) c.fail([...p, "keys"], "is required");
    c.bool([...p, "adopt"], k.adopt);
}

// ---- references between sections ---------------------------------------------------------------

type Host = { kind: "machine"; spec: MachineSpec; index: number } | { kind: "guest"; spec: GuestSpec; index: number };

function hostPath(h: Host): FieldPath {
    return [h.kind === "machine" ? "machines" : "guests", h.index];
}

/** The networks a host replicates with OVS bridges (see the schema: machines every bridged network by default). */
export function bridgedNetworks(inv: Inventory, host: HostCommon, isMachine: boolean): string[] {
    if (host.bridges) return host.bridges;
    if (isMachine) return Object.entries(inv.networks).filter(([, n]) => n.bridge !== undefined).map(([name]) => name);
    const used = new Set<string>();
    for (const ct of inv.containers ?? []) if (ct.host === host.name) for (const n of ct.nics ?? []) used.add(n.network);
    return [...used];
}

function checkReferences(c: Check, inv: Inventory): void {
    const hosts = new Map<string, Host>();
    const claim = (name: string, h: Host) => {
        const prior = hosts.get(name);
        if (prior) c.fail([...hostPath(h), "name"], `${show(name)} is already the name of ${formatPath(hostPath(prior))}`);
        else hosts.set(name, h);
    };
    inv.machines.forEach((spec, index) => claim(spec.name, { kind: "machine", spec, index }));
    (inv.guests ?? []).forEach((spec, index) => claim(spec.name, { kind: "guest", spec, index }));

    // Without a pxe section nothing boots by PXE: no boot network, no profiles, no PXE server.
    const pxe = inv.pxe;
    const profiles = pxe?.profiles ?? {};
    const pxeNet = pxe?.network ?? "lan";
    if (pxe && !inv.networks[pxeNet]) c.fail(["pxe", "network"], `${show(pxeNet)} is not one of the networks (${Object.keys(inv.networks).join(", ")})`);
    const defaultProfile = inv.defaults?.profile ?? "default";
    const profileUsed = (p: FieldPath, name: string | undefined) => {
        if (!pxe) {
            if (name !== undefined) c.fail(p, "names a PXE profile, but the inventory has no pxe section");
            return;
        }
        const n = name ?? defaultProfile;
        if (!profiles[n]) c.fail(name === undefined ? p.slice(0, -1) : p, `profile ${show(n)} is not one of pxe.profiles (${Object.keys(profiles).join(", ")})`);
    };

    // Addresses and MACs are unique across the whole data center.
    const macs = new Map<string, string>();
    const addresses = new Map<string, string>();
    const uniqueMac = (p: FieldPath, mac: string) => {
        const k = mac.toLowerCase();
        const prior = macs.get(k);
        if (prior) c.fail(p, `${show(mac)} is also the MAC of ${prior}`);
        else macs.set(k, formatPath(p));
    };
    const address = (p: FieldPath, network: string, addr: string | undefined) => {
        const net = inv.networks[network];
        if (!net) {
            c.fail([...p, "network"], `${show(network)} is not one of the networks (${Object.keys(inv.networks).join(", ")})`);
            return;
        }
        if (addr === undefined) return;
        if (!inCidr(addr, net.cidr)) c.fail([...p, "address"], `${show(addr)} is not a host address in ${network} (${net.cidr})`);
        const prior = addresses.get(addr);
        if (prior) c.fail([...p, "address"], `${show(addr)} is also the address of ${prior}`);
        else addresses.set(addr, formatPath([...p, "address"]));
    };

    const pxeServers: string[] = [];
    for (const [i, m] of inv.machines.entries()) {
        const p: FieldPath = ["machines", i];
        profileUsed([...p, "profile"], m.profile);
        const names = new Set<string>();
        m.nics.forEach((n, j) => {
            if (names.has(n.name)) c.fail([...p, "nics", j, "name"], `${show(n.name)} is listed twice`);
            names.add(n.name);
            uniqueMac([...p, "nics", j, "mac"], n.mac);
            address([...p, "nics", j], n.network, n.address);
        });
        const eth0 = m.nics[0];
        if (pxe) {
            if (eth0.name !== "eth0") c.fail([...p, "nics", 0, "name"], "the first NIC must be eth0 (its MAC is the machine's identity)");
            if (eth0.network !== pxeNet) c.fail([...p, "nics", 0, "network"], `eth0 must be on the boot network ${pxeNet} (it boots by PXE)`);
            if (eth0.address === undefined) c.fail([...p, "nics", 0], "eth0 needs an address (its static lease)");
        } else if (m.pxeServer) {
            c.fail([...p, "pxeServer"], "needs the pxe section (the profiles it serves)");
        }
        if (m.pxeServer) pxeServers.push(m.name);
        if (m.bmc) {
            const prior = addresses.get(m.bmc.address);
            if (prior) c.fail([...p, "bmc", "address"], `${show(m.bmc.address)} is also the address of ${prior}`);
            else addresses.set(m.bmc.address, formatPath([...p, "bmc", "address"]));
        }
        checkDisks(c, p, m);
        checkBridges(c, p, inv, m, bridgedNetworks(inv, m, true), new Set(m.nics.map((n) => n.network)), true);
        if (m.san) checkSanNetwork(c, [...p, "san"], inv, m.san.exportNetwork, new Set(m.nics.map((n) => n.network)));
    }
    if (pxe && pxeServers.length === 0) c.fail(["machines"], "no machine has pxeServer: the data center needs at least one PXE server (the Consul servers)");

    for (const [i, g] of (inv.guests ?? []).entries()) {
        const p: FieldPath = ["guests", i];
        const host = hosts.get(g.host);
        if (!host || host.kind !== "machine") {
            c.fail([...p, "host"], `${show(g.host)} is not one of the machines`);
            continue;
        }
        if ((g.boot ?? "network") === "network" || g.profile !== undefined) profileUsed([...p, "profile"], g.profile);
        const networks = new Set(g.nics.map((n) => n.network));
        const hostBridges = bridgedNetworks(inv, host.spec, true);
        g.nics.forEach((n, j) => {
            uniqueMac([...p, "nics", j, "mac"], n.mac);
            address([...p, "nics", j], n.network, n.address);
            if (inv.networks[n.network] && !hostBridges.includes(n.network)) {
                c.fail([...p, "nics", j, "network"], `${show(n.network)} has no OVS bridge on ${g.host} (give the network a bridge and list it in ${g.host}'s bridges)`);
            }
        });
        if (pxe && (g.boot ?? "network") === "network" && g.nics[0].network !== pxeNet) c.fail([...p, "nics", 0, "network"], `eth0 must be on the boot network ${pxeNet} (the guest boots by PXE)`);
        const needsSsh = g.san !== undefined || g.nfs !== undefined || (inv.containers ?? []).some((ct) => ct.host === g.name);
        if (needsSsh && !g.ssh) c.fail([...p, "ssh"], "is required: something runs inside this guest (san, nfs or containers)");
        if (needsSsh && !g.ssh?.host && g.nics[0].address === undefined) c.fail([...p, "nics", 0], "eth0 needs an address, or ssh.host must say where to connect");
        (g.disks ?? []).forEach((d, j) => {
            if ("device" in d) {
                const hostDevices = new Set([...(host.spec.disks ?? []), ...(host.spec.raid ?? []).map((r) => r.device)]);
                if (!hostDevices.has(d.device)) c.fail([...p, "disks", j, "device"], `${show(d.device)} is neither a disk nor a RAID array of ${g.host}`);
            }
        });
        checkBridges(c, p, inv, g, bridgedNetworks(inv, g, false), networks, false);
        if (g.san) checkSanNetwork(c, [...p, "san"], inv, g.san.exportNetwork, networks);
    }
    checkVolumes(c, inv, hosts);
    checkContainers(c, inv, hosts, uniqueMac, address);
    checkTunnels(c, inv, hosts);
}

function checkDisks(c: Check, p: FieldPath, m: MachineSpec): void {
    const disks = new Set(m.disks ?? []);
    const used = new Map<string, string>();
    const use = (q: FieldPath, d: string) => {
        if (!disks.has(d)) c.fail(q, `${show(d)} is not one of ${m.name}'s disks`);
        const prior = used.get(d);
        if (prior) c.fail(q, `${show(d)} is already used by ${prior}`);
        else used.set(d, formatPath(q));
    };
    (m.disks ?? []).forEach((d, i) => {
        if ((m.disks ?? []).indexOf(d) !== i) c.fail([...p, "disks", i], `${show(d)} is listed twice`);
    });
    const mds = new Set<string>();
    (m.raid ?? []).forEach((r, i) => {
        if (mds.has(r.device)) c.fail([...p, "raid", i, "device"], `${show(r.device)} is declared twice`);
        mds.add(r.device);
        const level = r.level ?? "raid1";
        const min = { raid0: 2, raid1: 2, raid5: 3, raid6: 4, raid10: 4 }[level];
        if (r.members.length < min) c.fail([...p, "raid", i, "members"], `${level} needs at least ${min} members, got ${r.members.length}`);
        r.members.forEach((d, j) => use([...p, "raid", i, "members", j], d));
    });
    (m.ceph?.osds ?? []).forEach((o, i) => use([...p, "ceph", "osds", i, "device"], o.device));
    (m.san?.devices ?? []).forEach((d, i) => {
        if (mds.has(d)) return;
        use([...p, "san", "devices", i], d);
    });
}

function checkSanNetwork(c: Check, p: FieldPath, inv: Inventory, exportNetwork: string | undefined, networks: Set<string>): void {
    const net = exportNetwork ?? (inv.networks.storage ? "storage" : inv.pxe?.network ?? "lan");
    if (!inv.networks[net]) c.fail([...p, "exportNetwork"], `${show(net)} is not one of the networks`);
    else if (!networks.has(net)) c.fail([...p, "exportNetwork"], `the SAN has no NIC on ${net}, where its exports are served`);
}

function checkBridges(c: Check, p: FieldPath, inv: Inventory, h: HostCommon, bridged: string[], nicNetworks: Set<string>, isMachine: boolean): void {
    bridged.forEach((net, i) => {
        const q = h.bridges ? [...p, "bridges", i] : p;
        const spec = inv.networks[net];
        if (!spec) c.fail(q, `${show(net)} is not one of the networks`);
        else if (!spec.bridge) c.fail(q, `network ${net} has no bridge (set networks.${net}.bridge)`);
        else if (!nicNetworks.has(net)) {
            if (!isMachine) c.fail(q, `${h.name} has no NIC on ${net}; a guest's bridge needs one`);
            else if (!spec.tunnelHub) c.fail(q, `${h.name} has no NIC on ${net} and networks.${net}.tunnelHub names no box to tunnel to`);
        }
    });
}

function checkTunnels(c: Check, inv: Inventory, hosts: Map<string, Host>): void {
    for (const [net, spec] of Object.entries(inv.networks)) {
        if (!spec.tunnelHub) continue;
        const p: FieldPath = ["networks", net, "tunnelHub"];
        const hub = hosts.get(spec.tunnelHub);
        if (!hub || hub.kind !== "machine") {
            c.fail(p, `${show(spec.tunnelHub)} is not one of the machines`);
            continue;
        }
        if (!hub.spec.nics.some((n) => n.network === net)) c.fail(p, `${spec.tunnelHub} has no NIC on ${net}, so it cannot carry the tunnels`);
        if (!bridgedNetworks(inv, hub.spec, true).includes(net)) c.fail(p, `${spec.tunnelHub} does not bridge ${net}`);
        const peers = tunnelPeers(inv, net);
        // OvsBridge takes at most 16 tunnels.
        if (peers.length > 16) c.fail(p, `${spec.tunnelHub} would carry ${peers.length} tunnels on ${net}; one bridge takes at most 16 (add NICs or list fewer networks in the boxes' bridges)`);
        if ((spec.tunnelPort ?? 1194) + peers.length > 65535) c.fail(["networks", net, "tunnelPort"], "leaves no room for one port per tunnel");
    }
}

/** Machines that bridge `net` without a NIC on it: each gets one OpenVPN tunnel to the hub, in inventory order. */
export function tunnelPeers(inv: Inventory, net: string): MachineSpec[] {
    return inv.machines.filter((m) => bridgedNetworks(inv, m, true).includes(net) && !m.nics.some((n) => n.network === net));
}

function checkVolumes(c: Check, inv: Inventory, hosts: Map<string, Host>): void {
    const names = new Map<string, number>();
    const ports = new Map<string, string>();
    (inv.volumes ?? []).forEach((v: VolumeSpec, i) => {
        const p: FieldPath = ["volumes", i];
        if (names.has(v.name)) c.fail([...p, "name"], `${show(v.name)} is already the name of volumes[${names.get(v.name)}]`);
        names.set(v.name, i);
        const san = hosts.get(v.san);
        if (!san) c.fail([...p, "san"], `${show(v.san)} is not one of the machines or guests`);
        else if (!san.spec.san) c.fail([...p, "san"], `${v.san} has no san section (volumeGroup, devices)`);
        const key = `${v.san}:${v.port}`;
        if (ports.has(key)) c.fail([...p, "port"], `${v.port} is already the port of ${ports.get(key)} on ${v.san}`);
        ports.set(key, `volumes[${i}]`);
        const owner = hosts.get(v.owner);
        if (!owner || owner.kind !== "guest") c.fail([...p, "owner"], `${show(v.owner)} is not one of the guests`);
    });
    for (const [i, g] of (inv.guests ?? []).entries()) {
        const mine = new Set<string>();
        (g.disks ?? []).forEach((d, j) => {
            if (!("volume" in d)) return;
            const vol = (inv.volumes ?? []).find((v) => v.name === d.volume);
            if (!vol) c.fail(["guests", i, "disks", j, "volume"], `${show(d.volume)} is not one of the volumes`);
            else if (vol.owner !== g.name) c.fail(["guests", i, "disks", j, "volume"], `${show(d.volume)} is owned by ${vol.owner}, not ${g.name}`);
            else mine.add(d.volume);
        });
        if (g.nfs && !inv.consul) c.fail(["guests", i, "nfs"], "needs the consul section (the NAS reads what to export from Consul K/V)");
        if (g.nfs && !mine.has(g.nfs.volume)) c.fail(["guests", i, "nfs", "volume"], `${show(g.nfs.volume)} is not one of ${g.name}'s NBD disks`);
        g.nfs?.exports.forEach((e, j) => {
            if (!e.path.startsWith(g.nfs!.mountpoint.replace(/\/?$/, "/")) && e.path !== g.nfs!.mountpoint) c.fail(["guests", i, "nfs", "exports", j, "path"], `${show(e.path)} is not under the mountpoint ${g.nfs!.mountpoint}`);
            e.clients.forEach((cl, k) => {
                if (networkPattern.test(cl) && !inv.networks[cl]) c.fail(["guests", i, "nfs", "exports", j, "clients", k], `${show(cl)} is not one of the networks`);
            });
        });
    }
}

function checkContainers(
    c: Check, inv: Inventory, hosts: Map<string, Host>,
    uniqueMac: (p: FieldPath, mac: string) => void,
    address: (p: FieldPath, network: string, addr: string | undefined) => void,
): void {
    const names = new Map<string, number>();
    const lxcServer = inv.lxc?.server;
    (inv.containers ?? []).forEach((ct: ContainerSpec, i) => {
        const p: FieldPath = ["containers", i];
        if (names.has(ct.name)) c.fail([...p, "name"], `${show(ct.name)} is already the name of containers[${names.get(ct.name)}]`);
        names.set(ct.name, i);
        const host = hosts.get(ct.host);
        if (!host) {
            c.fail([...p, "host"], `${show(ct.host)} is not one of the machines or guests`);
            return;
        }
        if (host.kind === "guest" && !host.spec.ssh) c.fail([...p, "host"], `${ct.host} has no ssh section, so its containers cannot be reached`);
        const bridged = bridgedNetworks(inv, host.spec, host.kind === "machine");
        (ct.nics ?? []).forEach((n, j) => {
            if (n.mac) uniqueMac([...p, "nics", j, "mac"], n.mac);
            address([...p, "nics", j], n.network, n.address);
            if (inv.networks[n.network] && !bridged.includes(n.network)) c.fail([...p, "nics", j, "network"], `${ct.host} does not bridge ${n.network}`);
            const net = inv.networks[n.network];
            if (net && n.gateway && !inCidr(n.gateway, net.cidr)) c.fail([...p, "nics", j, "gateway"], `${show(n.gateway)} is not in ${n.network} (${net.cidr})`);
        });
        (ct.mounts ?? []).forEach((m, j) => {
            if (!m.nfs) return;
            const server = hosts.get(m.nfs.server);
            if (!server || server.kind !== "guest" || !server.spec.nfs) {
                c.fail([...p, "mounts", j, "nfs", "server"], `${show(m.nfs.server)} is not a guest with an nfs section`);
                return;
            }
            if (!server.spec.nfs.exports.some((e) => e.path === m.nfs!.path)) c.fail([...p, "mounts", j, "nfs", "path"], `${show(m.nfs.path)} is not one of ${m.nfs.server}'s exports`);
        });
        // The download template's arguments come from lxc (server, release) unless given as they are.
        if ((ct.template === undefined || ct.template === "download") && ct.templateArgs === undefined && ct.rootfs === undefined) {
            const os = ct.os ?? inv.defaults?.containerOs ?? "alpine";
            if (!lxcServer) c.fail([...p, "template"], "is not given, so the image comes from the download template: set lxc.server (the lxc-repo box) or a template");
            if (!inv.lxc?.releases?.[os]) c.fail([...p, "os"], `${os} has no release in lxc.releases`);
        }
    });
}
