// NbdVolume, part check: check (the table, the values computed from other
// inputs, the shrink and re-create refusals) and diff.
import { applyDataLossAlias, withCurrentOptIn } from "../../core/dataLoss";
import { checkByTable, checkField, diffByTable, erase, valueAt } from "../../core/fields";
import { CheckOutcome, DiffOutcome } from "../../core/resource";
import { formatBytes, isUnknown, parseSize, unknownValue, Validator } from "../../core/validate";
import { NbdVolumeInputs, NbdVolumeState, spec } from "./spec";

export function check(olds: Record<string, unknown>, news: Record<string, unknown>): CheckOutcome<NbdVolumeInputs> {
    const v = new Validator();
    const inputs = checkByTable(v, erase(spec), news) as Partial<NbdVolumeInputs>;
    applyDataLossAlias(v, inputs, news, "deleteData");
    fillComputed(v, inputs, news);
    const { size, requestedBytes } = inputs;
    const oldBytes = typeof olds.requestedBytes === "number" ? olds.requestedBytes : undefined;
    if (oldBytes !== undefined && typeof requestedBytes === "number" && requestedBytes < oldBytes) {
        v.fail(
            "size",
            `shrinking ${String(olds.volumeGroup)}/${String(olds.name)} from ${formatBytes(oldBytes)} to ${size} is refused: it would cut off data. ` +
                "To get a smaller volume, declare a new NbdVolume of the smaller size, copy the data into it (e.g. nbdcopy between the exports), move the owner to it, then delete this one with allowDataLoss: true",
        );
    }
    // Only fields whose new value is valid, so a bad name is not also reported as a re-create.
    if (olds.name !== undefined && inputs.allowDataLoss === false) {
        for (const f of diffByTable(erase(spec), olds, inputs).replaces.filter((p) => valueAt(inputs, p) !== undefined)) {
            v.fail(f, `changing ${f} re-creates the logical volume and destroys its data; set allowDataLoss: true to allow it (nothing was changed)`);
        }
    }
    if (inputs.asFound !== undefined && inputs.adopt === false) v.fail("asFound", "keeps an export of the box's own nbd-server as it is, so it needs adopt: true");
    if (!v.ok) return { failures: v.failures };
    return { inputs: inputs as NbdVolumeInputs, failures: [] };
}

/**
 * What check computes from other inputs: `requestedBytes` always, the defaults
 * that follow other fields when left out (each checked by its own rule, so an LV
 * named `generic` is refused as an export name). Nothing is computed from an
 * input that failed, so one mistake gives one error.
 */
function fillComputed(v: Validator, inputs: Partial<NbdVolumeInputs>, news: Record<string, unknown>): void {
    const absent = (k: keyof NbdVolumeInputs) => news[k] === undefined || news[k] === null;
    const derive = <K extends "exportName" | "exportAddress" | "consulNode">(k: K, from: unknown) => {
        if (!absent(k) || from === undefined) return;
        const value = checkField(v, k, spec.inputs[k], from);
        if (value !== undefined) inputs[k] = value as NbdVolumeInputs[K];
    };
    if (inputs.size !== undefined) inputs.requestedBytes = isUnknown(inputs.size) ? (inputs.size as unknown as number) : parseSize(inputs.size);
    derive("exportName", inputs.name);
    const host = inputs.connection === undefined ? undefined : isUnknown(inputs.connection) ? unknownValue : inputs.connection.host;
    derive("exportAddress", host);
    const address = inputs.exportAddress;
    derive("consulNode", address === undefined || isUnknown(address) ? address : `${address.replace(/[^A-Za-z0-9]+/g, "-")}-nbd`);
}

export function diff(_id: string, olds: NbdVolumeState, news: NbdVolumeInputs): DiffOutcome {
    const d = diffByTable(erase(spec), withCurrentOptIn(olds, "deleteData") as unknown as Record<string, unknown>, news as unknown as Record<string, unknown>);
    // The bytes decide: `1GiB` re-spelt as `1024MiB` is no change.
    const changed = d.changed.filter((k) => k !== "size");
    // A repair an update makes although no input changed: the export's server found stopped
    // (refresh after it was stopped by hand, or a box that did not start it), as OvsBridge
    // does for a tunnel found down (found by the drift test on the lab's OpenRC box).
    const repair = olds.serving === false && olds.asFound === undefined;
    // The new process would want the same port, the new LV possibly the same name.
    return { changes: changed.length > 0 || repair, replaces: d.replaces, stables: d.stables, deleteBeforeReplace: true, notes: asFoundNote(olds, news) };
}

/** What a preview says when an export kept as found moves to its own nbd-server: its clients (and that server's others) reconnect. */
function asFoundNote(olds: NbdVolumeState, news: NbdVolumeInputs): string[] {
    if (!olds.asFound || news.asFound) return [];
    const server = olds.asFound.service ?? "the box's own nbd-server";
    return [`${news.volumeGroup}/${news.name} moves from ${server} (${olds.asFound.config}) to an nbd-server of its own on port ${news.port}: ${server} is restarted, or stopped if it serves nothing else, and the export's clients reconnect`];
}
