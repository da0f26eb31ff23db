// CephOsd, part plan: the commands as data (no I/O): create with its note,
// rollback of a half-made OSD, tag, CRUSH changes, out, remove.
import { hostLocks, initSystemOf, Plan, step } from "../../host";
import type { OsFamily } from "../../host";
import type { OsdCrushInfo } from "../../parsers/ceph";
import { ownTag } from "../../parsers/lvm";
import { CephOsdInputs, CephOsdState, locationMatches, sameWeight } from "./spec";

// ---- commands (plans as data) ---------------------------------------------------

/** `ceph` with the cluster named and a bound on waiting for the monitors. */
export function cephArgv(cluster: string, ...args: string[]): string[] {
    return ["ceph", "--cluster", cluster, "--connect-timeout", String(connectTimeoutSeconds), ...args];
}

/** Give up on a `ceph` command that cannot reach the monitors after this long (seconds). */
export const connectTimeoutSeconds = 120;


export function osdName(id: number): string {
    return `osd.${id}`;
}

/** Where the box keeps what a cluster member needs. */
export function clusterFiles(cluster: string) {
    return {
        conf: `/etc/ceph/${cluster}.conf`,
        adminKeyring: `/etc/ceph/${cluster}.client.admin.keyring`,
        bootstrapOsdKeyring: `/var/lib/ceph/bootstrap-osd/${cluster}.keyring`,
    };
}

/**
 * Where create notes, on the box, the fsid of the OSD it is about to make and the
 * device it makes it on, until the OSD is complete and tagged as ours. An SSH cut
 * kills ceph-volume at its next write to the dead session (a BrokenPipeError),
 * and then its own rollback dies of the same error: the OSD is left half-made (an
 * id in the OSD map that never booted, an LV carrying ceph-volume's tags but no
 * bluestore). The note is how the next create knows that half-made OSD is its own
 * (see interruptedCreate), so that it can clear it away instead of refusing it.
 */
export const intentDir = "/var/lib/ceph/baremetal-creating";

/** One note of intentDir: the OSD fsid create chose and the device (kernel name) it was making it on. */
export interface CreateIntent {
    osdFsid: string;
    real: string;
}

/**
 * ceph-volume makes the LVM volume group and LV, runs mkfs, registers the OSD and
 * starts it, with the OSD fsid chosen here (noted first, see intentDir).
 */
export function planCreate(inputs: CephOsdInputs, intent: CreateIntent): Plan {
    return [
        step.run(["sh", "-c", 'mkdir -p "$1" && printf \'%s\\n\' "$3" >"$1/$2"', "baremetal-osd-intent", intentDir, intent.osdFsid, intent.real], {
            what: `note on the box that osd ${intent.osdFsid} is being made on ${intent.real}`,
        }),
        step.run(
            [
                "ceph-volume", "--cluster", inputs.cluster, "lvm", "create", "--bluestore", "--data", inputs.device, "--osd-fsid", intent.osdFsid,
                ...(inputs.deviceClass !== undefined ? ["--crush-device-class", inputs.deviceClass] : []),
            ],
            // LVM metadata changes: one at a time per box, like every other LVM user here. mkfs is slow on a small box.
            { lock: hostLocks.lvm, timeoutMs: 30 * 60_000, what: `create a bluestore OSD on ${inputs.device} (ceph-volume lvm create)` },
        ),
    ];
}

/** The OSD is complete and ours (tagged): the note of its create goes. */
export function planForgetIntent(osdFsid: string): Plan {
    return [step.run(["rm", "-f", `${intentDir}/${osdFsid}`], { what: `forget the note of osd ${osdFsid}'s create` })];
}

/** Waits until no ceph-volume of an interrupted create still runs here (it holds the host's LVM lock until it exits). */
export function planWaitInterrupted(): Plan {
    return [step.run(["true"], { lock: hostLocks.lvm, what: "wait for an interrupted ceph-volume on this box to exit (the LVM lock)", changes: false })];
}

/**
 * Clears away the half-made OSD an interrupted create left: its daemon and boot
 * activation, its id (`osd purge-new`, which Ceph refuses for an OSD that ever
 * booted, so an OSD that could hold data is never purged here), its tmpfs, and
 * what ceph-volume put on the device (the device was empty before: create checks
 * that before it notes its intent).
 */
export function planRollback(r: { cluster: string; device: string; osdFsid: string; osdId?: number; zap: boolean }, family: OsFamily): Plan {
    const plan: Plan[number][] = [];
    if (r.osdId !== undefined) {
        const svc = osdServices(family, r.cluster, r.osdId, r.osdFsid);
        plan.push(...stopAndDisable(svc, family));
        plan.push(step.run(cephArgv(r.cluster, "osd", "purge-new", osdName(r.osdId), "--yes-i-really-mean-it"), { what: `purge the never-booted ${osdName(r.osdId)} an interrupted create left` }));
        plan.push(unmountDataDir(r.cluster, r.osdId));
    }
    if (r.zap) plan.push(zapStep(r.cluster, r.device));
    plan.push(...planForgetIntent(r.osdFsid));
    return plan;
}

/** Marks the LV as ours, so that a create re-run after a crash adopts it instead of refusing. */
export function planTag(lvPath: string): Plan {
    return [step.run(["lvchange", "--addtag", ownTag, lvPath], { lock: hostLocks.lvm, what: `tag ${lvPath} as made by pulumi-baremetal` })];
}

