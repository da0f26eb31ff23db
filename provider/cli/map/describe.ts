// What the map says about one resource: its title, a few short lines, its health
// and what about it needs attention. One function per kind, reading the outputs as
// last read by `pulumi up`/`refresh` (falling back to the inputs for what the
// outputs do not carry). Field names are the kinds' own state types, so the
// compiler keeps them in step with the field tables.
import type { CephOsdState } from "../../resources/cephOsd";
import type { KvmGuestState } from "../../resources/kvmGuest";
import type { LxcContainerState } from "../../resources/lxcContainer";
import type { MachineState } from "../../resources/machine";
import type { NbdVolumeState } from "../../resources/nbdVolume";
import type { OvsBridgeState } from "../../resources/ovsBridge";
import type { PxeServerState } from "../../resources/pxeServer";
import type { RaidArrayState } from "../../resources/raidArray";
import type { VolumeGroupState } from "../../resources/volumeGroup";
import type { ConsulKeysState } from "../../resources/consulKeys";
import { Redacted, StateResource, StateValue } from "./state";

/** ok: as it should be; warn: working but not fully (resync, OSD out); bad: needs a person; idle: fine and not serving (standby); unknown: not read yet. */
export type Health = "ok" | "warn" | "bad" | "idle" | "unknown";

export interface Problem {
    severity: "bad" | "warn";
    text: string;
}

export interface Description {
    title: string;
    lines: string[];
    health: Health;
    /** A short word for the badge: `clean`, `running`, `up/in` ... */
    state?: string;
    problems: Problem[];
}

/** A field of the resource: the output as last read, else the input (a secret reads as undefined). */
export function field<S>(r: StateResource, key: keyof S & string): StateValue | undefined {
    const out = r.outputs[key];
    if (out !== undefined && !(out instanceof Redacted)) return out;
    const inp = r.inputs[key];
    return inp instanceof Redacted ? undefined : inp;
}

export const str = (v: StateValue | undefined): string | undefined => (typeof v === "string" ? v : undefined);
export const num = (v: StateValue | undefined): number | undefined => (typeof v === "number" ? v : undefined);
export const bool = (v: StateValue | undefined): boolean | undefined => (typeof v === "boolean" ? v : undefined);
export const list = (v: StateValue | undefined): StateValue[] => (Array.isArray(v) ? v : []);
export const obj = (v: StateValue | undefined): Record<string, StateValue> =>
    v !== null && v !== undefined && typeof v === "object" && !Array.isArray(v) && !(v instanceof Redacted) ? v : {};
export const strs = (v: StateValue | undefined): string[] => list(v).filter((x): x is string => typeof x === "string");

