// KvmGuest, part check: check (the table, distinct MACs, a disk to boot from)
// and diff (the first MAC is the ID; a new box migrates or replaces).
import { checkByTable, diffByTable, erase } from "../../core/fields";
import { CheckOutcome, DiffOutcome } from "../../core/resource";
import { isUnknown, Validator } from "../../core/validate";
import { GuestDisk, KvmGuestInputs, KvmGuestState, spec } from "./spec";

export function check(_olds: Record<string, unknown>, news: Record<string, unknown>): CheckOutcome<KvmGuestInputs> {
    const v = new Validator();
    const inputs = checkByTable(v, erase(spec), news) as Partial<KvmGuestInputs>;
    const { disks, nics, boot } = inputs;
    // Only on lists that passed: a bad MAC is one error, not also a duplicate.
    if (Array.isArray(nics)) {
        const macs = nics.flatMap((n) => (typeof n === "object" && !isUnknown(n.mac) ? [n.mac] : []));
        if (new Set(macs).size !== macs.length) v.fail("nics", "two NICs have the same MAC");
    }
    if (boot === "disk" && Array.isArray(disks) && disks.length === 0) v.fail("boot", "is disk, but the guest has no disks");
    if (inputs.asFound !== undefined && inputs.adopt === false) v.fail("asFound", "keeps an existing qemu as it runs, so it needs adopt: true");
    if (!v.ok) return { failures: v.failures };
    return { inputs: inputs as KvmGuestInputs, failures: [] };
}

// ---- diff -------------------------------------------------------------------------

/** Changes that only take effect when qemu starts again. */
export const hardwareFields: (keyof KvmGuestInputs)[] = ["memoryMiB", "vcpus", "disks", "nics", "boot", "machine"];

/** A guest can move live only when no disk is local to the box it leaves. */
export function migratable(disks: GuestDisk[]): boolean {
    return disks.every((d) => "nbd" in d);
}

/**
 * What the table cannot say: the first NIC's MAC is the ID (a new one is a new
 * guest), and a new box is a live migration when every disk is on the network,
 * a replacement otherwise.
 */
function identityReplaces(olds: KvmGuestState, news: KvmGuestInputs): string[] {
    const replaces: string[] = [];
    if (olds.nics?.[0]?.mac !== news.nics[0]?.mac) replaces.push("nics[0].mac");
    if (olds.connection?.host !== news.connection.host && !migratable(olds.disks ?? [])) replaces.push("connection.host");
    return replaces;
}

export function diff(_id: string, olds: KvmGuestState, news: KvmGuestInputs): DiffOutcome {
    const d = diffByTable(erase(spec), olds as unknown as Record<string, unknown>, news as unknown as Record<string, unknown>);
    const replaces = [...d.replaces, ...identityReplaces(olds, news)];
    // A guest found stopped (refresh) is started again by an update.
    const stopped = olds.running === false;
    const notes = [...moveNote(olds, news, replaces), ...asFoundNote(olds, news)];
    // The same MAC must never be on the network twice: the old guest goes first.
    return { changes: d.changed.length > 0 || replaces.length > 0 || stopped, replaces, deleteBeforeReplace: true, stables: replaces.length > 0 ? [] : d.stables, notes };
}

/** What a preview says of a guest changing boxes: from where to where, and how (live or by re-creating it). */
function moveNote(olds: KvmGuestState, news: KvmGuestInputs, replaces: string[]): string[] {
    const [from, to] = [olds.connection?.host, news.connection?.host];
    if (from === undefined || from === to) return [];
    if (isUnknown(to)) return [`${news.name} moves from ${from} to a box known after apply`];
    if (replaces.includes("connection.host")) return [`${news.name} is re-created on ${to} (not migrated: a disk is local to ${from}); the guest on ${from} is shut down first`];
    return [`${news.name} moves from ${from} to ${to} by live migration (every disk is on NBD; the guest keeps running)`];
}

/** What a preview says when a guest kept as found moves under its own service: the one change that restarts an adopted guest. */
function asFoundNote(olds: KvmGuestState, news: KvmGuestInputs): string[] {
    if (!olds.asFound || news.asFound) return [];
    return [`${news.name} moves from ${olds.asFound.service ?? "its hand-started qemu"} to baremetal-guest-${news.name}: the guest is powered down (ACPI, up to ${news.shutdownTimeoutSeconds}s) and started again`];
}
