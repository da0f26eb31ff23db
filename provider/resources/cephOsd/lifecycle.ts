// CephOsd, part lifecycle: create (adopt, refuse, finish or clear an interrupted
// create), read, update (CRUSH) and the safe delete, against the operation's hosts.
import { randomUUID } from "crypto";
import { RefusedError } from "../../core/errors";
import { withCurrentOptIn } from "../../core/dataLoss";
import { OperationContext } from "../../core/resource";
import { HostConnection, hostLocks, Remote, step } from "../../host";
import { CephVolumeLv, OsdCrushInfo, OsdDumpEntry } from "../../parsers/ceph";
import { ownTag } from "../../parsers/lvm";
import { planCreate, planCrush, planForgetIntent, planOut, planRemove, planRollback, planTag, planWaitInterrupted } from "./plan";
import { askSafeToDestroy, DrainAnswer, interruptedCreate, LiveOsd, osdOnDevice, Probe, probe, readLive } from "./read";
import { CephOsdInputs, CephOsdState, sameWeight } from "./spec";

/** How often delete asks safe-to-destroy (each ask is itself a `ceph` run of a few seconds on a slow box). */
export const drainPollMs = 5000;
/** The longest wait between two safe-to-destroy asks. */
export const drainPollMaxMs = 30_000;

// ---- operations -------------------------------------------------------------------

function hostFor(conn: HostConnection, ctx: OperationContext): Remote {
    return ctx.remote(conn);
}

function stateFrom(inputs: CephOsdInputs, lv: Pick<CephVolumeLv, "lvPath" | "devices">, live: LiveOsd): CephOsdState {
    const entry = live.entry as OsdDumpEntry;
    const crush = live.crush;
    const weight = crush?.crushWeight ?? 0;
    const location = crush?.location ?? {};
    return {
        connection: inputs.connection,
        device: inputs.device,
        cluster: inputs.cluster,
        adopt: inputs.adopt,
        allowDataLoss: inputs.allowDataLoss,
        drainTimeoutSeconds: inputs.drainTimeoutSeconds,
        osdId: entry.id,
        osdFsid: entry.uuid,
        clusterFsid: live.dump.fsid,
        deviceClass: crush?.deviceClass ?? "",
        // The declared weight when CRUSH holds the same (it stores 16.16 fixed point): no diff on every refresh.
        crushWeight: inputs.crushWeight !== undefined && sameWeight(inputs.crushWeight, weight) ? inputs.crushWeight : weight,
        crushLocation: location,
        hostName: location.host ?? "",
        lvPath: lv.lvPath,
        devices: lv.devices,
        up: entry.up,
        in: entry.in,
        reweight: entry.weight,
    };
}

export async function create(inputs: CephOsdInputs, ctx: OperationContext): Promise<{ id: string; outs: CephOsdState }> {
    const host = hostFor(inputs.connection, ctx);
    let before = await probe(host, inputs);
    if (before.intents.some((i) => i.real === before.real)) before = await recoverInterrupted(host, inputs, ctx);
    let lv = osdOnDevice(before, inputs.device);
    if (lv) {
        await adoptExisting(host, inputs, lv, before, ctx);
    } else {
        assertDeviceFree(host, inputs.device, before);
        ctx.log.info(`creating a bluestore OSD on ${inputs.device} (${before.real}) in cluster ${inputs.cluster} (${before.dump.fsid}); this takes a minute or more`);
        const t0 = Date.now();
        const osdFsid = randomUUID();
        await host.apply(planCreate(inputs, { osdFsid, real: before.real }));
        lv = osdOnDevice(await probe(host, inputs), inputs.device);
        if (!lv) throw new Error(`ceph-volume reported success but no OSD is found on ${inputs.device} on ${host.target}; see \`ceph-volume lvm list\` there`);
        ctx.log.info(`created osd.${lv.osdId} on ${inputs.device} in ${seconds(Date.now() - t0)}`);
        await host.apply([...planTag(lv.lvPath), ...planForgetIntent(osdFsid)]);
    }
    const live = await settleCrush(host, inputs, lv.osdFsid, ctx);
    ctx.log.info(`osd.${live.entry?.id} (${lv.osdFsid}) on ${inputs.device}: ${live.entry?.up ? "up" : "down"}, ${live.entry?.in ? "in" : "out"}`);
    return { id: lv.osdFsid, outs: stateFrom(inputs, lv, live) };
}

