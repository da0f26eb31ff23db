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
import { changedFields, CheckOutcome, DiffOutcome, OperationContext, ResourceKind } from "../core/resource";
import { isUnknown, Validator } from "../core/validate";
import { checkHostConnection, HostConnection, Plan, Remote, Secret, step } from "../host";
import type { OsFamily } from "../host";

export interface OvsTunnel {
    /** The tap's name on this box (at most 15 characters), e.g. `vpn-storage`. */
    name: string;
    /** UDP port openvpn listens on here. */
    port: number;
    /** The box to dial; omitted on the side that listens. */
    remote?: string;
    /** UDP port of the remote side; `port` when omitted. */
    remotePort?: number;
    /** An OpenVPN static key (`openvpn --genkey secret`); a secret, never logged. */
    key: string;
}

export interface OvsBridgeInputs {
    connection: HostConnection;
    /** Bridge name (at most 15 characters). */
    name: string;
    /** Which physical switch it replicates (lan, wan, storage ...), recorded on the bridge. */
    network?: string;
    /** A NIC of the box on that switch, added as a port. */
    uplink?: string;
    /**
     * Move the uplink NIC's IPv4 addresses (and its routes) onto the bridge.
     * Without it, an uplink that carries addresses is refused: enslaving it
     * would cut the box off that network.
     */
    moveAddresses: boolean;
    tunnels: OvsTunnel[];
    /** Take over an existing bridge of the same name. */
    adopt: boolean;
}

export interface OvsBridgeState extends OvsBridgeInputs {
    /** Ports on the bridge as last read (uplink, tunnel taps, guests' taps, containers' veths). */
    ports: string[];
    /** IPv4 addresses (CIDR) on the bridge's own interface as last read. */
    addresses: string[];
    /** Addresses moved from the uplink NIC at create: delete puts them back. */
    movedAddresses: string[];
    /** Tunnel name to its service state (active, inactive, failed ...). */
    tunnelStates: Record<string, string>;
}

const ifnamePattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;
const ifnameHint = "is not an interface name (at most 15 characters: letters, digits, _ . -)";
const staticKeyPattern = /^-----BEGIN OpenVPN Static key V1-----\r?\n([0-9a-f]{32}\r?\n){16}-----END OpenVPN Static key V1-----\s*$/;

function checkTunnel(v: Validator, field: string, raw: unknown): OvsTunnel | undefined {
    if (isUnknown(raw)) return raw as OvsTunnel;
    if (!raw || typeof raw !== "object" || Array.isArray(raw)) return v.fail(field, "must be { name, port, key, remote? }");
    const t = raw as Record<string, unknown>;
    for (const k of Object.keys(t)) if (!["name", "port", "remote", "remotePort", "key"].includes(k)) v.fail(`${field}.${k}`, "is not a tunnel field (name, port, remote, remotePort, key)");
    const name = v.string(`${field}.name`, t.name, { pattern: ifnamePattern, patternHint: ifnameHint });
    const port = v.integer(`${field}.port`, t.port ?? 1194, { min: 1, max: 65535 });
    const remote = v.host(`${field}.remote`, t.remote, { optional: true });
    const remotePort = v.integer(`${field}.remotePort`, t.remotePort, { optional: true, min: 1, max: 65535 });
    // The key is never echoed back in a message, even in part.
    let key: string | undefined;
    if (isUnknown(t.key)) key = t.key as string;
    else if (typeof t.key !== "string" || t.key === "") v.fail(`${field}.key`, "is required: an OpenVPN static key (openvpn --genkey secret FILE)");
    else if (!staticKeyPattern.test(t.key)) v.fail(`${field}.key`, "is not an OpenVPN static key (BEGIN/END OpenVPN Static key V1 around 16 lines of 32 hex digits)");
    else key = t.key;
    if (!name || port === undefined || key === undefined) return undefined;
    const out: OvsTunnel = { name, port, key };
    if (remote !== undefined) out.remote = remote;
    if (remotePort !== undefined) out.remotePort = remotePort;
    return out;
}

