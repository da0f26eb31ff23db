// OvsBridge: an Open vSwitch bridge on a box that replicates one of the physical
// switches (LAN, WAN, STORAGE) for the box's guests. It is uplinked by a NIC on
// that switch or, on a box with no NIC there, by OpenVPN tunnels (tap, static
// key) to a box that has one: each tunnel is a tap port on the bridge and an
// openvpn service; the side with `remote` dials, the other listens.
//
// ID: `NAME@HOST`. Delete moves addresses back to the uplink NIC, stops the
// tunnels and removes the bridge (guests still on it lose their link: delete
// them first, which Pulumi does when they depend on the bridge).
import { RefusedError } from "../core/errors";
import { CheckOutcome, DiffOutcome, OperationContext, ResourceKind } from "../core/resource";
import { checkByTable, diffByTable, erase, KindSpec, ObjectType, t } from "../core/fields";
import { isUnknown, Validator } from "../core/validate";
import { sameValue } from "../core/values";
import { connectionField, HostConnection, initSystemOf, ovsServiceOf, Plan, Remote, Secret, serviceFilePath, serviceStateShell, step } from "../host";
import type { OsFamily, ServiceSpec } from "../host";

export interface OvsTunnel {
    name: string;
    port: number;
    remote?: string;
    remotePort?: number;
    key: string;
}

export interface OvsBridgeInputs {
    connection: HostConnection;
    name: string;
    network?: string;
    uplink?: string;
    moveAddresses: boolean;
    tunnels: OvsTunnel[];
    adopt: boolean;
}

export interface OvsBridgeState extends OvsBridgeInputs {
    ports: string[];
    addresses: string[];
    movedAddresses: string[];
    tunnelStates: Record<string, string>;
}

const staticKeyPattern = /^-----BEGIN OpenVPN Static key V1-----\r?\n([0-9a-f]{32}\r?\n){16}-----END OpenVPN Static key V1-----\s*$/;

const tunnelType: ObjectType = {
    name: "OvsTunnel",
    doc: "An OpenVPN tunnel (tap, static key) that is a port of the bridge: the side with `remote` dials, the other listens.",
    fields: {
        name: {
            type: t.string(),
            required: true,
            doc: "The tap's name on this box (at most 15 characters), e.g. `vpn-storage`; the openvpn service is `baremetal-ovpn-<name>`.",
            check: (v, f, x) => v.interfaceName(f, x),
        },
        port: { type: t.integer, default: 1194, doc: "UDP port openvpn listens on here.", rule: { min: 1, max: 65535 } },
        key: { type: t.string(), required: true, secret: true, doc: "An OpenVPN static key (`openvpn --genkey secret FILE`); never logged.", check: checkStaticKey },
        remote: { type: t.string(), doc: "The box to dial; omit it on the side that listens.", check: (v, f, x) => v.host(f, x) },
        remotePort: { type: t.integer, doc: "UDP port of the remote side; `port` when omitted.", rule: { min: 1, max: 65535 } },
    },
};

