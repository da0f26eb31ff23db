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
import { checkByTable, checkField, diffByTable, erase, FieldSpec, KindSpec, ObjectType, t } from "../core/fields";
import { inSubnet, netmaskOf, parseCidr } from "../core/ipv4";
import { CheckOutcome, DiffOutcome, OperationContext, ResourceKind, sameValue } from "../core/resource";
import { isUnknown, Validator } from "../core/validate";
import { connectionType, HostConnection, Plan, Remote, renderService, Secret, serviceFilePath, serviceStateShell, step } from "../host";
import type { OsFamily, PlanResult, ServiceSpec, Step } from "../host";
import { DhcpLease, parseLeases } from "../parsers/dnsmasq";
import { parseSections } from "../parsers/sections";
import { buildApkovl, maxOverlayPath, OverlayFiles } from "../pxe/apkovl";
import { checkKernelArgs, checkName, managedMarker, parseDescriptor, PxeDescriptor, PxeLayout, pxeLayout } from "../pxe/shared";

/** Where a profile file comes from: a URL the box downloads, or a file already on the box. */
export type FileSource = { url: string; sha256?: string } | { path: string };

export type ProfileKind = "alpine" | "debian";

export interface PxeProfile {
    kind: ProfileKind;
    kernel: FileSource;
    initramfs: FileSource;
    modloop?: FileSource;
    repository?: string;
    overlay: OverlayFiles;
    cmdline: string[];
}

export interface StandbyConfig {
    consulAddress: string;
    lockKey: string;
    consulBinary: string;
    token?: string;
}

export interface PxeServerInputs {
    connection: HostConnection;
    name: string;
    address: string;
    interface: string;
    subnet: string;
    gateway?: string;
    dnsServers: string[];
    domain?: string;
    leaseSeconds: number;
    httpPort: number;
    ipxeBootloaders: boolean;
    profiles: Record<string, PxeProfile>;
    standby?: StandbyConfig;
    adopt: boolean;
}

export type DhcpRole = "active" | "standby" | "stopped";

export interface PxeServerState extends PxeServerInputs {
    family: OsFamily;
    baseUrl: string;
    dhcpRole: DhcpRole;
    leases: DhcpLease[];
    files: Record<string, string>;
}

// ---- the field table ----------------------------------------------------------------------

const overlayPath = /^[A-Za-z0-9_.@+-]+(\/[A-Za-z0-9_.@+-]+)*$/;

const fileFromUrlType: ObjectType = {
    name: "FileFromUrl",
    doc: "A file the PXE box downloads (wget or curl). The download is skipped when the file in place came from the same URL with the same sha256.",
    discriminator: "url",
    fields: {
        url: { type: t.string(), required: true, doc: "An http:// or https:// URL, without credentials." },
        sha256: { type: t.string(), doc: "The file's sha256 (64 lower-case hex digits): a download with another digest fails." },
    },
};

const fileOnBoxType: ObjectType = {
    name: "FileOnBox",
    doc: "A file already on the PXE box, copied into place.",
    discriminator: "path",
    fields: { path: { type: t.string(), required: true, doc: "Absolute path on the PXE box." } },
};

/** Each file of a profile is one of these; checkFileSource words the mistakes (both, neither). */
const fileSource = t.union(fileFromUrlType, fileOnBoxType);

