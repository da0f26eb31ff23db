// VolumeGroup against a scripted host: adopt, refuse, and the re-run after an
// interrupted create, answered with LVM's JSON reports and the device probe as
// captured in the lab (test/unit/fixtures/lvm). The lab proves the same branches
// on real disks (test/lab/ceph1FaultsStorage.test.ts).
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { RefusedError } from "../../provider/core/errors";
import { check, volumeGroup, VolumeGroupInputs } from "../../provider/resources/volumeGroup";
import { argv, droppedAfter, exit, ok, script, ScriptedRemote, unchanged } from "../fakes/scriptedRemote";
import { ScriptedSite } from "../fakes/scriptedSite";

const fixture = (name: string) => fs.readFileSync(path.join(__dirname, "../../../test/unit/fixtures/lvm", name), "utf8");
const connection = { host: "198.51.100.12", hostKey: "SHA256:" + "A".repeat(43), password: "pw" };
// vgs.json / pvs.json: VG fixvg (tagged pulumi-baremetal, 2 LVs) on /dev/loop0 and /dev/loop1.
const vgsOurs = fixture("vgs.json");
const vgsForeign = vgsOurs.replace('"vg_tags":"pulumi-baremetal"', '"vg_tags":""');
const vgsMissing = fixture("vgs-missing.json");
const pvs = fixture("pvs.json");
const uuid = "IA28An-d0yf-G565-8X2F-1mfW-7OtP-YzHwGS";

/** The probe script's block for one device, in the format of the captured probe.txt (its blank /dev/vda block, renamed). */
function probeBlock(device: string, signature?: string): string {
    const vda = /device=\/dev\/vda\n[\s\S]*?end=1\n/.exec(fixture("probe.txt"))?.[0] as string;
    const block = vda.replace(/\/dev\/vda/g, device);
    return signature ? block.replace("pv_vg=", `fs_TYPE=${signature}\npv_vg=`) : block;
}

function inputs(extra: Record<string, unknown> = {}): VolumeGroupInputs {
    const r = check({}, { connection, name: "fixvg", devices: ["/dev/loop0", "/dev/loop1"], ...extra });
    assert.deepStrictEqual(r.failures, []);
    return r.inputs as VolumeGroupInputs;
}

/** A host with lvm2 installed where `vgs` answers `vgs()`; devices resolve to themselves. */
function site(vgs: () => string) {
    const s = new ScriptedSite();
    const host = s
        .host(connection)
        .on(script("baremetal-install"), unchanged)
        .on(script("baremetal-resolve"), (c) => ok(c.argv.slice(4).join("\n") + "\n"))
        .on(argv("vgs"), () => {
            const text = vgs();
            return text === vgsMissing ? exit(5, "  Volume group \"fixvg\" not found", text) : ok(text);
        })
        .on(argv("pvs"), ok(pvs))
        .on(argv("udevadm", "settle"), ok());
    return { s, host };
}

const lvmWrites = (lines: string[]) => lines.filter((l) => /^(pvcreate|vgcreate|vgextend|vgremove|pvremove)\b/.test(l));

/** Commands that stop, restart or reload something that runs (what adopting must never send). */
const disturbing = (h: ScriptedRemote) =>
    h.commands.filter((c) => (/^(systemctl|rc-service|service)$/.test(c.argv[0]) && c.argv.some((a) => /^(stop|restart|reload|try-restart|kill|disable)$/.test(a))) || /^(lxc-stop|vgchange|kill|pkill)$/.test(c.argv[0]) || (c.argv[0] === "mdadm" && c.argv.includes("--stop"))).map((c) => c.line);