export const spec: KindSpec<OvsBridgeInputs, OvsBridgeState> = {
    kind: "OvsBridge",
    doc: "An Open vSwitch bridge on a box that replicates one of the physical switches (LAN, WAN, STORAGE) for the box's guests. It is uplinked by a NIC on that switch or, on a box with no NIC there, by OpenVPN tunnels (tap, static key) to a box that has one: each tunnel is a tap port on the bridge and an openvpn service. Delete moves moved addresses back to the uplink NIC, stops the tunnels and removes the bridge (guests still on it lose their link: delete them first, which Pulumi does when they depend on the bridge).",
    id: "`NAME@HOST`, e.g. `br-storage@198.51.100.12`.",
    example: `new OvsBridge("svc1-storage", {
    connection,
    name: "br-storage",
    network: "storage",
    tunnels: [{ name: "vpn-storage", remote: "198.51.100.11", key: staticKey }],
});`,
    exampleHost: "198.51.100.12",
    exampleSecrets: { staticKey: "openvpnStaticKey" },
    deleteBeforeReplace: true,
    inputs: {
        connection: connectionField("The box that carries the bridge."),
        name: { type: t.string(), required: true, change: "replace", doc: "Bridge name (at most 15 characters).", check: (v, f, x) => v.interfaceName(f, x) },
        network: {
            type: t.string(),
            doc: "Which physical switch it replicates (lan, wan, storage ...), recorded on the bridge.",
            rule: { maxLength: 32, pattern: /^[a-z0-9][a-z0-9_-]*$/, patternHint: "must be a lower-case label like lan, wan or storage" },
        },
        uplink: { type: t.string(), doc: "A NIC of the box on that switch, added as a port.", check: (v, f, x) => v.interfaceName(f, x) },
        moveAddresses: {
            type: t.boolean,
            default: false,
            doc: "Move the uplink NIC's IPv4 addresses and routes onto the bridge (delete moves them back). Without it, an uplink that carries addresses is refused: enslaving it would cut the box off that network.",
        },
        tunnels: {
            type: t.array(t.object(tunnelType)),
            default: [],
            secret: true,
            doc: "OpenVPN tunnels (at most 16) to or from boxes with a NIC on that switch. Secret as a whole: they carry the static keys.",
            rule: { maxItems: 16 },
        },
        adopt: { type: t.boolean, default: false, doc: "Take over an existing bridge of the same name." },
    },
    outputs: {
        ports: { type: t.array(t.string()), required: true, doc: "Ports on the bridge as last read (uplink, tunnel taps, guests' taps, containers' veths)." },
        addresses: { type: t.array(t.string()), required: true, doc: "IPv4 addresses (CIDR) on the bridge's own interface as last read." },
        movedAddresses: { type: t.array(t.string()), required: true, doc: "Addresses moved from the uplink NIC at create: delete puts them back." },
        tunnelStates: { type: t.map(t.string()), required: true, doc: "Tunnel name to the state of its openvpn service (active, inactive, failed ...)." },
    },
};

/** The key is never echoed back in a message, even in part. */
function checkStaticKey(v: Validator, field: string, value: unknown): string | undefined {
    if (typeof value !== "string" || value === "") return v.fail(field, "is required: an OpenVPN static key (openvpn --genkey secret FILE)");
    if (!staticKeyPattern.test(value)) return v.fail(field, "is not an OpenVPN static key (BEGIN/END OpenVPN Static key V1 around 16 lines of 32 hex digits)");
    return value;
}

/** The known values of one field of each tunnel (preview leaves some unknown). */
function knownOf<K extends keyof OvsTunnel>(tunnels: OvsTunnel[], key: K): OvsTunnel[K][] {
    return tunnels.flatMap((x) => (typeof x === "object" && x[key] !== undefined && !isUnknown(x[key]) ? [x[key]] : []));
}

export function check(_olds: Record<string, unknown>, news: Record<string, unknown>): CheckOutcome<OvsBridgeInputs> {
    const v = new Validator();
    const inputs = checkByTable(v, erase(spec), news) as Partial<OvsBridgeInputs>;
    const { name, uplink, tunnels } = inputs;
    if (Array.isArray(tunnels)) {
        const names = knownOf(tunnels, "name");
        if (new Set(names).size !== names.length) v.fail("tunnels", "two tunnels have the same name");
        if (uplink !== undefined && names.includes(uplink)) v.fail("uplink", "is also the name of a tunnel");
        const ports = knownOf(tunnels, "port");
        if (new Set(ports).size !== ports.length) v.fail("tunnels", "two tunnels listen on the same port");
    }
    if (name !== undefined && !isUnknown(name) && name === uplink) v.fail("uplink", "must not be the bridge itself");
    if (!v.ok) return { failures: v.failures };
    return { inputs: inputs as OvsBridgeInputs, failures: [] };
}

export function diff(_id: string, olds: OvsBridgeState, news: OvsBridgeInputs): DiffOutcome {
    const d = diffByTable(erase(spec), olds as unknown as Record<string, unknown>, news as unknown as Record<string, unknown>);
    // Repairs an update makes although no input changed: a tunnel found down, the uplink found off the bridge.
    const tunnelDown = Object.values(olds.tunnelStates ?? {}).some((s) => s !== "active");
    const uplinkMissing = olds.uplink !== undefined && olds.ports !== undefined && !olds.ports.includes(olds.uplink);
    return { changes: d.changed.length > 0 || d.replaces.length > 0 || tunnelDown || uplinkMissing, replaces: d.replaces, stables: d.stables, deleteBeforeReplace: true };
}

