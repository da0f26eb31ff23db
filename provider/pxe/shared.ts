// What PxeServer and Machine share without importing each other: the layout of a
// PXE server instance on its box (both write there over SSH), the descriptor the
// server leaves for machines to read, and the validators of PXE names and kernel
// arguments (MACs, addresses, URLs ... are core/validate.ts's). Pure: no I/O.
import { Validator } from "../core/validate";

// ---- validators (each names the field and says what a good value looks like) -------

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
