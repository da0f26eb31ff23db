// The data-loss opt-in has one name on every kind that holds data: allowDataLoss.
// The names each kind had before (wipeOnDelete, deleteData, zapOnDelete) are still
// accepted from programs, and a stack whose state was written with one keeps its
// opt-in: no change shown by diff, honoured by delete and kept by read.
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { withCurrentOptIn } from "../../provider/core/dataLoss";
import { CheckOutcome, DiffOutcome } from "../../provider/core/resource";
import { cephOsd } from "../../provider/resources/cephOsd";
import { nbdVolume } from "../../provider/resources/nbdVolume";
import { raidArray } from "../../provider/resources/raidArray";
import { volumeGroup, VolumeGroupState } from "../../provider/resources/volumeGroup";
import { argv, ok } from "../fakes/scriptedRemote";
import { ScriptedSite } from "../fakes/scriptedSite";

type Json = Record<string, unknown>;
const connection = { host: "198.51.100.11", hostKey: "SHA256:" + "A".repeat(43), password: "pw" };

interface Case {
    kind: string;
    old: string;
    check(olds: Json, news: Json): CheckOutcome<unknown>;
    diff(id: string, olds: never, news: never): DiffOutcome;
    good: Json;
    /** A change that re-creates the object, and what its refusal must say. */
    replacing: Json;
    refusal: RegExp;
}

const cases: Case[] = [
    {
        kind: "RaidArray", old: "wipeOnDelete", ...raidArray,
        good: { connection, device: "/dev/md0", members: ["/dev/vdb", "/dev/vdc"] },
        replacing: { level: "raid0" },
        refusal: /^level: changing level re-creates the array and destroys its data; set allowDataLoss: true to allow it \(nothing was changed\)$/,
    },
    {
        kind: "VolumeGroup", old: "wipeOnDelete", ...volumeGroup,
        good: { connection, name: "vg0", devices: ["/dev/md0"] },
        replacing: { name: "vg1" },
        refusal: /^name: changing name re-creates the volume group and destroys its logical volumes; set allowDataLoss: true to allow it \(nothing was changed\)$/,
    },
    {
        kind: "NbdVolume", old: "deleteData", ...nbdVolume,
        good: { connection, volumeGroup: "vg0", name: "web01-var", size: "256MiB", port: 10820, owner: "52:54:00:ab:00:01" },
        replacing: { name: "web02-var" },
        refusal: /^name: changing name re-creates the logical volume and destroys its data; set allowDataLoss: true to allow it \(nothing was changed\)$/,
    },
    {
        kind: "CephOsd", old: "zapOnDelete", ...cephOsd,
        good: { connection, device: "/dev/vdb" },
        replacing: { device: "/dev/vdc" },
        refusal: /^device: changing device from \/dev\/vdb to \/dev\/vdc re-creates the OSD: a new, empty OSD is made on \/dev\/vdc and the old one on \/dev\/vdb is drained and purged\. Set allowDataLoss: true to allow it \(the old device is then wiped\); nothing was changed$/,
    },
];

function checked(c: Case, news: Json, olds: Json = {}): Json {
    const r = c.check(olds, news);
    assert.deepStrictEqual(r.failures, [], `${c.kind}: ${JSON.stringify(news)}`);
    return r.inputs as Json;
}

function failures(c: Case, news: Json, olds: Json = {}): string[] {
    return c.check(olds, news).failures.map((f) => `${f.field}: ${f.reason}`);
}

/** A state as the version before the rename wrote it: the old key only. */
function oldState(c: Case, optIn: boolean): Json {
    const { allowDataLoss: _gone, ...rest } = checked(c, c.good);
    return { ...rest, [c.old]: optIn };
}

