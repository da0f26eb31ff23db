// pulumi-baremetal: the resources users declare. Implementation lives in
// pulumi-baremetal/provider and is loaded at call time (see provider.ts).
export { ConsulKeys, ConsulKeysArgs, ConsulConnectionArgs } from "./consulKeys";
export { ConnectionArgs, secretConnection } from "./connection";
export { RaidArray, RaidArrayArgs } from "./raidArray";
export { PxeServer, PxeServerArgs, PxeProfileArgs, FileSourceArgs, StandbyArgs } from "./pxeServer";
export { Machine, MachineArgs, PxeServerRefArgs, IpmiArgs, MachinePowerArgs, WaitForSshArgs } from "./machine";
export { KvmGuest, KvmGuestArgs, KvmGuestNicArgs, KvmGuestNbdDiskArgs, KvmGuestDeviceDiskArgs, KvmGuestNbdExportArgs } from "./kvmGuest";
export { OvsBridge, OvsBridgeArgs, OvsTunnelArgs } from "./ovsBridge";
export { LxcContainer, LxcContainerArgs, LxcNicArgs, LxcMountArgs, LxcFileArgs, LxcLimitsArgs } from "./lxcContainer";
export { VolumeGroup, VolumeGroupArgs } from "./volumeGroup";
export { NbdVolume, NbdVolumeArgs, NbdExportLocation, sanForGuest } from "./nbdVolume";
export { CephOsd, CephOsdArgs } from "./cephOsd";
export { useNativeProvider, FrontDoor } from "./provider";
