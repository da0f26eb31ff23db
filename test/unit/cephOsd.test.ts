import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { DebianAdapter, AlpineAdapter, renderCommands, renderPlan } from "../../provider/host";
import { cephVolumeLvsOf, osdCrushInfo, parseCephVolumeList, parseHealth, parseOsdDump, parseOsdTree, parseSafeToDestroy } from "../../provider/parsers/ceph";
import { parseLvsWithDevices } from "../../provider/parsers/lvm";
import {
    CephOsdInputs, CephOsdState, check, diff, DrainAnswer, locationMatches, osdOnDevice, parseProbe, parseRead, planCreate, planCrush, planOut, planRemove,
    planTag, sameWeight, waitSafeToDestroy,
} from "../../provider/resources/cephOsd";

const fixture = (name: string) => fs.readFileSync(path.join(__dirname, "../../../test/unit/fixtures/ceph", name), "utf8");
const connection = { host: "198.51.100.13", hostKey: "SHA256:" + "A".repeat(43), password: "pw" };
const good = { connection, device: "/dev/disk/by-id/virtio-bm-ceph1-1" };
const unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

function failures(news: Record<string, unknown>, olds: Record<string, unknown> = {}): string[] {
    return check(olds, news).failures.map((f) => `${f.field}: ${f.reason}`);
}
const inputs = check({}, good).inputs as CephOsdInputs;

function state(over: Partial<CephOsdState> = {}): CephOsdState {
    return {
        ...inputs, osdId: 1, osdFsid: "9d1f3c55-1111-4222-8333-444455556666", clusterFsid: "c1", deviceClass: "hdd", crushWeight: 0.00589,
        crushLocation: { host: "ceph1", root: "default" }, hostName: "ceph1", lvPath: "/dev/ceph-x/osd-block-y", devices: ["/dev/vdb"], up: true, in: true, reweight: 1,
        ...over,
    };
}