describe("VolumeGroup against a scripted host", () => {
    describe("adopt", () => {
        it("a VG someone else made, with adopt: true, on exactly the declared devices: managed as it is, nothing created", async () => {
            const { s, host } = site(() => vgsForeign);
            const { id, outs } = await volumeGroup.create(inputs({ adopt: true }), s.context());
            assert.strictEqual(id, uuid);
            assert.deepStrictEqual([outs.lvCount, outs.physicalVolumes], [2, ["/dev/loop0", "/dev/loop1"]]);
            assert.deepStrictEqual(lvmWrites(host.commands.map((c) => c.line)), [], "no pvcreate / vgcreate");
            assert.deepStrictEqual(host.stepsApplied(), ["install package lvm2 (if missing)", "persist configuration across reboots"]);
            assert.ok(s.log.kept().some((l) => l === `volume group fixvg already exists on /dev/loop0, /dev/loop1: adopting it (uuid ${uuid})`));
            s.verify();
        });

        it("adopting stops, deactivates or restarts nothing (its LVs stay open for whoever uses them)", async () => {
            const { s, host } = site(() => vgsForeign);
            await volumeGroup.create(inputs({ adopt: true }), s.context());
            assert.deepStrictEqual(disturbing(host), []);
            assert.ok(host.commands.every((c) => c.argv[0] !== "vgchange" && c.argv[0] !== "lvchange"), "no activation change");
            s.verify();
        });
    });

    describe("refuse", () => {
        it("a VG of that name pulumi-baremetal did not make, without adopt: refused naming the host, its PVs and LVs; only the package check ran", async () => {
            const { s, host } = site(() => vgsForeign);
            await assert.rejects(volumeGroup.create(inputs(), s.context()), (e: Error) => {
                assert.ok(e instanceof RefusedError, e.message);
                assert.match(e.message, /volume group fixvg already exists on root@198\.51\.100\.12:22 \(on \/dev\/loop0, \/dev\/loop1, 2 logical volume\(s\)\) and was not created by pulumi-baremetal\. Nothing was changed\. Set adopt: true/);
                return true;
            });
            assert.deepStrictEqual(host.stepsApplied(), ["install package lvm2 (if missing)"]);
            assert.deepStrictEqual(lvmWrites(host.commands.map((c) => c.line)), []);
            s.verify();
        });

        it("a VG of that name on other devices: refused even with adopt", async () => {
            const { s } = site(() => vgsOurs);
            await assert.rejects(volumeGroup.create(inputs({ devices: ["/dev/loop0", "/dev/loop7"], adopt: true }), s.context()), /volume group fixvg already exists on root@198\.51\.100\.12:22 on other devices \(\/dev\/loop0, \/dev\/loop1\)\. Nothing was changed\. Choose another name, or declare exactly its devices/);
            s.verify();
        });

        it("devices that hold things (the real probe of a busy box): every reason is named, nothing is written", async () => {
            // probe.txt: vdb in the running md0, md0 a PV of smokevg, vda blank, vdd a Ceph OSD, /dev/nope missing
            const devices = ["/dev/vdb", "/dev/md0", "/dev/vda", "/dev/disk/by-id/virtio-bm-storage1-3", "/dev/nope"];
            const { s, host } = site(() => vgsMissing);
            host.on(script("baremetal-pv-probe"), ok(fixture("probe.txt")));
            await assert.rejects(volumeGroup.create(inputs({ name: "newvg", devices }), s.context()), (e: Error) => {
                assert.ok(e instanceof RefusedError, e.message);
                assert.match(e.message, /^cannot make a volume group of these devices on root@198\.51\.100\.12:22: /);
                for (const why of [
                    "/dev/vdb (/dev/vdb) is in use by md0 (an md array or device-mapper device)",
                    "/dev/md0 (/dev/md0) is a physical volume of volume group smokevg",
                    "/dev/disk/by-id/virtio-bm-storage1-3 (/dev/vdd) carries a ceph_bluestore signature",
                    "/dev/nope does not exist",
                ]) assert.ok(e.message.includes(why), `${why} in: ${e.message}`);
                assert.ok(!e.message.includes("/dev/vda (/dev/vda)"), "the blank disk is not blamed");
                return true;
            });
            assert.deepStrictEqual(lvmWrites(host.commands.map((c) => c.line)), []);
            assert.deepStrictEqual(host.stepsApplied(), ["install package lvm2 (if missing)"]);
            s.verify();
        });

        it("delete without allowDataLoss: refused before anything is read or run", async () => {
            const { s, host } = site(() => vgsOurs);
            const { outs } = await volumeGroup.create(inputs(), s.context());
            const before = host.commands.length;
            await assert.rejects(volumeGroup.delete(uuid, outs, s.context()), /deleting volume group fixvg on root@198\.51\.100\.12:22 would destroy it and the data of its logical volumes\. Nothing was changed\. To delete it, set allowDataLoss: true/);
            assert.strictEqual(host.commands.length, before);
            s.verify();
        });

        it("delete with allowDataLoss of a VG that still holds LVs: refused, nothing removed", async () => {
            const { s, host } = site(() => vgsOurs);
            const { outs } = await volumeGroup.create(inputs({ allowDataLoss: true }), s.context());
            await assert.rejects(volumeGroup.delete(uuid, outs, s.context()), /volume group fixvg on root@198\.51\.100\.12:22 still holds 2 logical volume\(s\)\. Nothing was changed\. Delete its volumes first/);
            assert.deepStrictEqual(lvmWrites(host.commands.map((c) => c.line)), []);
            s.verify();
        });
    });

    describe("re-run after an interrupted create", () => {
        it("cut during pvcreate: the re-run sees orphan PVs (LVM label, no VG), skips pvcreate and makes the VG once", async () => {
            let labelled = false;
            let made = false;
            const { s, host } = site(() => (made ? vgsOurs : vgsMissing));
            host.on(script("baremetal-pv-probe"), () => ok(["/dev/loop0", "/dev/loop1"].map((d) => probeBlock(d, labelled ? "LVM2_member" : undefined)).join("")))
                .on(argv("pvcreate"), droppedAfter(() => (labelled = true)))
                .on(argv("vgcreate"), () => ((made = true), ok()));
            await assert.rejects(volumeGroup.create(inputs(), s.context()), /connection dropped/);
            assert.deepStrictEqual(host.ran(argv("vgcreate")), []);

            const { id } = await volumeGroup.create(inputs(), s.context());
            assert.strictEqual(id, uuid);
            assert.strictEqual(host.ran(argv("pvcreate")).length, 1, "pvcreate is not run again on labelled PVs");
            const vgcreate = host.ran(argv("vgcreate"));
            assert.deepStrictEqual(vgcreate.map((c) => [c.line, c.lock]), [["vgcreate -q --addtag pulumi-baremetal fixvg /dev/loop0 /dev/loop1", "lvm"]]);
            s.verify();
        });

        it("cut during vgcreate (the VG was made): the re-run finds its own tagged VG and takes it back without adopt; vgcreate ran once", async () => {
            let made = false;
            const { s, host } = site(() => (made ? vgsOurs : vgsMissing));
            host.on(script("baremetal-pv-probe"), ok(probeBlock("/dev/loop0") + probeBlock("/dev/loop1")))
                .on(argv("pvcreate"), ok())
                .on(argv("vgcreate"), droppedAfter(() => (made = true)));
            await assert.rejects(volumeGroup.create(inputs(), s.context()), /connection dropped/);

            const { id, outs } = await volumeGroup.create(inputs(), s.context());
            assert.strictEqual(id, uuid);
            assert.strictEqual(outs.adopt, false);
            assert.deepStrictEqual(lvmWrites(host.commands.map((c) => c.line)), ["pvcreate -q /dev/loop0 /dev/loop1", "vgcreate -q --addtag pulumi-baremetal fixvg /dev/loop0 /dev/loop1"]);
            s.verify();
        });
    });
});