// ---- what runs on the box ----------------------------------------------------------------

const ovsPackage: Record<OsFamily, string> = { debian: "openvswitch-switch", "debian-openrc": "openvswitch-switch", alpine: "openvswitch" };
/** ovs-vsctl waits this long for ovsdb (it may just have started) instead of forever. */
const vsctl = ["ovs-vsctl", "--timeout=30"];

export function tunnelService(t: Pick<OvsTunnel, "name">): string {
    return `baremetal-ovpn-${t.name}`;
}

export function tunnelKeyPath(t: Pick<OvsTunnel, "name">): string {
    return `/etc/baremetal/openvpn/${t.name}.key`;
}

export function tunnelUnitPath(t: Pick<OvsTunnel, "name">, family: OsFamily): string {
    return serviceFilePath({ name: tunnelService(t) }, family);
}

/**
 * openvpn in point-to-point static-key mode on a tap that is a port of the
 * bridge. Static keys are what the seed uses; OpenVPN 2.6 still runs them and
 * warns that 2.7 drops them (then a TLS setup replaces this).
 */
export function openvpnArgs(t: OvsTunnel): string[] {
    return [
        "--dev", t.name, "--dev-type", "tap",
        "--secret", tunnelKeyPath(t),
        "--cipher", "AES-256-CBC", "--auth", "SHA256",
        "--lport", String(t.port),
        ...(t.remote ? ["--remote", t.remote, String(t.remotePort ?? t.port)] : ["--float"]),
        "--keepalive", "10", "60",
        "--verb", "3",
    ];
}

/** The tunnel's tap, created before openvpn opens it, and put on the bridge. */
function tapUp(bridge: string, t: OvsTunnel): string[][] {
    return [
        ["ip", "tuntap", "add", "dev", t.name, "mode", "tap"],
        ["ip", "link", "set", t.name, "up"],
        [...vsctl, "--may-exist", "add-port", bridge, t.name],
    ];
}

/** The tunnel's openvpn as a service of the box's init system. */
export function tunnelServiceSpec(bridge: string, t: OvsTunnel, family: OsFamily): ServiceSpec {
    return {
        name: tunnelService(t),
        description: `OpenVPN tunnel ${t.name} for OVS bridge ${bridge} (pulumi-baremetal)`,
        comments: [`OpenVPN tunnel ${t.name} of OVS bridge ${bridge}, written by pulumi-baremetal.`],
        command: [initSystemOf(family) === "openrc" ? "/usr/sbin/openvpn" : "openvpn", ...openvpnArgs(t)],
        type: "simple",
        preStart: [{ argv: ["ip", "link", "del", t.name], mayFail: true }, ...tapUp(bridge, t).map((argv) => ({ argv }))],
        postStop: [[...vsctl, "--if-exists", "del-port", bridge, t.name], ["ip", "link", "del", t.name]],
        restart: { when: "always", delaySeconds: 5 },
        // After Open vSwitch as each init system had it: ordering on systemd, `need` on OpenRC.
        ...(initSystemOf(family) === "openrc" ? { needs: [ovsServiceOf(family)] } : { after: [ovsServiceOf(family)] }),
    };
}

// Moves the IPv4 addresses and non-kernel routes of NIC $2 to bridge $1 in one
// command, so an SSH session over that NIC survives. Prints "moved CIDR" lines.
const moveScript = [
    "set -eu",
    'br=$1 nic=$2',
    'addrs=$(ip -4 -o addr show dev "$nic" | awk \'{print $4}\')',
    'routes=$(ip -4 route show dev "$nic" | grep -v "proto kernel" || true)',
    `[ -n "$addrs" ] || { echo =baremetal-unchanged=; exit 0; }`,
    'ip link set "$br" up',
    'for a in $addrs; do ip addr del "$a" dev "$nic"; ip addr add "$a" dev "$br"; echo "moved $a"; done',
    'printf "%s\\n" "$routes" | while read -r r; do [ -z "$r" ] || ip route replace $r dev "$br"; done',
].join("\n");

