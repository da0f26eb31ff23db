import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { renderPlan } from "../../provider/host";
import { check, diff, parseRead, planCreate, planDelete, planMembers, RaidArrayInputs, RaidArrayState, superblocksOf } from "../../provider/resources/raidArray";

const fixture = (name: string) => fs.readFileSync(path.join(__dirname, "../../../test/unit/fixtures/mdadm", name), "utf8");
const connection = { host: "198.51.100.11", hostKey: "SHA256:" + "A".repeat(43), password: "pw" };
const good = { connection, device: "/dev/md0", members: ["/dev/vdb", "/dev/vdc"] };

function failures(news: Record<string, unknown>, olds: Record<string, unknown> = {}): string[] {
    return check(olds, news).failures.map((f) => `${f.field}: ${f.reason}`);
}

describe("RaidArray check", () => {
    it("defaults to RAID1 with 1.2 metadata and no wiping", () => {
        const r = check({}, good);
        assert.deepStrictEqual(r.failures, []);
        assert.strictEqual(r.inputs?.level, "raid1");
        assert.strictEqual(r.inputs?.metadata, "1.2");
        assert.strictEqual(r.inputs?.allowDataLoss, false);
    });
    const bad: [string, Record<string, unknown>, RegExp][] = [
        ["a device that is not an md device", { ...good, device: "/dev/sda" }, /^device: .*\/dev\/md0 \.\.\. \/dev\/md127/],
        ["md128", { ...good, device: "/dev/md128" }, /^device:/],
        ["one member for RAID1", { ...good, members: ["/dev/vdb"] }, /^members: raid1 needs at least 2 members, got 1/],
        ["a member twice", { ...good, members: ["/dev/vdb", "/dev/vdb"] }, /^members: lists the same device twice/],
        ["a member outside /dev", { ...good, members: ["/dev/vdb", "/tmp/x"] }, /^members\[1\]: .*is not a \/dev path/],
        ["traversal in a member", { ...good, members: ["/dev/vdb", "/dev/disk/../sda"] }, /^members\[1\]: must not contain \. or \.\. path segments/],
        ["shell in a member", { ...good, members: ["/dev/vdb", "/dev/vdc;reboot"] }, /^members\[1\]:/],
        ["an unknown level", { ...good, level: "raid4" }, /^level: .*raid0, raid1, raid5, raid6 or raid10/],
        ["RAID5 with two disks", { ...good, level: "raid5" }, /^members: raid5 needs at least 3 members/],
        ["bad metadata", { ...good, metadata: "0.90" }, /^metadata: "0\.90" must be 1\.0, 1\.1 or 1\.2/],
        ["a name with spaces", { ...good, name: "my data" }, /^name: /],
        ["no connection", { ...good, connection: undefined }, /^connection: is required/],
    ];
    for (const [what, input, expected] of bad) {
        it(`rejects ${what}, naming the field`, () => {
            const f = failures(input);
            assert.ok(f.some((x) => expected.test(x)), `expected ${expected} in ${JSON.stringify(f)}`);
        });
    }
    it("refuses a change that would re-create the array unless allowDataLoss is set", () => {
        const olds = check({}, good).inputs as RaidArrayInputs;
        const f = failures({ ...good, level: "raid0" }, olds as unknown as Record<string, unknown>);
        assert.ok(f.some((x) => /^level: changing level re-creates the array and destroys its data; set allowDataLoss: true/.test(x)), JSON.stringify(f));
        assert.deepStrictEqual(failures({ ...good, level: "raid0", allowDataLoss: true }, olds as unknown as Record<string, unknown>), []);
    });
    it("lets values that are not known yet through (preview)", () => {
        const unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
        assert.deepStrictEqual(failures({ ...good, connection: unknown, members: unknown }), []);
    });
});