// A step of a run whose connection was cut may still be running on the host
// (ScriptedRemote.cutWhileRunning): it holds the LVM lock until it ends, and a
// read beside it sees the VG as it was. The first look of every operation takes
// the LVM lock, so it and every read after it see what that step did.
describe("VolumeGroup re-runs while a step of the cut run still runs on the host", () => {
    /** pvs.json with /dev/loop2 as a third PV of fixvg (vgextend done). */
    const pvsExtended = pvs.replace(/(\{"pv_name":"\/dev\/loop1".*\})/, '$1,\n{"pv_name":"/dev/loop2", "vg_name":"fixvg", "pv_uuid":"fixture-loop2", "pv_size":"130023424"}');
    const vgReads = (host: { ran: (m: ReturnType<typeof argv>) => { lock?: string }[] }) => host.ran(argv("vgs"));

    it("create: vgcreate still running (PVs labelled, no VG yet): the re-run waits for it and takes its VG back; vgcreate ran once", async () => {
        let made = false;
        const { s, host } = site(() => (made ? vgsOurs : vgsMissing));
        host.on(script("baremetal-pv-probe"), ok(probeBlock("/dev/loop0", "LVM2_member") + probeBlock("/dev/loop1", "LVM2_member")))
            .on(argv("pvcreate"), ok())
            .on(argv("vgcreate"), host.cutWhileRunning(() => (made = true)));
        await assert.rejects(volumeGroup.create(inputs(), s.context()), /connection dropped/);
        assert.strictEqual(made, false, "the cut left vgcreate running");
        // Once it has ended, LVM refuses a second one, as it does on a real box.
        host.on(argv("vgcreate"), exit(5, '  A volume group called fixvg already exists.'));

        const reads = vgReads(host).length;
        const { id } = await volumeGroup.create(inputs(), s.context());
        assert.strictEqual(id, uuid);
        assert.strictEqual(vgReads(host)[reads].lock, "lvm", "create's first look waits for the LVM step still running");
        assert.strictEqual(host.ran(argv("vgcreate")).length, 1, "no second vgcreate");
        s.verify();
    });

    it("update: vgextend still running: the re-run sees the new PV in the VG and runs neither pvcreate nor vgextend again; refresh and delete read under the lock too", async () => {
        let extended = false;
        const { s, host } = site(() => vgsOurs);
        host.on(argv("pvs"), () => ok(extended ? pvsExtended : pvs));
        const { outs: olds } = await volumeGroup.create(inputs({ allowDataLoss: true }), s.context());
        const news = inputs({ devices: ["/dev/loop0", "/dev/loop1", "/dev/loop2"], allowDataLoss: true });
        host.on(script("baremetal-pv-probe"), ok(probeBlock("/dev/loop2")))
            .on(argv("pvcreate"), () => (extended ? exit(5, '  Can\'t initialize physical volume "/dev/loop2" of volume group "fixvg" without -ff') : ok()))
            .on(argv("vgextend"), host.cutWhileRunning(() => (extended = true)));
        await assert.rejects(volumeGroup.update(uuid, olds, news, s.context()), /connection dropped/);
        assert.strictEqual(extended, false);

        const reads = vgReads(host).length;
        const outs = await volumeGroup.update(uuid, olds, news, s.context());
        assert.strictEqual(vgReads(host)[reads].lock, "lvm", "update's first look waits for vgextend");
        assert.deepStrictEqual(outs.physicalVolumes, ["/dev/loop0", "/dev/loop1", "/dev/loop2"]);
        assert.deepStrictEqual(lvmWrites(host.commands.map((c) => c.line)).filter((l) => /loop2/.test(l)), ["pvcreate -q /dev/loop2", "vgextend -q fixvg /dev/loop2"], "each ran once");

        let before = vgReads(host).length;
        await volumeGroup.read(uuid, outs, s.context());
        assert.strictEqual(vgReads(host)[before].lock, "lvm", "refresh");
        before = vgReads(host).length;
        await assert.rejects(volumeGroup.delete(uuid, outs, s.context()), /still holds 2 logical volume/);
        assert.strictEqual(vgReads(host)[before].lock, "lvm", "delete (a vgremove still running would otherwise be issued again)");
        s.verify();
    });
});