// Puts addresses $3... back from bridge $1 onto NIC $2 (delete).
const restoreScript = [
    'br=$1 nic=$2; shift 2',
    'routes=$(ip -4 route show dev "$br" | grep -v "proto kernel" || true)',
    'for a in "$@"; do ip addr del "$a" dev "$br" 2>/dev/null; ip addr add "$a" dev "$nic" 2>/dev/null || true; done',
    'printf "%s\\n" "$routes" | while read -r r; do [ -z "$r" ] || ip route replace $r dev "$nic" 2>/dev/null || true; done',
    "exit 0",
].join("\n");

/** Open vSwitch installed, started at boot and running (and OpenVPN, for tunnels). */
export function planOvsRunning(b: Pick<OvsBridgeInputs, "tunnels">, family: OsFamily): Plan {
    return [
        step.ensurePackages(ovsPackage[family], ...(b.tunnels.length > 0 ? ["openvpn"] : [])),
        step.service("enable", ovsServiceOf(family)),
        step.service("start", ovsServiceOf(family)),
    ];
}

/** Open vSwitch running, the bridge, its label and its interface up. */
export function planBridge(b: OvsBridgeInputs, family: OsFamily): Plan {
    return [
        ...planOvsRunning(b, family),
        step.run([...vsctl, "--may-exist", "add-br", b.name, "--", "set", "bridge", b.name, `external_ids:baremetal-network=${b.network ?? ""}`], { what: `ensure OVS bridge ${b.name}${b.network ? ` (${b.network})` : ""}` }),
        step.run(["ip", "link", "set", b.name, "up"], { what: `bring ${b.name} up` }),
    ];
}

/** The uplink NIC as a port; its addresses move first when asked to. */
export function planUplink(b: OvsBridgeInputs): Plan {
    if (!b.uplink) return [];
    return [
        step.run([...vsctl, "--may-exist", "add-port", b.name, b.uplink], { what: `add uplink ${b.uplink} to ${b.name}` }),
        ...(b.moveAddresses ? [step.run(["sh", "-c", moveScript, "baremetal-ovs-move", b.name, b.uplink], { what: `move ${b.uplink}'s IPv4 addresses to ${b.name}` })] : []),
    ];
}

export function planTunnel(b: OvsBridgeInputs, t: OvsTunnel, family: OsFamily): Plan {
    return [
        step.writeFile(tunnelKeyPath(t), new Secret(t.key), { mode: "0600" }),
        step.installService(tunnelServiceSpec(b.name, t, family)),
        step.service("enable", tunnelService(t)),
        // restart, not start: a changed key or peer must take effect.
        step.service("restart", tunnelService(t)),
    ];
}

export function planTunnelRemove(b: Pick<OvsBridgeInputs, "name">, t: Pick<OvsTunnel, "name">): Plan {
    return [
        step.uninstallService({ name: tunnelService(t) }),
        step.removeFile(tunnelKeyPath(t)),
        step.run([...vsctl, "--if-exists", "del-port", b.name, t.name], { what: `remove port ${t.name} from ${b.name}` }),
    ];
}

export function planCreate(b: OvsBridgeInputs, family: OsFamily): Plan {
    return [...planBridge(b, family), ...planUplink(b), ...b.tunnels.flatMap((t) => planTunnel(b, t, family)), step.persist()];
}

export function planDelete(s: OvsBridgeState): Plan {
    return [
        ...s.tunnels.flatMap((t) => planTunnelRemove(s, t)),
        ...(s.uplink && s.movedAddresses.length > 0
            ? [step.run(["sh", "-c", restoreScript, "baremetal-ovs-restore", s.name, s.uplink, ...s.movedAddresses], { what: `move ${s.movedAddresses.join(", ")} back to ${s.uplink}` })]
            : []),
        step.run([...vsctl, "--if-exists", "del-br", s.name], { what: `remove OVS bridge ${s.name}` }),
        step.persist(),
    ];
}

