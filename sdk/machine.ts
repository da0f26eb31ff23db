import * as pulumi from "@pulumi/pulumi";
import type { BootEntry, MachineFacts, MachineInputs, MachineState } from "../provider/resources/machine";
import { ConnectionArgs, secretConnection } from "./connection";
import type { ConsulConnectionArgs } from "./consulKeys";
import { BaremetalResource, OutputOnly, outputsOf } from "./provider";
import { PxeServer } from "./pxeServer";

/** A PXE server as a Machine needs it (a PxeServer resource can be passed instead). */
export interface PxeServerRefArgs {
    connection: pulumi.Input<ConnectionArgs>;
    /** The PxeServer's instance name. */
    name: pulumi.Input<string>;
}

/** The machine's BMC, reached with ipmitool from where `pulumi up` runs. */
export interface IpmiArgs {
    address: pulumi.Input<string>;
    /** UDP port; 623 when omitted. */
    port?: pulumi.Input<number>;
    user: pulumi.Input<string>;
    /** Kept secret; handed to ipmitool through its environment (-E), never in argv. */
    password: pulumi.Input<string>;
    /** `lanplus` (default) or `lan`. */
    interface?: pulumi.Input<"lanplus" | "lan">;
    /** lanplus cipher suite; 3 when omitted. */
    cipherSuite?: pulumi.Input<number>;
}

export interface MachinePowerArgs {
    /** On create: `pxe` (default with ipmi: next boot from PXE, then power on or cycle), `on` (power on if off) or `none`. */
    onCreate?: pulumi.Input<"none" | "on" | "pxe">;
    /** Cycle into PXE when ip, hostname, profile or kernelArgs change. Default false. */
    cycleOnBootChange?: pulumi.Input<boolean>;
    /** Power off on delete. Default false: deleting a Machine only removes its entries. */
    offOnDelete?: pulumi.Input<boolean>;
}

export interface WaitForSshArgs {
    /** How to reach the booted machine. */
    connection: pulumi.Input<ConnectionArgs>;
    /** Give up after this long; 600 when omitted. */
    timeoutSeconds?: pulumi.Input<number>;
}

export interface MachineArgs {
    /** MAC of eth0: the machine's identity. Changing it replaces the machine. */
    mac: pulumi.Input<string>;
    hostname: pulumi.Input<string>;
    /** The address of its static lease. */
    ip: pulumi.Input<string>;
    /** Free text for programs (catalog meta `role`); `machine` when omitted. */
    role?: pulumi.Input<string>;
    /** A profile every named PXE server has. */
    profile: pulumi.Input<string>;
    /** Kernel arguments of this machine, after the profile's (one word each). */
    kernelArgs?: pulumi.Input<pulumi.Input<string>[]>;
    /** Every PXE server that boots it: adding or removing one updates in place. */
    pxeServers: (PxeServer | pulumi.Input<PxeServerRefArgs>)[];
    /** Where to register it (an external catalog node) and write its configuration. */
    consul?: pulumi.Input<ConsulConnectionArgs>;
    /** Root of its configuration in K/V; `machines/<hostname>/` when omitted. */
    consulPrefix?: pulumi.Input<string>;
    /** Configuration the box reads at boot, by key relative to consulPrefix. */
    config?: pulumi.Input<Record<string, pulumi.Input<string>>>;
    ipmi?: pulumi.Input<IpmiArgs>;
    power?: pulumi.Input<MachinePowerArgs>;
    /** Wait until it answers SSH after a power action, then read its facts. */
    waitForSsh?: pulumi.Input<WaitForSshArgs>;
    /** Take over entries and keys that exist with other content. */
    adopt?: pulumi.Input<boolean>;
}

/** Outputs that are not inputs, and inputs the provider defaults (see outputsOf). */
const machineOutputs: OutputOnly<MachineState, MachineInputs> = { entries: undefined, consulNode: undefined, facts: undefined, bootSeconds: undefined };
const machineDefaults = ["role", "kernelArgs", "consulPrefix", "config", "power", "adopt"];

/**
 * A box that boots over the network: its static lease and per-MAC boot entry on
 * every PXE server it names, its Consul catalog node and configuration, optional
 * BMC power control, optional wait for SSH with facts read back. ID: the MAC.
 */
export class Machine extends BaremetalResource {
    declare readonly mac: pulumi.Output<string>;
    declare readonly hostname: pulumi.Output<string>;
    declare readonly ip: pulumi.Output<string>;
    declare readonly profile: pulumi.Output<string>;
    /** What each PXE server holds for it, as last read. */
    declare readonly entries: pulumi.Output<BootEntry[]>;
    /** The Consul catalog node as last read. */
    declare readonly consulNode: pulumi.Output<{ address: string; meta: Record<string, string> } | undefined>;
    /** Kernel, booted profile, disks, NICs, addresses: read over SSH after it booted. */
    declare readonly facts: pulumi.Output<MachineFacts | undefined>;
    /** Seconds from the power action to SSH answering. */
    declare readonly bootSeconds: pulumi.Output<number | undefined>;

    constructor(name: string, args: MachineArgs, opts?: pulumi.CustomResourceOptions) {
        const pxeServers = args.pxeServers.map((s) =>
            s instanceof PxeServer ? { connection: s.connection, name: s.name } : pulumi.output(s).apply((r) => ({ ...r, connection: secretConnection(r.connection) })),
        );
        const ipmi = args.ipmi === undefined ? undefined : pulumi.output(args.ipmi).apply((i) => ({ ...i, password: pulumi.secret(i.password) }));
        const waitForSsh = args.waitForSsh === undefined ? undefined : pulumi.output(args.waitForSsh).apply((w) => ({ ...w, connection: secretConnection(w.connection) }));
        const consul = args.consul === undefined ? undefined : pulumi.output(args.consul).apply((c) => (c.token === undefined ? c : { ...c, token: pulumi.secret(c.token) }));
        super(
            "Machine",
            name,
            { ...outputsOf(machineDefaults), ...args, pxeServers, ipmi, waitForSsh, consul, ...outputsOf(machineOutputs) },
            { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "pxeServers", "ipmi", "waitForSsh"] },
        );
    }
}
