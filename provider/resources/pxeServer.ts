// PxeServer: a box that network-boots the others. dnsmasq gives static leases by
// MAC (one file per machine in a --dhcp-hostsdir, so machines come and go
// independently) and serves TFTP (iPXE bootloaders for firmware without iPXE); a
// small HTTP server (python3 http.server on Debian, busybox httpd on Alpine) serves
// the iPXE scripts and each profile's kernel, initramfs, modloop and apkovl.
//
// Boot chain: DHCP (static lease) → iPXE (the NIC's own, or undionly.kpxe/ipxe.efi
// over TFTP) → http://ADDRESS:PORT/boot.ipxe → boot/<mac-with-dashes>.ipxe (written
// by Machine) → profiles/<profile>/boot.ipxe (written here) → kernel + initrd.
//
// Standby mode: dnsmasq runs as the child of `consul lock`, so only the holder of
// the Consul lock at `standby.lockKey` serves DHCP; the others wait, and one takes
// over within seconds of the holder releasing the lock (clean stop) or within the
// session TTL (15 s) plus lock delay (15 s) when the holder dies.
//
// ID: `<name>@<host>`, e.g. `pxe@198.51.100.10`. Several instances (different
// names) can share a box; their files live under /etc/baremetal/pxe/<name> and
// /srv/baremetal/pxe/<name>.
import { createHash } from "crypto";
import { RefusedError } from "../core/errors";
import { changedFields, CheckOutcome, DiffOutcome, OperationContext, ResourceKind, sameValue } from "../core/resource";
import { isHostAddress, isUnknown, Validator } from "../core/validate";
import { checkHostConnection, HostConnection, Plan, Remote, Secret, step } from "../host";
import type { OsFamily, PlanResult } from "../host";
import { DhcpLease, parseLeases } from "../parsers/dnsmasq";
import { parseSections } from "../parsers/sections";
import { buildApkovl, maxOverlayPath, OverlayFiles } from "../pxe/apkovl";
import {
    checkCidr, checkInterface, checkIpv4, checkKernelArgs, checkName, checkUrl, inSubnet, managedMarker, netmaskOf, parseCidr,
    parseDescriptor, PxeDescriptor, PxeLayout, pxeLayout,
} from "../pxe/shared";

/** Where a profile file comes from: a URL the box downloads, or a file already on the box. */
export type FileSource = { url: string; sha256?: string } | { path: string };

export type ProfileKind = "alpine" | "debian";

export interface PxeProfile {
    /** `alpine` (diskless, apkovl) or `debian` (kernel + initrd + command line). */
    kind: ProfileKind;
    kernel: FileSource;
    initramfs: FileSource;
    /** Alpine's modloop (kernel modules, squashfs). */
    modloop?: FileSource;
    /** Alpine package repository (alpine_repo=). */
    repository?: string;
    /** Alpine apkovl: relative path (`etc/hostname`) to content; built into <profile>.apkovl.tar.gz. */
    overlay: OverlayFiles;
    /** Extra kernel arguments for every machine of this profile. */
    cmdline: string[];
}

export interface StandbyConfig {
    /** The Consul agent as seen from the PXE box, `host:port`; 127.0.0.1:8500 when omitted. */
    consulAddress: string;
    /** K/V prefix of the lock every PXE server of the group competes for. */
    lockKey: string;
    /** Path of the consul binary on the box. */
    consulBinary: string;
    /** ACL token (secret) with write access to lockKey and session:write. */
    token?: string;
}

export interface PxeServerInputs {
    connection: HostConnection;
    /** Instance name: several PXE servers may share a box. Changing it replaces. */
    name: string;
    /** The box's address on the boot network: DHCP next-server and HTTP host. */
    address: string;
    /** Interface dnsmasq serves DHCP on. */
    interface: string;
    /** The boot network, e.g. 198.51.100.0/24: leases are static, only declared machines get one. */
    subnet: string;
    gateway?: string;
    dnsServers: string[];
    domain?: string;
    leaseSeconds: number;
    httpPort: number;
    /** Copy iPXE's undionly.kpxe/ipxe.efi into the TFTP root (for NICs without iPXE firmware). */
    ipxeBootloaders: boolean;
    profiles: Record<string, PxeProfile>;
    /** When set, DHCP runs only while this server holds the Consul lock. */
    standby?: StandbyConfig;
    /** Take over an existing instance's files that this package did not write. */
    adopt: boolean;
}

export interface PxeServerState extends PxeServerInputs {
    family: OsFamily;
    /** http://ADDRESS:PORT: where machines' boot scripts and profile files are served. */
    baseUrl: string;
    /** `active` (dnsmasq serves DHCP), `standby` (waiting for the lock) or `stopped`. */
    dhcpRole: "active" | "standby" | "stopped";
    /** Leases in dnsmasq's lease file as last read. */
    leases: DhcpLease[];
    /** sha256 of each generated file as last read ("missing" when gone): edits by hand show here. */
    files: Record<string, string>;
}

// ---- check -----------------------------------------------------------------------------

const keyPath = /^[A-Za-z0-9_.@-]+(\/[A-Za-z0-9_.@-]+)*$/;
const overlayPath = /^[A-Za-z0-9_.@+-]+(\/[A-Za-z0-9_.@+-]+)*$/;