export const pxeProfileType: ObjectType = {
    name: "PxeProfile",
    doc: "One boot profile (the seed's `pxeboot`, `default`, `lxc-repo`): the kernel, initramfs and arguments a machine of this profile boots.",
    fields: {
        kind: { type: t.string(["alpine", "debian"]), default: "alpine", doc: "`alpine` (diskless: modloop, apkovl overlay) or `debian` (kernel, initrd and a command line)." },
        kernel: { type: fileSource, required: true, doc: "The kernel.", check: checkFileSource },
        initramfs: { type: fileSource, required: true, doc: "The initramfs.", check: checkFileSource },
        modloop: { type: fileSource, doc: "Alpine's modloop (the kernel modules squashfs), given to the kernel as `modloop=`.", check: checkFileSource },
        repository: { type: t.string(), doc: "Alpine package repository, given to the kernel as `alpine_repo=`.", check: (v, f, x) => v.url(f, x) },
        overlay: {
            type: t.map(t.string()),
            default: {},
            doc: "Alpine apkovl content: relative path (`etc/hostname`, `etc/local.d/10-consul.start`) to file content. Built into `<profile>.apkovl.tar.gz` (a real tar.gz, the same bytes for the same content) and given to the kernel as `apkovl=`.",
            check: checkOverlay,
        },
        cmdline: { type: t.array(t.string()), default: [], doc: "Extra kernel arguments for every machine of this profile (one word each), before the machine's own.", check: (v, f, x) => checkKernelArgs(v, f, x) },
    },
};

export const standbyType: ObjectType = {
    name: "Standby",
    doc: "Standby mode: DHCP runs only while this server holds a Consul lock (dnsmasq runs as the child of `consul lock`), so that N servers give N-fold redundancy; one takes over within seconds of the holder stopping, or within the session TTL (15 s) plus lock delay (15 s) when it dies.",
    fields: {
        consulAddress: { type: t.string(), default: "127.0.0.1:8500", doc: "The Consul agent as the PXE box reaches it, `host:port`.", check: (v, f, x) => v.hostPort(f, x, { example: "127.0.0.1:8500" }) },
        lockKey: { type: t.string(), default: "baremetal/pxe/leader", doc: "K/V prefix of the lock every PXE server of the group competes for.", check: (v, f, x) => v.kvKey(f, x, { maxLength: 256 }) },
        consulBinary: { type: t.string(), default: "/usr/bin/consul", doc: "Path of the consul binary on the box.", check: (v, f, x) => v.absolutePath(f, x) },
        token: {
            type: t.string(),
            secret: true,
            doc: "ACL token with write access to lockKey and session:write (kept in a root-only file on the box).",
            check: (v, f, x) => v.consulToken(f, x),
        },
    },
};

const dhcpLeaseType: ObjectType = {
    name: "DhcpLease",
    doc: "One lease in dnsmasq's lease file.",
    fields: {
        expires: { type: t.integer, required: true, doc: "Unix time the lease ends (0: infinite)." },
        mac: { type: t.string(), required: true, doc: "The client's MAC." },
        ip: { type: t.string(), required: true, doc: "The address leased." },
        hostname: { type: t.string(), doc: "The name the client sent, when it sent one." },
    },
};

