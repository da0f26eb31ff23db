// The site check: what a program declares is checked while the program runs, so
// that one `pulumi preview` reports every mistake of every resource. The engine
// stops a preview at the first resource whose provider `check` fails; here each
// resource's known inputs go through the same `check` (the kind's own, loaded by
// package name) when it is constructed, and then against every resource declared
// before it: a Machine's profile and address against the PXE servers that boot it,
// MACs, addresses and names that must be unique, a guest's NBD disk against the
// NbdVolume that serves it.
//
// A resource with a problem is never sent to the engine: its registration waits on
// a promise that fails with the problems (a RunError: printed once, without a
// stack trace), so the program fails once all of it has run, and the resources
// that use its outputs are not registered either (no follow-on errors). Values not
// known while the program runs (outputs of other resources, secrets) are left to
// the provider's `check`, which runs again in the engine, as before.
import * as pulumi from "@pulumi/pulumi";
import type { FieldFailure } from "../provider";

type Json = Record<string, unknown>;
/** What the site check needs of the provider package (loaded by package name, see provider.ts). */
type ProviderModule = Pick<typeof import("../provider"), "kinds" | "inSubnet" | "parseCidr">;

/** One declared resource, as far as its inputs are known while the program runs. */
export interface Entry {
    readonly kind: string;
    readonly name: string;
    /** The normalised inputs when check passed (defaults filled in), else the known inputs as given. */
    readonly known: Json;
    /** Its own check passed: rules across resources only look at entries that are ok. */
    readonly ok: boolean;
}

/** A problem of one resource, in the words of `check`: the field and why (naming the other resource). */
export interface SiteProblem extends FieldFailure {
    kind: string;
    name: string;
}

/** `Machine "svc1": mac: ...`: how a problem reads in the preview. */
export function problemLine(p: SiteProblem): string {
    return `${p.kind} "${p.name}": ${p.field}: ${p.reason}`;
}

const unknown = pulumi.runtime.unknownValue;

function loadProvider(): ProviderModule {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require("pulumi-baremetal/provider") as ProviderModule;
}

/**
 * The declarations of one program run: each resource checked alone and against the
 * ones before it. Pure apart from reading Pulumi Outputs' identity: testable
 * without an engine.
 */
export class Site {
    private readonly entries: Entry[] = [];
    /** Output properties of declared resources, to the input they stand for. */
    private readonly owners = new WeakMap<object, { entry: Entry; key: string }>();
    /** The first resource to claim each value, by scope and value. */
    private readonly claimed = new Map<string, { entry: Entry; claim: Claim }>();
    /** Resources by what others refer to them by: PXE servers by `name@host`, NBD exports by `export@address`. */
    private readonly referred = new Map<string, Entry[]>();
    /** Resources that refer to others, by the same keys. */
    private readonly referring = new Map<string, Entry[]>();

    constructor(private readonly provider: () => ProviderModule = loadProvider) {}

    /**
     * Checks one resource's inputs (pulumi Inputs; what is not known yet is left out)
     * and records it. Returns its problems: its own check's failures, or else those
     * with resources declared before it.
     */
    declare(kind: string, name: string, inputs: Json): { entry: Entry; problems: SiteProblem[] } {
        const view = this.viewOf(inputs) as Json;
        const impl = this.provider().kinds[kind as keyof ProviderModule["kinds"]];
        const outcome = impl ? impl.check({}, view) : { inputs: view, failures: [] };
        const ok = outcome.failures.length === 0;
        const entry: Entry = { kind, name, known: ok ? ((outcome.inputs ?? view) as Json) : view, ok };
        this.entries.push(entry);
        if (!ok) return { entry, problems: outcome.failures.map((f) => ({ kind, name, field: f.field, reason: f.reason })) };
        return { entry, problems: dedupe([...this.clashesOf(entry), ...this.relationsOf(entry)]) };
    }

    /** The resource made from a declaration: its output properties now stand for its declared inputs. */
    made(entry: Entry, resource: object): void {
        for (const [key, value] of Object.entries(resource)) {
            if (pulumi.Output.isInstance(value)) this.owners.set(value, { entry, key });
        }
    }