function checkFileSource(v: Validator, field: string, value: unknown, optional = false): FileSource | undefined {
    if (isUnknown(value)) return value as FileSource;
    if (value === undefined || value === null) return optional ? undefined : v.fail(field, "is required: { url } or { path }");
    if (typeof value !== "object" || Array.isArray(value)) return v.fail(field, "must be { url: \"http://...\" } or { path: \"/on/the/box\" }");
    const raw = value as Record<string, unknown>;
    for (const k of Object.keys(raw)) if (!["url", "sha256", "path"].includes(k)) v.fail(`${field}.${k}`, "is not a file source field (url, sha256, path)");
    if ((raw.url === undefined) === (raw.path === undefined)) return v.fail(field, "needs exactly one of url and path");
    if (raw.path !== undefined) {
        if (raw.sha256 !== undefined) v.fail(`${field}.sha256`, "is only checked for downloads (url)");
        const p = v.string(`${field}.path`, raw.path, { maxLength: 4096, pattern: /^(\/[A-Za-z0-9_.@+-]+)+$/, patternHint: "is not an absolute path on the PXE box" });
        if (p !== undefined && !isUnknown(p) && p.split("/").includes("..")) return v.fail(`${field}.path`, "must not contain ..");
        return p === undefined ? undefined : { path: p };
    }
    const url = checkUrl(v, `${field}.url`, raw.url);
    const sha256 = v.string(`${field}.sha256`, raw.sha256, { optional: true, pattern: /^[0-9a-f]{64}$/, patternHint: "is not a sha256 (64 lower-case hex digits)" });
    if (url === undefined) return undefined;
    return sha256 === undefined ? { url } : { url, sha256 };
}

function checkOverlay(v: Validator, field: string, value: unknown): OverlayFiles | undefined {
    const files = v.stringMap(field, value, { maxLength: maxOverlayPath, pattern: overlayPath, patternHint: "is not a relative path like etc/hostname" }, { maxLength: 1 << 20, allowControl: true });
    for (const p of Object.keys(files ?? {})) {
        if (p.split("/").some((s) => s === "." || s === "..")) v.fail(`${field}.${p}`, "must not contain . or .. segments");
    }
    return files;
}

function checkProfile(v: Validator, field: string, value: unknown): PxeProfile | undefined {
    if (isUnknown(value)) return value as PxeProfile;
    if (value === null || typeof value !== "object" || Array.isArray(value)) return v.fail(field, "must be an object { kind, kernel, initramfs, ... }");
    const raw = value as Record<string, unknown>;
    const known = ["kind", "kernel", "initramfs", "modloop", "repository", "overlay", "cmdline"];
    for (const k of Object.keys(raw)) if (!known.includes(k)) v.fail(`${field}.${k}`, `is not a profile field (${known.join(", ")})`);
    const kind = (v.string(`${field}.kind`, raw.kind, { optional: true, pattern: /^(alpine|debian)$/, patternHint: "must be alpine or debian" }) ?? "alpine") as ProfileKind;
    const kernel = checkFileSource(v, `${field}.kernel`, raw.kernel);
    const initramfs = checkFileSource(v, `${field}.initramfs`, raw.initramfs);
    const modloop = checkFileSource(v, `${field}.modloop`, raw.modloop, true);
    const repository = checkUrl(v, `${field}.repository`, raw.repository, true);
    const overlay = checkOverlay(v, `${field}.overlay`, raw.overlay);
    const cmdline = checkKernelArgs(v, `${field}.cmdline`, raw.cmdline);
    if (kind === "debian") {
        if (modloop !== undefined) v.fail(`${field}.modloop`, "is an Alpine thing; a debian profile has none");
        if (repository !== undefined) v.fail(`${field}.repository`, "is an Alpine thing (alpine_repo); a debian profile has none");
        if (overlay && Object.keys(overlay).length > 0) v.fail(`${field}.overlay`, "is an Alpine apkovl; a debian profile has none");
    }
    if (!kernel || !initramfs || !overlay || !cmdline) return undefined;
    const p: PxeProfile = { kind, kernel, initramfs, overlay, cmdline };
    if (modloop !== undefined) p.modloop = modloop;
    if (repository !== undefined) p.repository = repository;
    return p;
}

