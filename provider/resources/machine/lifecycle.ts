// Machine, part lifecycle: its entries on every PXE server, its Consul node and
// keys, the power actions and the wait for SSH, as create/read/update/delete.
import { KvOperation } from "../../consul/client";
import { RefusedError } from "../../core/errors";
import { changedFields, OperationContext } from "../../core/resource";
import { describeTarget } from "../../host";
import { bootRelevant } from "./check";
import { planEntries, planRemoveEntries } from "./plan";
import { assertTakeable, readFacts, requireView, viewOf } from "./read";
import { bootScript, leaseLine, nodeMeta, serverKey } from "./render";
import { BootEntry, MachineFacts, MachineInputs, MachineState, PowerOnCreate } from "./spec";

// ---- Consul --------------------------------------------------------------------------------

/**
 * Refuses what Consul holds for someone else (an agent's node name; on create,
 * keys with other values) before anything is written anywhere: a RefusedError
 * promises that nothing was changed, PXE entries included.
 */
async function assertConsulTakeable(m: MachineInputs, ctx: OperationContext, olds?: MachineState): Promise<void> {
    if (!m.consul) return;
    if (await ctx.consul(m.consul).nodes.isAgentMember(m.hostname)) {
        throw new RefusedError(`hostname: ${m.hostname} is the name of a running Consul agent`, "A Machine registers an external node; pick the name of a box that runs no agent.");
    }
    if (olds || m.adopt) return;
    const live = await ctx.consul(m.consul).kv.tree(m.consulPrefix);
    const taken = Object.entries(m.config).filter(([k, val]) => live.has(m.consulPrefix + k) && live.get(m.consulPrefix + k) !== val).map(([k]) => m.consulPrefix + k);
    if (taken.length > 0) {
        throw new RefusedError(`${taken.length} key(s) under ${m.consulPrefix} already exist in Consul with other values (${taken.slice(0, 5).join(", ")})`, "Set adopt: true on this Machine to take them over, or choose another consulPrefix.");
    }
}

async function registerInConsul(m: MachineInputs, ctx: OperationContext, olds?: MachineState): Promise<void> {
    if (!m.consul) return;
    const catalog = ctx.consul(m.consul).nodes;
    if (olds?.consul && olds.hostname !== m.hostname) await ctx.consul(olds.consul).nodes.deregisterNode(olds.hostname);
    await catalog.registerExternalNode({ node: m.hostname, address: m.ip, meta: nodeMeta(m) });
    const kv = ctx.consul(m.consul).kv;
    const live = await kv.tree(m.consulPrefix);
    const want = new Map(Object.entries(m.config).map(([k, val]) => [m.consulPrefix + k, val]));
    const ops: KvOperation[] = [...want].filter(([k, val]) => live.get(k) !== val).map(([key, value]) => ({ verb: "set", key, value }));
    if (olds?.consul) {
        const stale = Object.keys(olds.config ?? {}).map((k) => olds.consulPrefix + k).filter((k) => !want.has(k) && live.has(k));
        ops.push(...stale.map((key) => ({ verb: "delete" as const, key })));
    }
    if (ops.length > 0) ctx.log.info(`${m.hostname}: writing ${ops.length} configuration key(s) under ${m.consulPrefix}`);
    await kv.apply(ops);
}

async function unregisterFromConsul(m: MachineState, ctx: OperationContext): Promise<void> {
    if (!m.consul) return;
    await ctx.consul(m.consul).nodes.deregisterNode(m.hostname);
    const kv = ctx.consul(m.consul).kv;
    const live = await kv.tree(m.consulPrefix);
    const ops = Object.keys(m.config ?? {}).map((k) => m.consulPrefix + k).filter((k) => live.has(k)).map((key) => ({ verb: "delete" as const, key }));
    await kv.apply(ops);
    ctx.log.info(`${m.hostname}: removed from the Consul catalog and ${ops.length} key(s) under ${m.consulPrefix}`);
}