    /** Problems only the whole program shows: asked once it has declared everything. */
    atEnd(): SiteProblem[] {
        return missingExports(this.entries);
    }

    /**
     * The inputs as check would receive them, where known now: undefined dropped,
     * an output of a resource declared here replaced by that resource's known input,
     * anything else not known yet (outputs, promises, secrets) as the engine's
     * "unknown" marker, which every check lets through.
     */
    private viewOf(v: unknown): unknown {
        if (pulumi.Output.isInstance(v)) {
            if (wrapped.has(v)) return this.viewOf(wrapped.get(v));
            const owner = this.owners.get(v);
            const known = owner?.entry.ok ? owner.entry.known[owner.key] : undefined;
            return known === undefined ? unknown : known;
        }
        if (Array.isArray(v)) return v.map((x) => this.viewOf(x) ?? null);
        if (v === null || typeof v !== "object") return v;
        if (Object.getPrototypeOf(v) !== Object.prototype && Object.getPrototypeOf(v) !== null) return unknown;
        const out: Json = {};
        for (const [k, x] of Object.entries(v)) {
            const seen = this.viewOf(x);
            if (seen !== undefined) out[k] = seen;
        }
        return out;
    }

    /** Values `entry` claims that a resource declared before it claimed already. */
    private clashesOf(entry: Entry): SiteProblem[] {
        const problems: SiteProblem[] = [];
        for (const c of claimsOf(entry)) {
            const key = `${c.scope}\u0000${c.value}`;
            const first = this.claimed.get(key);
            if (!first) this.claimed.set(key, { entry, claim: c });
            else if (first.entry !== entry) problems.push(clash(entry, c, first.entry, first.claim));
        }
        return problems;
    }

    /** Problems between `entry` and the resources it refers to, or that refer to it, declared before it. */
    private relationsOf(entry: Entry): SiteProblem[] {
        const problems: SiteProblem[] = [];
        for (const key of referenceKeys(entry)) {
            listAt(this.referring, key).push(entry);
            for (const other of this.referred.get(key) ?? []) problems.push(...related(entry, other, this.provider()));
        }
        for (const key of referredKeys(entry)) {
            listAt(this.referred, key).push(entry);
            for (const other of this.referring.get(key) ?? []) problems.push(...related(other, entry, this.provider()));
        }
        return problems;
    }
}

function listAt(map: Map<string, Entry[]>, key: string): Entry[] {
    let l = map.get(key);
    if (!l) map.set(key, (l = []));
    return l;
}

function dedupe(problems: SiteProblem[]): SiteProblem[] {
    const seen = new Set<string>();
    return problems.filter((p) => {
        const line = problemLine(p);
        const fresh = !seen.has(line);
        seen.add(line);
        return fresh;
    });
}

// ---- reading known values ------------------------------------------------------------------

function known(v: unknown): boolean {
    return v !== undefined && v !== null && v !== unknown;
}

function str(o: unknown, ...path: (string | number)[]): string | undefined {
    let cur = o;
    for (const p of path) {
        if (!cur || typeof cur !== "object") return undefined;
        cur = (cur as Record<string | number, unknown>)[p];
    }
    return typeof cur === "string" && cur !== unknown ? cur : typeof cur === "number" ? String(cur) : undefined;
}

function list(o: Json, key: string): unknown[] {
    const v = o[key];
    return Array.isArray(v) ? v : [];
}

/** Where an NbdVolume's clients reach it (its `exportAddress`, by default its box), lower case. */
function exportAddressOf(vol: Entry): string | undefined {
    return str(vol.known, "exportAddress")?.toLowerCase() ?? boxOf(vol);
}

/** The box a resource acts on, when known (`connection.host`, lower case). */
function boxOf(e: Entry): string | undefined {
    return str(e.known, "connection", "host")?.toLowerCase();
}

