// Machine: generated from its field table (provider/resources/machine/spec.ts). The class
// here adds one thing the table cannot say: a PxeServer resource can stand for the
// PXE server it names (its connection and instance name).
import * as pulumi from "@pulumi/pulumi";
import * as generated from "./generated/machine";
import type { PxeServerRefArgs } from "./generated/types";
import { PxeServer } from "./pxeServer";

export { IpmiArgs, MachinePowerArgs, PxeServerRefArgs, WaitForSshArgs } from "./generated/types";

export interface MachineArgs extends Omit<generated.MachineArgs, "pxeServers"> {
    /** Every PXE server that boots it (a PxeServer, or its connection and name): adding or removing one updates in place. */
    pxeServers: (PxeServer | pulumi.Input<PxeServerRefArgs>)[];
}

/**
 * A box that boots over the network, identified by the MAC of its eth0 (see the
 * generated class for every field).
 */
export class Machine extends generated.Machine {
    constructor(name: string, args: MachineArgs, opts?: pulumi.CustomResourceOptions) {
        const pxeServers = args.pxeServers.map((s): pulumi.Input<PxeServerRefArgs> => (s instanceof PxeServer ? { connection: s.connection, name: s.name } : s));
        super(name, { ...args, pxeServers }, opts);
    }
}
