// CephOsd, part check: check and diff (the table, plus the re-create opt-in and
// CRUSH values compared to CRUSH's precision).
import { applyDataLossAlias, withCurrentOptIn } from "../../core/dataLoss";
import { checkByTable, diffByTable, erase, valueAt } from "../../core/fields";
import { CheckOutcome, DiffOutcome } from "../../core/resource";
import { isUnknown, Validator } from "../../core/validate";
import { CephOsdInputs, CephOsdState, locationMatches, sameWeight, spec } from "./spec";

export function check(olds: Record<string, unknown>, news: Record<string, unknown>): CheckOutcome<CephOsdInputs> {
    const v = new Validator();
    const inputs = checkByTable(v, erase(spec), news) as Partial<CephOsdInputs>;
    applyDataLossAlias(v, inputs, news, "zapOnDelete");
    // A change that re-creates the OSD replaces it with a new, empty one (and wipes the old device):
    // data-destroying, so opt-in only, like every resource here that holds data. Only fields whose
    // new value is valid, so a bad device is not also reported as a re-create.
    if (olds.device !== undefined && inputs.allowDataLoss === false) {
        for (const f of diffByTable(erase(spec), olds, inputs).replaces.filter((p) => valueAt(inputs, p) !== undefined)) {
            v.fail(f, recreateRefusal(f, olds, inputs));
        }
    }
    if (!v.ok) return { failures: v.failures };
    return { inputs: inputs as CephOsdInputs, failures: [] };
}

/**
 * Why a re-creating change is refused, naming both ends: the device (and box) the
 * new, empty OSD would be made on, and the one the old OSD is drained from.
 */
function recreateRefusal(field: string, olds: Record<string, unknown>, news: Partial<CephOsdInputs>): string {
    const shown = (x: unknown) => (isUnknown(x) ? "(known after apply)" : String(x));
    // A state written before a defaulted field existed holds the default.
    const before = valueAt(olds, field) ?? erase(spec).inputs[field]?.default;
    const hostMoves = valueAt(olds, "connection.host") !== valueAt(news, "connection.host");
    const where = (o: unknown) => `${shown(valueAt(o, "device"))}${hostMoves ? ` of ${shown(valueAt(o, "connection.host"))}` : ""}`;
    return (
        `changing ${field} from ${shown(before)} to ${shown(valueAt(news, field))} re-creates the OSD: a new, empty OSD is made on ${where(news)} ` +
        `and the old one on ${where(olds)} is drained and purged. Set allowDataLoss: true to allow it (the old device is then wiped); nothing was changed`
    );
}

/** Inputs that say what to keep in CRUSH: left out, they leave Ceph's own value (which the state holds) alone. */
const crushFields: readonly string[] = ["deviceClass", "crushWeight", "crushLocation"];

export function diff(_id: string, stored: CephOsdState, news: CephOsdInputs): DiffOutcome {
    const olds = withCurrentOptIn(stored, "zapOnDelete");
    const d = diffByTable(erase(spec), olds as unknown as Record<string, unknown>, news as unknown as Record<string, unknown>);
    // The state holds CRUSH's values as last read; only a declared value that CRUSH does not hold is a change.
    const changed = d.changed.filter((k) => !crushFields.includes(k));
    if (news.deviceClass !== undefined && news.deviceClass !== olds.deviceClass) changed.push("deviceClass");
    if (news.crushWeight !== undefined && (isUnknown(news.crushWeight) || !sameWeight(news.crushWeight, olds.crushWeight))) changed.push("crushWeight");
    if (news.crushLocation !== undefined && (isUnknown(news.crushLocation) || !locationMatches(news.crushLocation, olds.crushLocation ?? {}))) changed.push("crushLocation");
    // The new OSD wants the same device (or the same host's disks): the old one must go first.
    return { changes: changed.length > 0, replaces: d.replaces, stables: d.stables, deleteBeforeReplace: true };
}