/**
 * The box as its SSH endpoint, the scope of what must be unique on one box: the
 * host, with `:port` off port 22 and `via` the jump host. Two sshds on one address
 * (a NAT's forwarded ports, one address behind two jump hosts) are two boxes.
 */
function endpointOf(e: Entry): string | undefined {
    const at = (c: unknown): string | undefined => {
        const host = str(c, "host")?.toLowerCase();
        const port = str(c, "port");
        return host === undefined ? undefined : port === undefined || port === "22" ? host : `${host}:${port}`;
    };
    const box = at(e.known.connection);
    const proxy = at(str(e.known, "connection", "proxy", "host") === undefined ? undefined : (e.known.connection as Json).proxy);
    return box === undefined ? undefined : proxy === undefined ? box : `${box} via ${proxy}`;
}

// ---- values that must be unique ------------------------------------------------------------

/**
 * A value a resource takes for itself: two resources taking the same one in the same
 * `scope` (a MAC among the Machines, a block device on one box) clash.
 */
interface Claim {
    scope: string;
    value: string;
    field: string;
}

function claim(scopes: string[], value: string | undefined, field: string, box?: string): Claim[] {
    if (value === undefined) return [];
    return scopes.map((s) => ({ scope: box === undefined ? s : `${s}@${box}`, value, field }));
}

/**
 * What each kind claims. A MAC is unique among the Machines and among the guests'
 * NICs; a guest's own Machine entry (it boots over PXE) has its MAC on purpose. A
 * container's MAC may be neither. An address is unique among Machines and containers.
 */
function claimsOf(e: Entry): Claim[] {
    const k = e.known;
    const box = endpointOf(e);
    const onBox = (scope: string, value: string | undefined, field: string) => (box === undefined ? [] : claim([scope], value, field, box));
    switch (e.kind) {
        case "Machine":
            return [...claim(["mac of a Machine"], str(k, "mac"), "mac"), ...claim(["address"], str(k, "ip"), "ip"), ...claim(["host name"], str(k, "hostname"), "hostname")];
        case "KvmGuest":
            return [
                ...list(k, "nics").flatMap((_, i) => claim(["MAC of a guest"], str(k, "nics", i, "mac")?.toLowerCase(), `nics[${i}].mac`)),
                ...onBox("guest name", str(k, "name"), "name"),
            ];
        case "LxcContainer":
            return [
                ...list(k, "network").flatMap((_, i) => [
                    ...claim(["mac of a Machine", "MAC of a guest", "container MAC"], str(k, "network", i, "hwaddr")?.toLowerCase(), `network[${i}].hwaddr`),
                    ...claim(["address"], str(k, "network", i, "ipv4")?.split("/")[0], `network[${i}].ipv4`),
                ]),
                ...onBox("container name", str(k, "name"), "name"),
            ];
        case "NbdVolume": {
            const vg = str(k, "volumeGroup");
            const lv = str(k, "name");
            const address = exportAddressOf(e);
            return [
                ...onBox("logical volume", vg !== undefined && lv !== undefined ? `${vg}/${lv}` : undefined, "name"),
                ...onBox("nbd-server port", str(k, "port"), "port"),
                ...(address === undefined ? [] : claim(["export name"], str(k, "exportName"), "exportName", address)),
            ];
        }
        case "RaidArray":
            return [...onBox("md device", str(k, "device"), "device"), ...list(k, "members").flatMap((_, i) => onBox("block device", str(k, "members", i), `members[${i}]`))];
        case "CephOsd":
            return onBox("block device", str(k, "device"), "device");
        case "VolumeGroup":
            return [...onBox("volume group", str(k, "name"), "name"), ...list(k, "devices").flatMap((_, i) => onBox("block device", str(k, "devices", i), `devices[${i}]`))];
        case "PxeServer":
            return [...onBox("PXE server name", str(k, "name"), "name"), ...onBox("HTTP port", str(k, "httpPort"), "httpPort")];
        case "OvsBridge":
            return onBox("bridge name", str(k, "name"), "name");
        default:
            return [];
    }
}

