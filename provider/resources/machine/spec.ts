// Machine, part spec: the inputs and state and the field table with its nested types.
import { ConsulConnection, consulConnectionType } from "../../consul/client";
import { KindSpec, ObjectType, t } from "../../core/fields";
import { connectionField, HostConnection } from "../../host";
import { IpmiConnection, ipmiConnectionType } from "../../ipmi/ipmitool";
import { checkKernelArgs, checkName } from "../../pxe/shared";

export interface PxeServerRef {
    connection: HostConnection;
    name: string;
}

export type PowerOnCreate = "none" | "on" | "pxe";

export interface MachinePower {
    onCreate: PowerOnCreate;
    cycleOnBootChange: boolean;
    offOnDelete: boolean;
}

export interface WaitForSsh {
    connection: HostConnection;
    timeoutSeconds: number;
}

export interface MachineInputs {
    mac: string;
    hostname: string;
    ip: string;
    role: string;
    profile: string;
    kernelArgs: string[];
    pxeServers: PxeServerRef[];
    consul?: ConsulConnection;
    consulPrefix: string;
    config: Record<string, string>;
    ipmi?: IpmiConnection;
    power: MachinePower;
    waitForSsh?: WaitForSsh;
    adopt: boolean;
}

/** What one PXE server holds for this machine, as last read ("" when missing). */
export interface BootEntry {
    server: string;
    baseUrl: string;
    lease: string;
    bootScript: string;
}

export interface MachineFacts {
    kernel: string;
    bootedProfile?: string;
    disks: { name: string; sizeBytes: number }[];
    nics: { name: string; mac: string }[];
    addresses: string[];
}

export interface MachineState extends MachineInputs {
    entries: BootEntry[];
    consulNode?: { address: string; meta: Record<string, string> };
    facts?: MachineFacts;
    bootSeconds?: number;
}

// ---- the field table ----------------------------------------------------------------------

const pxeServerRefType: ObjectType = {
    name: "PxeServerRef",
    doc: "A PXE server as a Machine needs it: how to log into its box, and its instance name (a PxeServer's outputs; the SDK takes the PxeServer itself too).",
    fields: {
        connection: connectionField("The PXE server's box.", []),
        name: { type: t.string(), default: "pxe", doc: "The PxeServer's instance name.", check: (v, f, x) => checkName(v, f, x) },
    },
};

const machinePowerType: ObjectType = {
    name: "MachinePower",
    doc: "What the BMC (ipmi) does with the machine; every action but `none` needs ipmi.",
    fields: {
        onCreate: {
            type: t.string(["none", "on", "pxe"]),
            defaultDoc: "`pxe` with ipmi, else `none`",
            doc: "On create: `pxe` (next boot from the network, then power on, or cycle when on), `on` (power on when off) or `none`.",
        },
        cycleOnBootChange: { type: t.boolean, default: false, doc: "Cycle the machine into PXE when ip, hostname, profile or kernelArgs change." },
        offOnDelete: { type: t.boolean, default: false, doc: "Power off on delete. Without it, deleting a Machine only removes its entries and registration." },
    },
};

const waitForSshType: ObjectType = {
    name: "WaitForSsh",
    doc: "Waiting for the machine to answer SSH after a power action, then reading its facts.",
    fields: {
        connection: connectionField("How to reach the booted machine.", []),
        timeoutSeconds: { type: t.integer, default: 600, doc: "Give up after this many seconds.", rule: { min: 10, max: 7200 } },
    },
};

const bootEntryType: ObjectType = {
    name: "BootEntry",
    doc: "What one PXE server holds for the machine, as last read (\"\" when missing).",
    fields: {
        server: { type: t.string(), required: true, doc: "`<name>@<host>` of the PXE server." },
        baseUrl: { type: t.string(), required: true, doc: "The PXE server's base URL." },
        lease: { type: t.string(), required: true, doc: "The machine's file in the server's dhcp-hostsdir (its static lease)." },
        bootScript: { type: t.string(), required: true, doc: "The machine's per-MAC iPXE script." },
    },
};

const catalogNodeType: ObjectType = {
    name: "CatalogNode",
    doc: "A node in Consul's catalog.",
    fields: {
        address: { type: t.string(), required: true, doc: "The node's address." },
        meta: { type: t.map(t.string()), required: true, doc: "The node's meta (mac, role, profile, ...)." },
    },
};

