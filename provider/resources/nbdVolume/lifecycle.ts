// NbdVolume, part lifecycle: create (adopt, take back its own LV), read,
// update (grow, export settings, Consul) and delete, against the operation's
// hosts and Consul.
import { ExternalService } from "../../consul/client";
import { withCurrentOptIn } from "../../core/dataLoss";
import { RefusedError } from "../../core/errors";
import { OperationContext } from "../../core/resource";
import { formatBytes } from "../../core/validate";
import { HostConnection, Remote, step } from "../../host";
import type { OsFamily } from "../../host";
import { LvReport, ownTag } from "../../parsers/lvm";
import { nbdUri } from "../../parsers/nbd";
import { needsRestart, planExportFiles, planGrow, planLvCreate, planServe, planUnexport } from "./plan";
import { LiveVolume, readBeforeChange, readLive, vgExists } from "./read";
import { catalogEntry, serviceIdOf } from "./render";
import { assertAdoptable, assertNoExportChange, assertTakeOver, FoundExport, planRelease, readFound } from "./asFound";
import { NbdVolumeInputs, NbdVolumeState, VolumeAsFound } from "./spec";

// ---- Consul -----------------------------------------------------------------------

async function register(i: NbdVolumeInputs, ctx: OperationContext): Promise<void> {
    if (!i.consul) return;
    await ctx.consul(i.consul).services.register(catalogEntry(i));
    ctx.log.info(`registered ${i.serviceName} ${serviceIdOf(i)} on Consul node ${i.consulNode} (owner ${i.owner})`);
}

async function deregister(s: NbdVolumeInputs, ctx: OperationContext): Promise<void> {
    if (!s.consul) return;
    const services = ctx.consul(s.consul).services;
    const was = await services.service(s.consulNode, serviceIdOf(s));
    // Deregistered even when absent: a cut after the service went may have left its empty node.
    await services.deregister(s.consulNode, serviceIdOf(s));
    ctx.log.info(was ? `removed ${serviceIdOf(s)} from Consul node ${s.consulNode}` : `${serviceIdOf(s)} is not registered on Consul node ${s.consulNode}: nothing to remove`);
}

async function registeredEntry(s: NbdVolumeInputs, ctx: OperationContext): Promise<ExternalService | undefined> {
    return s.consul ? ctx.consul(s.consul).services.service(s.consulNode, serviceIdOf(s)) : undefined;
}

// ---- operations -------------------------------------------------------------------

function hostFor(conn: HostConnection, ctx: OperationContext): Remote {
    return ctx.remote(conn);
}

function idOf(i: NbdVolumeInputs): string {
    return `${i.connection.host}/${i.volumeGroup}/${i.name}`;
}

function uriOf(i: NbdVolumeInputs): string {
    return nbdUri({ host: i.exportAddress, port: i.port, export: i.exportName });
}

/** Writes the export's files, then starts it, or restarts it when what it reads at start changed. */
async function serve(host: Remote, inputs: NbdVolumeInputs, family: OsFamily, wasServing: boolean, ctx: OperationContext): Promise<void> {
    const written = await host.apply(planExportFiles(inputs, family));
    const restart = wasServing && needsRestart(written);
    if (restart) ctx.log.warn(`restarting the nbd-server of ${inputs.exportName} to apply its new settings: its connected clients must reconnect (other exports are not touched)`);
    await host.apply(planServe(inputs, family, restart));
}

function stateFrom(inputs: NbdVolumeInputs, live: LiveVolume, entry: ExternalService | undefined): NbdVolumeState {
    const lv = live.lv as LvReport;
    const state: NbdVolumeState = {
        ...inputs,
        sizeBytes: lv.sizeBytes,
        lvUuid: lv.uuid,
        lvPath: lv.path,
        serving: live.serving,
        uri: uriOf(inputs),
        registered: entry !== undefined,
    };
    if (inputs.consul) state.serviceId = serviceIdOf(inputs);
    return state;
}