describe("CephOsd check", () => {
    it("normalises: cluster ceph, no opt-ins, a drain timeout of an hour; undeclared CRUSH fields stay unmanaged", () => {
        assert.deepStrictEqual(inputs, { connection: inputs.connection, device: good.device, cluster: "ceph", adopt: false, allowDataLoss: false, drainTimeoutSeconds: 3600 });
    });
    it("takes disks, partitions, NBD devices and logical volumes", () => {
        for (const device of ["/dev/sdb", "/dev/sdb2", "/dev/nbd0", "/dev/vg0/osd1", "vg0/osd1", "/dev/mapper/vg0-osd1", "/dev/disk/by-id/wwn-0x5000c500a1b2c3d4"]) {
            assert.deepStrictEqual(failures({ ...good, device }), [], device);
        }
    });
    const bad: [string, Record<string, unknown>, RegExp][] = [
        ["no device", { ...good, device: undefined }, /^device: is required/],
        ["a relative device", { ...good, device: "sdb" }, /^device: "sdb" is not a block device like \/dev\/sdb/],
        ["a device with ..", { ...good, device: "/dev/disk/../../etc/passwd" }, /^device: must not contain \. or \.\. path segments/],
        ["a device with shell", { ...good, device: "/dev/sdb;reboot" }, /^device: /],
        ["a device class with a space", { ...good, deviceClass: "fast ssd" }, /^deviceClass: "fast ssd" is not a device class name/],
        ["a weight as text", { ...good, crushWeight: "1.8" }, /^crushWeight: must be a number like 1\.819/],
        ["a negative weight", { ...good, crushWeight: -1 }, /^crushWeight: must not be negative/],
        ["a weight CRUSH cannot hold", { ...good, crushWeight: 70000 }, /^crushWeight: must be at most 65535/],
        ["a location without root", { ...good, crushLocation: { host: "ceph1" } }, /^crushLocation: must name the root bucket/],
        ["an empty location", { ...good, crushLocation: {} }, /^crushLocation: is empty/],
        ["a bad bucket type", { ...good, crushLocation: { root: "default", "Rack 1": "r1" } }, /^crushLocation key "Rack 1": .* is not a CRUSH bucket type/],
        ["a bad bucket name", { ...good, crushLocation: { root: "default", host: "a b" } }, /^crushLocation\.host: "a b" is not a CRUSH bucket name/],
        ["a bad cluster name", { ...good, cluster: "Ceph!" }, /^cluster: "Ceph!" is not a cluster name/],
        ["a short drain timeout", { ...good, drainTimeoutSeconds: 1 }, /^drainTimeoutSeconds: must be at least 10/],
        ["a non-boolean allowDataLoss", { ...good, allowDataLoss: "yes" }, /^allowDataLoss: must be true or false/],
        ["no connection", { ...good, connection: undefined }, /^connection: is required/],
    ];
    for (const [what, input, expected] of bad) {
        it(`rejects ${what}, naming the field`, () => {
            const f = failures(input);
            assert.ok(f.some((x) => expected.test(x)), `expected ${expected} in ${JSON.stringify(f)}`);
        });
    }
    it("refuses a device, cluster or host change without allowDataLoss, saying how to opt in", () => {
        const olds = { ...good, cluster: "ceph" };
        const f = failures({ ...good, device: "/dev/vdd", cluster: "backup", connection: { ...connection, host: "198.51.100.14" } }, olds);
        assert.strictEqual(f.length, 3, JSON.stringify(f));
        // In the order of the field table.
        assert.match(f[0], /^connection\.host: changing connection\.host from 198\.51\.100\.13 to 198\.51\.100\.14 re-creates the OSD/);
        // Both ends named: the device the new, empty OSD would go to and the one the old OSD is drained from.
        assert.match(f[1], /^device: changing device from \/dev\/disk\/by-id\/virtio-bm-ceph1-1 to \/dev\/vdd re-creates the OSD: a new, empty OSD is made on \/dev\/vdd of 198\.51\.100\.14 and the old one on \/dev\/disk\/by-id\/virtio-bm-ceph1-1 of [0-9.]+ is drained and purged\. Set allowDataLoss: true to allow it .*nothing was changed$/);
        assert.match(f[2], /^cluster: changing cluster from ceph to backup re-creates/);
        const deviceOnly = failures({ ...good, device: "/dev/vdd" }, olds);
        assert.deepStrictEqual(deviceOnly.length, 1, JSON.stringify(deviceOnly));
        assert.match(deviceOnly[0], /^device: changing device from \/dev\/disk\/by-id\/virtio-bm-ceph1-1 to \/dev\/vdd re-creates the OSD: a new, empty OSD is made on \/dev\/vdd and the old one on \/dev\/disk\/by-id\/virtio-bm-ceph1-1 is drained/);
        assert.deepStrictEqual(failures({ ...good, device: "/dev/vdd", allowDataLoss: true }, olds), []);
    });
    it("passes unknown values through at preview", () => {
        assert.deepStrictEqual(failures({ connection: unknown, device: unknown, crushWeight: unknown, crushLocation: unknown }), []);
    });
});

describe("CephOsd diff", () => {
    it("updates CRUSH weight, class and location in place", () => {
        const d = diff("id", state(), { ...inputs, crushWeight: 0.01, deviceClass: "ssd", crushLocation: { root: "default", host: "rack1-ceph1" } });
        assert.deepStrictEqual([d.changes, d.replaces], [true, []]);
    });
    it("replaces (old one first) on a device change", () => {
        const d = diff("id", state(), { ...inputs, device: "/dev/vdd", allowDataLoss: true });
        assert.deepStrictEqual([d.replaces, d.deleteBeforeReplace], [["device"], true]);
    });
    it("sees no change when undeclared CRUSH fields differ from Ceph's, or a weight differs below CRUSH's precision", () => {
        assert.strictEqual(diff("id", state(), inputs).changes, false);
        // 0.01 is stored as 655/65536 = 0.0099945...
        assert.strictEqual(diff("id", state({ crushWeight: 655 / 65536 }), { ...inputs, crushWeight: 0.01 }).changes, false);
        assert.strictEqual(sameWeight(0.01, 0.0101), false);
    });
    it("compares only the declared levels of a location", () => {
        assert.strictEqual(locationMatches({ root: "default" }, { root: "default", host: "ceph1" }), true);
        assert.strictEqual(locationMatches({ root: "default", rack: "r1" }, { root: "default", host: "ceph1" }), false);
    });
});

