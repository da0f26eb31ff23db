import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { AlpineAdapter, DebianAdapter, renderCommands, renderPlan } from "../../provider/host";
import { DeviceProbe, parseDeviceProbe, parseLvs, parseLvsWithDevices, parsePvs, parseVgs } from "../../provider/parsers/lvm";
import { cephVolumeLvsOf } from "../../provider/parsers/ceph";
import { check, diff, orphanedPvs, planCreate, planDelete, planAddDevices, planRemoveDevices, planWipeLabels, refusalFor, VolumeGroupInputs, VolumeGroupState } from "../../provider/resources/volumeGroup";

const fixture = (name: string) => fs.readFileSync(path.join(__dirname, "../../../test/unit/fixtures/lvm", name), "utf8");
const connection = { host: "198.51.100.11", hostKey: "SHA256:" + "A".repeat(43), password: "pw" };
const good = { connection, name: "vg0", devices: ["/dev/md0"] };
const unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

function failures(news: Record<string, unknown>, olds: Record<string, unknown> = {}): string[] {
    return check(olds, news).failures.map((f) => `${f.field}: ${f.reason}`);
}

describe("VolumeGroup check", () => {
    it("accepts a VG on one device, refusing to delete by default", () => {
        const r = check({}, good);
        assert.deepStrictEqual(r.failures, []);
        assert.deepStrictEqual([r.inputs?.adopt, r.inputs?.allowDataLoss], [false, false]);
    });
    const bad: [string, Record<string, unknown>, RegExp][] = [
        ["a name with a space", { ...good, name: "vg 0" }, /^name: "vg 0" is not a VG name/],
        ["a name starting with -", { ...good, name: "-vg" }, /^name: /],
        ["the name ..", { ...good, name: ".." }, /^name: /],
        ["no devices", { ...good, devices: [] }, /^devices: needs at least 1 item/],
        ["a device outside /dev", { ...good, devices: ["/tmp/disk"] }, /^devices\[0\]: "\/tmp\/disk" is not a \/dev path/],
        ["traversal", { ...good, devices: ["/dev/disk/../sda"] }, /^devices\[0\]: must not contain \. or \.\. path segments/],
        ["shell metacharacters", { ...good, devices: ["/dev/md0;reboot"] }, /^devices\[0\]:/],
        ["a device twice", { ...good, devices: ["/dev/md0", "/dev/md0"] }, /^devices: lists the same device twice/],
        ["a non-boolean opt-in", { ...good, allowDataLoss: "yes" }, /^allowDataLoss: must be true or false/],
        ["no connection", { ...good, connection: undefined }, /^connection: is required/],
    ];
    for (const [what, input, expected] of bad) {
        it(`rejects ${what}, naming the field`, () => {
            const f = failures(input);
            assert.ok(f.some((x) => expected.test(x)), `expected ${expected} in ${JSON.stringify(f)}`);
        });
    }
    it("refuses a rename (it re-creates the VG) unless allowDataLoss is set", () => {
        const olds = check({}, good).inputs as unknown as Record<string, unknown>;
        assert.ok(failures({ ...good, name: "vg1" }, olds).some((f) => /^name: changing name re-creates the volume group .* set allowDataLoss: true/.test(f)));
        assert.deepStrictEqual(failures({ ...good, name: "vg1", allowDataLoss: true }, olds), []);
    });
    it("lets values not known yet through (preview: devices from a RaidArray still to be created)", () => {
        assert.deepStrictEqual(failures({ ...good, devices: [unknown] }), []);
        assert.deepStrictEqual(failures({ ...good, devices: unknown, connection: unknown }), []);
    });
});

describe("VolumeGroup diff", () => {
    const olds = { ...(check({}, good).inputs as VolumeGroupInputs), uuid: "u", sizeBytes: 1, freeBytes: 1, extentBytes: 4194304, lvCount: 0, physicalVolumes: ["/dev/md0"] } as VolumeGroupState;
    it("adds a device in place", () => {
        const d = diff("u", olds, { ...olds, devices: ["/dev/md0", "/dev/md1"] });
        assert.deepStrictEqual([d.changes, d.replaces], [true, []]);
    });
    it("replaces, old one first, on a new name or host", () => {
        assert.deepStrictEqual(diff("u", olds, { ...olds, name: "vg1" }).replaces, ["name"]);
        const d = diff("u", olds, { ...olds, connection: { ...connection, host: "198.51.100.12" } });
        assert.deepStrictEqual([d.replaces, d.deleteBeforeReplace], [["connection.host"], true]);
    });
    it("sees no change when nothing changed", () => {
        assert.strictEqual(diff("u", olds, check({}, good).inputs as VolumeGroupInputs).changes, false);
    });
});