// ---- power and boot --------------------------------------------------------------------------

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs the power action; returns when it was taken (the start of the boot), if any. */
async function powerAction(m: MachineInputs, action: PowerOnCreate, ctx: OperationContext): Promise<number | undefined> {
    if (!m.ipmi || action === "none") return undefined;
    const bmc = ctx.bmc(m.ipmi);
    const state = await bmc.powerState();
    if (action === "on") {
        if (state === "on") {
            ctx.log.info(`${m.hostname}: already powered on (${bmc.target})`);
            return undefined;
        }
        await bmc.powerOn();
        ctx.log.info(`${m.hostname}: powered on through ${bmc.target}`);
        return Date.now();
    }
    await bmc.bootFromNetworkOnce();
    const started = Date.now();
    await bmc.cycle(sleep);
    ctx.log.info(`${m.hostname}: next boot from PXE, ${state === "on" ? "power cycled" : "powered on"} through ${bmc.target}`);
    return started;
}

/** Waits until the box answers SSH; each attempt is one quick dial on a private pool. */
async function waitForSsh(m: MachineInputs, ctx: OperationContext): Promise<void> {
    if (!m.waitForSsh) return;
    const { connection, timeoutSeconds } = m.waitForSsh;
    const started = Date.now();
    const deadline = started + timeoutSeconds * 1000;
    let last = "";
    for (;;) {
        try {
            await ctx.probeSsh(connection);
            return;
        } catch (err) {
            last = (err as Error).message.split("\n")[0];
        }
        const waited = Math.round((Date.now() - started) / 1000);
        if (Date.now() > deadline) {
            throw new Error(`${m.hostname} did not answer SSH at ${describeTarget(connection)} within ${timeoutSeconds} s; last attempt: ${last}\n  next: look at its console (BMC SOL), the PXE server's log and lease file; raise waitForSsh.timeoutSeconds if it is merely slow`);
        }
        ctx.log.progress(`${m.hostname}: waiting for SSH at ${describeTarget(connection)} (${waited} s of ${timeoutSeconds} s)`);
        await sleep(3000);
    }
}

async function bootAndRead(m: MachineInputs, action: PowerOnCreate, ctx: OperationContext): Promise<{ facts?: MachineFacts; bootSeconds?: number }> {
    const started = await powerAction(m, action, ctx);
    await waitForSsh(m, ctx);
    const out: { facts?: MachineFacts; bootSeconds?: number } = {};
    if (started !== undefined && m.waitForSsh) {
        out.bootSeconds = Math.round((Date.now() - started) / 100) / 10;
        ctx.log.info(`${m.hostname}: answers SSH ${out.bootSeconds} s after the power action`);
    }
    const facts = await readFacts(m, ctx);
    if (facts) out.facts = facts;
    return out;
}

// ---- lifecycle ------------------------------------------------------------------------------

async function writeEntries(m: MachineInputs, ctx: OperationContext): Promise<BootEntry[]> {
    const views = await Promise.all(m.pxeServers.map((s) => requireView(s, m, ctx)));
    for (const view of views) assertTakeable(view, m);
    await Promise.all(views.map((view) => view.host.apply(planEntries(m, view.ref, view.descriptor.baseUrl))));
    return views.map((view) => ({ server: serverKey(view.ref), baseUrl: view.descriptor.baseUrl, lease: leaseLine(m), bootScript: bootScript(m, view.descriptor.baseUrl) }));
}

async function liveNode(m: MachineInputs, ctx: OperationContext): Promise<MachineState["consulNode"]> {
    if (!m.consul) return undefined;
    const n = await ctx.consul(m.consul).nodes.node(m.hostname);
    return n ? { address: n.address, meta: n.meta } : undefined;
}

function withOptional(state: MachineState, extra: { consulNode?: MachineState["consulNode"]; facts?: MachineFacts; bootSeconds?: number }): MachineState {
    const out: MachineState = { ...state };
    delete out.consulNode;
    if (extra.consulNode) out.consulNode = extra.consulNode;
    if (extra.facts) out.facts = extra.facts;
    if (extra.bootSeconds !== undefined) out.bootSeconds = extra.bootSeconds;
    return out;
}

