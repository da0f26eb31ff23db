// CephOsd: generated from its field table (provider/resources/cephOsd.ts).
export { CephOsd, CephOsdArgs } from "./generated/cephOsd";