function checkStandby(v: Validator, field: string, value: unknown): StandbyConfig | undefined {
    if (value === undefined || value === null) return undefined;
    if (isUnknown(value)) return value as StandbyConfig;
    if (typeof value !== "object" || Array.isArray(value)) return v.fail(field, "must be an object { lockKey, consulAddress?, consulBinary?, token? }");
    const raw = value as Record<string, unknown>;
    for (const k of Object.keys(raw)) if (!["consulAddress", "lockKey", "consulBinary", "token"].includes(k)) v.fail(`${field}.${k}`, "is not a standby field (consulAddress, lockKey, consulBinary, token)");
    const consulAddress = v.string(`${field}.consulAddress`, raw.consulAddress, { optional: true, pattern: /^[A-Za-z0-9.-]+:[0-9]{1,5}$/, patternHint: "is not host:port, e.g. 127.0.0.1:8500" }) ?? "127.0.0.1:8500";
    if (!isUnknown(consulAddress) && /:/.test(consulAddress)) {
        const [h, port] = consulAddress.split(":");
        if (!isHostAddress(h)) v.fail(`${field}.consulAddress`, `${JSON.stringify(h)} is not a host name or IP address`);
        else if (Number(port) < 1 || Number(port) > 65535) v.fail(`${field}.consulAddress`, `port ${port} is out of range 1-65535`);
    }
    const lockKey = v.string(`${field}.lockKey`, raw.lockKey, { optional: true, maxLength: 256, pattern: keyPath, patternHint: "is not a Consul K/V path like baremetal/pxe/leader" }) ?? "baremetal/pxe/leader";
    if (!isUnknown(lockKey) && lockKey.split("/").some((s) => s === "." || s === "..")) v.fail(`${field}.lockKey`, 'must not contain "." or ".." segments');
    const consulBinary = v.string(`${field}.consulBinary`, raw.consulBinary, { optional: true, pattern: /^(\/[A-Za-z0-9_.@+-]+)+$/, patternHint: "is not an absolute path" }) ?? "/usr/bin/consul";
    if (!isUnknown(consulBinary) && consulBinary.split("/").includes("..")) v.fail(`${field}.consulBinary`, "must not contain ..");
    const token = v.string(`${field}.token`, raw.token, { optional: true, maxLength: 256, pattern: /^[A-Za-z0-9._~+/=-]+$/, patternHint: "is not a Consul ACL token", secret: true });
    const out: StandbyConfig = { consulAddress, lockKey, consulBinary };
    if (token !== undefined) out.token = token;
    return out;
}

export function check(_olds: Record<string, unknown>, news: Record<string, unknown>): CheckOutcome<PxeServerInputs> {
    const v = new Validator();
    const connection = checkHostConnection(v, "connection", news.connection);
    const name = checkName(v, "name", news.name, true) ?? "pxe";
    const address = checkIpv4(v, "address", news.address);
    const iface = checkInterface(v, "interface", news.interface ?? "eth0");
    const subnet = checkCidr(v, "subnet", news.subnet);
    const gateway = checkIpv4(v, "gateway", news.gateway, true);
    const dnsServers = v.list("dnsServers", news.dnsServers, (f, x) => checkIpv4(v, f, x), { optional: true, max: 8 });
    const domain = v.string("domain", news.domain, { optional: true, maxLength: 253, pattern: /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/, patternHint: "is not a domain name" });
    const leaseSeconds = v.integer("leaseSeconds", news.leaseSeconds ?? 3600, { min: 120, max: 31_536_000 });
    const httpPort = v.integer("httpPort", news.httpPort ?? 80, { min: 1, max: 65535 });
    const ipxeBootloaders = v.boolean("ipxeBootloaders", news.ipxeBootloaders, true);
    const profiles = checkProfiles(v, news.profiles);
    const standby = checkStandby(v, "standby", news.standby);
    const adopt = v.boolean("adopt", news.adopt, false);
    const net = subnet && !isUnknown(subnet) ? parseCidr(subnet) : undefined;
    if (net && address && !isUnknown(address) && !inSubnet(address, net)) v.fail("address", `${address} is not in subnet ${subnet}`);
    if (net && gateway && !isUnknown(gateway) && !inSubnet(gateway, net)) v.fail("gateway", `${gateway} is not in subnet ${subnet}`);
    if (!v.ok || !connection || !address || !iface || !subnet || !dnsServers || leaseSeconds === undefined || httpPort === undefined || !profiles) {
        return { failures: v.failures };
    }
    const inputs: PxeServerInputs = { connection, name, address, interface: iface, subnet, dnsServers, leaseSeconds, httpPort, ipxeBootloaders, profiles, adopt };
    if (gateway !== undefined) inputs.gateway = gateway;
    if (domain !== undefined) inputs.domain = domain;
    if (standby !== undefined) inputs.standby = standby;
    return { inputs, failures: [] };
}

function checkProfiles(v: Validator, value: unknown): Record<string, PxeProfile> | undefined {
    if (isUnknown(value)) return value as Record<string, PxeProfile>;
    if (value === undefined || value === null || typeof value !== "object" || Array.isArray(value)) {
        return v.fail("profiles", "is required: an object of profiles by name, e.g. { default: { kind: \"alpine\", kernel, initramfs, ... } }");
    }
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 0) return v.fail("profiles", "declare at least one profile");
    const out: Record<string, PxeProfile> = {};
    for (const [n, p] of entries) {
        const pname = checkName(v, `profiles key ${JSON.stringify(n)}`, n);
        const profile = checkProfile(v, `profiles.${n}`, p);
        if (pname && profile) out[pname] = profile;
    }
    return out;
}

// ---- diff ------------------------------------------------------------------------------