describe("CephOsd plans (data)", () => {
    const debian = new DebianAdapter();
    it("creates with ceph-volume lvm create --bluestore under the LVM lock, with an OSD fsid noted on the box first", () => {
        const fsid = "0b5e2a4c-1111-4222-8333-444455556666";
        const plan = planCreate({ ...inputs, deviceClass: "ssd" }, { osdFsid: fsid, real: "/dev/vdb" });
        const lines = renderCommands(plan, debian).filter((c) => !c.startsWith("#"));
        assert.strictEqual(lines.length, 2);
        assert.match(lines[0], new RegExp(`baremetal-osd-intent /var/lib/ceph/baremetal-creating ${fsid} /dev/vdb$`));
        assert.match(lines[1], new RegExp(`flock .*baremetal-lvm\\.lock ceph-volume --cluster ceph lvm create --bluestore --data /dev/disk/by-id/virtio-bm-ceph1-1 --osd-fsid ${fsid} --crush-device-class ssd$`));
        const run = plan[1];
        assert.ok(run.kind === "run");
        assert.deepStrictEqual(run.argv, ["ceph-volume", "--cluster", "ceph", "lvm", "create", "--bluestore", "--data", good.device, "--osd-fsid", fsid, "--crush-device-class", "ssd"]);
        assert.strictEqual(run.lock, "lvm");
        assert.deepStrictEqual(planTag("/dev/ceph-x/osd-block-y")[0], { kind: "run", argv: ["lvchange", "--addtag", "pulumi-baremetal", "/dev/ceph-x/osd-block-y"], lock: "lvm", what: "tag /dev/ceph-x/osd-block-y as made by pulumi-baremetal" });
    });
    const live = { id: 1, deviceClass: "hdd", crushWeight: 0.00589, location: { root: "default", host: "ceph1" }, up: true, reweight: 1 };
    it("changes weight alone with crush reweight", () => {
        assert.strictEqual(renderPlan(planCrush("ceph", 1, live, { crushWeight: 0.01 })), "1. set osd.1's CRUSH weight to 0.01 (was 0.00589)");
        const [s] = planCrush("ceph", 1, live, { crushWeight: 0.01 });
        assert.ok(s.kind === "run");
        assert.deepStrictEqual(s.argv, ["ceph", "--cluster", "ceph", "--connect-timeout", "120", "osd", "crush", "reweight", "osd.1", "0.01"]);
    });
    it("moves with crush set (keeping it across restarts), and swaps a class by removing the old one first", () => {
        const plan = planCrush("ceph", 1, live, { crushWeight: 0.01, deviceClass: "ssd", crushLocation: { root: "default", rack: "r1", host: "ceph1" } });
        assert.deepStrictEqual(
            plan.map((s) => (s.kind === "run" ? s.argv.slice(5).join(" ") : s.kind)),
            [
                "config set osd.1 crush_location root=default rack=r1 host=ceph1",
                "osd crush set osd.1 0.01 root=default rack=r1 host=ceph1",
                "osd crush rm-device-class osd.1",
                "osd crush set-device-class ssd osd.1",
            ],
        );
    });
    it("does nothing when CRUSH already matches, or nothing is declared", () => {
        assert.deepStrictEqual(planCrush("ceph", 1, live, { crushWeight: 0.00589, deviceClass: "hdd", crushLocation: { root: "default" } }), []);
        assert.deepStrictEqual(planCrush("ceph", 1, live, {}), []);
    });
    it("removes in Rook's order: (out first, then after safe-to-destroy) stop, disable, purge, unmount; no zap without the opt-in", () => {
        assert.strictEqual(renderPlan(planOut("ceph", 4)), "1. mark osd.4 out (its data moves to the other OSDs)");
        const s = state({ osdId: 4 });
        assert.strictEqual(
            renderPlan(planRemove(s, "debian")),
            [
                "1. stop ceph-osd@4",
                "2. do not start ceph-osd@4 at boot",
                "3. purge osd.4 from the cluster (CRUSH, auth key, OSD map)",
                "4. unmount /var/lib/ceph/osd/ceph-4",
                "5. persist configuration across reboots",
            ].join("\n"),
        );
        const disable = planRemove(s, "debian")[1];
        assert.ok(disable.kind === "run");
        assert.deepStrictEqual(disable.argv, ["systemctl", "disable", "--quiet", "--no-reload", "ceph-osd@4", `ceph-volume@lvm-4-${s.osdFsid}`]);
        const purge = planRemove(s, "debian")[2];
        assert.ok(purge.kind === "run");
        assert.deepStrictEqual(purge.argv.slice(5), ["osd", "purge", "4", "--yes-i-really-mean-it"]);
        assert.ok(!JSON.stringify(planRemove(s, "debian")).includes("--force"), "never forced");
    });
    it("zaps the device last, only with allowDataLoss; OpenRC services on Alpine", () => {
        const plan = planRemove(state({ osdId: 4, allowDataLoss: true }), "alpine");
        assert.match(renderPlan(plan), /^1\. stop ceph-osd\.4\n2\. do not start ceph-osd\.4 at boot\n3\. purge osd\.4 .*\n4\. unmount .*\n5\. wipe \/dev\/disk\/by-id\/virtio-bm-ceph1-1 \(ceph-volume lvm zap --destroy\)\n6\. persist/);
        const cmds = renderCommands(plan, new AlpineAdapter(true));
        assert.ok(cmds.some((c) => c.includes("rc-service ceph-osd.4 stop")), cmds.join("\n"));
    });
});