describe("the data-loss opt-in: one name, allowDataLoss, on every kind that holds data", () => {
    for (const c of cases) {
        describe(`${c.kind} (formerly ${c.old})`, () => {
            it("defaults to false, and the normalised inputs carry only allowDataLoss", () => {
                const i = checked(c, c.good);
                assert.strictEqual(i.allowDataLoss, false);
                assert.ok(!(c.old in i));
            });

            it(`accepts the old name ${c.old} as allowDataLoss, and check stays idempotent`, () => {
                for (const v of [true, false]) {
                    const i = checked(c, { ...c.good, [c.old]: v });
                    assert.strictEqual(i.allowDataLoss, v);
                    assert.ok(!(c.old in i), `${c.old} is not kept beside allowDataLoss`);
                    assert.deepStrictEqual(checked(c, i), i);
                }
                assert.strictEqual(checked(c, { ...c.good, [c.old]: true, allowDataLoss: true }).allowDataLoss, true);
            });

            it("refuses both names with different values, naming both", () => {
                const f = failures(c, { ...c.good, [c.old]: true, allowDataLoss: false });
                assert.deepStrictEqual(f, [`${c.old}: is the old name of allowDataLoss and says true, but allowDataLoss says false; give only allowDataLoss`]);
            });

            it("refuses a re-creating change without the opt-in, telling the user to set allowDataLoss; either name allows it", () => {
                const olds = checked(c, c.good);
                const f = failures(c, { ...c.good, ...c.replacing }, olds);
                assert.ok(f.some((x) => c.refusal.test(x)), JSON.stringify(f));
                assert.deepStrictEqual(failures(c, { ...c.good, ...c.replacing, allowDataLoss: true }, olds), []);
                assert.deepStrictEqual(failures(c, { ...c.good, ...c.replacing, [c.old]: true }, olds), []);
            });

            it("an old stack's state (old key only) shows no change, whichever name the program now uses", () => {
                for (const optIn of [true, false]) {
                    const state = oldState(c, optIn);
                    for (const news of [{ ...c.good, [c.old]: optIn }, { ...c.good, allowDataLoss: optIn }]) {
                        const d = c.diff("id", state as never, checked(c, news) as never);
                        assert.deepStrictEqual([d.changes, d.replaces], [false, []], `${JSON.stringify(news)} against ${JSON.stringify(state)}`);
                    }
                }
            });

            it("turning the opt-in off against an old state that had it on is a change (so the state follows)", () => {
                const d = c.diff("id", oldState(c, true) as never, checked(c, { ...c.good, allowDataLoss: false }) as never);
                assert.strictEqual(d.changes, true);
            });
        });
    }

    it("reads an old state's opt-in under its current name; a state with both keys keeps allowDataLoss", () => {
        assert.deepStrictEqual(withCurrentOptIn({ name: "vg0", wipeOnDelete: true }, "wipeOnDelete"), { name: "vg0", allowDataLoss: true });
        assert.deepStrictEqual(withCurrentOptIn({ name: "vg0", allowDataLoss: false, wipeOnDelete: true }, "wipeOnDelete"), { name: "vg0", allowDataLoss: false });
        const current = { name: "vg0", allowDataLoss: true };
        assert.strictEqual(withCurrentOptIn(current, "wipeOnDelete"), current);
    });

    describe("delete of a VolumeGroup whose state an older version wrote", () => {
        const fixture = (name: string) => fs.readFileSync(path.join(__dirname, "../../../test/unit/fixtures/lvm", name), "utf8");
        const stateWith = (extra: Json): VolumeGroupState =>
            ({
                connection, name: "fixvg", devices: ["/dev/loop0", "/dev/loop1"], adopt: false, uuid: "IA28An-d0yf-G565-8X2F-1mfW-7OtP-YzHwGS",
                sizeBytes: 0, freeBytes: 0, extentBytes: 4 * 2 ** 20, lvCount: 2, physicalVolumes: ["/dev/loop0", "/dev/loop1"], ...extra,
            }) as VolumeGroupState;

        it("with wipeOnDelete: true it is opted in: delete goes on to read the VG (and stops at its logical volumes)", async () => {
            const s = new ScriptedSite();
            s.host(connection).on(argv("vgs"), ok(fixture("vgs.json")));
            await assert.rejects(volumeGroup.delete("id", stateWith({ wipeOnDelete: true }), s.context()), /still holds 2 logical volume\(s\)/);
            s.verify();
        });

        it("with wipeOnDelete: false it is refused before anything runs, saying to set allowDataLoss", async () => {
            const s = new ScriptedSite();
            const host = s.host(connection);
            await assert.rejects(volumeGroup.delete("id", stateWith({ wipeOnDelete: false }), s.context()), /To delete it, set allowDataLoss: true on this VolumeGroup/);
            assert.strictEqual(host.commands.length, 0);
        });
    });
});
