// LxcContainer: a system container in a guest or box (the seed runs every
// service in one: DNS, squid, web, LDAP, MariaDB ...). Created from an LXC
// template (no internet needed for `busybox`) or from a root file system that is
// already on the box; its network, mounts, autostart and limits are a managed
// block at the end of its LXC config; files and commands provision it.
//
// ID: `NAME@HOST`. A config change restarts the container; a template or rootfs
// change replaces it. Delete stops it (gracefully, then killed after the
// timeout) and destroys it; a container made from a given rootfs keeps that
// directory (it was not ours to delete).
//
// Provisioning `commands` run after every start this resource does (create, a
// restart for a config change), when they change, and when a create finds its
// own container (a re-run after a cut): make them idempotent.
//
// Parts: spec (field table), check (check, diff), render (config, scripts,
// lock), plan (steps as data), read (lxc-info and config), lifecycle
// (create/read/update/delete).
import { ResourceKind } from "../../core/resource";
import { check, diff } from "./check";
import { create, read, remove, update } from "./lifecycle";
import { LxcContainerInputs, LxcContainerState, spec } from "./spec";

export { check, diff } from "./check";
export { needsRestart } from "./lifecycle";
export { LxcContainerStep, packagesFor, planConfig, planCreate, planDestroy, planProvision, planStart, planStop } from "./plan";
export { containerReadScript, LiveContainer, madeByCreate, parseRead, stateOf } from "./read";
export { configPath, createdMarker, createLock, managedBlock, rootfsConfig } from "./render";
export { LxcContainerInputs, LxcContainerState, LxcFile, LxcLimits, LxcMount, LxcNic, spec } from "./spec";

export const lxcContainer: ResourceKind<LxcContainerInputs, LxcContainerState> = { spec, check, diff, create, read, update, delete: remove };
