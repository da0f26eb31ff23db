// PxeServer, part spec: the inputs and state, the field table with its nested
// types, and the validators the table names (file sources, overlays, profiles).
import { checkField, FieldSpec, KindSpec, ObjectType, t } from "../../core/fields";
import { isUnknown, Validator } from "../../core/validate";
import { connectionField, HostConnection } from "../../host";
import type { OsFamily } from "../../host";
import type { DhcpLease } from "../../parsers/dnsmasq";
import { maxOverlayPath, OverlayFiles } from "../../pxe/apkovl";
import { checkKernelArgs, checkName } from "../../pxe/shared";

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
    example: `new PxeServer("pxe1", {
    connection,
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
    exampleHost: "198.51.100.10",
    deleteBeforeReplace: true,
    inputs: {
        connection: connectionField("The PXE box."),
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
        family: { type: t.string(["alpine", "debian", "debian-openrc"]), required: true, doc: "OS family of the box (`debian-openrc`: Debian with OpenRC as its init system)." },
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

// ---- validators the table names ----------------------------------------------------------

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
