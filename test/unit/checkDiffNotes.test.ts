// What a preview says of a box move that the changed fields cannot: a KvmGuest's
// live migration (from which box to which), or its re-creation when a disk is local;
// a PxeServer's replacement on another box. The dynamic provider logs these notes on
// the resource (the engine shows them beside `[diff: ~connection]`).
import * as assert from "assert";
import { kinds } from "../../provider";
import { baselines, Json } from "./checkBaselines";

function checked(kind: keyof typeof kinds, news: Json): Json {
    const out = kinds[kind].check({}, news);
    assert.deepStrictEqual(out.failures, []);
    return out.inputs as unknown as Json;
}

function notesOf(kind: keyof typeof kinds, olds: Json, news: Json): { notes: string[]; replaces: string[] } {
    const d = (kinds[kind].diff as unknown as (id: string, o: Json, n: Json) => { notes?: string[]; replaces: string[] })("id", olds, news);
    return { notes: d.notes ?? [], replaces: d.replaces };
}

const onBox = (i: Json, host: string): Json => ({ ...i, connection: { ...(i.connection as Json), host } });

describe("diff notes: a box move says from where to where", () => {
    const nbdOnly = { ...baselines("KvmGuest")[0], disks: [{ nbd: { host: "198.18.1.11", port: 10810, export: "web01-var" } }] };

    it("KvmGuest on NBD disks: a live migration from the old box to the new one, no replacement", () => {
        const olds = { ...checked("KvmGuest", onBox(nbdOnly, "198.51.100.13")), running: true };
        const d = notesOf("KvmGuest", olds, checked("KvmGuest", onBox(nbdOnly, "198.51.100.14")));
        assert.deepStrictEqual(d.replaces, []);
        assert.deepStrictEqual(d.notes, ["web01 moves from 198.51.100.13 to 198.51.100.14 by live migration (every disk is on NBD; the guest keeps running)"]);
    });

    it("KvmGuest with a local disk: re-created on the new box, said so", () => {
        const local = baselines("KvmGuest")[0];
        const olds = { ...checked("KvmGuest", onBox(local, "198.51.100.13")), running: true };
        const d = notesOf("KvmGuest", olds, checked("KvmGuest", onBox(local, "198.51.100.14")));
        assert.deepStrictEqual(d.replaces, ["connection.host"]);
        assert.deepStrictEqual(d.notes, ["web01 is re-created on 198.51.100.14 (not migrated: a disk is local to 198.51.100.13); the guest on 198.51.100.13 is shut down first"]);
    });

    it("PxeServer: replaced on the new box, removed from the old one first", () => {
        const pxe = baselines("PxeServer")[0];
        const d = notesOf("PxeServer", checked("PxeServer", onBox(pxe, "198.51.100.10")), checked("PxeServer", onBox(pxe, "198.51.100.20")));
        assert.deepStrictEqual(d.replaces, ["connection.host"]);
        assert.deepStrictEqual(d.notes, ["pxe moves from 198.51.100.10 to 198.51.100.20: it is removed from 198.51.100.10, then set up anew on 198.51.100.20"]);
    });

    it("no note when the box stays (another change, or none)", () => {
        const olds = { ...checked("KvmGuest", nbdOnly), running: true };
        assert.deepStrictEqual(notesOf("KvmGuest", olds, checked("KvmGuest", { ...nbdOnly, memoryMiB: 2048 })).notes, []);
        const pxe = checked("PxeServer", baselines("PxeServer")[0]);
        assert.deepStrictEqual(notesOf("PxeServer", pxe, { ...pxe, leaseSeconds: 600 }).notes, []);
    });
});