export async function create(inputs: NbdVolumeInputs, ctx: OperationContext): Promise<{ id: string; outs: NbdVolumeState }> {
    const host = hostFor(inputs.connection, ctx);
    const family = (await host.facts()).family;
    await host.apply([step.ensurePackages("lvm2", "nbd-server")]);
    if (!(await vgExists(host, inputs.volumeGroup))) {
        throw new RefusedError(`volume group ${inputs.volumeGroup} does not exist on ${host.target}`, "Create it first (a VolumeGroup resource this NbdVolume depends on).");
    }
    if (inputs.asFound) return adoptAsFound(host, { ...inputs, asFound: inputs.asFound }, ctx);
    const before = await readBeforeChange(host, inputs.volumeGroup, inputs.name, family);
    if (before.lv) {
        adoptExisting(host, inputs, before.lv, ctx);
        if (before.lv.sizeBytes < inputs.requestedBytes) await host.apply(planGrow(inputs));
    } else {
        await host.apply(planLvCreate(inputs));
    }
    await serve(host, inputs, family, before.serving, ctx);
    await register(inputs, ctx);
    const live = await readLive(host, inputs.volumeGroup, inputs.name, family);
    if (!live.lv) throw new Error(`${inputs.volumeGroup}/${inputs.name} was created on ${host.target} but cannot be read back`);
    return { id: idOf(inputs), outs: stateFrom(inputs, live, await registeredEntry(inputs, ctx)) };
}

/** An LV of ours (tagged) left by an interrupted run is taken back; anyone else's needs adopt. */
function adoptExisting(host: Remote, inputs: NbdVolumeInputs, lv: LvReport, ctx: OperationContext): void {
    if (!lv.tags.includes(ownTag) && !inputs.adopt) {
        throw new RefusedError(
            `logical volume ${inputs.volumeGroup}/${inputs.name} already exists on ${host.target} (${formatBytes(lv.sizeBytes)}) and was not created by pulumi-baremetal`,
            "Set adopt: true to export and manage it (its data is kept), or choose another name.",
        );
    }
    ctx.log.info(`logical volume ${inputs.volumeGroup}/${inputs.name} already exists (${formatBytes(lv.sizeBytes)}): adopting it`);
}

// ---- an export kept as found ----------------------------------------------------------

type AsFound = NbdVolumeInputs & { asFound: VolumeAsFound };

/** The state of an export kept as found: what the box's own nbd-server serves, overlaid (drift). */
function stateFromFound(inputs: NbdVolumeInputs, f: FoundExport & { lv: LvReport }, entry: ExternalService | undefined): NbdVolumeState {
    const drifted: NbdVolumeInputs = { ...inputs, port: f.port, readOnly: f.readOnly, allowedClients: f.allowedClients };
    if (f.section) drifted.exportName = f.section;
    return stateFrom(drifted, { lv: f.lv, allowedClients: f.allowedClients, serving: f.serving }, entry);
}

/** Adopts an LV exported by the box's own nbd-server as it is: nothing written or restarted; registered in Consul. */
async function adoptAsFound(host: Remote, inputs: AsFound, ctx: OperationContext): Promise<{ id: string; outs: NbdVolumeState }> {
    const found = await readFound(host, inputs);
    if (!found.lv) {
        throw new RefusedError(`logical volume ${inputs.volumeGroup}/${inputs.name} does not exist on ${host.target}, so there is nothing to adopt as found`, "Remove asFound to create it. Nothing was changed.");
    }
    assertAdoptable(host, inputs, found, ctx);
    if (found.lv.sizeBytes < inputs.requestedBytes) await host.apply(planGrow(inputs));
    await register(inputs, ctx);
    const after = await readFound(host, inputs);
    return { id: idOf(inputs), outs: stateFromFound(inputs, { ...after, lv: after.lv ?? found.lv }, await registeredEntry(inputs, ctx)) };
}

/** Update of an export kept as found (grow, Consul), or the move to its own nbd-server when asFound goes. */
async function updateAsFound(host: Remote, olds: NbdVolumeState, news: NbdVolumeInputs, family: OsFamily, ctx: OperationContext): Promise<NbdVolumeState> {
    const was = olds.asFound;
    if (news.asFound && !was) throw new RefusedError(`${news.volumeGroup}/${news.name} is served by its own nbd-server on ${host.target}; it cannot be handed to another server`, "Remove asFound. Nothing was changed.");
    const found = await readFound(host, { ...news, asFound: (news.asFound ?? was) as VolumeAsFound });
    if (!found.lv) throw new Error(`${news.volumeGroup}/${news.name} no longer exists on ${host.target}; run \`pulumi refresh\` and then \`pulumi up\` to create it again`);
    if (news.asFound) assertNoExportChange(host, olds, { ...news, asFound: news.asFound });
    else assertTakeOver(host, { ...olds, asFound: was as VolumeAsFound }, news, found, ctx);
    if (found.lv.sizeBytes < news.requestedBytes) await host.apply(planGrow(news));
    if (!news.asFound) {
        await host.apply(planRelease(was as VolumeAsFound, found));
        await serve(host, news, family, false, ctx);
    }
    await register(news, ctx);
    if (news.asFound) {
        const after = await readFound(host, { ...news, asFound: news.asFound });
        return stateFromFound(news, { ...after, lv: after.lv ?? found.lv }, await registeredEntry(news, ctx));
    }
    const live = await readLive(host, news.volumeGroup, news.name, family);
    if (!live.lv) throw new Error(`${news.volumeGroup}/${news.name} disappeared from ${host.target} during the update`);
    return stateFrom(news, live, await registeredEntry(news, ctx));
}

