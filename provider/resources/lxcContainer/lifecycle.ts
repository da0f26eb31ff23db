// LxcContainer, part lifecycle: create (adopt, refuse, carry on with its own
// container after a cut), read, update (restart on a config change, provision)
// and delete, against the operation's hosts.
import { RefusedError } from "../../core/errors";
import { changedFields, OperationContext, sameValue } from "../../core/resource";
import { effectiveConfig } from "../../parsers/lxc";
import { HostConnection, Remote, step } from "../../host";
import { configFields, provisionFields } from "./check";
import { packagesFor, planConfig, planCreate, planDestroy, planProvision, planStart, planStop } from "./plan";
import { LiveContainer, madeByCreate, readLive, stateOf } from "./read";
import { LxcContainerInputs, LxcContainerState } from "./spec";

function hostFor(conn: HostConnection, ctx: OperationContext): Remote {
    return ctx.remote(conn);
}

export async function create(inputs: LxcContainerInputs, ctx: OperationContext): Promise<{ id: string; outs: LxcContainerState }> {
    const host = hostFor(inputs.connection, ctx);
    const family = (await host.facts()).family;
    const existing = await readLive(host, inputs.name, true);
    if (existing) {
        const ours = madeByCreate(inputs, existing.config);
        if (!ours && !inputs.adopt) {
            throw new RefusedError(
                `container ${inputs.name} already exists on ${host.target} (${existing.info.state})`,
                "Set adopt: true on this LxcContainer to take it over (its managed config block is rewritten and it is restarted), or choose another name.",
            );
        }
        if (ours) {
            ctx.log.info(`${inputs.name}: found the container an earlier run created on ${host.target}`);
            const changed = (await host.apply([step.ensurePackages(...packagesFor(inputs, family)), planConfig(inputs), step.persist()])).stepChanged("config");
            // The earlier run may have been cut after the start, before or while provisioning: provision in any case.
            await converge(host, inputs, existing.info.state, changed, ctx, true);
        } else {
            adoptAsItRuns(host, inputs, existing, ctx);
        }
    } else {
        await host.apply(planCreate(inputs, family));
        await converge(host, inputs, "STOPPED", true, ctx);
    }
    const live = await readLive(host, inputs.name);
    if (!live) throw new Error(`container ${inputs.name} was created on ${host.target} but cannot be read back`);
    return { id: `${inputs.name}@${inputs.connection.host}`, outs: stateOf(inputs, live) };
}

/**
 * Someone else's container is taken over as it runs: its config must already say
 * what is declared (network, mounts, autostart, limits, wherever in the file), so
 * nothing is written, restarted or run inside it. A difference would mean a
 * config rewrite and a restart, which adoption never does: refused, saying which.
 * The next change of those fields writes the managed block (taking over the same
 * keys outside it) and restarts the container, like any config change.
 */
function adoptAsItRuns(host: Remote, c: LxcContainerInputs, existing: LiveContainer, ctx: OperationContext): void {
    const live = effectiveConfig(existing.config, c.mounts);
    const differs = configFields.filter((f) => !sameValue(live[f as keyof typeof live], c[f]));
    if (differs.length > 0) {
        throw new RefusedError(
            `container ${c.name} on ${host.target} (${existing.info.state}) runs with another ${differs.join(", ")} than declared (${differs.map((f) => `${f}: ${JSON.stringify(live[f as keyof typeof live])}`).join("; ")}); adopting it would rewrite its config and restart it`,
            "Declare it as it runs (baremetal discover writes that), adopt it, then change it: the change shows in preview and restarts it then.",
        );
    }
    ctx.log.info(`${c.name}: adopting the existing container on ${host.target} as it runs (${existing.info.state}); its config is kept and nothing was restarted`);
}

/** (Re)starts the container when needed, then provisions it (or provisions it anyway). */
async function converge(host: Remote, c: LxcContainerInputs, state: string, configChanged: boolean, ctx: OperationContext, provisionAnyway = false): Promise<void> {
    if (state === "RUNNING" && configChanged) {
        ctx.log.info(`${c.name}: config changed; restarting`);
        await host.apply(planStop(c));
    }
    if (state !== "RUNNING" || configChanged) await host.apply(planStart(c));
    if (state !== "RUNNING" || configChanged || provisionAnyway) await host.apply(planProvision(c));
}

/**
 * Whether the running container must restart: its config changed now, or it
 * differs from the last applied one (olds) because an earlier attempt wrote the
 * config and was cut off before the restart that applies it.
 */
export function needsRestart(olds: LxcContainerState, news: LxcContainerInputs, writtenNow: boolean): boolean {
    return writtenNow || changedFields(olds, news, configFields).length > 0;
}

export async function read(_id: string, props: LxcContainerState, ctx: OperationContext): Promise<LxcContainerState | undefined> {
    const live = await readLive(hostFor(props.connection, ctx), props.name);
    return live ? stateOf(props, live) : undefined;
}

export async function update(_id: string, olds: LxcContainerState, news: LxcContainerInputs, ctx: OperationContext): Promise<LxcContainerState> {
    const host = hostFor(news.connection, ctx);
    const family = (await host.facts()).family;
    const before = await readLive(host, news.name);
    if (!before) throw new Error(`container ${news.name} no longer exists on ${host.target}; run \`pulumi refresh\` and then \`pulumi up\` to create it again`);
    const written = (await host.apply([step.ensurePackages(...packagesFor(news, family)), planConfig(news), step.persist()])).stepChanged("config");
    const configChanged = needsRestart(olds, news, written);
    const running = before.info.state === "RUNNING";
    await converge(host, news, before.info.state, configChanged, ctx);
    // Running and not restarted: provision only when what is provisioned changed.
    if (running && !configChanged && changedFields(olds, news, provisionFields).length > 0) await host.apply(planProvision(news));
    const live = await readLive(host, news.name);
    if (!live) throw new Error(`container ${news.name} disappeared from ${host.target} during the update`);
    return stateOf(news, live);
}

export async function remove(_id: string, props: LxcContainerState, ctx: OperationContext): Promise<void> {
    const host = hostFor(props.connection, ctx);
    // Under the container's lock: an lxc-destroy of a cut delete may still be running.
    const live = await readLive(host, props.name, true);
    if (!live) {
        ctx.log.info(`${props.name}: already gone from ${host.target}`);
        return;
    }
    await host.apply(planDestroy(props));
}