export const spec: KindSpec<PxeServerInputs, PxeServerState> = {
    kind: "PxeServer",
    doc: "A PXE server: dnsmasq (static DHCP leases by MAC, one file per machine, and TFTP for firmware without iPXE) and an HTTP server for the iPXE scripts and each profile's kernel, initramfs, modloop and apkovl. Several instances (different names) can share a box. Machines name the PXE servers that boot them. A box whose instance config was not written by pulumi-baremetal is refused unless adopt is set.",
    id: "`<name>@<host>`, e.g. `pxe@198.51.100.10`.",
    example: `import { PxeServer } from "pulumi-baremetal";

new PxeServer("pxe1", {
    connection: { host: "198.51.100.10", privateKey: key, hostKey: "ssh-ed25519 AAAA..." },
    address: "198.51.100.10",
    subnet: "198.51.100.0/24",
    gateway: "198.51.100.1",
    profiles: {
        default: {
            kernel: { url: "http://198.51.100.1/alpine/netboot/vmlinuz-lts" },
            initramfs: { url: "http://198.51.100.1/alpine/netboot/initramfs-lts" },
            modloop: { url: "http://198.51.100.1/alpine/netboot/modloop-lts" },
            repository: "http://198.51.100.1/alpine/v3.20/main",
        },
    },
});`,
    deleteBeforeReplace: true,
    inputs: {
        connection: { type: t.object(connectionType), required: true, replaceOn: ["host"], doc: "The PXE box." },
        name: {
            type: t.string(),
            defaultDoc: "the resource's name (`pxe` when the provider is called without the SDK)",
            change: "replace",
            doc: "Instance name: part of its paths (/etc/baremetal/pxe/<name>, /srv/baremetal/pxe/<name>) and service names, so several PXE servers can share a box.",
            check: (v, f, x) => checkName(v, f, x, true),
        },
        address: { type: t.string(), required: true, doc: "The box's address on the boot network: DHCP next-server and the HTTP server's address.", check: (v, f, x) => v.ipv4(f, x) },
        interface: { type: t.string(), default: "eth0", doc: "Interface dnsmasq serves DHCP on.", check: (v, f, x) => v.interfaceName(f, x) },
        subnet: {
            type: t.string(),
            required: true,
            doc: "The boot network, e.g. `198.51.100.0/24`. Leases are static: only declared Machines get an address.",
            // A DHCP range needs room for hosts: /8 to /30.
            check: (v, f, x) => v.ipv4Network(f, x, { minPrefix: 8, maxPrefix: 30 }),
        },
        gateway: { type: t.string(), doc: "Router handed out with the leases; in the subnet.", check: (v, f, x) => v.ipv4(f, x) },
        dnsServers: {
            type: t.array(t.string()),
            default: [],
            doc: "DNS servers handed out with the leases (at most 8).",
            check: (v, f, x) => v.list(f, x, (g, y) => v.ipv4(g, y), { max: 8 }),
        },
        domain: {
            type: t.string(),
            doc: "Domain name handed out with the leases.",
            check: (v, f, x) => v.hostname(f, x, { domain: true }),
        },
        leaseSeconds: { type: t.integer, default: 3600, doc: "Lease time in seconds.", rule: { min: 120, max: 31_536_000 } },
        httpPort: { type: t.integer, default: 80, doc: "Port of the HTTP server.", rule: { min: 1, max: 65535 } },
        ipxeBootloaders: { type: t.boolean, default: true, doc: "Copy iPXE's undionly.kpxe and ipxe.efi (package `ipxe`) into the TFTP root, for NICs without iPXE firmware." },
        profiles: { type: t.map(t.object(pxeProfileType)), required: true, doc: "Boot profiles by name (1-32 lower-case letters, digits or '-').", check: checkProfiles },
        standby: { type: t.object(standbyType), doc: "Serve DHCP only while holding a Consul lock (see Standby). Without it, DHCP always runs." },
        adopt: { type: t.boolean, default: false, doc: "Take over an instance whose config pulumi-baremetal did not write (it is rewritten). Without it, create fails and changes nothing." },
    },
    outputs: {
        family: { type: t.string(["alpine", "debian"]), required: true, doc: "OS family of the box." },
        baseUrl: { type: t.string(), required: true, doc: "`http://ADDRESS[:PORT]`: where the machines' boot scripts and the profiles' files are served." },
        dhcpRole: {
            type: t.string(["active", "standby", "stopped"]),
            required: true,
            doc: "`active` (dnsmasq serves DHCP), `standby` (standby mode: waiting for the Consul lock) or `stopped` (DHCP is not served; the next update starts it), as last read.",
        },
        leases: { type: t.array(t.object(dhcpLeaseType)), required: true, doc: "dnsmasq's leases as last read." },
        files: { type: t.map(t.string()), required: true, doc: "sha256 of each generated file as last read (`missing` when gone): edits by hand show here, and the next update puts them back." },
    },
};

// ---- check -----------------------------------------------------------------------------


