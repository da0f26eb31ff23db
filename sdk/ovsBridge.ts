// OvsBridge: generated from its field table (provider/resources/ovsBridge.ts).
export { OvsBridge, OvsBridgeArgs } from "./generated/ovsBridge";
export { OvsTunnelArgs } from "./generated/types";
