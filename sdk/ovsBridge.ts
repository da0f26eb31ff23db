import * as pulumi from "@pulumi/pulumi";
import { ConnectionArgs, secretConnection } from "./connection";
import type { OvsBridgeInputs, OvsBridgeState } from "../provider/resources/ovsBridge";
import { BaremetalResource, OutputOnly, outputsOf } from "./provider";

/** Outputs that are not inputs, and inputs the provider defaults (see outputsOf). */
const bridgeOutputs: OutputOnly<OvsBridgeState, OvsBridgeInputs> = { ports: undefined, addresses: undefined, movedAddresses: undefined, tunnelStates: undefined };
const bridgeDefaults = ["network", "uplink", "moveAddresses", "adopt"];

/** An OpenVPN tunnel (tap, static key) that is a port of the bridge. */
export interface OvsTunnelArgs {
    /** The tap's name on this box (at most 15 characters). */
    name: pulumi.Input<string>;
    /** UDP port openvpn listens on here (default 1194). */
    port?: pulumi.Input<number>;
    /** The box to dial; omit it on the side that listens. */
    remote?: pulumi.Input<string>;
    /** UDP port of the remote side (default: port). */
    remotePort?: pulumi.Input<number>;
    /** OpenVPN static key (`openvpn --genkey secret FILE`); kept secret. */
    key: pulumi.Input<string>;
}

export interface OvsBridgeArgs {
    /** The box. Changing its host replaces the bridge. */
    connection: pulumi.Input<ConnectionArgs>;
    /** Bridge name (at most 15 characters). Changing it replaces the bridge. */
    name: pulumi.Input<string>;
    /** The physical switch it replicates (lan, wan, storage ...), recorded on the bridge. */
    network?: pulumi.Input<string>;
    /** A NIC of the box on that switch, added as a port. */
    uplink?: pulumi.Input<string>;
    /** Move the uplink's IPv4 addresses and routes onto the bridge (needed when it has any). */
    moveAddresses?: pulumi.Input<boolean>;
    /** OpenVPN tunnels to or from boxes with (or without) a NIC on that switch. */
    tunnels?: pulumi.Input<pulumi.Input<OvsTunnelArgs>[]>;
    /** Take over an existing bridge of the same name. */
    adopt?: pulumi.Input<boolean>;
}

/**
 * An Open vSwitch bridge replicating a physical switch, uplinked by a NIC or by
 * OpenVPN tunnels. ID: `NAME@HOST`.
 */
export class OvsBridge extends BaremetalResource {
    declare readonly name: pulumi.Output<string>;
    declare readonly network: pulumi.Output<string | undefined>;
    /** Ports as last read (uplink, tunnels, guests' taps, containers' veths). */
    declare readonly ports: pulumi.Output<string[]>;
    /** IPv4 addresses on the bridge's interface as last read. */
    declare readonly addresses: pulumi.Output<string[]>;
    declare readonly movedAddresses: pulumi.Output<string[]>;
    /** Tunnel name to the state of its openvpn service. */
    declare readonly tunnelStates: pulumi.Output<Record<string, string>>;
    /** The tunnels, keys included (secret). */
    declare readonly tunnels: pulumi.Output<{ name: string; port: number; remote?: string; remotePort?: number; key: string }[]>;

    constructor(name: string, args: OvsBridgeArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            "OvsBridge",
            name,
            { ...outputsOf(bridgeOutputs), ...outputsOf(bridgeDefaults), ...args, connection: secretConnection(args.connection), tunnels: args.tunnels === undefined ? [] : pulumi.secret(args.tunnels) },
            { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "tunnels"] },
        );
    }
}