export function diff(_id: string, olds: PxeServerState, news: PxeServerInputs): DiffOutcome {
    const replaces: string[] = [];
    if (olds.name !== news.name) replaces.push("name");
    if (olds.connection?.host !== news.connection.host) replaces.push("connection.host");
    const changed = changedFields(olds, news, ["connection", "address", "interface", "subnet", "gateway", "dnsServers", "domain", "leaseSeconds", "httpPort", "ipxeBootloaders", "profiles", "standby", "adopt"]);
    // A generated file edited or removed by hand (seen by refresh) is put back by an update.
    const drifted =
        replaces.length === 0 &&
        ((olds.files !== undefined && !sameValue(olds.files, expectedDigests(news, olds.family ?? "debian"))) ||
            // DHCP found stopped (crashed, stopped by hand): an update starts it again
            olds.dhcpRole === "stopped");
    return { changes: replaces.length + changed.length > 0 || drifted, replaces, stables: ["name", "baseUrl"], deleteBeforeReplace: true };
}

// ---- what goes on the box --------------------------------------------------------------

export function baseUrlOf(inputs: Pick<PxeServerInputs, "address" | "httpPort">): string {
    return `http://${inputs.address}${inputs.httpPort === 80 ? "" : `:${inputs.httpPort}`}`;
}

/** Where iPXE's bootloaders are installed by the `ipxe` package. */
export function ipxeDir(family: OsFamily): string {
    return family === "alpine" ? "/usr/share/ipxe" : "/usr/lib/ipxe";
}

export function dnsmasqConf(inputs: PxeServerInputs, layout: PxeLayout): string {
    const net = parseCidr(inputs.subnet);
    if (!net) throw new Error(`subnet ${inputs.subnet} is not a CIDR`);
    const base = baseUrlOf(inputs);
    const lines = [
        `# ${managedMarker}: PXE server ${inputs.name}`,
        "# No DNS: this dnsmasq only does DHCP and TFTP.",
        "port=0",
        `interface=${inputs.interface}`,
        "bind-dynamic",
        // "static": only machines with a dhcp-host entry (a Machine) get an address
        `dhcp-range=${net.network},static,${netmaskOf(net.prefixLength)},${inputs.leaseSeconds}`,
        "dhcp-authoritative",
        ...(inputs.gateway ? [`dhcp-option=option:router,${inputs.gateway}`] : []),
        ...(inputs.dnsServers.length > 0 ? [`dhcp-option=option:dns-server,${inputs.dnsServers.join(",")}`] : []),
        ...(inputs.domain ? [`domain=${inputs.domain}`] : []),
        `dhcp-hostsdir=${layout.hostsDir}`,
        `dhcp-leasefile=${layout.leaseFile}`,
        // iPXE says so in its user class and option 175; firmware without iPXE gets iPXE first
        "dhcp-userclass=set:ipxe,iPXE",
        "dhcp-match=set:ipxe,175",
        "dhcp-match=set:efi64,option:client-arch,7",
        "dhcp-match=set:efi64,option:client-arch,9",
        `dhcp-boot=tag:ipxe,${base}/boot.ipxe`,
        `dhcp-boot=tag:!ipxe,tag:efi64,ipxe.efi,,${inputs.address}`,
        `dhcp-boot=tag:!ipxe,tag:!efi64,undionly.kpxe,,${inputs.address}`,
        "enable-tftp",
        `tftp-root=${layout.tftpRoot}`,
        "log-dhcp",
        `log-facility=${layout.logFile}`,
        `pid-file=${layout.pidFile}`,
        "",
    ];
    return lines.join("\n");
}

/** The first script every client runs: it chains to the per-MAC script a Machine wrote. */
export function rootBootScript(inputs: PxeServerInputs): string {
    return [
        "#!ipxe",
        `# ${managedMarker}: PXE server ${inputs.name}`,
        `echo pulumi-baremetal ${inputs.name}: \${mac} \${ip}`,
        `chain --autofree ${baseUrlOf(inputs)}/boot/\${mac:hexhyp}.ipxe || goto unknown`,
        ":unknown",
        `echo no boot entry for \${mac} on PXE server ${inputs.name}; trying the next boot device in 10 s`,
        "sleep 10",
        "exit",
        "",
    ].join("\n");
}

/** Kernel arguments of a profile, before the machine's own (`${bm_args}`, set by its per-MAC script). */
export function profileKernelArgs(name: string, p: PxeProfile, baseUrl: string): string[] {
    const dir = `${baseUrl}/profiles/${name}`;
    const alpine =
        p.kind === "alpine"
            ? [
                  "ip=dhcp",
                  "modules=loop,squashfs",
                  ...(p.repository ? [`alpine_repo=${p.repository}`] : []),
                  ...(p.modloop ? [`modloop=${dir}/modloop`] : []),
                  ...(Object.keys(p.overlay).length > 0 ? [`apkovl=${dir}/${name}.apkovl.tar.gz`] : []),
              ]
            : [];
    // initrd= names the image for EFI kernels' stub; baremetal.profile lets the box know its profile
    return ["initrd=initramfs", ...alpine, ...p.cmdline, `baremetal.profile=${name}`];
}

export function profileBootScript(name: string, p: PxeProfile, baseUrl: string): string {
    const dir = `${baseUrl}/profiles/${name}`;
    return [
        "#!ipxe",
        `# ${managedMarker}: profile ${name} (${p.kind})`,
        `kernel ${dir}/vmlinuz ${profileKernelArgs(name, p, baseUrl).join(" ")} \${bm_args}`,
        `initrd ${dir}/initramfs`,
        "boot",
        "",
    ].join("\n");
}

