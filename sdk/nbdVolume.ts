// NbdVolume: generated from its field table (provider/resources/nbdVolume/spec.ts),
// plus the lookup a program uses to find which SAN serves a guest's volumes.
import type { ConsulConnection } from "../provider/consul/client";
import type { NbdExportLocation } from "../provider/resources/nbdVolume";

export { NbdVolume, NbdVolumeArgs } from "./generated/nbdVolume";
export type { NbdExportLocation };

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
