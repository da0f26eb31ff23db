// KvmGuest, part lifecycle: create (adopt, refuse, find its own service),
// read, update (graceful restart, live migration) and delete (graceful
// power-down), against the operation's hosts.
import { RefusedError } from "../../core/errors";
import { changedFields, OperationContext } from "../../core/resource";
import { HostConnection, initSystemOf, Remote, step } from "../../host";
import { MigrationResult, parseMigrate, parseStatus, parseStopOutcome } from "../../parsers/qmp";
import { qmpCall, qmpPowerdown, qmpWait } from "../../qmp/client";
import { qmpNotRunning, qmpScript } from "../../qmp/script";
import { hardwareFields } from "./check";
import { planIncoming, planInstall, planRemove } from "./plan";
import { BoxView, readAsFoundLive, readBox, readState, readStateAsFound } from "./read";
import { pathsOf, serviceName } from "./render";
import { GuestAsFound, KvmGuestInputs, KvmGuestState, MigrationFigures } from "./spec";

function hostFor(conn: HostConnection, ctx: OperationContext): Remote {
    return ctx.remote(conn);
}

/** Starts the service and waits until QMP reports the guest in `want` status. */
async function startAndWait(host: Remote, g: KvmGuestInputs, want: string, ctx: OperationContext): Promise<void> {
    await host.apply([step.service("start", serviceName(g.name))]);
    await waitForStatus(host, g, want, ctx);
}

async function waitForStatus(host: Remote, g: KvmGuestInputs, want: string, ctx: OperationContext): Promise<void> {
    ctx.log.progress(`${g.name}: waiting for QMP on ${host.target} to report ${want}`);
    const reply = await qmpWait(host, pathsOf(g.name).qmpSocket, 60);
    const status = reply ? parseStatus(reply.return).status : "not running";
    if (status !== want) {
        const why = await serviceLog(host, g);
        throw new Error(`guest ${g.name} on ${host.target} is ${status}, expected ${want}.\n${why}\n  next: fix the cause (disk export reachable? bridge present?) and run again`);
    }
}

/** The last lines of the service's log, for an error message. */
async function serviceLog(host: Remote, g: KvmGuestInputs): Promise<string> {
    const family = (await host.facts()).family;
    const argv = initSystemOf(family) === "openrc" ? ["tail", "-n", "15", pathsOf(g.name).qemuLog] : ["journalctl", "-u", serviceName(g.name), "-n", "15", "--no-pager", "-o", "cat"];
    const out = await host.exec(argv, { timeoutMs: 30_000 });
    return out.stdout.trim() || out.stderr.trim();
}

/**
 * The graceful stop: the init system's stop runs the ACPI power-down with the
 * timeout (ExecStop / stop()), so a box shutdown does the same; the outcome file
 * tells which way it went.
 */
async function gracefulStop(host: Remote, g: KvmGuestInputs, ctx: OperationContext): Promise<void> {
    const p = pathsOf(g.name);
    ctx.log.info(`${g.name}: powering down on ${host.target} (ACPI, up to ${g.shutdownTimeoutSeconds}s, then quit)`);
    const started = Date.now();
    await host.apply([step.removeFile(p.stopOutcome), step.service("stop", serviceName(g.name))]);
    const outcome = parseStopOutcome((await host.readFile(p.stopOutcome)) ?? "");
    const took = ((Date.now() - started) / 1000).toFixed(1);
    if (!outcome) ctx.log.info(`${g.name}: was not running (stopped in ${took}s)`);
    else if (outcome.outcome === "powered-off") ctx.log.info(`${g.name}: powered off by itself after ${outcome.seconds}s`);
    else ctx.log.warn(`${g.name}: did not power off within ${g.shutdownTimeoutSeconds}s (no OS answering ACPI?); qemu was told to quit`);
}

