// KvmGuest: a qemu guest on a services box, supervised by the box's init system
// (a systemd unit on Debian, an OpenRC service on Alpine), with disks from NBD
// exports or local devices, NICs on Open vSwitch or Linux bridges with fixed MACs,
// network boot by default, its serial console in a log and a QMP socket.
//
// ID: the MAC of the first NIC (the guest's uid: the seed finds a guest's NBD
// volumes by it). A change of `connection.host` live-migrates the guest when all
// its disks are on the network (NBD), instead of re-creating it.
//
// Files on the box (NAME = the guest's name):
//   /etc/systemd/system/baremetal-guest-NAME.service  or  /etc/init.d/baremetal-guest-NAME
//   /run/baremetal/guests/NAME/qmp.sock               QMP
//   /var/log/baremetal/guests/NAME.console.log        serial console
//   /run/baremetal/guests/NAME.incoming               only while a migration arrives
//   /run/baremetal/guests/NAME.stop                   how the last stop went
//
// Parts: spec (field table), check (check, diff), render (names, qemu argv,
// service), plan (steps as data), read (box view, QMP state), lifecycle
// (create/read/update/delete, live migration).
import { ResourceKind } from "../../core/resource";
import { check, diff } from "./check";
import { create, read, remove, update } from "./lifecycle";
import { KvmGuestInputs, KvmGuestState, spec } from "./spec";

export { check, diff, migratable } from "./check";
export { KvmGuestStep, packagesFor, planIncoming, planInstall, planRemove } from "./plan";
export { BoxView, parseBoxView } from "./read";
export { guestService, ownerMarker, pathsOf, qemuArgs, serviceName, tapName, unitPath } from "./render";
export { DeviceDisk, GuestDisk, GuestNic, KvmGuestInputs, KvmGuestState, MigrationFigures, NbdDisk, spec } from "./spec";

export const kvmGuest: ResourceKind<KvmGuestInputs, KvmGuestState> = { spec, check, diff, create, read, update, delete: remove };