function checkFileSource(v: Validator, field: string, value: unknown): FileSource | undefined {
    if (isUnknown(value)) return value as FileSource;
    if (typeof value !== "object" || value === null || Array.isArray(value)) return v.fail(field, "must be { url: \"http://...\" } or { path: \"/on/the/box\" }");
    const raw = value as Record<string, unknown>;
    for (const k of Object.keys(raw)) if (!["url", "sha256", "path"].includes(k)) v.fail(`${field}.${k}`, "is not a file source field (url, sha256, path)");
    if ((raw.url === undefined) === (raw.path === undefined)) return v.fail(field, "needs exactly one of url and path");
    if (raw.path !== undefined) {
        if (raw.sha256 !== undefined) v.fail(`${field}.sha256`, "is only checked for downloads (url)");
        const p = v.absolutePath(`${field}.path`, raw.path, { where: "on the PXE box" });
        return p === undefined ? undefined : { path: p };
    }
    const url = v.url(`${field}.url`, raw.url);
    const sha256 = v.string(`${field}.sha256`, raw.sha256, { optional: true, pattern: /^[0-9a-f]{64}$/, patternHint: "is not a sha256 (64 lower-case hex digits)" });
    if (url === undefined) return undefined;
    return sha256 === undefined ? { url } : { url, sha256 };
}

function checkOverlay(v: Validator, field: string, value: unknown): OverlayFiles | undefined {
    const files = v.stringMap(field, value, { maxLength: maxOverlayPath, pattern: overlayPath, patternHint: "is not a relative path like etc/hostname" }, { maxLength: 1 << 20, allowControl: true });
    for (const p of Object.keys(files && !isUnknown(files) ? files : {})) {
        if (p.split("/").some((s) => s === "." || s === "..")) v.fail(`${field}.${p}`, "must not contain . or .. segments");
    }
    return files;
}

const profileField: FieldSpec = { type: t.object(pxeProfileType), required: true, doc: pxeProfileType.doc };

/** Profiles by name: the names become paths, so they are checked like instance names. */
function checkProfiles(v: Validator, field: string, value: unknown): Record<string, PxeProfile> | undefined {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
        return v.fail(field, "must be an object of profiles by name, e.g. { default: { kind: \"alpine\", kernel, initramfs, ... } }");
    }
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 0) return v.fail(field, "declare at least one profile");
    const out: Record<string, PxeProfile> = {};
    for (const [n, p] of entries) {
        const pname = checkName(v, `${field} key ${JSON.stringify(n)}`, n);
        const profile = checkField(v, `${field}.${n}`, profileField, p) as Partial<PxeProfile> | undefined;
        if (profile && !isUnknown(profile)) checkProfileKind(v, `${field}.${n}`, profile);
        if (pname && profile) out[pname] = profile as PxeProfile;
    }
    return out;
}

/** A debian profile boots a kernel and an initrd: Alpine's extras have no meaning there. */
function checkProfileKind(v: Validator, field: string, p: Partial<PxeProfile>): void {
    if (p.kind !== "debian") return;
    if (p.modloop !== undefined) v.fail(`${field}.modloop`, "is an Alpine thing; a debian profile has none");
    if (p.repository !== undefined) v.fail(`${field}.repository`, "is an Alpine thing (alpine_repo); a debian profile has none");
    if (p.overlay && !isUnknown(p.overlay) && Object.keys(p.overlay).length > 0) v.fail(`${field}.overlay`, "is an Alpine apkovl; a debian profile has none");
}

export function check(_olds: Record<string, unknown>, news: Record<string, unknown>): CheckOutcome<PxeServerInputs> {
    const v = new Validator();
    const inputs = checkByTable(v, erase(spec), news) as Partial<PxeServerInputs>;
    // The SDK passes the resource name; a caller without it gets the one instance most boxes have.
    if (inputs.name === undefined && (news.name === undefined || news.name === null || news.name === "")) inputs.name = "pxe";
    const { address, subnet, gateway } = inputs;
    const net = subnet && !isUnknown(subnet) ? parseCidr(subnet) : undefined;
    if (net && address && !isUnknown(address) && !inSubnet(address, net)) v.fail("address", `${address} is not in subnet ${subnet}`);
    if (net && gateway && !isUnknown(gateway) && !inSubnet(gateway, net)) v.fail("gateway", `${gateway} is not in subnet ${subnet}`);
    if (!v.ok) return { failures: v.failures };
    return { inputs: inputs as PxeServerInputs, failures: [] };
}

