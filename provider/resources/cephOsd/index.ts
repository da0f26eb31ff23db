// CephOsd: one Ceph OSD (bluestore) made by ceph-volume on one device of a box
// that already belongs to a cluster (ceph.conf, admin and bootstrap-osd keyrings).
//
// ID: the OSD's fsid (`osd fsid` in `ceph-volume lvm list`, `uuid` in `ceph osd
// dump`): unlike the OSD number it is never reused by another OSD.
//
// Data safety, as Rook and cephadm do it (ceph-ansible did not, ceph-ansible#5790):
// delete marks the OSD out, waits until `ceph osd safe-to-destroy` agrees (the
// cluster has copied its data elsewhere), and only then stops and purges it. An
// OSD that cannot drain within drainTimeoutSeconds is reported and left out but
// running with its data; it is never forced. The device itself is wiped
// (`ceph-volume lvm zap --destroy`) only with `allowDataLoss` (formerly `zapOnDelete`), and changes that
// re-create the OSD (another device, host or cluster) are refused without it.
//
// Interrupted creates: create notes on the box which OSD fsid it is about to make
// on which device (intentDir) and passes that fsid to ceph-volume. A re-run that
// finds the note finishes an OSD that booted, and clears away one that never did
// (`osd purge-new`, which Ceph refuses for an OSD that ever booted; the device was
// empty before the note), then creates again: never a second OSD, never a refusal
// of its own half-made one.
//
// Parts: spec (field table), check (check, diff), plan (commands as data), read
// (probe and maps), lifecycle (create/read/update/delete).
import { ResourceKind } from "../../core/resource";
import { check, diff } from "./check";
import { create, read, remove, update } from "./lifecycle";
import { CephOsdInputs, CephOsdState, spec } from "./spec";

export { check, diff } from "./check";
export { describeDrain, drainPollMs, DrainDeps, DrainOutcome, waitSafeToDestroy } from "./lifecycle";
export {
    cephArgv, clusterFiles, CreateIntent, intentDir, osdServices, planCreate, planCrush, planForgetIntent, planOut, planRemove, planRollback, planTag, planWaitInterrupted,
} from "./plan";
export { DrainAnswer, interruptedCreate, Interrupted, LiveOsd, osdOnDevice, parseProbe, parseRead, Probe, probeScript, readCommands } from "./read";
export { CephCommand, clientArgv, clientCommand, clientInput } from "./client";
export { CephOsdInputs, CephOsdState, locationMatches, sameWeight, spec } from "./spec";

export const cephOsd: ResourceKind<CephOsdInputs, CephOsdState> = { spec, check, diff, create, read, update, delete: remove };