describe("RaidArray diff", () => {
    const olds = { ...(check({}, good).inputs as RaidArrayInputs), uuid: "u", state: "clean", activeMembers: ["/dev/vdb", "/dev/vdc"], failedMembers: [], sizeBytes: 1 } as RaidArrayState;
    it("changes members in place", () => {
        const d = diff("u", olds, { ...olds, members: ["/dev/vdb", "/dev/vdd"] });
        assert.deepStrictEqual([d.changes, d.replaces], [true, []]);
    });
    it("replaces (old one first) when the level changes", () => {
        const d = diff("u", olds, { ...olds, level: "raid0", allowDataLoss: true });
        assert.deepStrictEqual([d.replaces, d.deleteBeforeReplace], [["level"], true]);
    });
});

describe("RaidArray plans", () => {
    const inputs = check({}, { ...good, name: "data" }).inputs as RaidArrayInputs;
    it("creates with mdadm --create --run and records the array in mdadm.conf", () => {
        const text = renderPlan(planCreate(inputs, "debian"));
        assert.match(text, /^1\. install package mdadm \(if missing\)\n2\. create raid1 \/dev\/md0 from \/dev\/vdb, \/dev\/vdc\n3\. record \/dev\/md0 in \/etc\/mdadm\/mdadm.conf\n4\. persist configuration across reboots$/);
        const create = planCreate(inputs, "debian")[1];
        assert.deepStrictEqual(create.kind === "run" && create.argv, [
            "mdadm", "--create", "/dev/md0", "--run", "--level=raid1", "--raid-devices=2", "--metadata=1.2", "--name=data", "/dev/vdb", "/dev/vdc",
        ]);
    });
    it("uses /etc/mdadm.conf on Alpine", () => {
        assert.match(renderPlan(planCreate(inputs, "alpine")), /record \/dev\/md0 in \/etc\/mdadm\.conf/);
    });
    const state: RaidArrayState = { ...inputs, uuid: "u", state: "degraded", activeMembers: ["/dev/vdb"], failedMembers: ["/dev/vdc"], sizeBytes: 1 };
    it("replaces a failed member in place: fail, remove, add", () => {
        const text = renderPlan(planMembers(state, { ...inputs, members: ["/dev/vdb", "/dev/vdd"] }, "debian", 2));
        assert.match(text, /1\. mark \/dev\/vdc failed in \/dev\/md0\n2\. remove \/dev\/vdc from \/dev\/md0\n3\. add \/dev\/vdd to \/dev\/md0\n4\. record/);
        assert.doesNotMatch(text, /resize/);
    });
    it("grows the member count when a member is added", () => {
        const clean = { ...state, activeMembers: ["/dev/vdb", "/dev/vdc"], failedMembers: [] };
        assert.match(renderPlan(planMembers(clean, { ...inputs, members: ["/dev/vdb", "/dev/vdc", "/dev/vdd"] }, "debian", 2)), /add \/dev\/vdd to \/dev\/md0\n2\. resize \/dev\/md0 to 3 members/);
    });
    it("does nothing when the members are as declared", () => {
        const clean = { ...state, activeMembers: ["/dev/vdb", "/dev/vdc"], failedMembers: [] };
        assert.deepStrictEqual(planMembers(clean, inputs, "debian", 2), []);
    });
    it("keeps superblocks and what the array holds on delete unless allowDataLoss is set", () => {
        assert.doesNotMatch(renderPlan(planDelete(state, "debian", ["/dev/vdb"])), /zero|erase|wipefs/);
        assert.match(renderPlan(planDelete({ ...state, allowDataLoss: true }, "debian", ["/dev/vdb"])), /zero the md superblocks of \/dev\/vdb/);
    });
    // Found in the lab: a new array on the disks of a deleted one showed the old array's PV label,
    // and the next VolumeGroup on it was refused ("/dev/md20 is a physical volume").
    it("with allowDataLoss, erases the signatures inside the array while it runs, then stops it, then zeroes the superblocks", () => {
        const wiping = { ...state, allowDataLoss: true };
        const plan = planDelete(wiping, "debian", ["/dev/vdb", "/dev/vdc"]);
        const runs = plan.flatMap((s) => (s.kind === "run" ? [s.argv.join(" ")] : []));
        assert.deepStrictEqual(runs.slice(0, 2), ["wipefs -q -a /dev/md0", "mdadm --stop /dev/md0"]);
        assert.ok(runs.indexOf("mdadm --zero-superblock /dev/vdb /dev/vdc") > 1);
        assert.deepStrictEqual(plan.find((s) => s.kind === "ensurePackages"), { kind: "ensurePackages", names: ["util-linux"] });
        // Alpine splits util-linux: wipefs is its own package (BusyBox has none)
        assert.deepStrictEqual(planDelete(wiping, "alpine", ["/dev/vdb"]).find((s) => s.kind === "ensurePackages"), { kind: "ensurePackages", names: ["wipefs"] });
    });
    // A delete whose connection was cut after `mdadm --stop` ran: the re-run finds no array, but its ARRAY line and superblocks remain.
    it("re-run of a cut delete: no stop, removes the ARRAY line, zeroes only the superblocks of this array", () => {
        const wiping = { ...state, uuid: "71df7593:c56926d4:d520530d:103b4c60", allowDataLoss: true };
        const carrying = superblocksOf(wiping.uuid, [
            { device: "/dev/vdb", uuid: "71df7593:c56926d4:d520530d:103b4c60" },
            { device: "/dev/vdc" },
            { device: "/dev/vdd", uuid: "0a0a0a0a:0b0b0b0b:0c0c0c0c:0d0d0d0d" },
        ]);
        assert.deepStrictEqual(carrying, ["/dev/vdb"], "never another array's superblock");
        assert.strictEqual(
            renderPlan(planDelete(wiping, "debian", carrying, false)),
            "1. remove /dev/md0 from /etc/mdadm/mdadm.conf\n2. zero the md superblocks of /dev/vdb\n3. persist configuration across reboots",
        );
        assert.doesNotMatch(renderPlan(planDelete(wiping, "debian", [], false)), /stop|zero/);
        assert.doesNotMatch(renderPlan(planDelete({ ...wiping, allowDataLoss: false }, "debian", ["/dev/vdb"], false)), /zero/);
    });
});

