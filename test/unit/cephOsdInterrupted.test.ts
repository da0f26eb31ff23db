// CephOsd: what a create does when an earlier create of the same device was cut
// (issue #10). ceph-volume dies of a BrokenPipeError at its next write to the dead
// SSH session, and its own rollback dies of the same error, so the OSD is left
// half-made: an id in the OSD map that never booted, an LV with ceph-volume's
// tags but no bluestore, no pulumi-baremetal tag. The note create writes on the
// box before ceph-volume runs (its chosen OSD fsid and the device) is how the
// next create tells its own half-made OSD from somebody else's.
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { DebianAdapter, AlpineAdapter, renderCommands } from "../../provider/host";
import type { OsdDumpEntry } from "../../provider/parsers/ceph";
import { interruptedCreate, intentDir, osdOnDevice, parseProbe, planForgetIntent, planRollback, Probe } from "../../provider/resources/cephOsd";

const fixture = (name: string) => fs.readFileSync(path.join(__dirname, "../../../test/unit/fixtures/ceph", name), "utf8");

describe("CephOsd create after an interrupted create", () => {
    // A real probe of vdb holding a complete OSD (no intents section: captured before notes existed).
    const whole = parseProbe(fixture("probe-vdb.txt"));
    const lv = whole.lvs.find((l) => whole.lvReal.get(l.lvPath) === "/dev/vdb" || l.devices.includes("/dev/vdb"));
    assert.ok(lv, "probe-vdb.txt holds an OSD on vdb");
    const entry = whole.dump.osds.find((o) => o.uuid === lv.osdFsid) as OsdDumpEntry;
    const fsid = lv.osdFsid;
    const withEntry = (p: Probe, e: OsdDumpEntry | undefined): Probe => ({
        ...p,
        dump: { ...p.dump, osds: [...p.dump.osds.filter((o) => o.uuid !== fsid), ...(e ? [e] : [])] },
    });
    const noted = (p: Probe, real = "/dev/vdb"): Probe => ({ ...p, intents: [{ osdFsid: fsid, real }] });
    const device = "/dev/disk/by-id/virtio-bm-ceph1-1";

    it("the real thing: the probe of vda in the lab right after a cut during ceph-volume's prepare (after `osd new` and the LV's tags)", () => {
        const p = parseProbe(fixture("probe-vda-half-made.txt"));
        assert.strictEqual(p.real, "/dev/vda");
        assert.strictEqual(p.intents.length, 1);
        const [note] = p.intents;
        const half = p.dump.osds.find((o) => o.uuid === note.osdFsid);
        assert.deepStrictEqual([half?.up, half?.upFrom], [false, 0], "in the OSD map, never booted");
        const lv = osdOnDevice(p, "/dev/disk/by-id/virtio-bm-ceph1-0");
        assert.ok(lv && !lv.tags.includes("pulumi-baremetal"), "ceph-volume's LV, not yet tagged as ours");
        assert.deepStrictEqual(interruptedCreate(p, "/dev/disk/by-id/virtio-bm-ceph1-0"), { kind: "rollback", intent: note, osdId: half?.id, zap: true });
    });

    it("reads the notes from the probe; a probe without the section has none", () => {
        assert.deepStrictEqual(whole.intents, []);
        const text = `${fixture("probe-vdb.txt").trimEnd()}\n==intents==\n${fsid} /dev/vdb\nnot a note\n`;
        const p = parseProbe(text);
        assert.deepStrictEqual(p.intents, [{ osdFsid: fsid, real: "/dev/vdb" }]);
        assert.deepStrictEqual(p.dump, whole.dump, "the dump still parses up to the notes");
    });

    it("no note for this device: nothing to recover (a note for another device does not count)", () => {
        assert.deepStrictEqual(interruptedCreate(whole, device), { kind: "none" });
        assert.deepStrictEqual(interruptedCreate(noted(whole, "/dev/vdc"), device), { kind: "none" });
    });

    it("an OSD that booted (up, or down after it came up once) is finished, not cleared away", () => {
        assert.deepStrictEqual(interruptedCreate(noted(whole), device), { kind: "finish", intent: { osdFsid: fsid, real: "/dev/vdb" } });
        const downOnce = withEntry(noted(whole), { ...entry, up: false, upFrom: 7 });
        assert.strictEqual(interruptedCreate(downOnce, device).kind, "finish");
    });

    it("a never-booted OSD with its LV: purge-new the id and zap the device", () => {
        const half = withEntry(noted(whole), { ...entry, up: false, in: false, upFrom: 0 });
        assert.deepStrictEqual(interruptedCreate(half, device), { kind: "rollback", intent: { osdFsid: fsid, real: "/dev/vdb" }, osdId: entry.id, zap: true });
    });

    it("an id allocated before the LV got its tags: purge-new the id, zap the LVM left on the device", () => {
        const half = withEntry({ ...noted(whole), lvs: whole.lvs.filter((l) => l !== lv) }, { ...entry, up: false, upFrom: 0 });
        assert.deepStrictEqual(interruptedCreate(half, device), { kind: "rollback", intent: { osdFsid: fsid, real: "/dev/vdb" }, osdId: entry.id, zap: true });
    });

    it("cut before ceph-volume did anything: only the note goes", () => {
        const nothing = withEntry({ ...noted(whole), lvs: [], signature: {} }, undefined);
        assert.deepStrictEqual(interruptedCreate(nothing, device), { kind: "rollback", intent: { osdFsid: fsid, real: "/dev/vdb" }, zap: false });
    });

    it("ceph-volume's own rollback purged the id but did not zap: zap", () => {
        const purged = withEntry(noted(whole), undefined);
        assert.deepStrictEqual(interruptedCreate(purged, device), { kind: "rollback", intent: { osdFsid: fsid, real: "/dev/vdb" }, zap: true });
    });

    it("the device holds another OSD now: the note is stale and nothing else is touched", () => {
        const other = { ...noted(whole), intents: [{ osdFsid: "0b5e2a4c-1111-4222-8333-444455556666", real: "/dev/vdb" }] };
        assert.strictEqual(interruptedCreate(other, device).kind, "stale");
    });

    it("the roll-back plan: stop and disable, purge-new (refused by Ceph for an OSD that ever booted), unmount, zap, forget the note", () => {
        const plan = planRollback({ cluster: "ceph", device, osdFsid: fsid, osdId: 3, zap: true }, "debian");
        const lines = renderCommands(plan, new DebianAdapter()).filter((c) => !c.startsWith("#"));
        assert.deepStrictEqual(
            lines.map((l) => l.replace(/^.*baremetal-lvm\.lock /, "").replace(/^timeout \S+ \S+ /, "")),
            [
                "systemctl stop ceph-osd@3",
                `systemctl disable --quiet --no-reload ceph-osd@3 ceph-volume@lvm-3-${fsid}`,
                "ceph --cluster ceph --connect-timeout 120 osd purge-new osd.3 --yes-i-really-mean-it",
                lines[3].replace(/^timeout \S+ \S+ /, ""),
                `ceph-volume --cluster ceph lvm zap --destroy ${device}`,
                `rm -f ${intentDir}/${fsid}`,
            ],
        );
        assert.match(lines[3], /baremetal-osd-dir \/var\/lib\/ceph\/osd\/ceph-3$/);
        assert.match(lines[4], /flock .*baremetal-lvm\.lock ceph-volume/, "the zap holds the LVM lock");
        const alpine = renderCommands(planRollback({ cluster: "ceph", device, osdFsid: fsid, osdId: 3, zap: false }, "alpine"), new AlpineAdapter(false)).join("\n");
        assert.match(alpine, /rc-service ceph-osd\.3 stop/);
        assert.doesNotMatch(alpine, /zap/);
        assert.deepStrictEqual(planRollback({ cluster: "ceph", device, osdFsid: fsid, zap: false }, "debian"), planForgetIntent(fsid), "nothing made: only the note goes");
    });
});