export function descriptorOf(inputs: PxeServerInputs): PxeDescriptor {
    return {
        instance: inputs.name,
        baseUrl: baseUrlOf(inputs),
        profiles: Object.fromEntries(Object.entries(inputs.profiles).map(([n, p]) => [n, p.kind])),
    };
}

function unitFor(description: string, argv: string[], extra: string[] = []): string {
    return [
        "[Unit]",
        `Description=${description}`,
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        `ExecStart=${argv.join(" ")}`,
        ...extra,
        "Restart=always",
        "RestartSec=2",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ].join("\n");
}

function openrcFor(description: string, argv: string[], extra: string[] = []): string {
    return [
        "#!/sbin/openrc-run",
        `# ${managedMarker}`,
        `description="${description}"`,
        `command=${argv[0]}`,
        `command_args="${argv.slice(1).join(" ")}"`,
        "supervisor=supervise-daemon",
        "respawn_delay=2",
        "respawn_max=0",
        ...extra,
        "depend() {",
        "\tneed net",
        "}",
        "",
    ].join("\n");
}

/** dnsmasq in the foreground, directly or as the child of `consul lock` in standby mode. */
export function dhcpCommand(inputs: PxeServerInputs, layout: PxeLayout): string[] {
    const dnsmasq = ["/usr/sbin/dnsmasq", "--keep-in-foreground", `--conf-file=${layout.dnsmasqConf}`];
    if (!inputs.standby) return dnsmasq;
    const s = inputs.standby;
    return [s.consulBinary, "lock", `-http-addr=http://${s.consulAddress}`, `-name=baremetal-pxe-${inputs.name}`, "-shell=false", s.lockKey, ...dnsmasq];
}

export function httpCommand(inputs: PxeServerInputs, layout: PxeLayout, family: OsFamily): string[] {
    return family === "alpine"
        ? ["/bin/busybox", "httpd", "-f", "-v", "-p", `${inputs.address}:${inputs.httpPort}`, "-h", layout.httpRoot]
        : ["/usr/bin/python3", "-m", "http.server", "--bind", inputs.address, "--directory", layout.httpRoot, String(inputs.httpPort)];
}

export function serviceFile(family: OsFamily, service: string): string {
    return family === "alpine" ? `/etc/init.d/${service}` : `/etc/systemd/system/${service}.service`;
}

/** Every generated text file with its content: what the plan writes and what drift is measured against. */
export function generatedFiles(inputs: PxeServerInputs, family: OsFamily): Map<string, string> {
    const layout = pxeLayout(inputs.name);
    const base = baseUrlOf(inputs);
    const files = new Map<string, string>();
    files.set(layout.dnsmasqConf, dnsmasqConf(inputs, layout));
    files.set(layout.descriptor, JSON.stringify(descriptorOf(inputs), null, 2) + "\n");
    files.set(`${layout.httpRoot}/boot.ipxe`, rootBootScript(inputs));
    files.set(`${layout.tftpRoot}/boot.ipxe`, rootBootScript(inputs));
    for (const [n, p] of Object.entries(inputs.profiles)) files.set(`${layout.httpRoot}/profiles/${n}/boot.ipxe`, profileBootScript(n, p, base));
    const what = `pulumi-baremetal PXE server ${inputs.name}`;
    const tokenEnv = inputs.standby?.token ? layout.consulEnv : undefined;
    if (family === "alpine") {
        files.set(serviceFile(family, layout.dhcpService), openrcFor(`${what}: DHCP and TFTP${inputs.standby ? " (while holding the Consul lock)" : ""}`, dhcpCommand(inputs, layout), tokenEnv ? [`[ -f ${tokenEnv} ] && . ${tokenEnv} && export CONSUL_HTTP_TOKEN`] : []));
        files.set(serviceFile(family, layout.httpService), openrcFor(`${what}: HTTP`, httpCommand(inputs, layout, family)));
    } else {
        const dhcpExtra = ["ExecReload=/bin/kill -HUP $MAINPID", ...(tokenEnv ? [`EnvironmentFile=${tokenEnv}`] : [])];
        files.set(serviceFile(family, layout.dhcpService), unitFor(`${what}: DHCP and TFTP${inputs.standby ? " (while holding the Consul lock)" : ""}`, dhcpCommand(inputs, layout), dhcpExtra));
        files.set(serviceFile(family, layout.httpService), unitFor(`${what}: HTTP`, httpCommand(inputs, layout, family)));
    }
    return files;
}

/** Each profile's apkovl, as bytes. */
export function overlays(inputs: PxeServerInputs): Map<string, Buffer> {
    const layout = pxeLayout(inputs.name);
    const out = new Map<string, Buffer>();
    for (const [n, p] of Object.entries(inputs.profiles)) {
        if (Object.keys(p.overlay).length > 0) out.set(`${layout.httpRoot}/profiles/${n}/${n}.apkovl.tar.gz`, buildApkovl(p.overlay));
    }
    return out;
}

export function sha256(content: string | Buffer): string {
    return createHash("sha256").update(content).digest("hex");
}

/** What `files` should read when the box holds exactly what these inputs generate. */
export function expectedDigests(inputs: PxeServerInputs, family: OsFamily): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [p, c] of generatedFiles(inputs, family)) out[p] = sha256(c);
    for (const [p, c] of overlays(inputs)) out[p] = sha256(c);
    return out;
}