describe("CephOsd delete sequencing (a fake `ceph osd safe-to-destroy` answer sequence, not the real ceph)", () => {
    const no = (message = "OSD(s) 2 have 5 pgs currently mapped to them."): DrainAnswer => ({ safe: [], active: [2], missingStats: [], storedPgs: [], message });
    const yes: DrainAnswer = { safe: [2], active: [], missingStats: [], storedPgs: [], message: "" };
    function fakeCeph(answers: DrainAnswer[]) {
        let t = 0;
        const progress: string[] = [];
        const deps = {
            asks: 0,
            ask: async () => answers[Math.min(deps.asks++, answers.length - 1)],
            now: () => t,
            sleep: async (ms: number) => void (t += ms),
            progress: (m: string) => void progress.push(m),
        };
        return { deps, progress };
    }
    it("waits, reporting progress, until safe-to-destroy says yes", async () => {
        const { deps, progress } = fakeCeph([no(), no(), yes]);
        const r = await waitSafeToDestroy(2, 60_000, deps, 5000);
        assert.deepStrictEqual(r, { safe: true, waitedMs: 12_500, asks: 3 });
        assert.deepStrictEqual(progress, [
            "osd.2: not yet safe to destroy after 0s: PGs are still mapped to it (ceph: OSD(s) 2 have 5 pgs currently mapped to them.)",
            "osd.2: not yet safe to destroy after 5s: PGs are still mapped to it (ceph: OSD(s) 2 have 5 pgs currently mapped to them.)",
        ]);
    });
    it("gives up at the timeout with the last answer (the caller leaves the OSD out, never forces)", async () => {
        const { deps } = fakeCeph([no()]);
        const r = await waitSafeToDestroy(2, 20_000, deps, 5000);
        assert.strictEqual(r.safe, false);
        assert.strictEqual(r.asks, 4, "at 0, 5, 12.5 and 20 s: the last at the timeout itself");
        assert.strictEqual(r.waitedMs, 20_000);
    });
    it("asks less often as a long drain goes on: 5 s at first, at most every 30 s", async () => {
        const { deps } = fakeCeph([no()]);
        const waits: number[] = [];
        const sleep = deps.sleep;
        deps.sleep = async (ms: number) => { waits.push(ms); await sleep(ms); };
        const r = await waitSafeToDestroy(2, 3_600_000, deps, 5000);
        assert.deepStrictEqual(waits.slice(0, 6), [5000, 7500, 11_250, 16_875, 25_312.5, 30_000]);
        assert.ok(waits.slice(5, -1).every((w) => w === 30_000), "then every 30 s");
        assert.ok(r.asks < 130, `an hour's drain asks ${r.asks} times (every 5 s: 720)`);
    });
    it("does not take another OSD's safety for this one's", async () => {
        const { deps } = fakeCeph([{ ...yes, safe: [3] }]);
        assert.strictEqual((await waitSafeToDestroy(2, 10_000, deps, 5000)).safe, false);
    });
});

