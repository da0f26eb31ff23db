// LxcContainer, part check: check (the table, one source, a gateway needs an
// address, default mount options) and diff.
import { checkByTable, diffByTable, erase } from "../../core/fields";
import { CheckOutcome, DiffOutcome } from "../../core/resource";
import { Validator } from "../../core/validate";
import type { LxcMount } from "../../parsers/lxc";
import { LxcContainerInputs, LxcContainerState, spec } from "./spec";

/** A mount's options when left out: what its type needs. */
function withDefaultOptions(m: LxcMount): LxcMount {
    if (typeof m !== "object" || (m as Partial<LxcMount>).options !== undefined) return m;
    return { ...m, options: m.type === "none" ? "bind,create=dir" : "defaults,create=dir" };
}

export function check(_olds: Record<string, unknown>, news: Record<string, unknown>): CheckOutcome<LxcContainerInputs> {
    const v = new Validator();
    const inputs = checkByTable(v, erase(spec), news) as Partial<LxcContainerInputs>;
    const { rootfs, templateArgs, network, mounts } = inputs;
    // By what was sent, so a malformed template is one error, not also "give exactly one".
    const given = (k: string) => news[k] !== undefined && news[k] !== null;
    if (given("template") === given("rootfs")) v.fail("template", "give exactly one of template or rootfs");
    if (rootfs !== undefined && Array.isArray(templateArgs) && templateArgs.length > 0) v.fail("templateArgs", "only go with a template");
    if (Array.isArray(network)) {
        network.forEach((n, i) => {
            if (typeof n === "object" && n.gateway !== undefined && n.ipv4 === undefined) v.fail(`network[${i}].gateway`, "needs ipv4 as well");
        });
    }
    if (Array.isArray(mounts)) inputs.mounts = mounts.map(withDefaultOptions);
    if (!v.ok) return { failures: v.failures };
    return { inputs: inputs as LxcContainerInputs, failures: [] };
}

// ---- diff -------------------------------------------------------------------------------------

/** Fields written to the config: a change restarts the container. */
export const configFields: (keyof LxcContainerInputs)[] = ["network", "mounts", "autostart", "limits"];
export const provisionFields: (keyof LxcContainerInputs)[] = ["files", "commands"];

export function diff(_id: string, olds: LxcContainerState, news: LxcContainerInputs): DiffOutcome {
    const d = diffByTable(erase(spec), olds as unknown as Record<string, unknown>, news as unknown as Record<string, unknown>);
    // A container found stopped (refresh) is started again by an update.
    const stopped = olds.state !== undefined && olds.state !== "RUNNING";
    // Same name on the same box: the old container must go before the new one is made.
    const notes = stopped && d.replaces.length === 0 ? [`container ${news.name} is ${String(olds.state).toLowerCase()} on its box: the update starts it`] : [];
    return { changes: d.changed.length > 0 || d.replaces.length > 0 || stopped, replaces: d.replaces, deleteBeforeReplace: true, stables: d.stables, notes };
}