// ---- diff ------------------------------------------------------------------------------

export function diff(_id: string, olds: PxeServerState, news: PxeServerInputs): DiffOutcome {
    const d = diffByTable(erase(spec), olds as unknown as Record<string, unknown>, news as unknown as Record<string, unknown>);
    // A generated file edited or removed by hand (seen by refresh) is put back by an update.
    const drifted =
        d.replaces.length === 0 &&
        ((olds.files !== undefined && !sameValue(olds.files, expectedDigests(news, olds.family ?? "debian"))) ||
            // DHCP found stopped (crashed, stopped by hand): an update starts it again
            olds.dhcpRole === "stopped");
    // baseUrl is made of address and httpPort: it stays known through an update that keeps both.
    const stables = d.replaces.length === 0 && baseUrlOf(olds) === baseUrlOf(news) ? [...d.stables, "baseUrl"] : d.stables;
    return { changes: d.changed.length > 0 || drifted, replaces: d.replaces, stables, deleteBeforeReplace: true };
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

/** The server's two daemons, supervised by the box's init system and restarted 2 s after they end. */
export function pxeServices(inputs: PxeServerInputs, family: OsFamily): { dhcp: ServiceSpec; http: ServiceSpec } {
    const layout = pxeLayout(inputs.name);
    const what = `pulumi-baremetal PXE server ${inputs.name}`;
    const restart = { when: "always", delaySeconds: 2 } as const;
    return {
        dhcp: {
            name: layout.dhcpService,
            description: `${what}: DHCP and TFTP${inputs.standby ? " (while holding the Consul lock)" : ""}`,
            command: dhcpCommand(inputs, layout),
            // The ACL token for `consul lock`, when there is one.
            ...(inputs.standby?.token ? { environmentFile: { path: layout.consulEnv, optional: false } } : {}),
            reloadSignal: "HUP",
            restart,
        },
        http: { name: layout.httpService, description: `${what}: HTTP`, command: httpCommand(inputs, layout, family), restart },
    };
}

function serviceFile(family: OsFamily, service: string): string {
    return serviceFilePath({ name: service }, family);
}

/** Every generated text file with its content: what the plan writes and what drift is measured against. */
export function generatedFiles(inputs: PxeServerInputs, family: OsFamily): Map<string, string> {
    const files = configFiles(inputs);
    for (const spec of Object.values(pxeServices(inputs, family))) files.set(serviceFilePath(spec, family), renderService(spec, family));
    return files;
}

/** The generated files other than the services' definitions. */
function configFiles(inputs: PxeServerInputs): Map<string, string> {
    const layout = pxeLayout(inputs.name);
    const base = baseUrlOf(inputs);
    const files = new Map<string, string>();
    files.set(layout.dnsmasqConf, dnsmasqConf(inputs, layout));
    files.set(layout.descriptor, JSON.stringify(descriptorOf(inputs), null, 2) + "\n");
    files.set(`${layout.httpRoot}/boot.ipxe`, rootBootScript(inputs));
    files.set(`${layout.tftpRoot}/boot.ipxe`, rootBootScript(inputs));
    for (const [n, p] of Object.entries(inputs.profiles)) files.set(`${layout.httpRoot}/profiles/${n}/boot.ipxe`, profileBootScript(n, p, base));
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

/**
 * The steps apply asks about: whether what DHCP (dnsmasq's config, its service,
 * the Consul token) or HTTP (its service) starts with changed in this run.
 */
export type PxeFileStep = "dhcp-config" | "dhcp-service" | "consul-token" | "http-service";

/** The steps that put every file in place (nothing is started or restarted here). */
export function planFiles(inputs: PxeServerInputs, family: OsFamily, removedProfiles: string[] = []): Plan<PxeFileStep> {
    const layout = pxeLayout(inputs.name);
    const plan: Step<PxeFileStep>[] = [
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
    for (const [path, content] of configFiles(inputs)) {
        plan.push(step.writeFile(path, content, path === layout.dnsmasqConf ? { tag: "dhcp-config" } : {}));
    }
    const services = pxeServices(inputs, family);
    plan.push(step.installService(services.dhcp, { tag: "dhcp-service" }), step.installService(services.http, { tag: "http-service" }));
    if (inputs.standby?.token) plan.push(step.writeFile(layout.consulEnv, new Secret(`CONSUL_HTTP_TOKEN=${inputs.standby.token}\n`), { mode: "0600", tag: "consul-token" }));
    else plan.push(step.removeFile(layout.consulEnv, { tag: "consul-token" }));
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

export function planDelete(state: Pick<PxeServerInputs, "name">): Plan {
    const layout = pxeLayout(state.name);
    const plan: Plan[number][] = [];
    for (const svc of [layout.dhcpService, layout.httpService]) plan.push(step.uninstallService({ name: svc }));
    plan.push(step.run(["rm", "-rf", "--", layout.configDir, layout.dataDir, layout.leaseFile.replace(/\/[^/]+$/, ""), layout.logFile], { what: `remove the files of PXE server ${state.name}` }));
    plan.push(step.persist());
    return plan;
}

// ---- reading the live server -------------------------------------------------------------

/** $1 pid file, $2 lease file, $3 dhcp service, $4 descriptor, then the files to digest. */
export const serverReadScript = [
    serviceStateShell,
    'pid=$1 leases=$2 svc=$3 desc=$4; shift 4',
    '[ -f "$desc" ] || exit 3',
    'echo "==descriptor=="; cat "$desc"',
    'echo "==role=="',
    'if [ -f "$pid" ] && kill -0 "$(cat "$pid")" 2>/dev/null; then echo active',
    'elif [ "$(baremetal_service_state "$svc")" = active ]; then echo standby',
    "else echo stopped; fi",
    'echo "==leases=="; cat "$leases" 2>/dev/null',
    'echo "==files=="',
    'for f; do if [ -f "$f" ]; then sha256sum "$f"; else echo "missing  $f"; fi; done',
    "exit 0",
].join("\n");

/**
 * What the read script saw of DHCP: dnsmasq alive (its pid file names a live
 * process), only its service running (dnsmasq not started under it, or not yet),
 * or neither. The script says `active`, `standby` and `stopped` for these.
 */
export type DhcpSeen = "dnsmasq" | "service" | "none";

export interface LiveServer {
    descriptor?: PxeDescriptor;
    dhcp: DhcpSeen;
    leases: DhcpLease[];
    files: Record<string, string>;
}

/**
 * The DHCP role from what the box shows. Only a server in standby mode waits for
 * a lock: without one, a service running without dnsmasq is starting or failing,
 * and either way DHCP is not served.
 */
export function dhcpRoleOf(seen: DhcpSeen, standby: boolean): DhcpRole {
    if (seen === "dnsmasq") return "active";
    return seen === "service" && standby ? "standby" : "stopped";
}

/**
 * Whether a role read after this operation started DHCP may still change by
 * itself, so the read is worth repeating: dnsmasq needs a moment to write its pid
 * file, and in standby mode `consul lock` to take a free lock before it starts
 * dnsmasq (the only server of a group is active within a second or so; one read
 * at once said "standby"). A server still waiting after that is a standby.
 */
export function dhcpSettling(role: DhcpRole, started: boolean): boolean {
    return role === "stopped" || (started && role === "standby");
}

/** Parses the read script's output (exported for tests). */
export function parseServerRead(text: string): LiveServer {
    const { parts } = parseSections(text, ["descriptor", "role", "leases", "files"] as const);
    const section = (name: keyof typeof parts) => parts[name] ?? "";
    const seen = section("role").trim();
    const files: Record<string, string> = {};
    for (const line of section("files").split("\n")) {
        const m = /^([0-9a-f]{64}|missing)\s+(\S.*)$/.exec(line.trim());
        if (m) files[m[2]] = m[1];
    }
    return {
        descriptor: parseDescriptor(section("descriptor")),
        dhcp: seen === "active" ? "dnsmasq" : seen === "standby" ? "service" : "none",
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
export function restartsFrom(result: PlanResult<PxeFileStep>): { dhcp: boolean; http: boolean } {
    return {
        dhcp: result.stepChanged("dhcp-config", "dhcp-service", "consul-token"),
        http: result.stepChanged("http-service"),
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

/** Puts files and services in place; says whether DHCP was restarted. */
async function apply(host: Remote, inputs: PxeServerInputs, family: OsFamily, removedProfiles: string[], olds?: PxeServerInputs): Promise<{ dhcpRestarted: boolean }> {
    const result = await host.apply(planFiles(inputs, family, removedProfiles));
    const changed = restartsFrom(result);
    const differ = olds ? restartsBetween(olds, inputs, family) : { dhcp: false, http: false };
    const restart = { dhcp: changed.dhcp || differ.dhcp, http: changed.http || differ.http };
    await host.apply(planServices(inputs, restart));
    return { dhcpRestarted: restart.dhcp };
}

/** Reads between DHCP (re)starting and its role settling, and the pause between them. */
const settleReads = 10;
const settlePauseMs = 500;

/** The state after create or update; `started`: this operation (re)started DHCP. */
async function stateOf(host: Remote, inputs: PxeServerInputs, family: OsFamily, ctx: OperationContext, started: boolean): Promise<PxeServerState> {
    const standby = inputs.standby !== undefined;
    let live = await readLive(host, inputs, family);
    for (let i = 0; i < settleReads && live && dhcpSettling(dhcpRoleOf(live.dhcp, standby), started); i++) {
        await new Promise((r) => setTimeout(r, settlePauseMs));
        live = await readLive(host, inputs, family);
    }
    if (!live) throw new Error(`PXE server ${inputs.name} was set up on ${host.target} but its descriptor cannot be read back`);
    const dhcpRole = dhcpRoleOf(live.dhcp, standby);
    if (dhcpRole === "stopped") ctx.log.warn(`PXE server ${inputs.name} on ${host.target}: DHCP is not running; see journalctl -u ${pxeLayout(inputs.name).dhcpService} or ${pxeLayout(inputs.name).logFile}`);
    return { ...inputs, family, baseUrl: baseUrlOf(inputs), dhcpRole, leases: live.leases, files: live.files };
}

async function create(inputs: PxeServerInputs, ctx: OperationContext): Promise<{ id: string; outs: PxeServerState }> {
    const host = hostFor(inputs, ctx);
    const family = (await host.facts()).family;
    await assertOurs(host, inputs);
    await apply(host, inputs, family, []);
    return { id: `${inputs.name}@${inputs.connection.host}`, outs: await stateOf(host, inputs, family, ctx, true) };
}

async function read(_id: string, props: PxeServerState, ctx: OperationContext): Promise<PxeServerState | undefined> {
    const host = hostFor(props, ctx);
    const family = props.family ?? (await host.facts()).family;
    const live = await readLive(host, props, family);
    if (!live) return undefined;
    return { ...props, family, dhcpRole: dhcpRoleOf(live.dhcp, props.standby !== undefined), leases: live.leases, files: live.files };
}

async function update(_id: string, olds: PxeServerState, news: PxeServerInputs, ctx: OperationContext): Promise<PxeServerState> {
    const host = hostFor(news, ctx);
    const family = (await host.facts()).family;
    const removed = Object.keys(olds.profiles ?? {}).filter((n) => !(n in news.profiles));
    const { dhcpRestarted } = await apply(host, news, family, removed, olds);
    // A stopped DHCP was just started (planServices starts it) and is settling too.
    return stateOf(host, news, family, ctx, dhcpRestarted || olds.dhcpRole === "stopped");
}

async function remove(_id: string, props: PxeServerState, ctx: OperationContext): Promise<void> {
    const host = hostFor(props, ctx);
    await host.apply(planDelete(props));
}

export const pxeServer: ResourceKind<PxeServerInputs, PxeServerState> = { spec, check, diff, create, read, update, delete: remove };