const machineFactsType: ObjectType = {
    name: "MachineFacts",
    doc: "What the booted machine says about itself over SSH.",
    fields: {
        kernel: { type: t.string(), required: true, doc: "The running kernel's release (`uname -r`)." },
        bootedProfile: { type: t.string(), doc: "The profile the running system booted (`baremetal.profile=` on its command line)." },
        disks: {
            type: t.array(t.object({
                name: "MachineDisk",
                doc: "A disk of a booted machine.",
                fields: {
                    name: { type: t.string(), required: true, doc: "Kernel name (`sda`, `vda`, `nvme0n1`)." },
                    sizeBytes: { type: t.integer, required: true, doc: "Size in bytes." },
                },
            })),
            required: true,
            doc: "Its disks (no loop, RAM, md, dm, nbd or optical devices).",
        },
        nics: {
            type: t.array(t.object({
                name: "MachineNic",
                doc: "A network interface of a booted machine.",
                fields: {
                    name: { type: t.string(), required: true, doc: "Interface name." },
                    mac: { type: t.string(), required: true, doc: "Its MAC." },
                },
            })),
            required: true,
            doc: "Its network interfaces but lo.",
        },
        addresses: { type: t.array(t.string()), required: true, doc: "Its addresses with prefix length, link-local and loopback left out." },
    },
};

export const spec: KindSpec<MachineInputs, MachineState> = {
    kind: "Machine",
    doc: "A box that boots over the network, identified by the MAC of its eth0: its static lease and per-MAC boot entry on every PXE server it names, its Consul catalog node (an external node with meta mac, role, profile) and the configuration it reads at boot, optional power control through its BMC, and an optional wait for SSH with its facts read back. Entries and keys that exist with other content are refused unless adopt is set.",
    id: "the MAC, lower case with colons, e.g. `52:54:00:b0:00:14`.",
    example: `declare const pxe: PxeServer; // the PxeServer declared elsewhere in the program (see its page)
new Machine("web01", {
    mac: "52:54:00:b0:00:14",
    hostname: "web01",
    ip: "198.51.100.20",
    profile: "default",
    pxeServers: [pxe],
    ipmi: { address: "198.18.3.20", user: "admin", password: bmcPassword },
    power: { onCreate: "pxe" },
});`,
    exampleSecrets: { bmcPassword: "bmcPassword" },
    inputs: {
        mac: { type: t.string(), required: true, change: "replace", doc: "MAC of its eth0 (the machine's identity); dashes are accepted for colons.", check: (v, f, x) => v.mac(f, x) },
        hostname: { type: t.string(), required: true, doc: "Host name: its dhcp-host name and its Consul node name.", check: (v, f, x) => v.hostname(f, x) },
        ip: { type: t.string(), required: true, doc: "The address of its static lease.", check: (v, f, x) => v.ipv4(f, x) },
        role: {
            type: t.string(),
            default: "machine",
            doc: "Free text for programs (the catalog node's meta `role`).",
            rule: { maxLength: 64, pattern: /^[a-z0-9][a-z0-9_.-]*$/, patternHint: "is not a role name (lower-case letters, digits, _ . -)" },
        },
        profile: { type: t.string(), required: true, doc: "The profile it boots: one every named PXE server has.", check: (v, f, x) => checkName(v, f, x) },
        kernelArgs: { type: t.array(t.string()), default: [], doc: "Kernel arguments of this machine, after the profile's (one word each).", check: (v, f, x) => checkKernelArgs(v, f, x) },
        pxeServers: {
            type: t.array(t.object(pxeServerRefType)),
            required: true,
            doc: "Every PXE server that boots it (at most 16): adding or removing one updates in place.",
            rule: { minItems: 1, maxItems: 16 },
        },
        consul: { type: t.object(consulConnectionType), doc: "Where to register it (an external catalog node) and write its configuration." },
        consulPrefix: {
            type: t.string(),
            defaultDoc: "`machines/<hostname>/`",
            doc: "Root of its configuration in Consul's K/V (a trailing `/` is added).",
            check: (v, f, x) => v.kvPrefix(f, x),
        },
        config: {
            type: t.map(t.string()),
            default: {},
            doc: "Configuration the box reads at boot, by key relative to consulPrefix (needs consul).",
            check: (v, f, x) => v.kvMap(f, x, { maxValueLength: 512 * 1024 }),
        },
        ipmi: { type: t.object(ipmiConnectionType), doc: "Its BMC, for the power actions." },
        power: { type: t.object(machinePowerType), defaultDoc: "each field's default", doc: "Power actions through the BMC." },
        waitForSsh: { type: t.object(waitForSshType), doc: "Wait until it answers SSH after a power action, then read its facts." },
        adopt: {
            type: t.boolean,
            default: false,
            doc: "Take over lease and boot entries and Consul keys that exist with other content (they are rewritten). Without it, create fails and changes nothing.",
        },
    },
    outputs: {
        entries: { type: t.array(t.object(bootEntryType)), required: true, doc: "What each PXE server holds for it, as last read." },
        consulNode: { type: t.object(catalogNodeType), doc: "Its Consul catalog node as last read; absent when not registered." },
        facts: { type: t.object(machineFactsType), doc: "Kernel, booted profile, disks, NICs and addresses: read over SSH after it booted (waitForSsh)." },
        bootSeconds: { type: t.number, doc: "Seconds from the power action to SSH answering, when both happened in the last operation." },
    },
};