export function check(_olds: Record<string, unknown>, news: Record<string, unknown>): CheckOutcome<OvsBridgeInputs> {
    const v = new Validator();
    const connection = checkHostConnection(v, "connection", news.connection);
    const name = v.string("name", news.name, { pattern: ifnamePattern, patternHint: ifnameHint });
    const network = v.string("network", news.network, { optional: true, maxLength: 32, pattern: /^[a-z0-9][a-z0-9_-]*$/, patternHint: "must be a lower-case label like lan, wan or storage" });
    const uplink = v.string("uplink", news.uplink, { optional: true, pattern: ifnamePattern, patternHint: ifnameHint });
    const moveAddresses = v.boolean("moveAddresses", news.moveAddresses, false);
    const tunnels = v.list("tunnels", news.tunnels, (f, t) => checkTunnel(v, f, t), { optional: true, max: 16 });
    if (Array.isArray(tunnels) && !isUnknown(tunnels)) {
        const names = tunnels.map((t) => t.name);
        if (new Set(names).size !== names.length) v.fail("tunnels", "two tunnels have the same name");
        if (uplink !== undefined && names.includes(uplink)) v.fail("uplink", "is also the name of a tunnel");
        const ports = tunnels.map((t) => t.port);
        if (new Set(ports).size !== ports.length) v.fail("tunnels", "two tunnels listen on the same port");
    }
    if (name !== undefined && name === uplink) v.fail("uplink", "must not be the bridge itself");
    const adopt = v.boolean("adopt", news.adopt, false);
    if (!v.ok || !connection || !name || !tunnels) return { failures: v.failures };
    const inputs: OvsBridgeInputs = { connection, name, moveAddresses, tunnels, adopt };
    if (network !== undefined) inputs.network = network;
    if (uplink !== undefined) inputs.uplink = uplink;
    return { inputs, failures: [] };
}

export function diff(_id: string, olds: OvsBridgeState, news: OvsBridgeInputs): DiffOutcome {
    const replaces: string[] = [];
    if (olds.name !== news.name) replaces.push("name");
    if (olds.connection?.host !== news.connection.host) replaces.push("connection.host");
    const changed = changedFields(olds, news, ["connection", "network", "uplink", "moveAddresses", "tunnels", "adopt"]);
    const tunnelDown = Object.values(olds.tunnelStates ?? {}).some((s) => s !== "active");
    const uplinkMissing = olds.uplink !== undefined && olds.ports !== undefined && !olds.ports.includes(olds.uplink);
    return { changes: replaces.length + changed.length > 0 || tunnelDown || uplinkMissing, replaces, deleteBeforeReplace: true };
}

// ---- what runs on the box ----------------------------------------------------------------

const ovsService: Record<OsFamily, string> = { debian: "openvswitch-switch", alpine: "ovs-vswitchd" };
const ovsPackage: Record<OsFamily, string> = { debian: "openvswitch-switch", alpine: "openvswitch" };
/** ovs-vsctl waits this long for ovsdb (it may just have started) instead of forever. */
const vsctl = ["ovs-vsctl", "--timeout=30"];

export function tunnelService(t: Pick<OvsTunnel, "name">): string {
    return `baremetal-ovpn-${t.name}`;
}

export function tunnelKeyPath(t: Pick<OvsTunnel, "name">): string {
    return `/etc/baremetal/openvpn/${t.name}.key`;
}

