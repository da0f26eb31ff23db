// KvmGuest, part read: the box's view of the guest (service, owner marker,
// taps) and the live state through QMP.
import { Remote, serviceStateShell } from "../../host";
import { GuestLive, guestQueries, parseGuestReplies } from "../../parsers/qmp";
import { qmpCall } from "../../qmp/client";
import { pathsOf, serviceName, tapName, unitPath } from "./render";
import { GuestAsFound, KvmGuestInputs, KvmGuestState } from "./spec";

// $1 unit file, then the taps: prints "unit=present|absent", "active=<state>" and
// "tap <name> <bridge>" for each tap that exists.
const boxReadScript = [
    serviceStateShell,
    'unit=$1; svc=$2; shift 2',
    'if [ -e "$unit" ]; then echo unit=present; head -n 2 "$unit" | grep "^# pulumi-baremetal guest" || true; else echo unit=absent; fi',
    'echo "active=$(baremetal_service_state "$svc")"',
    'for t in "$@"; do',
    '  [ -e "/sys/class/net/$t" ] || continue',
    '  br=$(ovs-vsctl iface-to-br "$t" 2>/dev/null) || br=$(basename "$(readlink "/sys/class/net/$t/master" 2>/dev/null)" 2>/dev/null)',
    '  echo "tap $t ${br:--}"',
    'done',
].join("\n");

export interface BoxView {
    unitPresent: boolean;
    /** The MAC in the unit's owner marker, when the unit is one of ours. */
    ownerMac?: string;
    active: boolean;
    taps: Map<string, string>;
}

export function parseBoxView(text: string): BoxView {
    const taps = new Map<string, string>();
    let ownerMac: string | undefined;
    for (const line of text.split("\n")) {
        const t = /^tap (\S+) (\S+)$/.exec(line);
        if (t) taps.set(t[1], t[2] === "-" ? "" : t[2]);
        const o = /^# pulumi-baremetal guest mac=(\S+)$/.exec(line);
        if (o) ownerMac = o[1];
    }
    return { unitPresent: /^unit=present$/m.test(text), ownerMac, active: /^active=active$/m.test(text), taps };
}

export async function readBox(host: Remote, g: KvmGuestInputs): Promise<BoxView> {
    const family = (await host.facts()).family;
    const out = await host.run(["sh", "-c", boxReadScript, "baremetal-guest-read", unitPath(g.name, family), serviceName(g.name), ...g.nics.map((n) => tapName(n.mac))], {
        what: `read guest ${g.name}'s service`,
        timeoutMs: 60_000,
    });
    return parseBoxView(out.stdout);
}

/** The state: declared values, overlaid with what the box and QMP say. */
export async function readState(host: Remote, g: KvmGuestInputs, extra: Partial<KvmGuestState> = {}): Promise<KvmGuestState | undefined> {
    const box = await readBox(host, g);
    if (!box.unitPresent) return undefined;
    const p = pathsOf(g.name);
    const replies = await qmpCall(host, p.qmpSocket, [...guestQueries]);
    const state: KvmGuestState = {
        ...g,
        ...extra,
        mac: g.nics[0].mac,
        serviceName: serviceName(g.name),
        qmpSocket: p.qmpSocket,
        consoleLog: p.consoleLog,
        status: "stopped",
        running: false,
        blockDevices: [],
        taps: g.nics.map((n) => ({ mac: n.mac, tap: tapName(n.mac), bridge: box.taps.get(tapName(n.mac)) ?? "" })),
    };
    if (!replies) return state;
    const live = parseGuestReplies(JSON.stringify(replies));
    // Live values replace declared ones, so refresh shows drift and up corrects it.
    state.status = live.status;
    state.running = live.running;
    state.blockDevices = live.blockDevices;
    state.memoryMiB = live.memoryMiB;
    state.vcpus = live.vcpus;
    state.nics = g.nics.map((n) => ({ ...n, bridge: box.taps.get(tapName(n.mac)) || n.bridge }));
    return state;
}

// ---- a guest kept as found (asFound): its own service and QMP socket ---------------

/** What a qemu kept as found says through its QMP socket; undefined when none answers. */
export async function readAsFoundLive(host: Remote, found: GuestAsFound): Promise<GuestLive | undefined> {
    const replies = await qmpCall(host, found.qmpSocket, [...guestQueries]);
    return replies ? parseGuestReplies(JSON.stringify(replies)) : undefined;
}

/**
 * The state of a guest kept as found: declared values overlaid with what its QMP
 * socket and its taps say (the same box read as ours, pointed at its service and
 * taps). A guest whose qemu does not answer is stopped, not gone: its service is
 * someone else's, which may start it again.
 */
export async function readStateAsFound(host: Remote, g: KvmGuestInputs & { asFound: GuestAsFound }, extra: Partial<KvmGuestState> = {}): Promise<KvmGuestState> {
    const found = g.asFound;
    const live = await readAsFoundLive(host, found);
    const taps = (live?.nics ?? []).flatMap((n) => (n.tap ? [n.tap] : []));
    const out = await host.run(["sh", "-c", boxReadScript, "baremetal-guest-read", "", found.service ?? "", ...taps], { what: `read guest ${g.name}'s taps`, timeoutMs: 60_000 });
    const box = parseBoxView(out.stdout);
    const state: KvmGuestState = {
        ...g,
        ...extra,
        mac: g.nics[0].mac,
        serviceName: found.service ?? "",
        qmpSocket: found.qmpSocket,
        consoleLog: "",
        status: "stopped",
        running: false,
        blockDevices: [],
        taps: g.nics.map((n) => ({ mac: n.mac, tap: "", bridge: "" })),
    };
    if (!live) return state;
    state.status = live.status;
    state.running = live.running;
    state.blockDevices = live.blockDevices;
    state.memoryMiB = live.memoryMiB;
    state.vcpus = live.vcpus;
    state.taps = live.nics.map((n) => ({ mac: n.mac, tap: n.tap ?? "", bridge: (n.tap && box.taps.get(n.tap)) || "" }));
    state.nics = g.nics.map((n) => {
        const tap = state.taps.find((x) => x.mac === n.mac);
        return { ...n, bridge: tap?.bridge || n.bridge };
    });
    return state;
}
