// What PxeServer and Machine share without importing each other: the layout of a
// PXE server instance on its box (both write there over SSH), the descriptor the
// server leaves for machines to read, and the validators of network values.
// Pure: no I/O.
import { isUnknown, Validator } from "../core/validate";

// ---- validators (each names the field and says what a good value looks like) -------

const macPattern = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** A MAC address, normalised to lower case with colons (52:54:00:12:34:56). */
export function checkMac(v: Validator, field: string, value: unknown): string | undefined {
    if (isUnknown(value)) return value as string;
    const raw = v.string(field, value, { maxLength: 17 });
    if (raw === undefined) return undefined;
    const mac = raw.toLowerCase().replace(/-/g, ":");
    if (!macPattern.test(mac)) return v.fail(field, `${JSON.stringify(raw)} is not a MAC address like 52:54:00:12:34:56`);
    if (parseInt(mac.slice(0, 2), 16) & 1) return v.fail(field, `${mac} is a multicast address; a NIC's MAC has the lowest bit of its first octet clear`);
    if (mac === "00:00:00:00:00:00") return v.fail(field, "00:00:00:00:00:00 is not a NIC's address");
    return mac;
}

export function isIpv4(s: string): boolean {
    const parts = s.split(".");
    return parts.length === 4 && parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255);
}

export function ipv4ToNumber(s: string): number {
    return s.split(".").reduce((n, p) => n * 256 + Number(p), 0);
}

export function numberToIpv4(n: number): string {
    return [24, 16, 8, 0].map((s) => (n >>> s) & 255).join(".");
}

export function checkIpv4(v: Validator, field: string, value: unknown, optional = false): string | undefined {
    if (isUnknown(value)) return value as string;
    const s = v.string(field, value, { optional, maxLength: 15 });
    if (s === undefined) return undefined;
    if (!isIpv4(s)) return v.fail(field, `${JSON.stringify(s)} is not an IPv4 address like 198.51.100.20`);
    return s;
}

export interface Ipv4Cidr {
    network: string;
    prefixLength: number;
}

export function parseCidr(s: string): Ipv4Cidr | undefined {
    const m = /^([0-9.]+)\/([0-9]{1,2})$/.exec(s);
    if (!m || !isIpv4(m[1]) || Number(m[2]) > 32) return undefined;
    return { network: m[1], prefixLength: Number(m[2]) };
}

export function netmaskOf(prefixLength: number): string {
    return numberToIpv4(prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0);
}

export function inSubnet(ip: string, cidr: Ipv4Cidr): boolean {
    const mask = cidr.prefixLength === 0 ? 0 : (0xffffffff << (32 - cidr.prefixLength)) >>> 0;
    return ((ipv4ToNumber(ip) & mask) >>> 0) === ((ipv4ToNumber(cidr.network) & mask) >>> 0);
}

/** An IPv4 network in CIDR form whose host bits are zero (198.51.100.0/24). */
export function checkCidr(v: Validator, field: string, value: unknown): string | undefined {
    if (isUnknown(value)) return value as string;
    const s = v.string(field, value, { maxLength: 18 });
    if (s === undefined) return undefined;
    const c = parseCidr(s);
    if (!c || c.prefixLength < 8 || c.prefixLength > 30) return v.fail(field, `${JSON.stringify(s)} is not an IPv4 network like 198.51.100.0/24 (prefix /8 to /30)`);
    if (!inSubnet(c.network, c) || ipv4ToNumber(c.network) !== ((ipv4ToNumber(c.network) & ipv4ToNumber(netmaskOf(c.prefixLength))) >>> 0)) {
        return v.fail(field, `${s} has host bits set; the network is ${numberToIpv4((ipv4ToNumber(c.network) & ipv4ToNumber(netmaskOf(c.prefixLength))) >>> 0)}/${c.prefixLength}`);
    }
    return s;
}

const hostnamePattern = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** A DNS host name (RFC 1123), lower case: it becomes a Consul node name and a dhcp-host name. */
export function checkHostname(v: Validator, field: string, value: unknown): string | undefined {
    return v.string(field, value, { maxLength: 253, pattern: hostnamePattern, patternHint: "is not a host name (lower-case letters, digits and '-', dot-separated labels, like storage1)" });
}

/** An http(s) URL without credentials, whitespace or shell/iPXE metacharacters. */
export function checkUrl(v: Validator, field: string, value: unknown, optional = false): string | undefined {
    if (isUnknown(value)) return value as string;
    const s = v.string(field, value, { optional, maxLength: 2048 });
    if (s === undefined) return undefined;
    let u: URL;
    try {
        u = new URL(s);
    } catch {
        return v.fail(field, `${JSON.stringify(s)} is not a URL like http://dl-cdn.alpinelinux.org/alpine/v3.20/main`);
    }
    if (u.protocol !== "http:" && u.protocol !== "https:") return v.fail(field, `${JSON.stringify(s)} must be an http:// or https:// URL`);
    if (u.username || u.password) return v.fail(field, "must not carry credentials (user:password@); they would be readable by every PXE client");
    if (!/^[A-Za-z0-9_.,:/@+%~?&=-]+$/.test(s)) return v.fail(field, `${JSON.stringify(s)} contains characters a kernel command line or iPXE script cannot carry (spaces, quotes, $, {, }, ;, #)`);
    return s;
}