/** In-place changes: label, uplink, tunnels added, changed or removed. */
export function planUpdate(olds: OvsBridgeState, news: OvsBridgeInputs, family: OsFamily): Plan {
    const plan: Plan[number][] = [...planBridge(news, family)];
    if (olds.uplink && olds.uplink !== news.uplink) {
        if (olds.movedAddresses.length > 0) plan.push(step.run(["sh", "-c", restoreScript, "baremetal-ovs-restore", olds.name, olds.uplink, ...olds.movedAddresses], { what: `move ${olds.movedAddresses.join(", ")} back to ${olds.uplink}` }));
        plan.push(step.run([...vsctl, "--if-exists", "del-port", olds.name, olds.uplink], { what: `remove old uplink ${olds.uplink}` }));
    }
    plan.push(...planUplink(news));
    const kept = new Set(news.tunnels.map((t) => t.name));
    for (const t of olds.tunnels) if (!kept.has(t.name)) plan.push(...planTunnelRemove(olds, t));
    for (const t of news.tunnels) {
        const before = olds.tunnels.find((o) => o.name === t.name);
        const healthy = olds.tunnelStates?.[t.name] === "active";
        // By value, not by JSON text: a tunnel read back from a state with its keys in another order is the same tunnel.
        if (!before || !sameValue(before, t) || !healthy) plan.push(...planTunnel(news, t, family));
    }
    plan.push(step.persist());
    return plan;
}

// ---- reading --------------------------------------------------------------------------------

// $1 bridge, then tunnel service names. Exit 3 when the bridge does not exist (br-exists
// says 2), 127 when Open vSwitch is not installed, 5 when ovsdb-server is not running (no
// one at its socket), 4 when it did not answer: a timeout (SIGALRM, 142) is not an absent
// bridge. Taken for one, a refresh would drop a live bridge from the state and a delete
// would skip it: CI saw a bridge left on a loaded box by a destroy that said it was done.
export const bridgeReadScript = [
    serviceStateShell,
    'br=$1; shift',
    // 142: killed by its own --timeout (SIGALRM), which also prints a fatal_signal log line
    'ovsdb_failed() { if [ "$2" = 142 ]; then why="no answer in 30 s"; else why="exit $2${3:+: $3}"; fi',
    '  echo "Open vSwitch did not answer \\`ovs-vsctl $1 $br\\` ($why): is ovsdb-server stuck or the box overloaded? Check \\`ovs-vsctl show\\` there and re-run." >&2; exit 4; }',
    'command -v ovs-vsctl >/dev/null 2>&1 || exit 127',
    'rc=0; err=$(ovs-vsctl --timeout=30 br-exists "$br" 2>&1) || rc=$?',
    'case $rc in',
    '  0) ;;',
    '  2) exit 3 ;;',
    '  *) case $err in *"database connection failed"*) echo "$err" >&2; exit 5 ;; esac; ovsdb_failed br-exists "$rc" "$err" ;;',
    'esac',
    'network=$(ovs-vsctl --timeout=30 br-get-external-id "$br" baremetal-network) || ovsdb_failed br-get-external-id "$?"',
    'ports=$(ovs-vsctl --timeout=30 list-ports "$br") || ovsdb_failed list-ports "$?"',
    'echo "network=$network"',
    'for p in $ports; do echo "port $p"; done',
    'for a in $(ip -4 -o addr show dev "$br" 2>/dev/null | awk \'{print $4}\'); do echo "addr $a"; done',
    'for s in "$@"; do echo "tunnel $s $(baremetal_service_state "$s")"; done',
].join("\n");

export interface BridgeView {
    network: string;
    ports: string[];
    addresses: string[];
    /** By service name. */
    services: Record<string, string>;
}

export function parseBridgeView(text: string): BridgeView {
    const view: BridgeView = { network: "", ports: [], addresses: [], services: {} };
    for (const line of text.split("\n")) {
        const [word, a, b] = line.trim().split(/\s+/);
        if (word?.startsWith("network=")) view.network = word.slice("network=".length);
        else if (word === "port" && a) view.ports.push(a);
        else if (word === "addr" && a) view.addresses.push(a);
        else if (word === "tunnel" && a) view.services[a] = b ?? "unknown";
    }
    return view;
}

/** What a look at the bridge found; `ovsdbStopped`: ovsdb-server is not running, so no bridge can be seen or changed. */
type BridgeLook = { kind: "present"; view: BridgeView } | { kind: "absent" } | { kind: "ovsdbStopped"; stderr: string };