export async function create(inputs: MachineInputs, ctx: OperationContext): Promise<{ id: string; outs: MachineState }> {
    await assertConsulTakeable(inputs, ctx);
    const entries = await writeEntries(inputs, ctx);
    ctx.log.info(`${inputs.hostname}: lease ${inputs.ip} and boot entry (profile ${inputs.profile}) on ${entries.map((e) => e.server).join(", ")}`);
    await registerInConsul(inputs, ctx);
    const booted = await bootAndRead(inputs, inputs.power.onCreate, ctx);
    return { id: inputs.mac, outs: withOptional({ ...inputs, entries }, { consulNode: await liveNode(inputs, ctx), ...booted }) };
}

export async function read(_id: string, props: MachineState, ctx: OperationContext): Promise<MachineState | undefined> {
    const entries: BootEntry[] = [];
    for (const ref of props.pxeServers) {
        const view = await viewOf(ref, props, ctx);
        if (view && (view.lease !== "" || view.bootScript !== "")) entries.push({ server: serverKey(ref), baseUrl: view.descriptor.baseUrl, lease: view.lease, bootScript: view.bootScript });
    }
    const consulNode = await liveNode(props, ctx);
    let config = props.config;
    if (props.consul) {
        const live = await ctx.consul(props.consul).kv.tree(props.consulPrefix);
        config = Object.fromEntries(Object.keys(props.config ?? {}).filter((k) => live.has(props.consulPrefix + k)).map((k) => [k, live.get(props.consulPrefix + k) as string]));
    }
    if (entries.length === 0 && !consulNode) return undefined;
    // Servers that lost the machine's entries drop out, so the next up writes them again.
    const pxeServers = props.pxeServers.filter((s) => entries.some((e) => e.server === serverKey(s)));
    return withOptional({ ...props, pxeServers, entries, config }, { consulNode, facts: props.facts, bootSeconds: props.bootSeconds });
}

export async function update(_id: string, olds: MachineState, news: MachineInputs, ctx: OperationContext): Promise<MachineState> {
    await assertConsulTakeable(news, ctx, olds);
    const dropped = (olds.pxeServers ?? []).filter((o) => !news.pxeServers.some((n) => serverKey(n) === serverKey(o)));
    for (const ref of dropped) {
        ctx.log.info(`${news.hostname}: removing its entries from PXE server ${serverKey(ref)}`);
        await ctx.remote(ref.connection).apply(planRemoveEntries(olds.mac, ref));
    }
    const entries = await writeEntries(news, ctx);
    if (olds.consul && !news.consul) await unregisterFromConsul(olds, ctx);
    else await registerInConsul(news, ctx, olds);
    const bootChanged = changedFields(olds, news, [...bootRelevant]).length > 0;
    const action: PowerOnCreate = bootChanged && news.power.cycleOnBootChange ? "pxe" : "none";
    if (action === "pxe") ctx.log.info(`${news.hostname}: ${changedFields(olds, news, [...bootRelevant]).join(", ")} changed: cycling it into PXE (power.cycleOnBootChange)`);
    const booted = await bootAndRead(news, action, ctx);
    return withOptional({ ...news, entries }, { consulNode: await liveNode(news, ctx), facts: booted.facts ?? olds.facts, bootSeconds: booted.bootSeconds ?? olds.bootSeconds });
}

export async function remove(_id: string, props: MachineState, ctx: OperationContext): Promise<void> {
    for (const ref of props.pxeServers ?? []) {
        await ctx.remote(ref.connection).apply(planRemoveEntries(props.mac, ref));
    }
    await unregisterFromConsul(props, ctx);
    if (props.ipmi && props.power?.offOnDelete) {
        const bmc = ctx.bmc(props.ipmi);
        if ((await bmc.powerState()) === "on") {
            await bmc.powerOff();
            ctx.log.info(`${props.hostname}: powered off through ${bmc.target} (power.offOnDelete)`);
        }
    }
}