/** Bytes as an operator reads them: 40 GiB, 512 MiB. */
export function bytes(n: number | undefined): string | undefined {
    if (n === undefined) return undefined;
    const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let v = n;
    let i = 0;
    while (v >= 1024 && i < units.length - 1) {
        v /= 1024;
        i++;
    }
    return `${v >= 100 || Number.isInteger(v) ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

const short = (dev: string) => dev.replace(/^\/dev\/disk\/by-id\//, "").replace(/^\/dev\//, "");
const compact = (parts: (string | undefined | false)[]) => parts.filter((p): p is string => typeof p === "string" && p !== "").join(" · ");

function machine(r: StateResource): Description {
    const f = (k: keyof MachineState & string) => field<MachineState>(r, k);
    const ipmi = obj(f("ipmi"));
    const facts = obj(f("facts"));
    const booted = str(facts.bootedProfile);
    const profile = str(f("profile"));
    const lines = [
        compact([str(f("role")) && `role ${str(f("role"))}`, profile && `profile ${profile}`]),
        compact([str(f("ip")), str(f("mac"))]),
        str(ipmi.address) ? `BMC ${str(ipmi.address)}${num(ipmi.port) ? `:${num(ipmi.port)}` : ""}` : "no BMC",
    ];
    const problems: Problem[] = [];
    if (booted && profile && booted !== profile) problems.push({ severity: "warn", text: `booted profile ${booted}, declared ${profile}: it needs a power cycle into PXE` });
    return { title: str(f("hostname")) ?? r.name, lines, health: "ok", problems };
}

function pxeServer(r: StateResource): Description {
    const f = (k: keyof PxeServerState & string) => field<PxeServerState>(r, k);
    const role = str(f("dhcpRole"));
    const health: Health = role === "active" ? "ok" : role === "standby" ? "idle" : role === "stopped" ? "bad" : "unknown";
    const problems: Problem[] = role === "stopped" ? [{ severity: "bad", text: "DHCP is not served (dhcpRole stopped); the next pulumi up starts it" }] : [];
    const files = obj(f("files"));
    const missing = Object.entries(files).filter(([, v]) => v === "missing").map(([k]) => k);
    if (missing.length > 0) problems.push({ severity: "warn", text: `${missing.length} generated file(s) missing: ${missing.slice(0, 3).join(", ")}` });
    const profiles = Object.keys(obj(f("profiles")));
    return {
        title: `PXE ${str(f("name")) ?? r.name}`,
        lines: [compact([str(f("baseUrl")), str(f("interface"))]), profiles.length ? `profiles ${profiles.join(", ")}` : "", `${list(f("leases")).length} lease(s)`].filter((l) => l !== ""),
        health,
        state: role ?? "not read",
        problems,
    };
}

function raidArray(r: StateResource): Description {
    const f = (k: keyof RaidArrayState & string) => field<RaidArrayState>(r, k);
    const state = str(f("state"));
    const failed = strs(f("failedMembers"));
    const sync = num(f("syncPercent"));
    const health: Health =
        state === "clean" ? "ok"
        : state === "resyncing" || state === "recovering" || state === "checking" ? "warn"
        : state === "degraded" || state === "inactive" ? "bad"
        : "unknown";
    const problems: Problem[] = [];
    if (state === "degraded" || state === "inactive") problems.push({ severity: "bad", text: `array ${state}${failed.length ? `; failed: ${failed.map(short).join(", ")}` : ""}` });
    else if (failed.length > 0) problems.push({ severity: "bad", text: `failed member(s): ${failed.map(short).join(", ")}` });
    const active = strs(f("activeMembers"));
    const members = active.length ? active : strs(f("members"));
    return {
        title: `${short(str(f("device")) ?? r.name)} ${str(f("level")) ?? ""}`.trim(),
        lines: [compact([bytes(num(f("sizeBytes"))), sync !== undefined && health === "warn" ? `${sync}%` : undefined]), ...members.map(short)],
        health,
        state: state ?? "not read",
        problems,
    };
}

function volumeGroup(r: StateResource): Description {
    const f = (k: keyof VolumeGroupState & string) => field<VolumeGroupState>(r, k);
    const size = num(f("sizeBytes"));
    const free = num(f("freeBytes"));
    return {
        title: `VG ${str(f("name")) ?? r.name}`,
        lines: [compact([bytes(size), free !== undefined ? `${bytes(free)} free` : undefined, num(f("lvCount")) !== undefined ? `${num(f("lvCount"))} LV` : undefined]), `on ${strs(f("devices")).map(short).join(", ")}`],
        health: size === undefined ? "unknown" : "ok",
        problems: [],
    };
}

function nbdVolume(r: StateResource): Description {
    const f = (k: keyof NbdVolumeState & string) => field<NbdVolumeState>(r, k);
    const serving = bool(f("serving"));
    const registered = bool(f("registered"));
    const problems: Problem[] = [];
    if (serving === false) problems.push({ severity: "bad", text: "nbd-server is not serving this export" });
    if (registered === false && f("consul") !== undefined) problems.push({ severity: "warn", text: "not registered in Consul: its owner cannot find it" });
    return {
        title: `NBD ${str(f("exportName")) ?? str(f("name")) ?? r.name}`,
        lines: [
            compact([bytes(num(f("sizeBytes")) ?? num(f("requestedBytes"))), bool(f("readOnly")) ? "read-only" : undefined]),
            `${str(f("exportAddress")) ?? "?"}:${num(f("port")) ?? "?"}`,
            `owner ${str(f("owner")) ?? "?"}`,
        ],
        health: serving === undefined ? "unknown" : problems.some((p) => p.severity === "bad") ? "bad" : problems.length ? "warn" : "ok",
        state: serving === undefined ? "not read" : serving ? "serving" : "not serving",
        problems,
    };
}

function cephOsd(r: StateResource): Description {
    const f = (k: keyof CephOsdState & string) => field<CephOsdState>(r, k);
    const up = bool(f("up"));
    const isIn = bool(f("in"));
    const id = num(f("osdId"));
    const problems: Problem[] = [];
    if (up === false) problems.push({ severity: "bad", text: `osd.${id ?? "?"} is down` });
    if (isIn === false) problems.push({ severity: "warn", text: `osd.${id ?? "?"} is out (holds no data)` });
    const weight = num(f("crushWeight"));
    return {
        title: `osd.${id ?? "?"}`,
        lines: [compact([str(f("deviceClass")), weight !== undefined ? `weight ${Number(weight.toFixed(4))}` : undefined]), short(str(f("device")) ?? "")],
        health: up === undefined ? "unknown" : up === false ? "bad" : isIn === false ? "warn" : "ok",
        state: up === undefined ? "not read" : `${up ? "up" : "down"}/${isIn ? "in" : "out"}`,
        problems,
    };
}

function ovsBridge(r: StateResource): Description {
    const f = (k: keyof OvsBridgeState & string) => field<OvsBridgeState>(r, k);
    const tunnels = obj(f("tunnelStates"));
    const broken = Object.entries(tunnels).filter(([, s]) => s !== "active");
    const problems: Problem[] = broken.map(([t, s]) => ({ severity: "bad" as const, text: `OpenVPN tunnel ${t} is ${String(s)}` }));
    const uplink = str(f("uplink"));
    return {
        title: `${str(f("name")) ?? r.name}`,
        lines: [
            compact([str(f("network")) && `${str(f("network"))}`, uplink ? `uplink ${uplink}` : Object.keys(tunnels).length ? "OpenVPN" : "no uplink"]),
            ...strs(f("addresses")).slice(0, 2),
            ...Object.keys(tunnels).length ? [`tunnels ${Object.keys(tunnels).join(", ")}`] : [],
        ],
        health: f("ports") === undefined ? "unknown" : problems.length ? "bad" : "ok",
        problems,
    };
}

function kvmGuest(r: StateResource): Description {
    const f = (k: keyof KvmGuestState & string) => field<KvmGuestState>(r, k);
    const status = str(f("status"));
    const running = bool(f("running"));
    const moving = status === "inmigrate" || status === "postmigrate";
    const health: Health = running === undefined && status === undefined ? "unknown" : running || moving ? "ok" : status === "paused" ? "warn" : "bad";
    const problems: Problem[] = health === "bad" ? [{ severity: "bad", text: `guest is ${status ?? "not running"}` }] : health === "warn" ? [{ severity: "warn", text: `guest is ${status}` }] : [];
    return {
        title: str(f("name")) ?? r.name,
        lines: [compact([num(f("memoryMiB")) !== undefined ? `${num(f("memoryMiB"))} MiB` : undefined, num(f("vcpus")) !== undefined ? `${num(f("vcpus"))} vCPU` : undefined, str(f("boot")) && `boot ${str(f("boot"))}`]), str(f("mac")) ?? str(obj(list(f("nics"))[0]).mac) ?? ""],
        health,
        state: status ?? (running === undefined ? "not read" : running ? "running" : "stopped"),
        problems,
    };
}

function lxcContainer(r: StateResource): Description {
    const f = (k: keyof LxcContainerState & string) => field<LxcContainerState>(r, k);
    const state = str(f("state"));
    const health: Health = state === undefined ? "unknown" : state === "RUNNING" ? "ok" : state === "FROZEN" ? "warn" : "bad";
    const declared = list(f("network")).map((n) => str(obj(n).ipv4)).filter((a): a is string => a !== undefined);
    const addresses = strs(f("addresses"));
    return {
        title: str(f("name")) ?? r.name,
        lines: [(addresses.length ? addresses : declared).join(" ") || "no address"],
        health,
        state: state?.toLowerCase() ?? "not read",
        problems: health === "bad" ? [{ severity: "bad", text: `container is ${state?.toLowerCase()}` }] : health === "warn" ? [{ severity: "warn", text: `container is ${state?.toLowerCase()}` }] : [],
    };
}

function consulKeys(r: StateResource): Description {
    const f = (k: keyof ConsulKeysState & string) => field<ConsulKeysState>(r, k);
    const keys = Object.keys(obj(f("keys"))).length + Object.keys(obj(r.inputs.secrets)).length;
    return { title: str(f("prefix")) ?? r.name, lines: [`${keys} key(s)`], health: "ok", problems: [] };
}

const byKind: Record<string, (r: StateResource) => Description> = {
    Machine: machine,
    PxeServer: pxeServer,
    RaidArray: raidArray,
    VolumeGroup: volumeGroup,
    NbdVolume: nbdVolume,
    CephOsd: cephOsd,
    OvsBridge: ovsBridge,
    KvmGuest: kvmGuest,
    LxcContainer: lxcContainer,
    ConsulKeys: consulKeys,
};

/** The description of any resource; one of a kind this version does not know shows its name and type. */
export function describeResource(r: StateResource): Description {
    const d = (r.kind && byKind[r.kind]?.(r)) || { title: r.name, lines: [r.type], health: "unknown" as Health, problems: [] };
    // A create/update that failed half-way, or an operation the engine never saw finish.
    for (const e of r.initErrors) d.problems.push({ severity: "bad", text: `last operation failed: ${e.split("\n")[0].slice(0, 200)}` });
    if (r.pending) d.problems.push({ severity: "bad", text: `interrupted while ${r.pending}: run pulumi refresh` });
    if (r.initErrors.length || r.pending) d.health = "bad";
    d.lines = d.lines.filter((l) => l !== "");
    return d;
}