export async function create(inputs: KvmGuestInputs, ctx: OperationContext): Promise<{ id: string; outs: KvmGuestState }> {
    const host = hostFor(inputs.connection, ctx);
    if (inputs.asFound) return { id: inputs.nics[0].mac, outs: await adoptAsFound(host, { ...inputs, asFound: inputs.asFound }, ctx) };
    const family = (await host.facts()).family;
    const box = await readBox(host, inputs);
    const ours = box.ownerMac === inputs.nics[0].mac;
    if (box.unitPresent && !ours && !inputs.adopt) {
        throw new RefusedError(
            `a service ${serviceName(inputs.name)} already exists on ${host.target}${box.ownerMac ? ` for the guest with MAC ${box.ownerMac}` : ""}`,
            "Set adopt: true on this KvmGuest to take it over (its definition is replaced and the guest restarted), or choose another name.",
        );
    }
    if (box.unitPresent && !ours && box.active) {
        // Replacing the definition of a guest that runs would restart it: adoption never does that.
        throw new RefusedError(
            `the service ${serviceName(inputs.name)} on ${host.target} runs a guest under a definition pulumi-baremetal did not write; adopting it would replace that definition and restart the guest`,
            `Adopt it as it runs with asFound: { service: "${serviceName(inputs.name)}.service", qmpSocket: <its QMP socket> } (baremetal discover writes that), then remove asFound when the guest may restart: preview shows it.`,
        );
    }
    if (box.unitPresent) ctx.log.info(`${inputs.name}: ${ours ? "found the service an earlier run created" : "adopting the existing service (not running)"} on ${host.target}`);
    const plan = planInstall(inputs, family);
    const result = await host.apply(plan);
    const unitChanged = result.stepChanged("guest-service");
    if (box.active && unitChanged) await gracefulStop(host, inputs, ctx);
    if (!box.active || unitChanged) await startAndWait(host, inputs, "running", ctx);
    const state = await readState(host, inputs);
    if (!state) throw new Error(`guest ${inputs.name} was created on ${host.target} but its service cannot be read back`);
    return { id: inputs.nics[0].mac, outs: state };
}

export async function read(_id: string, props: KvmGuestState, ctx: OperationContext): Promise<KvmGuestState | undefined> {
    const { lastMigration } = props;
    const host = hostFor(props.connection, ctx);
    if (props.asFound) return readStateAsFound(host, { ...props, asFound: props.asFound }, lastMigration ? { lastMigration } : {});
    return readState(host, props, lastMigration ? { lastMigration } : {});
}

// ---- a guest kept as found ------------------------------------------------------------

type AsFound = KvmGuestInputs & { asFound: GuestAsFound };

/** Where what runs differs from what is declared, as `field: live (declared ...)` texts. */
function differences(g: KvmGuestInputs, live: { memoryMiB: number; vcpus: number; nics: { mac: string }[] }): string[] {
    const out: string[] = [];
    if (live.memoryMiB !== g.memoryMiB) out.push(`memoryMiB ${live.memoryMiB} (declared ${g.memoryMiB})`);
    if (live.vcpus !== g.vcpus) out.push(`vcpus ${live.vcpus} (declared ${g.vcpus})`);
    const macs = live.nics.map((n) => n.mac).join(", ");
    if (macs !== g.nics.map((n) => n.mac).join(", ")) out.push(`NICs ${macs || "none"} (declared ${g.nics.map((n) => n.mac).join(", ")})`);
    return out;
}

/**
 * Takes over a qemu that runs under a service of its own, as it runs: nothing is
 * written, started or stopped. It must answer on its QMP socket and run what is
 * declared (a difference would need a restart, which adoption never does).
 */
async function adoptAsFound(host: Remote, g: AsFound, ctx: OperationContext): Promise<KvmGuestState> {
    const live = await readAsFoundLive(host, g.asFound);
    if (!live) {
        throw new RefusedError(
            `no qemu answers on ${g.asFound.qmpSocket} on ${host.target}, so guest ${g.name} cannot be adopted as it runs`,
            `Start it the way it is run${g.asFound.service ? ` (its service ${g.asFound.service})` : ""} and run again, or remove asFound to let pulumi-baremetal run it under ${serviceName(g.name)}. Nothing was changed.`,
        );
    }
    const diffs = differences(g, live);
    if (diffs.length > 0) {
        throw new RefusedError(
            `guest ${g.name} on ${host.target} runs with ${diffs.join(", ")}; adopting it as it runs cannot change that without a restart`,
            "Declare what runs (baremetal discover writes it), adopt it, then change it: the change shows in preview. Nothing was changed.",
        );
    }
    ctx.log.info(`${g.name}: adopting the qemu that runs under ${g.asFound.service ?? "no service"} on ${host.target} as it runs (${live.status}); nothing was restarted`);
    return readStateAsFound(host, g);
}

