// Machine, part check: check and diff (the table, plus each PXE server once, the
// power actions' need of ipmi, and the drift a refresh saw).
import { checkByTable, diffByTable, erase } from "../../core/fields";
import { CheckOutcome, DiffOutcome, sameValue } from "../../core/resource";
import { isUnknown, unknownValue, Validator } from "../../core/validate";
import { bootScript, leaseLine, nodeMeta, serverKey } from "./render";
import { MachineInputs, MachinePower, MachineState, PxeServerRef, spec } from "./spec";

// ---- check -------------------------------------------------------------------------------

/** Each PXE server once (by `<name>@<host>`): two refs to one would write its entries twice. */
function checkServersOnce(v: Validator, servers: readonly PxeServerRef[]): void {
    const seen = new Set<string>();
    for (const [i, s] of servers.entries()) {
        if (isUnknown(s) || isUnknown(s.connection)) continue;
        const key = serverKey(s);
        if (seen.has(key)) v.fail(`pxeServers[${i}]`, `names PXE server ${key} twice`);
        seen.add(key);
    }
}

/** onCreate's default depends on ipmi; every action but none needs one. */
function completePower(v: Validator, power: Partial<MachinePower>, hasIpmi: boolean): MachinePower {
    const onCreate = power.onCreate ?? (hasIpmi ? "pxe" : "none");
    if (!hasIpmi) {
        if (onCreate !== "none" && !isUnknown(onCreate)) v.fail("power.onCreate", `is ${onCreate} but no ipmi is given; set ipmi or use "none"`);
        if (power.cycleOnBootChange === true) v.fail("power.cycleOnBootChange", "needs ipmi");
        if (power.offOnDelete === true) v.fail("power.offOnDelete", "needs ipmi");
    }
    return { onCreate, cycleOnBootChange: power.cycleOnBootChange ?? false, offOnDelete: power.offOnDelete ?? false };
}

export function check(_olds: Record<string, unknown>, news: Record<string, unknown>): CheckOutcome<MachineInputs> {
    const v = new Validator();
    // A left-out power is checked as {} so that its fields' defaults apply.
    const inputs = checkByTable(v, erase(spec), { ...news, power: news.power ?? {} }) as Partial<MachineInputs>;
    const { hostname, pxeServers, config, power } = inputs;
    if (Array.isArray(pxeServers)) checkServersOnce(v, pxeServers);
    if (inputs.consulPrefix === undefined && hostname !== undefined) inputs.consulPrefix = isUnknown(hostname) ? unknownValue : `machines/${hostname}/`;
    const noConsul = news.consul === undefined || news.consul === null;
    if (config && !isUnknown(config) && Object.keys(config).length > 0 && noConsul) v.fail("config", "needs consul (where the keys go)");
    // Judged by what was given, valid or not: a bad ipmi is one failure, not one more per power field.
    if (power && !isUnknown(power)) inputs.power = completePower(v, power, news.ipmi !== undefined && news.ipmi !== null);
    if (!v.ok) return { failures: v.failures };
    return { inputs: inputs as MachineInputs, failures: [] };
}

// ---- diff --------------------------------------------------------------------------------

/** Inputs whose change alters how the box boots (what cycleOnBootChange reacts to). */
export const bootRelevant = ["ip", "hostname", "profile", "kernelArgs"] as const;

export function diff(_id: string, olds: MachineState, news: MachineInputs): DiffOutcome {
    const d = diffByTable(erase(spec), olds as unknown as Record<string, unknown>, news as unknown as Record<string, unknown>);
    return { changes: d.changed.length > 0 || drifted(olds, news), replaces: d.replaces, stables: d.stables };
}

/** Entries or the catalog node differ from what the inputs make (edited by hand, seen by refresh). */
function drifted(olds: MachineState, news: MachineInputs): boolean {
    for (const e of olds.entries ?? []) {
        if (!news.pxeServers.some((s) => serverKey(s) === e.server)) continue;
        if (e.lease !== leaseLine(news) || e.bootScript !== bootScript(news, e.baseUrl)) return true;
    }
    if (news.consul && (!olds.consulNode || !sameValue(olds.consulNode, { address: news.ip, meta: nodeMeta(news) }))) return true;
    return false;
}