/**
 * An earlier create of this device was interrupted (its note is there): waits for
 * its ceph-volume to exit, looks again, and clears a half-made OSD away (or only
 * the note, when the OSD was finished). Returns a fresh probe.
 */
async function recoverInterrupted(host: Remote, inputs: CephOsdInputs, ctx: OperationContext): Promise<Probe> {
    await host.apply(planWaitInterrupted());
    const p = await probe(host, inputs);
    const r = interruptedCreate(p, inputs.device);
    const where = `${inputs.device} on ${host.target}`;
    switch (r.kind) {
        case "none":
        case "finish":
            // finish: adoptExisting (through the note) tags it and drops the note.
            return p;
        case "stale":
            ctx.log.info(`${where}: dropping the note of an old create of osd ${r.intent.osdFsid} (the device holds another OSD now)`);
            await host.apply(planForgetIntent(r.intent.osdFsid));
            return probe(host, inputs);
        case "rollback": {
            ctx.log.warn(
                `${where}: an earlier create was interrupted and left osd ${r.intent.osdFsid}${r.osdId !== undefined ? ` (osd.${r.osdId}, never booted)` : ""} half-made; clearing it away and creating again`,
            );
            const family = (await host.facts()).family;
            await host.apply(planRollback({ cluster: inputs.cluster, device: inputs.device, osdFsid: r.intent.osdFsid, osdId: r.osdId, zap: r.zap }, family));
            return probe(host, inputs);
        }
    }
}

/** Applies the declared CRUSH settings that differ from the live ones; returns the live state after. */
async function settleCrush(host: Remote, inputs: CephOsdInputs, osdFsid: string, ctx: OperationContext): Promise<LiveOsd> {
    let live = await readLive(host, inputs.cluster, osdFsid);
    if (!live.entry) throw new Error(`OSD ${osdFsid} on ${inputs.device} is not in the OSD map of cluster ${inputs.cluster} on ${host.target}; run \`pulumi refresh\``);
    if (!live.crush) {
        // A new OSD enters CRUSH when its daemon first boots; until then there is nothing to compare with.
        live = await waitInCrush(host, inputs, osdFsid, ctx);
    }
    const plan = planCrush(inputs.cluster, live.entry?.id as number, live.crush as OsdCrushInfo, inputs);
    if (plan.length === 0) return live;
    await host.apply(plan);
    return readLive(host, inputs.cluster, osdFsid);
}

async function waitInCrush(host: Remote, inputs: CephOsdInputs, osdFsid: string, ctx: OperationContext): Promise<LiveOsd> {
    const deadline = Date.now() + 10 * 60_000;
    for (;;) {
        const live = await readLive(host, inputs.cluster, osdFsid);
        if (live.crush) return live;
        if (Date.now() > deadline) {
            throw new Error(`osd.${live.entry?.id} on ${host.target} has not entered the CRUSH map after 10 minutes: its daemon probably did not start; see \`journalctl -u ceph-osd@${live.entry?.id}\` there`);
        }
        ctx.log.progress(`waiting for osd.${live.entry?.id} to boot and enter the CRUSH map`);
        await sleep(drainPollMs);
    }
}