const kernelArgPattern = /^[A-Za-z0-9_.,:=/@+%~?&-]+$/;

/** Kernel command-line words: no spaces inside a word, nothing iPXE would expand ($, {}). */
export function checkKernelArgs(v: Validator, field: string, value: unknown): string[] | undefined {
    return v.list(field, value, (f, x) => v.string(f, x, { maxLength: 1024, pattern: kernelArgPattern, patternHint: "is not one kernel argument (letters, digits and _ . , : = / @ + % ~ ? & -; no spaces, quotes, $ or braces)" }), { optional: true, max: 64 });
}

const namePattern = /^[a-z][a-z0-9-]{0,31}$/;

/** A name that becomes part of paths and service names (PXE instance, profile). */
export function checkName(v: Validator, field: string, value: unknown, optional = false): string | undefined {
    return v.string(field, value, { optional, maxLength: 32, pattern: namePattern, patternHint: "must be 1-32 lower-case letters, digits or '-', starting with a letter" });
}

export function isName(s: string): boolean {
    return namePattern.test(s);
}

/** A network interface name (eth0, enp1s0, br-lan). */
export function checkInterface(v: Validator, field: string, value: unknown): string | undefined {
    return v.string(field, value, { maxLength: 15, pattern: /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/, patternHint: "is not an interface name like eth0" });
}

// ---- layout of a PXE server instance on its box -------------------------------------

/** Every path one PXE server instance uses; several instances can share a box. */
export interface PxeLayout {
    configDir: string;
    dnsmasqConf: string;
    /** dnsmasq --dhcp-hostsdir: one file per machine, re-read by dnsmasq on change. */
    hostsDir: string;
    /** The descriptor machines read: base URL, profiles. */
    descriptor: string;
    /** Consul token for the standby supervisor (mode 0600). */
    consulEnv: string;
    dataDir: string;
    httpRoot: string;
    /** Per-MAC iPXE scripts, served over HTTP. */
    bootDir: string;
    tftpRoot: string;
    leaseFile: string;
    logFile: string;
    pidFile: string;
    dhcpService: string;
    httpService: string;
}

export function pxeLayout(instance: string): PxeLayout {
    if (!isName(instance)) throw new Error(`PXE instance name ${JSON.stringify(instance)} is not a name`);
    const configDir = `/etc/baremetal/pxe/${instance}`;
    const dataDir = `/srv/baremetal/pxe/${instance}`;
    return {
        configDir,
        dnsmasqConf: `${configDir}/dnsmasq.conf`,
        hostsDir: `${configDir}/hosts.d`,
        descriptor: `${configDir}/server.json`,
        consulEnv: `${configDir}/consul.env`,
        dataDir,
        httpRoot: `${dataDir}/http`,
        bootDir: `${dataDir}/http/boot`,
        tftpRoot: `${dataDir}/tftp`,
        leaseFile: `/var/lib/baremetal/pxe/${instance}/dnsmasq.leases`,
        logFile: `/var/log/baremetal-pxe-${instance}.log`,
        pidFile: `/run/baremetal-pxe-${instance}.pid`,
        dhcpService: `baremetal-pxe-${instance}-dhcp`,
        httpService: `baremetal-pxe-${instance}-http`,
    };
}

/** The file name of a machine's entries: its MAC with dashes (what iPXE's ${mac:hexhyp} gives). */
export function macFileName(mac: string): string {
    return mac.replace(/:/g, "-");
}

export function hostsFileOf(layout: PxeLayout, mac: string): string {
    return `${layout.hostsDir}/${macFileName(mac)}.conf`;
}

export function bootScriptOf(layout: PxeLayout, mac: string): string {
    return `${layout.bootDir}/${macFileName(mac)}.ipxe`;
}

/** What a PxeServer leaves on its box for machines: written by PxeServer, read by Machine. */
export interface PxeDescriptor {
    instance: string;
    /** http://ADDRESS:PORT, the root of the HTTP tree. */
    baseUrl: string;
    /** Profile name to its kind. */
    profiles: Record<string, "alpine" | "debian">;
}

export function parseDescriptor(text: string): PxeDescriptor | undefined {
    try {
        const d = JSON.parse(text) as PxeDescriptor;
        return typeof d.baseUrl === "string" && d.profiles && typeof d.profiles === "object" ? d : undefined;
    } catch {
        return undefined;
    }
}

/** The URL of a profile's iPXE script. Machines chain to it from their per-MAC script. */
export function profileScriptUrl(baseUrl: string, profile: string): string {
    return `${baseUrl}/profiles/${profile}/boot.ipxe`;
}

/** Marks files this package wrote, so adopt/refuse decisions can tell them from hand-made ones. */
export const managedMarker = "managed by pulumi-baremetal";