async function lookForBridge(host: Remote, b: OvsBridgeInputs): Promise<BridgeLook> {
    const out = await host.run(["sh", "-c", bridgeReadScript, "baremetal-ovs-read", b.name, ...b.tunnels.map(tunnelService)], {
        okExitCodes: [0, 3, 5, 127],
        what: `read OVS bridge ${b.name}`,
        // three ovs-vsctl calls of up to 30 s each on a loaded box, then the tunnels' states
        timeoutMs: 150_000,
    });
    if (out.exitCode === 0) return { kind: "present", view: parseBridgeView(out.stdout) };
    if (out.exitCode === 5) return { kind: "ovsdbStopped", stderr: out.stderr.trim() };
    return { kind: "absent" };
}

/**
 * The bridge as it is, undefined when it does not exist (or Open vSwitch is not installed). A stopped
 * ovsdb-server is an error, not an absence: the bridge is still in its database and comes back with it.
 */
async function readBridge(host: Remote, b: OvsBridgeInputs): Promise<BridgeView | undefined> {
    const look = await lookForBridge(host, b);
    if (look.kind === "ovsdbStopped") throw ovsdbStoppedError(host, b, look.stderr);
    return look.kind === "present" ? look.view : undefined;
}

function ovsdbStoppedError(host: Remote, b: OvsBridgeInputs, stderr: string): Error {
    return new Error(
        `cannot read OVS bridge ${b.name} on ${host.target}: Open vSwitch's database server is not running there (${stderr || "ovs-vsctl: database connection failed"}). ` +
            "Its bridges are still in its database and come back when it starts: start Open vSwitch on that box (systemctl start openvswitch-switch, or rc-service ovsdb-server start) and re-run.",
    );
}

/**
 * Looks for the bridge, running `start` first when Open vSwitch's database server is stopped (create and
 * delete need it running), so that an existing bridge is never mistaken for none.
 */
async function lookWithOvsRunning(host: Remote, b: OvsBridgeInputs, start: Plan): Promise<BridgeView | undefined> {
    const look = await lookForBridge(host, b);
    if (look.kind !== "ovsdbStopped") return look.kind === "present" ? look.view : undefined;
    await host.apply(start);
    return readBridge(host, b);
}

function stateOf(b: OvsBridgeInputs, view: BridgeView, movedAddresses: string[]): OvsBridgeState {
    const state: OvsBridgeState = {
        ...b,
        ports: view.ports,
        addresses: view.addresses,
        movedAddresses,
        tunnelStates: Object.fromEntries(b.tunnels.map((t) => [t.name, view.services[tunnelService(t)] ?? "unknown"])),
    };
    if (view.network !== "") state.network = view.network;
    return state;
}

function hostFor(b: OvsBridgeInputs, ctx: OperationContext): Remote {
    // Static keys arrive as plain strings: the host layer scrubs them from every record and error.
    return ctx.remote(b.connection, { secrets: b.tunnels.map((t) => t.key) });
}

function movedFrom(stdout: string[]): string[] {
    return stdout.flatMap((s) => s.split("\n")).filter((l) => l.startsWith("moved ")).map((l) => l.slice("moved ".length));
}

async function create(inputs: OvsBridgeInputs, ctx: OperationContext): Promise<{ id: string; outs: OvsBridgeState }> {
    const host = hostFor(inputs, ctx);
    const family = (await host.facts()).family;
    const existing = await lookWithOvsRunning(host, inputs, planOvsRunning(inputs, family));
    if (existing && !inputs.adopt && existing.network !== (inputs.network ?? "")) {
        throw new RefusedError(
            `OVS bridge ${inputs.name} already exists on ${host.target}${existing.network ? ` for network ${existing.network}` : ""} with ports ${existing.ports.join(", ") || "(none)"}`,
            "Set adopt: true on this OvsBridge to take it over, or choose another name.",
        );
    }
    if (existing) ctx.log.info(`${inputs.name}: adopting the existing bridge on ${host.target}`);
    if (inputs.uplink && !inputs.moveAddresses) await assertUplinkBare(host, inputs.uplink);
    const result = await host.apply(planCreate(inputs, family));
    const view = await readBridge(host, inputs);
    if (!view) throw new Error(`OVS bridge ${inputs.name} was created on ${host.target} but cannot be read back`);
    // An adopted bridge may already carry the uplink's addresses (moved by an earlier run): delete gives those back too.
    // Taken from the read after the plan, not the first look: a move cut off mid-way may still have been moving
    // addresses after that look (the move takes no lock), and one it moved then would never be given back.
    const adopted = existing && inputs.uplink && inputs.moveAddresses ? view.addresses : [];
    const moved = [...new Set([...adopted, ...movedFrom(result.steps.flatMap((s) => s.commands.map((c) => c.stdout)))])];
    return { id: `${inputs.name}@${inputs.connection.host}`, outs: stateOf(inputs, view, moved) };
}