// Constant scripts: values arrive as "$1"..., never spliced into the text.

/** Creates missing directories; reports unchanged when all exist. */
const mkdirsScript = 'c=; for d; do [ -d "$d" ] || { mkdir -p "$d"; c=1; }; done; [ -n "$c" ] || echo =baremetal-unchanged=';

/**
 * Puts a profile file in place from a path on the box or a URL; $1 target, $2 path|url,
 * $3 source, $4 sha256 or "". A download is skipped when the recorded source matches.
 */
export const fetchScript = [
    "set -eu",
    't=$1 how=$2 src=$3 sum=$4',
    'mkdir -p "$(dirname "$t")"',
    'if [ "$how" = path ]; then',
    '  [ -f "$src" ] || { echo "no such file on the PXE box: $src" >&2; exit 3; }',
    '  if cmp -s "$src" "$t"; then echo =baremetal-unchanged=; exit 0; fi',
    '  tmp=$(mktemp "$t.XXXXXX"); trap \'rm -f "$tmp"\' EXIT',
    '  cp "$src" "$tmp"',
    "else",
    '  if [ -f "$t" ] && [ "$(cat "$t.source" 2>/dev/null)" = "$src $sum" ]; then echo =baremetal-unchanged=; exit 0; fi',
    '  tmp=$(mktemp "$t.XXXXXX"); trap \'rm -f "$tmp"\' EXIT',
    '  if command -v wget >/dev/null; then wget -q -O "$tmp" "$src"; else curl -fsSL -o "$tmp" "$src"; fi',
    '  if [ -n "$sum" ]; then got=$(sha256sum "$tmp" | cut -d" " -f1); [ "$got" = "$sum" ] || { echo "sha256 of $src is $got, expected $sum" >&2; exit 4; }; fi',
    '  printf "%s %s\\n" "$src" "$sum" >"$t.source"',
    "fi",
    'chmod 0644 "$tmp"; mv -f "$tmp" "$t"; trap - EXIT',
].join("\n");

/** Writes binary content that arrives base64-encoded on stdin; $1 target. */
export const writeBase64Script = [
    "set -eu",
    'mkdir -p "$(dirname "$1")"',
    'tmp=$(mktemp "$1.XXXXXX"); trap \'rm -f "$tmp"\' EXIT',
    'base64 -d >"$tmp"',
    'if cmp -s "$tmp" "$1"; then echo =baremetal-unchanged=; exit 0; fi',
    'chmod 0644 "$tmp"; mv -f "$tmp" "$1"; trap - EXIT',
].join("\n");

function fetchStep(target: string, src: FileSource, what: string) {
    const [how, from, sum] = "path" in src ? ["path", src.path, ""] : ["url", src.url, src.sha256 ?? ""];
    return step.run(["sh", "-c", fetchScript, "baremetal-fetch", target, how, from, sum], { what: `${what} from ${from}`, timeoutMs: 20 * 60_000 });
}

/** The steps that put every file in place (nothing is started or restarted here). */
export function planFiles(inputs: PxeServerInputs, family: OsFamily, removedProfiles: string[] = []): Plan {
    const layout = pxeLayout(inputs.name);
    const plan: Plan[number][] = [
        step.ensurePackages(...(family === "alpine" ? ["dnsmasq"] : ["dnsmasq", "python3"]), ...(inputs.ipxeBootloaders ? ["ipxe"] : [])),
        step.run(["sh", "-c", mkdirsScript, "baremetal-mkdirs", layout.hostsDir, layout.bootDir, layout.tftpRoot, layout.leaseFile.replace(/\/[^/]+$/, "")], { what: `create the directories of PXE server ${inputs.name}` }),
    ];
    for (const [n, p] of Object.entries(inputs.profiles)) {
        const dir = `${layout.httpRoot}/profiles/${n}`;
        plan.push(fetchStep(`${dir}/vmlinuz`, p.kernel, `put the kernel of profile ${n}`));
        plan.push(fetchStep(`${dir}/initramfs`, p.initramfs, `put the initramfs of profile ${n}`));
        if (p.modloop) plan.push(fetchStep(`${dir}/modloop`, p.modloop, `put the modloop of profile ${n}`));
    }
    for (const [path, bytes] of overlays(inputs)) {
        plan.push(step.run(["sh", "-c", writeBase64Script, "baremetal-write-b64", path], { stdin: bytes.toString("base64"), what: `write apkovl ${path.replace(/^.*\//, "")} (${bytes.length} bytes)` }));
    }
    for (const n of removedProfiles) plan.push(step.run(["rm", "-rf", "--", `${layout.httpRoot}/profiles/${n}`], { what: `remove profile ${n}` }));
    if (inputs.ipxeBootloaders) {
        for (const f of ["undionly.kpxe", "ipxe.efi"]) plan.push(fetchStep(`${layout.tftpRoot}/${f}`, { path: `${ipxeDir(family)}/${f}` }, `put iPXE's ${f} in the TFTP root`));
    }
    for (const [path, content] of generatedFiles(inputs, family)) {
        plan.push(step.writeFile(path, content, { mode: path.startsWith("/etc/init.d/") ? "0755" : "0644" }));
    }
    if (inputs.standby?.token) plan.push(step.writeFile(layout.consulEnv, new Secret(`CONSUL_HTTP_TOKEN=${inputs.standby.token}\n`), { mode: "0600" }));
    else plan.push(step.removeFile(layout.consulEnv));
    if (family === "debian") plan.push(step.run(["systemctl", "daemon-reload"], { what: "reload systemd units", changes: false }));
    plan.push(step.persist());
    return plan;
}

