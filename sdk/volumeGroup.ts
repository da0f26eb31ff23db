// VolumeGroup: generated from its field table (provider/resources/volumeGroup.ts).
export { VolumeGroup, VolumeGroupArgs } from "./generated/volumeGroup";