/** Takes over an OSD found on the device: ours from an interrupted run, or anyone's with adopt. */
async function adoptExisting(host: Remote, inputs: CephOsdInputs, lv: CephVolumeLv, before: Probe, ctx: OperationContext): Promise<void> {
    const where = `${inputs.device} on ${host.target}`;
    if (lv.clusterFsid !== before.dump.fsid) {
        throw new RefusedError(
            `${where} carries osd.${lv.osdId} of another cluster (fsid ${lv.clusterFsid}; this cluster is ${before.dump.fsid})`,
            `If that data is not needed, wipe the device by hand (ceph-volume lvm zap --destroy ${inputs.device}), or choose another device`,
        );
    }
    const entry = before.dump.osds.find((o) => o.uuid === lv.osdFsid);
    if (!entry) {
        throw new RefusedError(
            `${where} carries the remains of osd.${lv.osdId} (fsid ${lv.osdFsid}), which is no longer in cluster ${inputs.cluster} (purged)`,
            `If that data is not needed, wipe the device by hand (ceph-volume lvm zap --destroy ${inputs.device}) and run \`pulumi up\` again`,
        );
    }
    // Ours: tagged, or the note of our own create of it is still there (cut before the tag step).
    const noted = before.intents.find((i) => i.osdFsid === lv.osdFsid);
    const ours = lv.tags.includes(ownTag) || noted !== undefined;
    if (!ours && !inputs.adopt) {
        throw new RefusedError(
            `${where} already holds osd.${entry.id} (fsid ${lv.osdFsid}, ${entry.up ? "up" : "down"}, ${entry.in ? "in" : "out"}), not created by pulumi-baremetal`,
            "Set adopt: true to manage that OSD (it is kept as it is, with its data), or choose another device",
        );
    }
    ctx.log.info(`${where} already holds osd.${entry.id} (${lv.osdFsid}): adopting it, not re-creating it`);
    if (!entry.up) {
        // Prepared but never activated (an interrupted create), or stopped: activate it (starts the daemon).
        await host.apply([
            step.run(["ceph-volume", "--cluster", inputs.cluster, "lvm", "activate", String(entry.id), lv.osdFsid], { lock: hostLocks.lvm, timeoutMs: 15 * 60_000, what: `activate osd.${entry.id}` }),
        ]);
    }
    if (!lv.tags.includes(ownTag)) await host.apply(planTag(lv.lvPath));
    if (noted) await host.apply(planForgetIntent(noted.osdFsid));
}

function assertDeviceFree(host: Remote, device: string, p: Probe): void {
    const sig = Object.entries(p.signature).filter(([k]) => ["TYPE", "PTTYPE", "PART_ENTRY_TYPE"].includes(k));
    if (sig.length > 0 || p.inUse !== "") {
        const what = [...sig.map(([k, v]) => `${k}=${v}`), ...(p.inUse ? [p.inUse] : [])].join(", ");
        throw new RefusedError(
            `${device} (${p.real}) on ${host.target} is not empty: ${what}`,
            "An OSD needs a device with no partition table, file system or LVM on it. If its data is not needed, wipe it by hand (wipefs -a, or ceph-volume lvm zap), or choose another device",
        );
    }
}

export async function read(_id: string, stored: CephOsdState, ctx: OperationContext): Promise<CephOsdState | undefined> {
    // The state read becomes the new one: an old stack's opt-in moves to its current name here.
    const props = withCurrentOptIn(stored, "zapOnDelete");
    const host = hostFor(props.connection, ctx);
    const live = await readLive(host, props.cluster, props.osdFsid, true);
    if (!live.entry) return undefined;
    // The last value stands for the declared weight: it is kept when CRUSH still holds the same.
    return stateFrom({ ...props, deviceClass: props.deviceClass, crushLocation: props.crushLocation }, props, live);
}

export async function update(_id: string, olds: CephOsdState, news: CephOsdInputs, ctx: OperationContext): Promise<CephOsdState> {
    const host = hostFor(news.connection, ctx);
    const live = await settleCrush(host, news, olds.osdFsid, ctx);
    return stateFrom(news, olds, live);
}

export interface DrainDeps {
    ask(): Promise<DrainAnswer>;
    now(): number;
    sleep(ms: number): Promise<void>;
    progress(message: string): void;
}

export type DrainOutcome = { safe: true; waitedMs: number; asks: number } | { safe: false; waitedMs: number; asks: number; last: DrainAnswer };

/**
 * Asks safe-to-destroy until it says yes or the time is up. Pure sequencing:
 * the unit tier drives it with a fake answer sequence, the lab with the real ceph.
 */
export async function waitSafeToDestroy(id: number, timeoutMs: number, deps: DrainDeps, pollMs = drainPollMs): Promise<DrainOutcome> {
    const start = deps.now();
    let interval = pollMs;
    for (let asks = 1; ; asks++) {
        const a = await deps.ask();
        const waitedMs = deps.now() - start;
        if (a.safe.includes(id)) return { safe: true, waitedMs, asks };
        if (waitedMs >= timeoutMs) return { safe: false, waitedMs, asks, last: a };
        deps.progress(`osd.${id}: not yet safe to destroy after ${Math.round(waitedMs / 1000)}s: ${describeDrain(id, a)}`);
        // Each ask is a `ceph` command (a Python start on the box, seconds of CPU on a small one), and a
        // drain can take hours: ask less often as it goes on, never sleeping past the deadline (the
        // last answer is read at the timeout itself).
        await deps.sleep(Math.min(interval, timeoutMs - waitedMs));
        interval = Math.min(interval * 1.5, drainPollMaxMs);
    }
}