/** `mine` of `a` is the value `b` claimed first (`theirs`); reported on `a`, naming `b`. */
function clash(a: Entry, mine: Claim, b: Entry, theirs: Claim): SiteProblem {
    const box = mine.scope.split("@")[1];
    return { kind: a.kind, name: a.name, field: mine.field, reason: `${mine.value} is already ${b.kind} "${b.name}"'s ${theirs.field}${box ? ` on ${box}` : ""}` };
}

// ---- how resources refer to each other -----------------------------------------------------

/** How a resource names the ones it needs: a Machine its PXE servers (`name@host`), a guest its NBD exports (`export@address`). */
function referenceKeys(e: Entry): string[] {
    if (e.kind === "Machine") {
        return list(e.known, "pxeServers").flatMap((s) => {
            const [name, host] = [str(s, "name"), str(s, "connection", "host")];
            return name !== undefined && host !== undefined ? [`pxe ${name}@${host.toLowerCase()}`] : [];
        });
    }
    if (e.kind === "KvmGuest") {
        return list(e.known, "disks").flatMap((d) => {
            const [name, host] = [str(d, "nbd", "export"), str(d, "nbd", "host")];
            return name !== undefined && host !== undefined ? [`nbd ${name}@${host.toLowerCase()}`] : [];
        });
    }
    if (e.kind === "NbdVolume") {
        const owner = str(e.known, "owner")?.toLowerCase();
        return owner === undefined ? [] : [`nic ${owner}`];
    }
    return [];
}

/** The keys other resources name `e` by (see referenceKeys). */
function referredKeys(e: Entry): string[] {
    if (e.kind === "PxeServer") {
        const [name, host] = [str(e.known, "name"), boxOf(e)];
        return name !== undefined && host !== undefined ? [`pxe ${name}@${host}`] : [];
    }
    if (e.kind === "NbdVolume") {
        const [name, address] = [str(e.known, "exportName"), exportAddressOf(e)];
        return name !== undefined && address !== undefined ? [`nbd ${name}@${address}`] : [];
    }
    if (e.kind === "KvmGuest") {
        return list(e.known, "nics").flatMap((_, i) => {
            const mac = str(e.known, "nics", i, "mac")?.toLowerCase();
            return mac === undefined ? [] : [`nic ${mac}`];
        });
    }
    return [];
}

/** Problems of `a` in what it says about `b`, which it refers to; reported on `a`. */
function related(a: Entry, b: Entry, ipv4: ProviderModule): SiteProblem[] {
    if (a.kind === "Machine" && b.kind === "PxeServer") return machineOnPxe(a, b, ipv4);
    if (a.kind === "KvmGuest" && b.kind === "NbdVolume") return guestOnVolume(a, b);
    if (a.kind === "NbdVolume" && b.kind === "KvmGuest") return ownerIsFirstNic(a, b);
    return [];
}

/** A volume's owner is a guest's ID, its first NIC's MAC: another NIC of a declared guest is a mistake. */
function ownerIsFirstNic(vol: Entry, g: Entry): SiteProblem[] {
    const owner = str(vol.known, "owner")?.toLowerCase();
    const i = list(g.known, "nics").findIndex((_, j) => str(g.known, "nics", j, "mac")?.toLowerCase() === owner);
    // A guest that mounts the volume is told about it by its disk (guestOnVolume): one line per mistake.
    const mounts = referenceKeys(g).some((k) => referredKeys(vol).includes(k));
    if (owner === undefined || i <= 0 || mounts) return [];
    const first = str(g.known, "nics", 0, "mac")?.toLowerCase() ?? "its first NIC's MAC";
    return [{ kind: vol.kind, name: vol.name, field: "owner", reason: `${owner} is KvmGuest "${g.name}"'s nics[${i}].mac; a volume's owner is its guest's first NIC (the guest's ID), here ${first}` }];
}