export function tunnelUnitPath(t: Pick<OvsTunnel, "name">, family: OsFamily): string {
    return family === "alpine" ? `/etc/init.d/${tunnelService(t)}` : `/etc/systemd/system/${tunnelService(t)}.service`;
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

export function tunnelSystemdUnit(bridge: string, t: OvsTunnel): string {
    return [
        `# OpenVPN tunnel ${t.name} of OVS bridge ${bridge}, written by pulumi-baremetal.`,
        "[Unit]",
        `Description=OpenVPN tunnel ${t.name} for OVS bridge ${bridge} (pulumi-baremetal)`,
        "Wants=network-online.target",
        "After=network-online.target openvswitch-switch.service",
        "",
        "[Service]",
        "Type=simple",
        `ExecStartPre=-ip link del ${t.name}`,
        ...tapUp(bridge, t).map((c) => `ExecStartPre=${c.join(" ")}`),
        `ExecStart=openvpn ${openvpnArgs(t).join(" ")}`,
        `ExecStopPost=-${vsctl.join(" ")} --if-exists del-port ${bridge} ${t.name}`,
        `ExecStopPost=-ip link del ${t.name}`,
        "Restart=always",
        "RestartSec=5",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ].join("\n");
}

export function tunnelOpenrcScript(bridge: string, t: OvsTunnel): string {
    return [
        "#!/sbin/openrc-run",
        `# OpenVPN tunnel ${t.name} of OVS bridge ${bridge}, written by pulumi-baremetal.`,
        `description="OpenVPN tunnel ${t.name} for OVS bridge ${bridge} (pulumi-baremetal)"`,
        "supervisor=supervise-daemon",
        "command=/usr/sbin/openvpn",
        `command_args="${openvpnArgs(t).join(" ")}"`,
        "",
        "depend() {",
        "\tneed net ovs-vswitchd",
        "}",
        "",
        "start_pre() {",
        `\tip link del ${t.name} 2>/dev/null`,
        ...tapUp(bridge, t).map((c) => `\t${c.join(" ")} || return 1`),
        "}",
        "",
        "stop_post() {",
        `\t${vsctl.join(" ")} --if-exists del-port ${bridge} ${t.name}`,
        `\tip link del ${t.name} 2>/dev/null`,
        "\treturn 0",
        "}",
        "",
    ].join("\n");
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

/** Open vSwitch running, the bridge, its label and its interface up. */
export function planBridge(b: OvsBridgeInputs, family: OsFamily): Plan {
    return [
        step.ensurePackages(ovsPackage[family], ...(b.tunnels.length > 0 ? ["openvpn"] : [])),
        step.service("enable", ovsService[family]),
        step.service("start", ovsService[family]),
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
        family === "alpine"
            ? step.writeFile(tunnelUnitPath(t, family), tunnelOpenrcScript(b.name, t), { mode: "0755" })
            : step.writeFile(tunnelUnitPath(t, family), tunnelSystemdUnit(b.name, t)),
        ...(family === "debian" ? [step.run(["systemctl", "daemon-reload"], { what: "reload systemd units" })] : []),
        step.service("enable", tunnelService(t)),
        // restart, not start: a changed key or peer must take effect.
        step.service("restart", tunnelService(t)),
    ];
}

export function planTunnelRemove(b: Pick<OvsBridgeInputs, "name">, t: Pick<OvsTunnel, "name">, family: OsFamily): Plan {
    return [
        step.run(family === "alpine" ? ["rc-service", tunnelService(t), "stop"] : ["systemctl", "stop", tunnelService(t)], { okExitCodes: [0, 1, 5], what: `stop tunnel ${t.name}` }),
        step.run(family === "alpine" ? ["rc-update", "del", tunnelService(t)] : ["systemctl", "disable", tunnelService(t)], { okExitCodes: [0, 1, 5], what: `disable tunnel ${t.name}` }),
        step.removeFile(tunnelUnitPath(t, family)),
        step.removeFile(tunnelKeyPath(t)),
        ...(family === "debian" ? [step.run(["systemctl", "daemon-reload"], { what: "reload systemd units" })] : []),
        step.run([...vsctl, "--if-exists", "del-port", b.name, t.name], { what: `remove port ${t.name} from ${b.name}` }),
    ];
}

export function planCreate(b: OvsBridgeInputs, family: OsFamily): Plan {
    return [...planBridge(b, family), ...planUplink(b), ...b.tunnels.flatMap((t) => planTunnel(b, t, family)), step.persist()];
}

export function planDelete(s: OvsBridgeState, family: OsFamily): Plan {
    return [
        ...s.tunnels.flatMap((t) => planTunnelRemove(s, t, family)),
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
    for (const t of olds.tunnels) if (!kept.has(t.name)) plan.push(...planTunnelRemove(olds, t, family));
    for (const t of news.tunnels) {
        const before = olds.tunnels.find((o) => o.name === t.name);
        const healthy = olds.tunnelStates?.[t.name] === "active";
        if (!before || JSON.stringify(before) !== JSON.stringify(t) || !healthy) plan.push(...planTunnel(news, t, family));
    }
    plan.push(step.persist());
    return plan;
}

// ---- reading --------------------------------------------------------------------------------

// $1 bridge, then tunnel service names. Exit 3 when the bridge does not exist.
export const bridgeReadScript = [
    'br=$1; shift',
    'ovs-vsctl --timeout=10 br-exists "$br" 2>/dev/null || exit 3',
    'echo "network=$(ovs-vsctl --timeout=10 br-get-external-id "$br" baremetal-network 2>/dev/null)"',
    'for p in $(ovs-vsctl --timeout=10 list-ports "$br"); do echo "port $p"; done',
    'for a in $(ip -4 -o addr show dev "$br" 2>/dev/null | awk \'{print $4}\'); do echo "addr $a"; done',
    'for s in "$@"; do',
    '  if command -v systemctl >/dev/null 2>&1; then st=$(systemctl is-active "$s" 2>/dev/null); else rc-service "$s" status >/dev/null 2>&1 && st=active || st=inactive; fi',
    '  echo "tunnel $s ${st:-unknown}"',
    'done',
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

async function readBridge(host: Remote, b: OvsBridgeInputs): Promise<BridgeView | undefined> {
    const out = await host.run(["sh", "-c", bridgeReadScript, "baremetal-ovs-read", b.name, ...b.tunnels.map(tunnelService)], {
        okExitCodes: [0, 3, 127],
        what: `read OVS bridge ${b.name}`,
        timeoutMs: 60_000,
    });
    return out.exitCode === 0 ? parseBridgeView(out.stdout) : undefined;
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
    const existing = await readBridge(host, inputs);
    if (existing && !inputs.adopt && existing.network !== (inputs.network ?? "")) {
        throw new RefusedError(
            `OVS bridge ${inputs.name} already exists on ${host.target}${existing.network ? ` for network ${existing.network}` : ""} with ports ${existing.ports.join(", ") || "(none)"}`,
            "Set adopt: true on this OvsBridge to take it over, or choose another name.",
        );
    }
    if (existing) ctx.log.info(`${inputs.name}: adopting the existing bridge on ${host.target}`);
    if (inputs.uplink && !inputs.moveAddresses) await assertUplinkBare(host, inputs.uplink);
    const result = await host.apply(planCreate(inputs, family));
    // An adopted bridge may already carry the uplink's addresses (moved by an earlier run): delete gives those back too.
    const adopted = existing && inputs.uplink && inputs.moveAddresses ? existing.addresses : [];
    const moved = [...new Set([...adopted, ...movedFrom(result.steps.flatMap((s) => s.commands.map((c) => c.stdout)))])];
    const view = await readBridge(host, inputs);
    if (!view) throw new Error(`OVS bridge ${inputs.name} was created on ${host.target} but cannot be read back`);
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
    const family = (await host.facts()).family;
    const view = await readBridge(host, props);
    if (!view) {
        // No bridge (or Open vSwitch not running): only the tunnels' services and keys are left to remove.
        ctx.log.info(`${props.name}: the bridge is already gone from ${host.target}`);
        const plan = props.tunnels.flatMap((t) => planTunnelRemove(props, t, family)).filter((s) => !(s.kind === "run" && s.argv[0] === "ovs-vsctl"));
        if (plan.length > 0) await host.apply(plan);
        return;
    }
    const foreign = view.ports.filter((p) => p !== props.uplink && !props.tunnels.some((t) => t.name === p));
    if (foreign.length > 0) ctx.log.warn(`${props.name}: removing the bridge detaches ${foreign.join(", ")}`);
    // What is on the bridge now goes back too: an adopted bridge may carry addresses moved by an earlier run.
    const live = props.uplink && props.moveAddresses ? view.addresses : [];
    const movedAddresses = [...new Set([...(props.movedAddresses ?? []), ...live])];
    await host.apply(planDelete({ ...props, movedAddresses }, family));
}

export const ovsBridge: ResourceKind<OvsBridgeInputs, OvsBridgeState> = { check, diff, create, read, update, delete: remove };
