// LxcContainer: generated from its field table (provider/resources/lxcContainer/spec.ts).
export { LxcContainer, LxcContainerArgs } from "./generated/lxcContainer";
export { LxcNicArgs, LxcMountArgs, LxcFileArgs, LxcLimitsArgs } from "./generated/types";
