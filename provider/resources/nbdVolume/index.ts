// NbdVolume: an LVM logical volume on the SAN box, exported by nbd-server and
// registered in Consul with the KVM guest (eth0 MAC) that owns it.
//
// ID: `<host>/<vg>/<lv>`, e.g. `198.51.100.11/vg0/web01-var`.
//
// One nbd-server process per export (a systemd template instance on Debian, an
// OpenRC service on Alpine), each with its own config and port. Measured on
// nbd-server 3.24 (Debian 12): SIGHUP adds new exports but neither changes nor
// removes existing ones, and a restart drops every client of the process. With a
// process per export, adding or removing an export never touches another
// export's clients, and a change of read-only flag or port restarts only the
// export it belongs to. The allowed clients live in an authfile that nbd-server
// reads at each connection, so changing them restarts nothing.
//
// Data safety: shrinking is refused at check time; delete and every change that
// would re-create the LV are refused unless `allowDataLoss` (formerly `deleteData`) is set.
//
// Parts: spec (field table), check (check, diff), render (names, service, config,
// catalog entry), plan (steps as data), read (read script, Consul lookup),
// lifecycle (create/read/update/delete).
import { ResourceKind } from "../../core/resource";
import { check, diff } from "./check";
import { create, read, remove, update } from "./lifecycle";
import { NbdVolumeInputs, NbdVolumeState, spec } from "./spec";

export { check, diff } from "./check";
export { NbdExportStep, needsRestart, planExportFiles, planGrow, planLvCreate, planServe, planUnexport } from "./plan";
export { findGuestExports, LiveVolume, NbdExportLocation, parseLive, readScript } from "./read";
export { catalogEntry, configDir, exportConfigOf, exportPaths, exportService, instanceKey, serviceIdOf } from "./render";
export { NbdVolumeInputs, NbdVolumeState, spec } from "./spec";

export const nbdVolume: ResourceKind<NbdVolumeInputs, NbdVolumeState> = { spec, check, diff, create, read, update, delete: remove };
