// Machine: a box identified by the MAC of its eth0. On every PXE server it names it
// has a static lease (a file in the server's dhcp-hostsdir) and a per-MAC iPXE
// script that picks its profile and adds its kernel arguments; in Consul it is an
// external catalog node with meta (mac, role, profile) and a K/V subtree of the
// configuration it reads at boot. Optionally its BMC powers it on (or cycles it
// into PXE), and the provider waits until it answers SSH and reads its facts.
//
// ID: the MAC, lower case with colons (52:54:00:b0:00:14). Changing it replaces.
//
// Parts: spec (field table), check (check, diff), render (lease, boot script, node
// meta), plan (entries as steps), read (the servers' view, the facts), lifecycle
// (create/read/update/delete). provider/pxe holds what it shares with PxeServer.
import { ResourceKind } from "../../core/resource";
import { check, diff } from "./check";
import { create, read, remove, update } from "./lifecycle";
import { MachineInputs, MachineState, spec } from "./spec";

export { bootRelevant, check, diff } from "./check";
export { planEntries, planRemoveEntries } from "./plan";
export { factsScript, parseEntriesRead, parseFacts, readEntriesScript } from "./read";
export { bootScript, leaseLine, nodeMeta, serverKey } from "./render";
export { BootEntry, MachineFacts, MachineInputs, MachinePower, MachineState, PowerOnCreate, PxeServerRef, spec, WaitForSsh } from "./spec";

export const machine: ResourceKind<MachineInputs, MachineState> = { spec, check, diff, create, read, update, delete: remove };