/**
 * Moves a guest kept as found under its own service: the old service is disabled,
 * the guest powered down through QMP (ACPI, then quit after the timeout), the old
 * service stopped (in case it restarted qemu meanwhile), then the guest starts
 * under `baremetal-guest-<name>`. The only way an adopted guest restarts.
 */
async function takeOver(host: Remote, olds: KvmGuestState & { asFound: GuestAsFound }, news: KvmGuestInputs, ctx: OperationContext): Promise<KvmGuestState> {
    const found = olds.asFound;
    const family = (await host.facts()).family;
    ctx.log.warn(`${news.name}: moving the guest from ${found.service ?? "its hand-started qemu"} to ${serviceName(news.name)} on ${host.target}: it is powered down (ACPI, up to ${news.shutdownTimeoutSeconds}s) and started again`);
    if (found.service) await host.apply([step.service("disable", found.service)]);
    const outcome = await qmpPowerdown(host, found.qmpSocket, news.shutdownTimeoutSeconds);
    if (outcome.outcome === "quit") ctx.log.warn(`${news.name}: did not power off within ${news.shutdownTimeoutSeconds}s; qemu was told to quit`);
    if (found.service) await host.apply([step.service("stop", found.service)]);
    await host.apply(planInstall(news, family));
    await startAndWait(host, news, "running", ctx);
    const state = await readState(host, news);
    if (!state) throw new Error(`guest ${news.name} was moved on ${host.target} but its service cannot be read back`);
    return state;
}

/** An update of a guest kept as found: only what needs no restart; a stopped one is started by its own service. */
async function updateAsFound(host: Remote, olds: KvmGuestState, news: AsFound, ctx: OperationContext): Promise<KvmGuestState> {
    const restart = changedFields(olds, news, [...hardwareFields]);
    if (olds.connection.host !== news.connection.host) restart.push("connection");
    if (restart.length > 0) {
        throw new RefusedError(
            `guest ${news.name} is kept as found under ${news.asFound.service ?? "a hand-started qemu"} on ${host.target}; changing ${restart.join(", ")} needs it restarted under pulumi-baremetal's own service`,
            `Remove asFound in the same change to move it under ${serviceName(news.name)} (it is powered down gracefully and started again), or leave ${restart.join(", ")} as it runs. Nothing was changed.`,
        );
    }
    if (olds.running === false && news.asFound.service) {
        ctx.log.info(`${news.name}: was found stopped; starting it with its own service ${news.asFound.service}`);
        await host.apply([step.service("start", news.asFound.service)]);
        await qmpWait(host, news.asFound.qmpSocket, 60);
    }
    return readStateAsFound(host, news);
}

/**
 * Live migration to the box of `news.connection`: an incoming qemu with the same
 * hardware there, `migrate` on the source, a check that the guest runs on the
 * target, then the source service goes. A re-run after a cut connection first
 * finishes what the cut run's migration did (qemu carries on without the
 * connection) instead of starting a second one.
 */
async function migrate(olds: KvmGuestState, news: KvmGuestInputs, ctx: OperationContext): Promise<MigrationFigures> {
    const source = hostFor(olds.connection, ctx);
    const target = hostFor(news.connection, ctx);
    // The guest moves as it is; hardware changes are applied after it arrived.
    const moving: KvmGuestInputs = { ...news, ...pick(olds, hardwareFields) };
    const targetFamily = (await target.facts()).family;
    const p = pathsOf(news.name);
    const started = Date.now();
    ctx.log.info(`${news.name}: live migration from ${source.target} to ${target.target} begins`);
    const earlier = await earlierMigration(source, olds, news, ctx);
    const targetBox = await readBox(target, moving);
    if (targetBox.unitPresent && targetBox.ownerMac !== moving.nics[0].mac && !news.adopt) {
        throw new RefusedError(`a service ${serviceName(news.name)} already exists on ${target.target}`, "Remove it, or set adopt: true to replace it.");
    }
    const arrived = await arrivedEarlier(target, moving, earlier, targetBox);
    if (arrived) ctx.log.info(`${news.name}: the live migration an earlier run started has brought the guest to ${target.target}; finishing the move`);
    else await target.apply(planIncoming(moving, targetFamily));
    try {
        const result = arrived ?? (await sendGuest(source, target, olds, news, moving, ctx));
        await waitForStatus(target, moving, "running", ctx);
        const figures: MigrationFigures = {
            from: source.target,
            to: target.target,
            wallTimeMs: Date.now() - started,
            totalTimeMs: result.totalTimeMs,
            downtimeMs: result.downtimeMs,
            ramTransferredBytes: result.ramTransferredBytes,
        };
        ctx.log.info(
            `${news.name}: migrated from ${source.target} to ${target.target} in ${(figures.wallTimeMs / 1000).toFixed(1)}s ` +
                `(qemu total-time ${result.totalTimeMs ?? "?"} ms, downtime ${result.downtimeMs ?? "?"} ms, ${((result.ramTransferredBytes ?? 0) / 1048576).toFixed(1)} MiB RAM sent)`,
        );
        // The source qemu is paused in postmigrate: quit, so its stop does not wait for an ACPI answer.
        await qmpCall(source, olds.qmpSocket, [{ execute: "quit" }]).catch(() => undefined);
        await source.apply([step.service("stop", serviceName(olds.name)), ...planRemove(olds.name)]);
        return figures;
    } finally {
        // Without the file a later restart on the target boots normally instead of waiting for a migration.
        await target.apply([step.removeFile(p.incoming)]).catch(() => undefined);
    }
}

