// ConsulKeys: generated from its field table (provider/resources/consulKeys.ts).
export { ConsulKeys, ConsulKeysArgs } from "./generated/consulKeys";
export { ConsulConnectionArgs } from "./generated/types";