export function describeDrain(id: number, a: DrainAnswer): string {
    const why: string[] = [];
    if (a.storedPgs.includes(id)) why.push("it still stores PGs");
    if (a.active.includes(id)) why.push("PGs are still mapped to it");
    if (a.missingStats.includes(id)) why.push("the manager has no PG stats for it yet");
    const msg = a.message.trim();
    return [why.join(", ") || "not safe", msg ? `(ceph: ${msg})` : ""].filter((s) => s !== "").join(" ");
}

export async function remove(_id: string, stored: CephOsdState, ctx: OperationContext): Promise<void> {
    const props = withCurrentOptIn(stored, "zapOnDelete");
    const host = hostFor(props.connection, ctx);
    const family = (await host.facts()).family;
    const live = await readLive(host, props.cluster, props.osdFsid);
    const entry = live.entry;
    if (!entry) {
        ctx.log.info(`OSD ${props.osdFsid} (osd.${props.osdId}) is no longer in cluster ${props.cluster}: nothing to purge`);
        if (props.allowDataLoss) await zapIfStillOurs(host, props, ctx);
        return;
    }
    const id = entry.id;
    const where = `osd.${id} (${props.device} on ${host.target})`;
    if (entry.in) await host.apply(planOut(props.cluster, id));
    ctx.log.info(`${where} is out; waiting until \`ceph osd safe-to-destroy\` agrees (at most ${props.drainTimeoutSeconds}s)`);
    const outcome = await waitSafeToDestroy(id, props.drainTimeoutSeconds * 1000, {
        ask: () => askSafeToDestroy(host, props.cluster, id),
        now: () => Date.now(),
        sleep,
        progress: (m) => ctx.log.progress(m),
    });
    if (!outcome.safe) {
        throw new Error(
            `${where} is still not safe to destroy after ${Math.round(outcome.waitedMs / 1000)}s: ${describeDrain(id, outcome.last)}. ` +
                "It was NOT destroyed: it is marked out and still running, with its data.\n" +
                `  next: see why with \`ceph -s\` and \`ceph pg ls-by-osd ${id}\` (a full cluster, too few OSDs for a pool's size, or recovery paused by noout/nobackfill/norecover flags); ` +
                `when recovery is done run the delete again (or raise drainTimeoutSeconds). To keep the OSD instead: \`ceph osd in ${id}\``,
        );
    }
    ctx.log.info(`${where} is safe to destroy (after ${Math.round(outcome.waitedMs / 1000)}s, ${outcome.asks} asks): stopping and purging it${props.allowDataLoss ? ", then wiping the device" : "; the device keeps its LVM volumes (allowDataLoss is not set)"}`);
    const t0 = Date.now();
    await host.apply(planRemove({ ...props, osdId: id }, family));
    ctx.log.info(`removed osd.${id}: drained in ${seconds(outcome.waitedMs)}, stopped and purged${props.allowDataLoss ? " and wiped" : ""} in ${seconds(Date.now() - t0)}`);
}

/** With allowDataLoss, an OSD purged by hand still gets its device wiped, but only if the LV is still this OSD's. */
async function zapIfStillOurs(host: Remote, props: CephOsdState, ctx: OperationContext): Promise<void> {
    // A re-run after a cut during the zap: the orphaned ceph-volume may still be removing the LV. Looking
    // meanwhile would see it gone and skip the wipe (or fail on a listing taken mid-change): wait for it.
    const p = await probe(host, props as unknown as CephOsdInputs, { afterLvm: true });
    const lv = osdOnDevice(p, props.device);
    if (!lv || lv.osdFsid !== props.osdFsid) {
        ctx.log.info(`${props.device} no longer holds OSD ${props.osdFsid}: not wiping it`);
        return;
    }
    const family = (await host.facts()).family;
    await host.apply(planRemove(props, family).filter((s) => s.kind === "run" && s.argv[0] === "ceph-volume"));
}

function seconds(ms: number): string {
    return `${(ms / 1000).toFixed(1)} s`;
}

function sleep(ms: number): Promise<void> {
    return new Promise((r) => setTimeout(r, ms));
}