/** The incoming qemu waits, then the source sends the guest; qemu's final query-migrate. */
async function sendGuest(source: Remote, target: Remote, olds: KvmGuestState, news: KvmGuestInputs, moving: KvmGuestInputs, ctx: OperationContext): Promise<MigrationResult> {
    await waitForStatus(target, moving, "inmigrate", ctx);
    ctx.log.progress(`${news.name}: copying memory to ${target.target}`);
    const out = await source.run(["python3", "-c", qmpScript, "migrate", olds.qmpSocket, `tcp:${news.connection.host}:${news.migrationPort}`, String(news.migrationTimeoutSeconds)], {
        okExitCodes: [0, qmpNotRunning],
        timeoutMs: (news.migrationTimeoutSeconds + 60) * 1000,
        what: `migrate ${news.name} to ${target.target}`,
    });
    if (out.exitCode === qmpNotRunning) throw new Error(`guest ${news.name} is not running on ${source.target}; nothing to migrate (refresh, then up starts it on the new box)`);
    const result: MigrationResult = parseMigrate(out.stdout);
    if (result.status !== "completed") throw new Error(`migration of ${news.name} to ${target.target} ended ${result.status}${result.errorDesc ? `: ${result.errorDesc}` : ""}`);
    return result;
}

/** query-migrate statuses of a migration still under way (qemu's MigrationStatus). */
const migrationUnderWay = new Set(["setup", "active", "pre-switchover", "device", "wait-unplug", "postcopy-active", "postcopy-paused", "postcopy-recover", "cancelling"]);

/** How often a re-run asks the source about a migration a cut run left under way. */
const migrationPollMs = 1000;

/**
 * What the source's qemu says about its last migration; while one that a cut run
 * started is still under way, waits for it to end (up to migrationTimeoutSeconds).
 * Undefined when no qemu runs on the source.
 */
async function earlierMigration(source: Remote, olds: KvmGuestState, news: KvmGuestInputs, ctx: OperationContext): Promise<MigrationResult | undefined> {
    const deadline = Date.now() + news.migrationTimeoutSeconds * 1000;
    for (;;) {
        const replies = await qmpCall(source, olds.qmpSocket, [{ execute: "query-migrate" }]);
        if (!replies) return undefined;
        const last = parseMigrate(JSON.stringify(replies[0]));
        if (!migrationUnderWay.has(last.status)) return last;
        if (Date.now() > deadline) {
            throw new Error(
                `a live migration of ${news.name} from ${source.target} started by an earlier run is still ${last.status} after ${news.migrationTimeoutSeconds}s; run again when it has ended (or cancel it with QMP migrate_cancel on ${olds.qmpSocket})`,
            );
        }
        ctx.log.progress(`${news.name}: a live migration an earlier run started is still ${last.status} on ${source.target}; waiting for it to end`);
        await sleep(migrationPollMs);
    }
}

/**
 * The outcome of a migration a cut run made, when the guest is already on the
 * target: the source's qemu says it completed, or no qemu is left on the source
 * and our guest's service runs on the target (the cut came after the source's
 * quit). Undefined when the guest still has to be sent.
 */
