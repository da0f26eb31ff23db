// CephOsd: generated from its field table (provider/resources/cephOsd/spec.ts).
export { CephOsd, CephOsdArgs } from "./generated/cephOsd";
