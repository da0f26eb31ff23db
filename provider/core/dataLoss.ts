// The one opt-in to losing data, with the same name on every kind that holds
// data (RaidArray, VolumeGroup, NbdVolume, CephOsd): `allowDataLoss` means "this
// resource may destroy the data it holds: on delete (wipe, zap, remove the LV)
// and on a change that replaces it". Without it such a delete or change is
// refused, saying how to opt in, and nothing is changed.
//
// Each kind had its own name before (wipeOnDelete, deleteData, zapOnDelete).
// Those stay accepted as deprecated aliases: programs keep working, and a
// stack's state written with an old name keeps its opt-in (read through
// `withCurrentOptIn`) without showing a change.
import { FieldSpec, t } from "./fields";
import { isUnknown, Validator } from "./validate";

export const dataLossField = "allowDataLoss";

/** The table entries of the opt-in: `allowDataLoss` (default false) and the kind's old name, deprecated. */
type DataLossFields<Old extends string> = { allowDataLoss: FieldSpec & { default: boolean } } & Record<Old, FieldSpec & { required?: false; default?: undefined }>;

export function dataLossFields<Old extends string>(old: Old, doc: string): DataLossFields<Old> {
    const fields: Record<string, FieldSpec> = {
        allowDataLoss: { type: t.boolean, default: false, doc },
        [old]: { type: t.boolean, doc: "The old name of allowDataLoss, still accepted.", deprecated: "use allowDataLoss" },
    };
    return fields as DataLossFields<Old>;
}

/**
 * Folds the deprecated name into `allowDataLoss` in checked inputs and drops it.
 * `inputs` holds checked values (allowDataLoss defaulted); `news` the user's raw
 * inputs, to tell a given `allowDataLoss: false` from an absent one. Both names
 * given with different values is a failure naming both.
 */
export function applyDataLossAlias(v: Validator, inputs: Record<string, unknown>, news: Record<string, unknown>, old: string): void {
    const legacy = inputs[old];
    delete inputs[old];
    if (legacy === undefined) return;
    const current = news[dataLossField];
    if (current === undefined || current === null) {
        inputs[dataLossField] = legacy;
        return;
    }
    if (!isUnknown(current) && !isUnknown(legacy) && typeof inputs[dataLossField] === "boolean" && inputs[dataLossField] !== legacy) {
        v.fail(old, `is the old name of ${dataLossField} and says ${String(legacy)}, but ${dataLossField} says ${String(current)}; give only ${dataLossField}`);
    }
}

/**
 * The opt-in of a state written by any version, under its current name only:
 * an old state has just the old key (diff and delete read states as they are).
 */
export function withCurrentOptIn<T extends object>(state: T, old: string): T {
    const s = state as Record<string, unknown>;
    if (!(old in s)) return state;
    const { [old]: legacy, ...rest } = s;
    return { ...rest, [dataLossField]: s[dataLossField] ?? legacy } as T;
}