async function arrivedEarlier(target: Remote, moving: KvmGuestInputs, earlier: MigrationResult | undefined, targetBox: BoxView): Promise<MigrationResult | undefined> {
    if (earlier?.status === "completed") return earlier;
    if (earlier !== undefined || !targetBox.active || targetBox.ownerMac !== moving.nics[0].mac) return undefined;
    const replies = await qmpCall(target, pathsOf(moving.name).qmpSocket, [{ execute: "query-status" }]);
    const status = replies?.[0].return ? parseStatus(replies[0].return).status : undefined;
    return status === "running" ? { status: "completed" } : undefined;
}

function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms));
}

function pick<T extends object>(from: T, keys: (keyof T)[]): Partial<T> {
    return Object.fromEntries(keys.map((k) => [k, from[k]])) as Partial<T>;
}

export async function update(_id: string, olds: KvmGuestState, news: KvmGuestInputs, ctx: OperationContext): Promise<KvmGuestState> {
    if (olds.asFound || news.asFound) {
        const host = hostFor(news.connection, ctx);
        if (news.asFound) {
            if (!olds.asFound) {
                throw new RefusedError(`guest ${news.name} runs under ${serviceName(news.name)} on ${host.target}; it cannot be handed to another service`, "Remove asFound. Nothing was changed.");
            }
            return updateAsFound(host, olds, { ...news, asFound: news.asFound }, ctx);
        }
        if (olds.connection.host !== news.connection.host) {
            throw new RefusedError(`guest ${news.name} is kept as found on ${olds.connection.host}; moving it under pulumi-baremetal and to another box are two changes`, "Remove asFound first (same box), then change the box. Nothing was changed.");
        }
        return takeOver(host, { ...olds, asFound: olds.asFound! }, news, ctx);
    }
    let lastMigration = olds.lastMigration;
    let running = olds.running;
    if (olds.connection.host !== news.connection.host) {
        lastMigration = await migrate(olds, news, ctx);
        running = true;
    }
    const host = hostFor(news.connection, ctx);
    const family = (await host.facts()).family;
    const migrated: KvmGuestState = lastMigration !== olds.lastMigration ? { ...olds, connection: news.connection } : olds;
    const restart = changedFields(migrated, news, hardwareFields).length > 0;
    await host.apply(planInstall(news, family));
    if (restart && running) {
        ctx.log.info(`${news.name}: ${changedFields(migrated, news, hardwareFields).join(", ")} changed; restarting the guest`);
        await gracefulStop(host, { ...news, shutdownTimeoutSeconds: olds.shutdownTimeoutSeconds }, ctx);
    }
    const box = await readBox(host, news);
    if (!box.active) await startAndWait(host, news, "running", ctx);
    const state = await readState(host, news, lastMigration ? { lastMigration } : {});
    if (!state) throw new Error(`guest ${news.name} disappeared from ${host.target} during the update`);
    return state;
}

export async function remove(_id: string, props: KvmGuestState, ctx: OperationContext): Promise<void> {
    const host = hostFor(props.connection, ctx);
    if (props.asFound) {
        // Its service is not ours to remove: the guest is powered down and its service stopped and disabled.
        const found = props.asFound;
        ctx.log.info(`${props.name}: powering down on ${host.target} (ACPI, up to ${props.shutdownTimeoutSeconds}s, then quit); its service ${found.service ?? "(none)"} stays on the box, disabled`);
        if (found.service) await host.apply([step.service("disable", found.service)]);
        await qmpPowerdown(host, found.qmpSocket, props.shutdownTimeoutSeconds);
        if (found.service) await host.apply([step.service("stop", found.service)]);
        return;
    }
    const box = await readBox(host, props);
    if (!box.unitPresent) {
        ctx.log.info(`${props.name}: already gone from ${host.target}`);
        return;
    }
    if (box.ownerMac !== undefined && box.ownerMac !== props.mac) {
        throw new RefusedError(`the service ${serviceName(props.name)} on ${host.target} now belongs to the guest with MAC ${box.ownerMac}, not ${props.mac}`, "Refresh the stack to see what happened; nothing was stopped.");
    }
    await gracefulStop(host, props, ctx);
    await host.apply(planRemove(props.name));
}