describe("RaidArray read (output captured in the lab)", () => {
    it("sees a clean array", () => {
        const r = parseRead(fixture("read-clean.txt"));
        assert.strictEqual(r.state, "clean");
        assert.strictEqual(r.detail.uuid, "71df7593:c56926d4:d520530d:103b4c60");
        assert.strictEqual(r.sizeBytes, 522240 * 512);
        assert.deepStrictEqual(r.members.map((m) => `${m.device}:${m.state}`), ["/dev/loop10:active", "/dev/loop11:active"]);
    });
    it("sees a resync with its progress", () => {
        const r = parseRead(fixture("read-resync.txt"));
        assert.strictEqual(r.state, "resyncing");
        assert.strictEqual(r.syncPercent, 0);
    });
    it("sees a member failed by hand as faulty, although mdadm --export calls it spare", () => {
        const r = parseRead(fixture("read-failed.txt"));
        assert.strictEqual(r.state, "degraded");
        assert.deepStrictEqual(r.members.map((m) => `${m.device}:${m.state}`), ["/dev/loop10:active", "/dev/loop11:faulty"]);
    });
    it("sees a removed member as gone and the array degraded", () => {
        const r = parseRead(fixture("read-removed.txt"));
        assert.strictEqual(r.state, "degraded");
        assert.deepStrictEqual(r.members.map((m) => m.device), ["/dev/loop10"]);
    });
    it("sees the recovery onto a new member", () => {
        const r = parseRead(fixture("read-recover.txt"));
        assert.strictEqual(r.state, "recovering");
        assert.deepStrictEqual(r.members.map((m) => `${m.device}:${m.state}`).sort(), ["/dev/loop10:active", "/dev/loop12:active"]);
    });
});
