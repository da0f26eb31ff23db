// RaidArray: generated from its field table (provider/resources/raidArray.ts).
export { RaidArray, RaidArrayArgs } from "./generated/raidArray";