describe("VolumeGroup plans", () => {
    const inputs = check({}, { ...good, devices: ["/dev/md0", "/dev/md1"] }).inputs as VolumeGroupInputs;
    it("pvcreates, then vgcreates with the pulumi-baremetal tag (Debian)", () => {
        assert.strictEqual(
            renderPlan(planCreate(inputs, "debian")),
            "1. install package lvm2 (if missing)\n2. make /dev/md0, /dev/md1 LVM physical volumes\n3. create volume group vg0 on /dev/md0, /dev/md1\n4. persist configuration across reboots",
        );
        const lines = renderCommands(planCreate(inputs, "debian"), new DebianAdapter());
        assert.ok(lines.includes("sh -c 'mkdir -p /run/lock && exec flock \"$@\"' baremetal-lock /run/lock/baremetal-lvm.lock pvcreate -q /dev/md0 /dev/md1"), lines.join("\n"));
        assert.ok(lines.some((l) => l.endsWith("vgcreate -q --addtag pulumi-baremetal vg0 /dev/md0 /dev/md1")), lines.join("\n"));
        assert.ok(lines.some((l) => /apt-get/.test(l) || /baremetal-install/.test(l)));
    });
    it("skips pvcreate for devices that already are (orphan) PVs", () => {
        assert.doesNotMatch(renderPlan(planCreate(inputs, "debian", ["/dev/md0", "/dev/md1"])), /physical volumes/);
    });
    it("enables the lvm service and commits with lbu on diskless Alpine", () => {
        const lines = renderCommands(planCreate(inputs, "alpine"), new AlpineAdapter(true));
        assert.ok(lines.includes("apk add --quiet --no-progress lvm2") || lines.some((l) => l.endsWith("apk add --quiet --no-progress lvm2")), lines.join("\n"));
        assert.ok(lines.some((l) => /rc-update add "\$1" "\$2"' baremetal-enable lvm default/.test(l)), lines.join("\n"));
        assert.ok(lines.some((l) => l.endsWith("lbu commit")), lines.join("\n"));
    });
    it("extends and reduces in place", () => {
        assert.match(renderPlan(planAddDevices("vg0", ["/dev/md2"])), /make \/dev\/md2 LVM physical volumes\n2\. add \/dev\/md2 to vg0/);
        assert.match(renderPlan(planRemoveDevices("vg0", ["/dev/md1"])), /remove \/dev\/md1 from vg0\n2\. wipe the LVM labels of \/dev\/md1/);
        assert.deepStrictEqual([planAddDevices("vg0", []), planRemoveDevices("vg0", [])], [[], []]);
    });
    it("deletes with vgremove then pvremove", () => {
        assert.match(renderPlan(planDelete("vg0", ["/dev/md0"])), /^1\. remove volume group vg0\n2\. wipe the LVM labels of \/dev\/md0\n3\. persist/);
    });
    // A delete whose connection was cut after vgremove ran: the re-run finds no VG, but the PVs still carry labels.
    it("re-run of a cut delete: wipes the labels of our PVs that are left in no VG, and nothing else", () => {
        const pvs = parsePvs(fixture("pvs-orphan.json"));
        assert.deepStrictEqual(orphanedPvs(pvs, ["/dev/vdf2", "/dev/md30"]), ["/dev/vdf2"]);
        assert.deepStrictEqual(orphanedPvs(pvs, ["/dev/vdf1"]), [], "a PV in a VG (bmfaultvg) is never wiped");
        assert.deepStrictEqual(orphanedPvs(pvs, []), [], "an orphan PV not in the state is someone else's");
        assert.strictEqual(renderPlan(planWipeLabels(["/dev/vdf2"])), "1. wipe the LVM labels of /dev/vdf2\n2. persist configuration across reboots");
        assert.deepStrictEqual(planWipeLabels([]), []);
    });
});

describe("VolumeGroup refuses devices that carry data", () => {
    const blank: DeviceProbe = { device: "/dev/md0", path: "/dev/md0", missing: false, mountpoint: "", holders: [], signature: "", pvVg: "" };
    const cases: [string, Partial<DeviceProbe>, RegExp | undefined][] = [
        ["a blank device", {}, undefined],
        ["an orphan PV (no VG)", { signature: "LVM2_member" }, undefined],
        ["a PV of this very VG (adoption)", { signature: "LVM2_member", pvVg: "vg0", holders: ["dm-0"] }, undefined],
        ["a missing device", { missing: true }, /does not exist/],
        ["a mounted device", { mountpoint: "/srv" }, /is mounted on \/srv/],
        ["a PV of another VG", { signature: "LVM2_member", pvVg: "smokevg" }, /physical volume of volume group smokevg/],
        ["an md member", { signature: "linux_raid_member" }, /md RAID superblock/],
        ["a device held by an array", { holders: ["md0"] }, /in use by md0/],
        ["a file system", { signature: "ext4" }, /carries a ext4 signature/],
    ];
    for (const [what, p, expected] of cases) {
        it(`${expected ? "refuses" : "accepts"} ${what}`, () => {
            const r = refusalFor({ ...blank, ...p }, "vg0");
            if (expected) assert.match(r ?? "", expected);
            else assert.strictEqual(r, undefined);
        });
    }
});

describe("LVM parsers (reports captured in the lab)", () => {
    it("reads vgs --reportformat json", () => {
        assert.deepStrictEqual(parseVgs(fixture("vgs.json")), [
            { name: "fixvg", uuid: "IA28An-d0yf-G565-8X2F-1mfW-7OtP-YzHwGS", sizeBytes: 260046848, freeBytes: 184549376, extentBytes: 4194304, lvCount: 2, pvCount: 2, tags: ["pulumi-baremetal"] },
        ]);
    });
    it("reads pvs --reportformat json", () => {
        assert.deepStrictEqual(parsePvs(fixture("pvs.json")).map((p) => `${p.device}:${p.vg}:${p.sizeBytes}`), ["/dev/loop0:fixvg:130023424", "/dev/loop1:fixvg:130023424"]);
    });
    it("reads lvs --reportformat json", () => {
        const [lv] = parseLvs(fixture("lvs.json"));
        assert.deepStrictEqual(lv, { name: "data", vg: "fixvg", uuid: "gkzB29-IghI-T80T-d7S1-HEdt-ZleS-m6ljms", sizeBytes: 67108864, path: "/dev/fixvg/data", tags: ["pulumi-baremetal"], active: true });
    });
    it("reads the VG the lab test built on the RAID1 (/dev/md10) and its exported LV", () => {
        const [vg] = parseVgs(fixture("vgs-md.json"));
        assert.deepStrictEqual([vg.name, vg.pvCount, vg.lvCount, vg.extentBytes, vg.tags], ["bmvg", 1, 1, 4194304, ["pulumi-baremetal"]]);
        assert.ok(vg.sizeBytes > 4e9 && vg.freeBytes < vg.sizeBytes, JSON.stringify(vg));
        const [lv] = parseLvs(fixture("lvs-md.json"));
        assert.deepStrictEqual([lv.name, lv.vg, lv.sizeBytes, lv.path, lv.active], ["guest1-var", "bmvg", 64 << 20, "/dev/bmvg/guest1-var", true]);
    });
    it("reads the devices under each LV: one row per segment, merged into one LV with each device once", () => {
        const lvs = parseLvsWithDevices(fixture("lvs-devices-segments.json"));
        const by = (name: string) => lvs.find((l) => l.name === name)!;
        assert.deepStrictEqual(lvs.map((l) => l.name).sort(), ["half", "plain", "span"]);
        assert.deepStrictEqual(by("span").devices, ["/dev/vdd", "/dev/vdc"], "in the LV's segment order");
        assert.deepStrictEqual([by("plain").devices, by("plain").tags], [["/dev/vdc"], []]);
        // of the three, only the LV whose tags name an OSD id is ceph-volume's; "null" is not an id (ceph-volume's own rule)
        const osds = cephVolumeLvsOf(lvs);
        assert.deepStrictEqual(osds.map((o) => [o.lvName, o.osdId, o.type, o.devices, o.crushDeviceClass, o.tags]), [["span", 7, "block", ["/dev/vdc", "/dev/vdd"], "", ["pulumi-baremetal"]]], "devices by name, as ceph-volume lists its PVs");
    });
    it("reads the empty report LVM prints (exit 5) for a VG or LV that does not exist", () => {
        assert.deepStrictEqual(parseLvs(fixture("lvs-missing.json")), []);
        assert.deepStrictEqual(parseVgs(fixture("vgs-missing.json")), []);
    });
    it("fails loudly on output that is not a JSON report", () => {
        assert.throws(() => parseVgs("  VG #PV #LV\n  vg0 1 0\n"), /LVM printed no JSON report/);
        assert.throws(() => parseVgs('{"report":[{"vg":[{"vg_name":"x","vg_size":"3.99g"}]}]}'), /vg_size="3\.99g" is not a number/);
    });
    it("reads the device probe captured in the lab", () => {
        const probes = parseDeviceProbe(fixture("probe.txt"));
        assert.deepStrictEqual(
            probes.map((p) => refusalFor(p, "vg0") ?? "ok"),
            [
                "/dev/vdb (/dev/vdb) is in use by md0 (an md array or device-mapper device)",
                "/dev/md0 (/dev/md0) is a physical volume of volume group smokevg",
                "ok",
                "/dev/disk/by-id/virtio-bm-storage1-3 (/dev/vdd) carries a ceph_bluestore signature (a file system or other data)",
                "/dev/nope does not exist",
            ],
        );
    });
});