/** A Machine booted by the PXE server `pxe`: its profile must be one of pxe's, its address in pxe's subnet. */
function machineOnPxe(m: Entry, pxe: Entry, ipv4: ProviderModule): SiteProblem[] {
    const [host, name] = [boxOf(pxe), str(pxe.known, "name")];
    const boots = list(m.known, "pxeServers").findIndex((s) => str(s, "name") === name && str(s, "connection", "host")?.toLowerCase() === host);
    if (host === undefined || name === undefined || boots < 0) return [];
    const problems: SiteProblem[] = [];
    const fail = (field: string, reason: string) => problems.push({ kind: m.kind, name: m.name, field, reason });
    const them = `PxeServer "${pxe.name}" (${name}@${host}), named in pxeServers[${boots}]`;
    const profile = str(m.known, "profile");
    const profiles = pxe.known.profiles;
    if (profile !== undefined && known(profiles) && typeof profiles === "object" && !Object.keys(profiles as Json).includes(profile)) {
        const offered = Object.keys(profiles as Json);
        fail("profile", `"${profile}" is not a profile of ${them}; it offers ${offered.length > 0 ? offered.join(", ") : "none"}`);
    }
    const [ip, subnet] = [str(m.known, "ip"), str(pxe.known, "subnet")];
    const net = subnet === undefined ? undefined : ipv4.parseCidr(subnet);
    if (ip !== undefined && net && !ipv4.inSubnet(ip, net)) fail("ip", `${ip} is not in ${subnet}, the subnet of ${them}: it would get no lease`);
    return problems;
}

/**
 * A guest's NBD disk on an address where the program declares NbdVolumes: the export
 * must be one of them, on its port, and owned by the guest's first NIC (its ID).
 */
function guestOnVolume(g: Entry, vol: Entry): SiteProblem[] {
    const address = exportAddressOf(vol);
    const exportName = str(vol.known, "exportName");
    const firstMac = str(g.known, "nics", 0, "mac")?.toLowerCase();
    const owner = str(vol.known, "owner")?.toLowerCase();
    const problems: SiteProblem[] = [];
    list(g.known, "disks").forEach((_, i) => {
        const [host, port, name] = [str(g.known, "disks", i, "nbd", "host"), str(g.known, "disks", i, "nbd", "port"), str(g.known, "disks", i, "nbd", "export")];
        if (host === undefined || host.toLowerCase() !== address || name !== exportName) return;
        const fail = (field: string, reason: string) => problems.push({ kind: g.kind, name: g.name, field: `disks[${i}].nbd.${field}`, reason });
        const volPort = str(vol.known, "port");
        if (port !== undefined && volPort !== undefined && port !== volPort) fail("port", `${port}, but NbdVolume "${vol.name}" serves export ${name} on ${address}:${volPort}`);
        if (owner !== undefined && firstMac !== undefined && owner !== firstMac) {
            fail("export", `${name} belongs to ${owner} (owner of NbdVolume "${vol.name}"), not to this guest's first NIC ${firstMac}`);
        }
    });
    return problems;
}

/**
 * A guest's NBD disk naming an export that no NbdVolume on that address declares,
 * where the program declares some there (a SAN the program does not manage is not
 * judged, nor an address where a volume failed its own check: it may be the one
 * meant). Asked once the program has declared everything it will.
 */
export function missingExports(entries: readonly Entry[]): SiteProblem[] {
    const exportsAt = new Map<string, string[]>();
    const unsure = new Set<string>();
    for (const v of entries.filter((e) => e.kind === "NbdVolume")) {
        const address = v.ok ? exportAddressOf(v) : (str(v.known, "exportAddress") ?? str(v.known, "connection", "host"))?.toLowerCase();
        const name = str(v.known, "exportName");
        if (address === undefined) return [];
        if (!v.ok || name === undefined) unsure.add(address);
        else exportsAt.set(address, [...(exportsAt.get(address) ?? []), name]);
    }
    return entries
        .filter((e) => e.ok && e.kind === "KvmGuest")
        .flatMap((g) =>
            list(g.known, "disks").flatMap((_, i): SiteProblem[] => {
                const [host, name] = [str(g.known, "disks", i, "nbd", "host")?.toLowerCase(), str(g.known, "disks", i, "nbd", "export")];
                const declared = host === undefined || unsure.has(host) ? undefined : exportsAt.get(host);
                if (name === undefined || declared === undefined || declared.includes(name)) return [];
                return [{ kind: g.kind, name: g.name, field: `disks[${i}].nbd.export`, reason: `${name} is not an export the program declares on ${host} (its NbdVolumes there export ${declared.join(", ")})` }];
            }),
        );
}

