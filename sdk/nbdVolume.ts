import * as pulumi from "@pulumi/pulumi";
import type { ConsulConnection } from "../provider/consul/client";
import type { NbdExportLocation, NbdVolumeInputs, NbdVolumeState } from "../provider/resources/nbdVolume";
import { ConnectionArgs, secretConnection } from "./connection";
import { ConsulConnectionArgs } from "./consulKeys";
import { BaremetalResource, OutputOnly, outputsOf } from "./provider";

export type { NbdExportLocation };

/** Outputs that are not inputs, and inputs the provider defaults (see outputsOf). */
const volumeOutputs: OutputOnly<NbdVolumeState, NbdVolumeInputs> = {
    sizeBytes: undefined, lvUuid: undefined, lvPath: undefined, serving: undefined, uri: undefined, serviceId: undefined, registered: undefined,
};
const volumeDefaults = ["requestedBytes", "exportName", "readOnly", "allowedClients", "exportAddress", "consulNode", "serviceName", "adopt", "deleteData"];

export interface NbdVolumeArgs {
    /** The SAN box or VM running LVM and nbd-server. Changing its host re-creates the volume (needs deleteData). */
    connection: pulumi.Input<ConnectionArgs>;
    /** The volume group, e.g. `vg.name`. Changing it re-creates the volume (needs deleteData). */
    volumeGroup: pulumi.Input<string>;
    /** The logical volume name. Changing it re-creates the volume (needs deleteData). */
    name: pulumi.Input<string>;
    /**
     * Size with a binary unit: `256MiB`, `20GiB`, `1TiB`. Growing happens online, in
     * place; shrinking is refused (make a new volume and copy instead).
     */
    size: pulumi.Input<string>;
    /** TCP port of this export's own nbd-server process (one process per export). */
    port: pulumi.Input<number>;
    /** The name clients ask for; the LV name when omitted. */
    exportName?: pulumi.Input<string>;
    /** Serve read-only. Changing it restarts this export's server only. */
    readOnly?: pulumi.Input<boolean>;
    /** Addresses or networks allowed to connect (nbd-server authfile); everyone when empty. Changes restart nothing. */
    allowedClients?: pulumi.Input<pulumi.Input<string>[]>;
    /** MAC address of eth0 of the KVM guest that owns the volume. */
    owner: pulumi.Input<string>;
    /** Register the export in Consul's catalog (service `nbd`, meta export/host/port/owner). */
    consul?: pulumi.Input<ConsulConnectionArgs>;
    /** The address clients use (e.g. the SAN's STORAGE address); the connection host when omitted. */
    exportAddress?: pulumi.Input<string>;
    /** The external Consul node carrying the SAN's exports; `<exportAddress>-nbd` when omitted. */
    consulNode?: pulumi.Input<string>;
    /** Consul service name; `nbd` when omitted. */
    serviceName?: pulumi.Input<string>;
    /** Take over an existing LV of this name that pulumi-baremetal did not create (its data is kept). */
    adopt?: pulumi.Input<boolean>;
    /**
     * Opt-in to losing the data: without it, delete (and re-creating changes) are refused
     * and the LV, its export and its Consul entry stay. With it, delete removes all three.
     */
    deleteData?: pulumi.Input<boolean>;
}

/**
 * An LVM logical volume exported over NBD and registered in Consul with its owner.
 * ID: `<host>/<vg>/<lv>`.
 */
export class NbdVolume extends BaremetalResource {
    declare readonly volumeGroup: pulumi.Output<string>;
    declare readonly name: pulumi.Output<string>;
    declare readonly size: pulumi.Output<string>;
    /** The LV's size as LVM reports it. */
    declare readonly sizeBytes: pulumi.Output<number>;
    declare readonly exportName: pulumi.Output<string>;
    declare readonly port: pulumi.Output<number>;
    declare readonly readOnly: pulumi.Output<boolean>;
    declare readonly allowedClients: pulumi.Output<string[]>;
    declare readonly owner: pulumi.Output<string>;
    declare readonly exportAddress: pulumi.Output<string>;
    declare readonly consulNode: pulumi.Output<string>;
    /** `nbd://host:port/export` */
    declare readonly uri: pulumi.Output<string>;
    declare readonly lvPath: pulumi.Output<string>;
    declare readonly lvUuid: pulumi.Output<string>;
    /** Is the export's nbd-server running (as last read)? */
    declare readonly serving: pulumi.Output<boolean>;
    /** Is the Consul entry present (as last read)? */
    declare readonly registered: pulumi.Output<boolean>;
    declare readonly serviceId: pulumi.Output<string | undefined>;

    constructor(name: string, args: NbdVolumeArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            "NbdVolume",
            name,
            {
                ...outputsOf(volumeDefaults),
                ...args,
                connection: secretConnection(args.connection),
                // The whole Consul connection is secret when it carries a token.
                consul: args.consul === undefined ? undefined : pulumi.output(args.consul).apply((c) => (c.token ? pulumi.secret(c) : c)),
                ...outputsOf(volumeOutputs),
            },
            opts,
        );
    }
}

/**
 * Which SAN serves the volumes of the guest whose eth0 has this MAC: its exports
 * as registered by NbdVolume, from one Consul catalog lookup. Runs when called
 * (e.g. while the program builds a KvmGuest's disks), not at deploy time.
 */
export async function sanForGuest(consul: ConsulConnection, mac: string, serviceName = "nbd"): Promise<NbdExportLocation[]> {
    // Loaded by package name, like the dynamic providers: sdk/ imports only types from provider/.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const impl = require("pulumi-baremetal/provider") as typeof import("../provider");
    return impl.findGuestExports(consul, mac, serviceName);
}
