// pulumi-baremetal/provider: how each resource is really done. Loaded by package
// name at call time by the provider objects stored in stack state.
import type * as dynamic from "@pulumi/pulumi/dynamic";
import { adapt } from "./dynamic";
import { consulKeys } from "./resources/consulKeys";
import { raidArray } from "./resources/raidArray";
import { volumeGroup } from "./resources/volumeGroup";
import { nbdVolume } from "./resources/nbdVolume";
import { pxeServer } from "./resources/pxeServer";
import { machine } from "./resources/machine";
import { kvmGuest } from "./resources/kvmGuest";
import { ovsBridge } from "./resources/ovsBridge";
import { lxcContainer } from "./resources/lxcContainer";
import { cephOsd } from "./resources/cephOsd";
export type { KvmGuestInputs, KvmGuestState, GuestDisk, GuestNic, MigrationFigures } from "./resources/kvmGuest";
export type { OvsBridgeInputs, OvsBridgeState, OvsTunnel } from "./resources/ovsBridge";
export type { LxcContainerInputs, LxcContainerState, LxcNic, LxcMount, LxcFile, LxcLimits } from "./resources/lxcContainer";

export { InputError, RefusedError, RemoteError, FieldFailure } from "./core/errors";
// For the SDK's site check (sdk/siteCheck.ts), which loads this module by package name.
export { inSubnet, parseCidr } from "./core/ipv4";
export type { ConsulConnection } from "./consul/client";
export type { ConsulKeysInputs, ConsulKeysState } from "./resources/consulKeys";
export type { RaidArrayInputs, RaidArrayState } from "./resources/raidArray";
export type { VolumeGroupInputs, VolumeGroupState } from "./resources/volumeGroup";
export type { NbdVolumeInputs, NbdVolumeState, NbdExportLocation } from "./resources/nbdVolume";
export { findGuestExports } from "./resources/nbdVolume";
export type { PxeServerInputs, PxeServerState, PxeProfile, FileSource, StandbyConfig } from "./resources/pxeServer";
export type { MachineInputs, MachineState, MachineFacts, BootEntry, PxeServerRef } from "./resources/machine";
export type { IpmiConnection } from "./ipmi/ipmitool";
export type { CephOsdInputs, CephOsdState } from "./resources/cephOsd";

/** Every resource kind this package implements, by the SDK class name. */
export const kinds = {
    ConsulKeys: consulKeys,
    RaidArray: raidArray,
    VolumeGroup: volumeGroup,
    NbdVolume: nbdVolume,
    PxeServer: pxeServer,
    Machine: machine,
    KvmGuest: kvmGuest,
    OvsBridge: ovsBridge,
    LxcContainer: lxcContainer,
    CephOsd: cephOsd,
} as const;

export type KindName = keyof typeof kinds;

const cache = new Map<string, dynamic.ResourceProvider>();

/** The dynamic-provider implementation of one kind (called from serialised state). */
export function providerFor(kind: string): dynamic.ResourceProvider {
    let p = cache.get(kind);
    if (!p) {
        const impl = (kinds as Record<string, (typeof kinds)[KindName]>)[kind];
        if (!impl) {
            throw new Error(
                `pulumi-baremetal has no resource kind ${JSON.stringify(kind)}; the stack was written by a newer or different version. Install the version that wrote it.`,
            );
        }
        p = adapt(impl as never);
        cache.set(kind, p);
    }
    return p;
}