/**
 * Outputs made from another by wrapping it (the SDK makes the secrets inside an
 * Output secret with an apply), to the one they wrap: the same value for the site.
 */
const wrapped = new WeakMap<object, unknown>();

/** Records that `derived` holds the value of `source` (secrets wrapped); returns `derived`. */
export function derivedFrom<T extends object>(derived: T, source: unknown): T {
    wrapped.set(derived, source);
    return derived;
}

// ---- the program's site: what BaremetalResource calls ---------------------------------------

const sites = new WeakMap<object, Site>();
/** Where the site lives when the Pulumi runtime's per-run store cannot be read. */
const processRun = {};

/**
 * The current program run: the Pulumi runtime's store (one per run, so programs run
 * again in one process by the Automation API start afresh), else this process.
 */
function currentRun(): object {
    try {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const state = require("@pulumi/pulumi/runtime/state") as { getStore?: () => object | undefined };
        return state.getStore?.() ?? processRun;
    } catch {
        return processRun;
    }
}

function siteOfThisRun(): Site {
    const run = currentRun();
    let site = sites.get(run);
    if (!site) {
        const fresh = new Site();
        site = fresh;
        sites.set(run, fresh);
        reportAtEnd(fresh);
    }
    return site;
}

/**
 * Problems only the whole program shows are reported when it has run to its end
 * (Node's beforeExit: nothing is left to do), failing it once; a program that ends
 * any other way (Automation API inline programs) skips them and the engine's checks
 * remain.
 */
function reportAtEnd(site: Site): void {
    let asked = false;
    process.on("beforeExit", () => {
        if (asked) return;
        asked = true;
        const problems = site.atEnd();
        for (const p of problems) void pulumi.log.error(problemLine(p));
        // The code the Pulumi runtime uses for "exited after logging what went wrong".
        if (problems.length > 0 && !process.exitCode) process.exitCode = 32;
    });
}

/**
 * Declares a resource to the site (BaremetalResource calls this before registering):
 * its known inputs are checked alone and against the resources before it. Returns
 * the options to register it with (on a problem, a dependency that fails with the
 * problems, so the resource never reaches the engine) and what to call with the
 * resource once made.
 */
export function declareResource(
    kind: string,
    name: string,
    inputs: pulumi.Inputs,
    opts: pulumi.CustomResourceOptions | undefined,
): { opts: pulumi.CustomResourceOptions | undefined; made: (resource: object) => void } {
    // Under Pulumi's mocks (a program's unit tests) no check ran before either: a
    // resource held back there would leave the test waiting on its outputs.
    if (underMocks()) return { opts, made: () => undefined };
    const site = siteOfThisRun();
    const { entry, problems } = site.declare(kind, name, inputs as Json);
    return { opts: problems.length > 0 ? withRefusal(problems, opts) : opts, made: (r) => site.made(entry, r) };
}

/** Pulumi's MockMonitor (set by `pulumi.runtime.setMocks`) is the monitor that carries the mocks. */
function underMocks(): boolean {
    const monitor = pulumi.runtime.getMonitor();
    return monitor !== undefined && "mocks" in monitor;
}

/** The options with a dependency that fails with the problems: printed once each, without a stack trace. */
function withRefusal(problems: SiteProblem[], opts: pulumi.CustomResourceOptions | undefined): pulumi.CustomResourceOptions {
    const refusal = Promise.reject(new pulumi.RunError(problems.map(problemLine).join("\n")));
    // Handled where the registration awaits it; this only keeps Node from reporting it early.
    refusal.catch(() => undefined);
    return { ...opts, dependsOn: refusal as Promise<never> };
}