/** Refuses an uplink that carries IPv4 addresses unless moveAddresses is set. */
async function assertUplinkBare(host: Remote, nic: string): Promise<void> {
    const out = await host.run(["ip", "-4", "-o", "addr", "show", "dev", nic], { okExitCodes: [0, 1], what: `read ${nic}'s addresses` });
    if (out.exitCode !== 0) throw new RefusedError(`the uplink ${nic} does not exist on ${host.target}`, "Check `ip link` on that box and fix uplink.");
    const addrs = out.stdout.split("\n").map((l) => l.trim().split(/\s+/)[3]).filter(Boolean);
    if (addrs.length > 0) {
        throw new RefusedError(
            `the uplink ${nic} on ${host.target} carries ${addrs.join(", ")}; as a bridge port it would lose them and cut the box off that network`,
            "Set moveAddresses: true to move them onto the bridge, or choose a NIC without addresses.",
        );
    }
}

async function read(_id: string, props: OvsBridgeState, ctx: OperationContext): Promise<OvsBridgeState | undefined> {
    const view = await readBridge(hostFor(props, ctx), props);
    return view ? stateOf(props, view, props.movedAddresses ?? []) : undefined;
}

async function update(_id: string, olds: OvsBridgeState, news: OvsBridgeInputs, ctx: OperationContext): Promise<OvsBridgeState> {
    const host = ctx.remote(news.connection, { secrets: [...news.tunnels, ...olds.tunnels].map((t) => t.key) });
    const family = (await host.facts()).family;
    if (news.uplink && news.uplink !== olds.uplink && !news.moveAddresses) await assertUplinkBare(host, news.uplink);
    const result = await host.apply(planUpdate(olds, news, family));
    const movedNow = movedFrom(result.steps.flatMap((s) => s.commands.map((c) => c.stdout)));
    const moved = news.uplink === olds.uplink ? [...new Set([...(olds.movedAddresses ?? []), ...movedNow])] : movedNow;
    const view = await readBridge(host, news);
    if (!view) throw new Error(`OVS bridge ${news.name} disappeared from ${host.target} during the update`);
    return stateOf(news, view, moved);
}

async function remove(_id: string, props: OvsBridgeState, ctx: OperationContext): Promise<void> {
    const host = hostFor(props, ctx);
    // A bridge of a stopped Open vSwitch would come back when it starts: start it (only) to remove the bridge.
    const view = await lookWithOvsRunning(host, props, [step.service("start", ovsServiceOf((await host.facts()).family))]);
    if (!view) {
        // No bridge (or no Open vSwitch installed): only the tunnels' services and keys are left to remove.
        ctx.log.info(`${props.name}: the bridge is already gone from ${host.target}`);
        const plan = props.tunnels.flatMap((t) => planTunnelRemove(props, t)).filter((s) => !(s.kind === "run" && s.argv[0] === "ovs-vsctl"));
        if (plan.length > 0) await host.apply(plan);
        return;
    }
    const foreign = view.ports.filter((p) => p !== props.uplink && !props.tunnels.some((t) => t.name === p));
    if (foreign.length > 0) ctx.log.warn(`${props.name}: removing the bridge detaches ${foreign.join(", ")}`);
    // What is on the bridge now goes back too: an adopted bridge may carry addresses moved by an earlier run.
    const live = props.uplink && props.moveAddresses ? view.addresses : [];
    const movedAddresses = [...new Set([...(props.movedAddresses ?? []), ...live])];
    await host.apply(planDelete({ ...props, movedAddresses }));
}

export const ovsBridge: ResourceKind<OvsBridgeInputs, OvsBridgeState> = { spec, check, diff, create, read, update, delete: remove };
