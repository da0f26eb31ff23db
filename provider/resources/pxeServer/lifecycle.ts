// PxeServer, part lifecycle: create (refusing an instance it did not write unless
// adopting), read, update and delete against the operation's hosts.
import { RefusedError } from "../../core/errors";
import { OperationContext } from "../../core/resource";
import { Remote, serviceStateShell } from "../../host";
import type { OsFamily } from "../../host";
import { managedMarker, pxeLayout } from "../../pxe/shared";
import { planDelete, planFiles, planServices, restartsBetween, restartsFrom } from "./plan";
import { dhcpRoleOf, dhcpSettling, readDhcpSeen, readLive } from "./read";
import { baseUrlOf } from "./render";
import { PxeServerInputs, PxeServerState } from "./spec";

function hostFor(inputs: PxeServerInputs, ctx: OperationContext): Remote {
    return ctx.remote(inputs.connection, { secrets: [inputs.standby?.token] });
}

// Prints the state of service $1 (active, inactive ...), the same way on systemd and OpenRC.
const serviceStateScript = `${serviceStateShell}\nbaremetal_service_state "$1"`;

/**
 * Refuses to overwrite an instance's configuration that this package did not
 * write; with adopt, only while that instance's DHCP does not run: rewriting it
 * would restart DHCP (clients' leases pause), which adoption never does.
 */
async function assertOurs(host: Remote, inputs: PxeServerInputs): Promise<void> {
    const layout = pxeLayout(inputs.name);
    const conf = await host.readFile(layout.dnsmasqConf);
    if (conf === undefined || conf.includes(managedMarker)) return;
    if (!inputs.adopt) {
        throw new RefusedError(
            `${layout.dnsmasqConf} on ${host.target} exists and was not written by pulumi-baremetal`,
            "Set adopt: true on this PxeServer to take it over (it will be rewritten), or choose another name.",
        );
    }
    const state = (await host.run(["sh", "-c", serviceStateScript, "baremetal-service-state", layout.dhcpService], { what: `read the state of ${layout.dhcpService}` })).stdout.trim();
    if (state === "active") {
        throw new RefusedError(
            `the PXE instance ${inputs.name} on ${host.target} serves DHCP (${layout.dhcpService}) from a config pulumi-baremetal did not write; adopting it would rewrite that config and restart DHCP`,
            `Stop ${layout.dhcpService} when DHCP may pause for a moment, then run again (the rewritten instance starts at once), or choose another name.`,
        );
    }
}

/** Puts files and services in place; says whether DHCP was restarted. */
async function apply(host: Remote, inputs: PxeServerInputs, family: OsFamily, removedProfiles: string[], olds?: PxeServerInputs): Promise<{ dhcpRestarted: boolean }> {
    const result = await host.apply(planFiles(inputs, family, removedProfiles));
    const changed = restartsFrom(result);
    const differ = olds ? restartsBetween(olds, inputs, family) : { dhcp: false, http: false };
    const restart = { dhcp: changed.dhcp || differ.dhcp, http: changed.http || differ.http };
    await host.apply(planServices(inputs, restart));
    return { dhcpRestarted: restart.dhcp };
}

/** Reads between DHCP (re)starting and its role settling, and the pause between them. */
const settleReads = 10;
const settlePauseMs = 500;

/** The state after create or update; `started`: this operation (re)started DHCP. */
async function stateOf(host: Remote, inputs: PxeServerInputs, family: OsFamily, ctx: OperationContext, started: boolean): Promise<PxeServerState> {
    const standby = inputs.standby !== undefined;
    let live = await readLive(host, inputs, family);
    if (live && dhcpSettling(dhcpRoleOf(live.dhcp, standby), started)) {
        // Only the role is read again while it settles; the whole read once it has.
        let seen = live.dhcp;
        for (let i = 0; i < settleReads && dhcpSettling(dhcpRoleOf(seen, standby), started); i++) {
            await new Promise((r) => setTimeout(r, settlePauseMs));
            seen = await readDhcpSeen(host, inputs);
        }
        live = await readLive(host, inputs, family);
    }
    if (!live) throw new Error(`PXE server ${inputs.name} was set up on ${host.target} but its descriptor cannot be read back`);
    const dhcpRole = dhcpRoleOf(live.dhcp, standby);
    if (dhcpRole === "stopped") ctx.log.warn(`PXE server ${inputs.name} on ${host.target}: DHCP is not running; see journalctl -u ${pxeLayout(inputs.name).dhcpService} or ${pxeLayout(inputs.name).logFile}`);
    return { ...inputs, family, baseUrl: baseUrlOf(inputs), dhcpRole, leases: live.leases, files: live.files };
}

export async function create(inputs: PxeServerInputs, ctx: OperationContext): Promise<{ id: string; outs: PxeServerState }> {
    const host = hostFor(inputs, ctx);
    const family = (await host.facts()).family;
    await assertOurs(host, inputs);
    await apply(host, inputs, family, []);
    return { id: `${inputs.name}@${inputs.connection.host}`, outs: await stateOf(host, inputs, family, ctx, true) };
}

export async function read(_id: string, props: PxeServerState, ctx: OperationContext): Promise<PxeServerState | undefined> {
    const host = hostFor(props, ctx);
    const family = props.family ?? (await host.facts()).family;
    const live = await readLive(host, props, family);
    if (!live) return undefined;
    return { ...props, family, dhcpRole: dhcpRoleOf(live.dhcp, props.standby !== undefined), leases: live.leases, files: live.files };
}

export async function update(_id: string, olds: PxeServerState, news: PxeServerInputs, ctx: OperationContext): Promise<PxeServerState> {
    const host = hostFor(news, ctx);
    const family = (await host.facts()).family;
    const removed = Object.keys(olds.profiles ?? {}).filter((n) => !(n in news.profiles));
    const { dhcpRestarted } = await apply(host, news, family, removed, olds);
    // A stopped DHCP was just started (planServices starts it) and is settling too.
    return stateOf(host, news, family, ctx, dhcpRestarted || olds.dhcpRole === "stopped");
}

export async function remove(_id: string, props: PxeServerState, ctx: OperationContext): Promise<void> {
    const host = hostFor(props, ctx);
    await host.apply(planDelete(props));
}