describe("Ceph parsers on output captured in the lab (ceph 16.2)", () => {
    it("ceph-volume lvm list: each OSD's id, fsid, cluster, LV and devices", () => {
        const lvs = parseCephVolumeList(fixture("ceph-volume-lvm-list.json"));
        assert.strictEqual(lvs.length, 2);
        for (const lv of lvs) {
            assert.strictEqual(lv.type, "block");
            assert.match(lv.osdFsid, /^[0-9a-f-]{36}$/);
            assert.match(lv.lvPath, /^\/dev\/ceph-[0-9a-f-]+\/osd-block-[0-9a-f-]+$/);
            assert.strictEqual(lv.devices.length, 1);
            assert.ok(lv.tags.includes("pulumi-baremetal"), "our tag, not ceph's");
        }
        assert.deepStrictEqual(lvs.map((l) => l.devices[0]).sort(), ["/dev/vda", "/dev/vdb"]);
        assert.deepStrictEqual(parseCephVolumeList(fixture("ceph-volume-lvm-list-empty.json")), []);
    });
    it("ceph-volume's LVs read through lvs are the OSDs `ceph-volume lvm list` lists (both captured at one moment)", () => {
        const byId = (a: { osdId: number }, b: { osdId: number }) => a.osdId - b.osdId;
        const fromLvs = cephVolumeLvsOf(parseLvsWithDevices(fixture("lvs-ceph-volume.json"))).sort(byId);
        const fromCephVolume = parseCephVolumeList(fixture("ceph-volume-lvm-list.json")).sort(byId);
        assert.ok(fromLvs.length >= 2, `${fromLvs.length} OSD LVs`);
        assert.deepStrictEqual(fromLvs, fromCephVolume);
    });
    it("an OSD made by hand carries no tag of ours", () => {
        const [lv] = parseCephVolumeList(fixture("ceph-volume-lvm-list-vdd.json"));
        assert.deepStrictEqual([lv.devices, lv.tags, lv.crushDeviceClass], [["/dev/vdd"], [], ""]);
    });
    it("ceph osd tree: weight, class, location and status per OSD", () => {
        const tree = parseOsdTree(fixture("osd-tree.json"));
        const osds = tree.nodes.filter((n) => n.type === "osd");
        assert.strictEqual(osds.length, 3);
        const info = osdCrushInfo(tree, osds[0].id);
        assert.ok(info);
        assert.deepStrictEqual([info.deviceClass, info.location, info.up, info.reweight], ["hdd", { host: "ceph1", root: "default" }, true, 1]);
        assert.ok(info.crushWeight > 0.0058 && info.crushWeight < 0.006, String(info.crushWeight));
        assert.strictEqual(osdCrushInfo(tree, 99), undefined);
    });
    it("ceph osd dump: fsid, OSDs with uuid/up/in, pools", () => {
        const d = parseOsdDump(fixture("osd-dump.json"));
        assert.match(d.fsid, /^[0-9a-f-]{36}$/);
        assert.strictEqual(d.osds.length, 3);
        assert.ok(d.osds.every((o) => o.up && o.in && o.weight === 1));
        assert.deepStrictEqual(d.pools.map((p) => [p.name, p.size, p.minSize]), [["bmdata", 2, 1]]);
        const out = parseOsdDump(fixture("osd-dump-one-out.json")).osds.filter((o) => !o.in);
        assert.strictEqual(out.length, 1);
        assert.deepStrictEqual([out[0].up, out[0].weight], [true, 0]);
    });
    it("ceph osd safe-to-destroy: a busy answer names the OSD as active", () => {
        const text = fixture("safe-to-destroy-busy.json");
        const json = text.split("\n").find((l) => l.startsWith("{")) ?? "";
        const a = parseSafeToDestroy(json);
        assert.deepStrictEqual(a.safe, []);
        assert.deepStrictEqual(a.active, [0], json);
        // With -f json, Pacific answers "not safe" with exit status 0: the JSON is what counts.
        assert.match(text, /^exit=0$/m);
    });
    it("ceph osd safe-to-destroy: an out OSD holding the last copy of a PG (its partner down) is not safe", () => {
        const text = fixture("safe-to-destroy-busy-last-copy.txt");
        const a = parseSafeToDestroy(text.split("\n").find((l) => l.startsWith("{")) ?? "");
        assert.deepStrictEqual([a.safe, a.active], [[], [1]]);
    });
    it("ceph health: status and checks (the lab's manager runs without Python modules on purpose)", () => {
        const h = parseHealth(fixture("health-warn.json"));
        assert.deepStrictEqual(h, { status: "HEALTH_ERR", checks: { MGR_MODULE_ERROR: "10 mgr modules have failed" } });
    });
    it("the create probe: the device behind a by-id path, its OSD, the OSD map", () => {
        const p = parseProbe(fixture("probe-vdb.txt"));
        assert.strictEqual(p.real, "/dev/vdb");
        const lv = osdOnDevice(p, "/dev/disk/by-id/virtio-bm-ceph1-1");
        assert.ok(lv);
        assert.deepStrictEqual(lv.devices, ["/dev/vdb"]);
        assert.ok(p.dump.osds.some((o) => o.uuid === lv.osdFsid));
        assert.strictEqual(p.signature.TYPE, "LVM2_member");
        const empty = parseProbe(fixture("probe-vdd-empty.txt"));
        assert.strictEqual(empty.real, "/dev/vdd");
        assert.strictEqual(osdOnDevice(empty, "/dev/vdd"), undefined);
        assert.deepStrictEqual([empty.signature, empty.inUse], [{}, ""]);
    });
    it("finds an OSD on a logical volume by vg/lv, its path, or the device-mapper node", () => {
        const lv = { ...parseCephVolumeList(fixture("ceph-volume-lvm-list.json"))[0] };
        const p = { real: "/dev/dm-7", lvs: [lv], lvReal: new Map([[lv.lvPath, "/dev/dm-7"]]) };
        assert.strictEqual(osdOnDevice(p, `${lv.vgName}/${lv.lvName}`), lv);
        assert.strictEqual(osdOnDevice(p, lv.lvPath), lv);
        assert.strictEqual(osdOnDevice(p, "/dev/mapper/whatever"), lv);
        assert.strictEqual(osdOnDevice({ ...p, real: "/dev/dm-8" }, "/dev/mapper/other"), undefined);
    });
    it("the read (osd dump + osd tree from one client, one document a line): the OSD with this fsid, wherever its number", () => {
        const text = fixture("read-maps.txt");
        const fsid = parseOsdDump(text.split("\n").find((l) => l.includes('"osds"')) ?? "").osds[1].uuid;
        const r = parseRead(text, fsid);
        assert.strictEqual(r.entry?.uuid, fsid);
        assert.strictEqual(r.crush?.id, r.entry?.id);
        assert.deepStrictEqual([r.entry?.up, r.entry?.in, r.crush?.deviceClass], [true, true, "hdd"]);
        assert.strictEqual(parseRead(text, "00000000-0000-0000-0000-000000000000").entry, undefined);
        assert.throws(() => parseRead(fixture("osd-tree.json"), fsid), /ceph printed no osd dump/);
    });
});
