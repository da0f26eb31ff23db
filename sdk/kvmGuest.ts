// KvmGuest: generated from its field table (provider/resources/kvmGuest/spec.ts).
export { KvmGuest, KvmGuestArgs } from "./generated/kvmGuest";
export { KvmGuestNicArgs, KvmGuestNbdDiskArgs, KvmGuestDeviceDiskArgs, KvmGuestNbdExportArgs } from "./generated/types";
// Kept for modules that imported it from here (it lives in provider.ts).
export { outputsOf } from "./provider";