/** Enables and starts both services; restarts those whose files changed. */
export function planServices(inputs: PxeServerInputs, restart: { dhcp: boolean; http: boolean }): Plan {
    const layout = pxeLayout(inputs.name);
    const plan: Plan[number][] = [];
    for (const [svc, again] of [[layout.httpService, restart.http], [layout.dhcpService, restart.dhcp]] as const) {
        plan.push(step.service("enable", svc));
        plan.push(step.service(again ? "restart" : "start", svc));
    }
    plan.push(step.persist());
    return plan;
}

export function planDelete(state: Pick<PxeServerInputs, "name">, family: OsFamily): Plan {
    const layout = pxeLayout(state.name);
    const plan: Plan[number][] = [];
    for (const svc of [layout.dhcpService, layout.httpService]) {
        plan.push(step.run(["sh", "-c", stopScript, "baremetal-stop", svc], { what: `stop and disable service ${svc} (if present)` }));
        plan.push(step.removeFile(serviceFile(family, svc)));
    }
    if (family === "debian") plan.push(step.run(["systemctl", "daemon-reload"], { what: "reload systemd units", changes: false }));
    plan.push(step.run(["rm", "-rf", "--", layout.configDir, layout.dataDir, layout.leaseFile.replace(/\/[^/]+$/, ""), layout.logFile], { what: `remove the files of PXE server ${state.name}` }));
    plan.push(step.persist());
    return plan;
}

/** Stops and disables a service on either init system, quietly when it does not exist. */
const stopScript = [
    'svc=$1',
    'if command -v systemctl >/dev/null; then systemctl stop "$svc" 2>/dev/null; systemctl --quiet disable "$svc" 2>/dev/null',
    'elif [ -x "/etc/init.d/$svc" ]; then rc-service "$svc" stop; rc-update del "$svc" default 2>/dev/null',
    "fi",
    "exit 0",
].join("\n");

// ---- reading the live server -------------------------------------------------------------

/** $1 pid file, $2 lease file, $3 dhcp service, $4 descriptor, then the files to digest. */
export const serverReadScript = [
    'pid=$1 leases=$2 svc=$3 desc=$4; shift 4',
    '[ -f "$desc" ] || exit 3',
    'echo "==descriptor=="; cat "$desc"',
    'echo "==role=="',
    'if [ -f "$pid" ] && kill -0 "$(cat "$pid")" 2>/dev/null; then echo active',
    'elif command -v systemctl >/dev/null && systemctl -q is-active "$svc"; then echo standby',
    'elif [ -x "/etc/init.d/$svc" ] && rc-service "$svc" status >/dev/null 2>&1; then echo standby',
    "else echo stopped; fi",
    'echo "==leases=="; cat "$leases" 2>/dev/null',
    'echo "==files=="',
    'for f; do if [ -f "$f" ]; then sha256sum "$f"; else echo "missing  $f"; fi; done',
    "exit 0",
].join("\n");

export interface LiveServer {
    descriptor?: PxeDescriptor;
    role: PxeServerState["dhcpRole"];
    leases: DhcpLease[];
    files: Record<string, string>;
}

/** Parses the read script's output (exported for tests). */
export function parseServerRead(text: string): LiveServer {
    const { parts } = parseSections(text, ["descriptor", "role", "leases", "files"] as const);
    const section = (name: keyof typeof parts) => parts[name] ?? "";
    const role = section("role").trim();
    const files: Record<string, string> = {};
    for (const line of section("files").split("\n")) {
        const m = /^([0-9a-f]{64}|missing)\s+(\S.*)$/.exec(line.trim());
        if (m) files[m[2]] = m[1];
    }
    return {
        descriptor: parseDescriptor(section("descriptor")),
        role: role === "active" || role === "standby" ? role : "stopped",
        leases: parseLeases(section("leases")),
        files,
    };
}

async function readLive(host: Remote, inputs: PxeServerInputs, family: OsFamily): Promise<LiveServer | undefined> {
    const layout = pxeLayout(inputs.name);
    const paths = Object.keys(expectedDigests(inputs, family));
    const out = await host.run(["sh", "-c", serverReadScript, "baremetal-pxe-read", layout.pidFile, layout.leaseFile, layout.dhcpService, layout.descriptor, ...paths], {
        okExitCodes: [0, 3],
        what: `read PXE server ${inputs.name}`,
    });
    return out.exitCode === 3 ? undefined : parseServerRead(out.stdout);
}

function hostFor(inputs: PxeServerInputs, ctx: OperationContext): Remote {
    return ctx.remote(inputs.connection, { secrets: [inputs.standby?.token] });
}