/** Brings the OSD's CRUSH entry to what is declared; undeclared fields are left alone. */
export function planCrush(cluster: string, id: number, live: OsdCrushInfo, want: Pick<CephOsdInputs, "deviceClass" | "crushWeight" | "crushLocation">): Plan {
    const name = osdName(id);
    const plan: Plan[number][] = [];
    const weight = want.crushWeight ?? live.crushWeight;
    if (want.crushLocation !== undefined && !locationMatches(want.crushLocation, live.location)) {
        const loc = Object.entries(want.crushLocation).map(([k, v]) => `${k}=${v}`);
        // The option keeps the location across restarts (osd_crush_update_on_start would move it back to its host).
        plan.push(step.run(cephArgv(cluster, "config", "set", name, "crush_location", loc.join(" ")), { what: `keep ${name}'s CRUSH location ${loc.join(" ")} across restarts` }));
        plan.push(step.run(cephArgv(cluster, "osd", "crush", "set", name, String(weight), ...loc), { what: `move ${name} to ${loc.join(" ")} (weight ${weight})` }));
    } else if (want.crushWeight !== undefined && !sameWeight(want.crushWeight, live.crushWeight)) {
        plan.push(step.run(cephArgv(cluster, "osd", "crush", "reweight", name, String(want.crushWeight)), { what: `set ${name}'s CRUSH weight to ${want.crushWeight} (was ${live.crushWeight})` }));
    }
    if (want.deviceClass !== undefined && want.deviceClass !== live.deviceClass) {
        // Ceph refuses to overwrite a class: remove the old one first.
        if (live.deviceClass !== "") plan.push(step.run(cephArgv(cluster, "osd", "crush", "rm-device-class", name), { what: `remove ${name}'s device class ${live.deviceClass}` }));
        plan.push(step.run(cephArgv(cluster, "osd", "crush", "set-device-class", want.deviceClass, name), { what: `set ${name}'s device class to ${want.deviceClass}` }));
    }
    return plan;
}

/** First step of a delete: no new data goes to the OSD, the cluster starts copying its data away. */
export function planOut(cluster: string, id: number): Plan {
    return [step.run(cephArgv(cluster, "osd", "out", osdName(id)), { what: `mark ${osdName(id)} out (its data moves to the other OSDs)` })];
}

/** The OSD's daemon and boot-time activation, by init system. */
export function osdServices(family: OsFamily, cluster: string, id: number, osdFsid: string): { daemon: string; activation?: string } {
    if (initSystemOf(family) === "openrc") return { daemon: `ceph-osd.${id}` };
    // Debian's units read CLUSTER from /etc/default/ceph; the instance is the OSD number.
    return { daemon: `ceph-osd@${id}`, activation: `ceph-volume@lvm-${id}-${osdFsid}` };
}

function stopAndDisable(svc: { daemon: string; activation?: string }, family: OsFamily): Plan[number][] {
    return [
        initSystemOf(family) === "openrc"
            ? step.run(["rc-service", svc.daemon, "stop"], { okExitCodes: [0, 1], what: `stop ${svc.daemon}` })
            : step.run(["systemctl", "stop", svc.daemon], { okExitCodes: [0, 5], what: `stop ${svc.daemon}` }),
        initSystemOf(family) === "openrc"
            ? step.run(["rc-update", "del", svc.daemon], { okExitCodes: [0, 1], what: `do not start ${svc.daemon} at boot` })
            // --no-reload: unlinking from boot needs no daemon-reload now (seconds on a busy box); the next reload or boot reads the links.
            : step.run(["systemctl", "disable", "--quiet", "--no-reload", svc.daemon, ...(svc.activation ? [svc.activation] : [])], { okExitCodes: [0, 1], what: `do not start ${svc.daemon} at boot` }),
    ];
}

function unmountDataDir(cluster: string, id: number): Plan[number] {
    const dataDir = `/var/lib/ceph/osd/${cluster}-${id}`;
    // ceph-volume's activation mounts a tmpfs with the OSD's keyring here.
    return step.run(["sh", "-c", 'if mountpoint -q "$1"; then umount "$1"; fi; rmdir "$1" 2>/dev/null; exit 0', "baremetal-osd-dir", dataDir], { what: `unmount ${dataDir}` });
}

/** How long a wipe of the device may take (an orphaned one holds the LVM lock as long). */
export const zapTimeoutMs = 15 * 60_000;

function zapStep(cluster: string, device: string): Plan[number] {
    return step.run(["ceph-volume", "--cluster", cluster, "lvm", "zap", "--destroy", device], { lock: hostLocks.lvm, timeoutMs: zapTimeoutMs, what: `wipe ${device} (ceph-volume lvm zap --destroy)` });
}

/** After safe-to-destroy said yes: stop, purge, tidy; wipe the device only when opted in. */
export function planRemove(state: Pick<CephOsdState, "cluster" | "osdId" | "osdFsid" | "device" | "allowDataLoss">, family: OsFamily): Plan {
    const { cluster, osdId: id } = state;
    const svc = osdServices(family, cluster, id, state.osdFsid);
    return [
        ...stopAndDisable(svc, family),
        step.run(cephArgv(cluster, "osd", "purge", String(id), "--yes-i-really-mean-it"), { what: `purge ${osdName(id)} from the cluster (CRUSH, auth key, OSD map)` }),
        unmountDataDir(cluster, id),
        ...(state.allowDataLoss ? [zapStep(cluster, state.device)] : []),
        step.persist(),
    ];
}