export async function read(_id: string, stored: NbdVolumeState, ctx: OperationContext): Promise<NbdVolumeState | undefined> {
    // The state read becomes the new one: an old stack's opt-in moves to its current name here.
    const props = withCurrentOptIn(stored, "deleteData");
    const host = hostFor(props.connection, ctx);
    if (props.asFound) {
        const found = await readFound(host, { ...props, asFound: props.asFound });
        return found.lv ? stateFromFound(props, { ...found, lv: found.lv }, await registeredEntry(props, ctx)) : undefined;
    }
    const family = (await host.facts()).family;
    const live = await readLive(host, props.volumeGroup, props.name, family);
    if (!live.lv) return undefined;
    // What the host really serves, so that refresh shows a config edited by hand.
    const drifted: NbdVolumeInputs = { ...props };
    if (live.config) {
        drifted.port = live.config.port;
        drifted.exportName = live.config.exportName;
        drifted.readOnly = live.config.readOnly;
    }
    drifted.allowedClients = live.allowedClients;
    const entry = await registeredEntry(props, ctx);
    if (entry?.meta.owner) drifted.owner = entry.meta.owner;
    return stateFrom(drifted, live, entry);
}

export async function update(_id: string, olds: NbdVolumeState, news: NbdVolumeInputs, ctx: OperationContext): Promise<NbdVolumeState> {
    const host = hostFor(news.connection, ctx);
    const family = (await host.facts()).family;
    if (olds.asFound || news.asFound) return updateAsFound(host, olds, news, family, ctx);
    const before = await readBeforeChange(host, news.volumeGroup, news.name, family);
    if (!before.lv) throw new Error(`${news.volumeGroup}/${news.name} no longer exists on ${host.target}; run \`pulumi refresh\` and then \`pulumi up\` to create it again`);
    if (before.lv.sizeBytes < news.requestedBytes) {
        await host.apply(planGrow(news));
        ctx.log.info(`${news.volumeGroup}/${news.name} grew to ${news.size}; new connections see the new size (a connected kernel nbd-client or qemu needs to reconnect or resize)`);
    }
    await serve(host, news, family, before.serving, ctx);
    const moved = olds.consul && (olds.consul.address !== news.consul?.address || olds.consulNode !== news.consulNode || olds.consul.datacenter !== news.consul?.datacenter);
    if (moved) await deregister(olds, ctx);
    await register(news, ctx);
    const live = await readLive(host, news.volumeGroup, news.name, family);
    if (!live.lv) throw new Error(`${news.volumeGroup}/${news.name} disappeared from ${host.target} during the update`);
    return stateFrom(news, live, await registeredEntry(news, ctx));
}

export async function remove(_id: string, stored: NbdVolumeState, ctx: OperationContext): Promise<void> {
    const props = withCurrentOptIn(stored, "deleteData");
    const host = hostFor(props.connection, ctx);
    if (!props.allowDataLoss) {
        throw new RefusedError(
            `deleting NbdVolume ${props.volumeGroup}/${props.name} on ${host.target} would remove its data (${formatBytes(props.sizeBytes ?? props.requestedBytes)}), export ${props.exportName} and its Consul entry`,
            "To delete it, set allowDataLoss: true on this NbdVolume, run `pulumi up`, then delete again. To stop managing it but keep everything, run `pulumi state delete <urn>`.",
        );
    }
    if (props.asFound) {
        throw new RefusedError(
            `${props.volumeGroup}/${props.name} on ${host.target} is served by ${props.asFound.service ?? "the box's own nbd-server"} from ${props.asFound.config}, which would go on exporting a removed LV`,
            "Remove asFound first (the export moves to its own nbd-server), then delete. To stop managing it but keep everything, run `pulumi state delete <urn>`. Nothing was changed.",
        );
    }
    const family = (await host.facts()).family;
    const live = await readBeforeChange(host, props.volumeGroup, props.name, family);
    if (live.lv && props.lvUuid && live.lv.uuid !== props.lvUuid) {
        throw new RefusedError(`${props.volumeGroup}/${props.name} on ${host.target} is now a different LV (uuid ${live.lv.uuid}, expected ${props.lvUuid})`, "Refresh the stack to see what happened.");
    }
    await host.apply(planUnexport(props, family, live.lv !== undefined));
    await deregister(props, ctx);
}