/** Refuses to overwrite an instance's configuration that this package did not write. */
async function assertOurs(host: Remote, inputs: PxeServerInputs): Promise<void> {
    const conf = await host.readFile(pxeLayout(inputs.name).dnsmasqConf);
    if (conf !== undefined && !conf.includes(managedMarker) && !inputs.adopt) {
        throw new RefusedError(
            `${pxeLayout(inputs.name).dnsmasqConf} on ${host.target} exists and was not written by pulumi-baremetal`,
            "Set adopt: true on this PxeServer to take it over (it will be rewritten), or choose another name.",
        );
    }
}

/** Which services must restart because their files changed in this run. */
function restartsFrom(result: PlanResult, inputs: PxeServerInputs, family: OsFamily): { dhcp: boolean; http: boolean } {
    const layout = pxeLayout(inputs.name);
    const changed = (path: string) => result.steps.some((s) => s.changed && s.description.startsWith(`write ${path} `) || (s.changed && s.description === `remove ${path}`));
    return {
        dhcp: changed(layout.dnsmasqConf) || changed(serviceFile(family, layout.dhcpService)) || changed(layout.consulEnv),
        http: changed(serviceFile(family, layout.httpService)),
    };
}

/**
 * Which services must restart because their files differ between the last applied
 * inputs and the new ones. An update cut after the files were written but before
 * the restart leaves the old state in place; its re-run finds the files already so
 * (restartsFrom sees nothing changed), and only this keeps the daemons from running
 * the old configuration for good.
 */
export function restartsBetween(olds: PxeServerInputs, news: PxeServerInputs, family: OsFamily): { dhcp: boolean; http: boolean } {
    const layout = pxeLayout(news.name);
    let before: Map<string, string>;
    try {
        before = generatedFiles(olds, family);
    } catch {
        // a state this version cannot render: restarting is the safe side
        return { dhcp: true, http: true };
    }
    const after = generatedFiles(news, family);
    const differs = (path: string) => before.get(path) !== after.get(path);
    return {
        dhcp: differs(layout.dnsmasqConf) || differs(serviceFile(family, layout.dhcpService)) || (olds.standby?.token ?? "") !== (news.standby?.token ?? ""),
        http: differs(serviceFile(family, layout.httpService)),
    };
}

async function apply(host: Remote, inputs: PxeServerInputs, family: OsFamily, removedProfiles: string[], olds?: PxeServerInputs): Promise<void> {
    const result = await host.apply(planFiles(inputs, family, removedProfiles));
    const changed = restartsFrom(result, inputs, family);
    const differ = olds ? restartsBetween(olds, inputs, family) : { dhcp: false, http: false };
    await host.apply(planServices(inputs, { dhcp: changed.dhcp || differ.dhcp, http: changed.http || differ.http }));
}

async function stateOf(host: Remote, inputs: PxeServerInputs, family: OsFamily, ctx: OperationContext): Promise<PxeServerState> {
    // dnsmasq needs a moment to write its pid file after a (re)start
    let live = await readLive(host, inputs, family);
    for (let i = 0; i < 10 && live?.role === "stopped"; i++) {
        await new Promise((r) => setTimeout(r, 500));
        live = await readLive(host, inputs, family);
    }
    if (!live) throw new Error(`PXE server ${inputs.name} was set up on ${host.target} but its descriptor cannot be read back`);
    if (live.role === "stopped") ctx.log.warn(`PXE server ${inputs.name} on ${host.target}: DHCP is not running; see journalctl -u ${pxeLayout(inputs.name).dhcpService} or ${pxeLayout(inputs.name).logFile}`);
    return { ...inputs, family, baseUrl: baseUrlOf(inputs), dhcpRole: live.role, leases: live.leases, files: live.files };
}

async function create(inputs: PxeServerInputs, ctx: OperationContext): Promise<{ id: string; outs: PxeServerState }> {
    const host = hostFor(inputs, ctx);
    const family = (await host.facts()).family;
    await assertOurs(host, inputs);
    await apply(host, inputs, family, []);
    return { id: `${inputs.name}@${inputs.connection.host}`, outs: await stateOf(host, inputs, family, ctx) };
}

async function read(_id: string, props: PxeServerState, ctx: OperationContext): Promise<PxeServerState | undefined> {
    const host = hostFor(props, ctx);
    const family = props.family ?? (await host.facts()).family;
    const live = await readLive(host, props, family);
    if (!live) return undefined;
    return { ...props, family, dhcpRole: live.role, leases: live.leases, files: live.files };
}

async function update(_id: string, olds: PxeServerState, news: PxeServerInputs, ctx: OperationContext): Promise<PxeServerState> {
    const host = hostFor(news, ctx);
    const family = (await host.facts()).family;
    const removed = Object.keys(olds.profiles ?? {}).filter((n) => !(n in news.profiles));
    await apply(host, news, family, removed, olds);
    return stateOf(host, news, family, ctx);
}

async function remove(_id: string, props: PxeServerState, ctx: OperationContext): Promise<void> {
    const host = hostFor(props, ctx);
    const family = (await host.facts()).family;
    await host.apply(planDelete(props, family));
}

export const pxeServer: ResourceKind<PxeServerInputs, PxeServerState> = { check, diff, create, read, update, delete: remove };
