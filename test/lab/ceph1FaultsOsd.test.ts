// CephOsd under SSH cuts (issue #10), against a real Ceph cluster in the lab VM
// ceph1 (one monitor, one manager: test/lab/cephCluster.ts; ceph.test.js, which
// runs before this file in the same mocha process, tears its cluster down in its
// after(), so this file bootstraps its own). ONE OSD on vda goes through:
//   - a create cut while `ceph-volume lvm create` runs, once the OSD is half-made
//     (id in the map, LV tagged by ceph-volume, no mkfs yet: ceph-volume is
//     fetching the monitor map for the new OSD), then create again:
//     exactly one OSD on vda (OSD map, ceph-volume, one LV tagged
//     pulumi-baremetal), up and in; no orphan half-made OSD id in the map;
//   - an in-place update (CRUSH weight, device class, location) cut while the
//     OSD is moved in CRUSH, then update again: the declared values hold;
//   - a delete with allowDataLoss cut while `ceph osd purge` runs, then delete
//     again: gone from the OSD map and CRUSH, daemon stopped, vda wiped.
// The harness (test/lab/faultHarness.ts) runs the kind in this process through a
// TCP proxy in front of ceph1's sshd; the checks read ceph1 directly. Only
// vda-vdd and the Ceph cluster belong to this file on ceph1 (vde/vdf and the
// bmfault* guests, containers and bridges belong to other tests).
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { kinds } from "../../provider";
import type { CephOsdInputs, CephOsdState } from "../../provider";
import { intentDir, probeScript } from "../../provider/resources/cephOsd";
import { osdCrushInfo, OsdCrushInfo, OsdDump, parseCephVolumeList, CephVolumeLv, parseOsdDump, parseOsdTree } from "../../provider/parsers/ceph";
import { bootstrapCephCluster, teardownCephCluster } from "./cephCluster";
import { FaultLab, figure, reportCut, runs } from "./faultHarness";

const vmName = "ceph1";
/** The only disk this file makes an OSD on. */
const disk = "/dev/vda";
/**
 * The create cut comes once ceph-volume has made the OSD half-way: its id is in
 * the OSD map (`osd new`) and its LV on vda carries ceph-volume's tags, but mkfs
 * and activation have not run. ceph-volume (16.x, prepare_bluestore) fetches the
 * monitor map for the new OSD right after it tags the LV and before mkfs: the
 * cut comes when that `ceph ... mon getmap` runs (held until the cut is made).
 */
const halfMadeSign = runs("ceph", /--cluster ceph --name client\.bootstrap-osd --keyring \S+ mon getmap /);
const movedTo = { root: "default", host: "bmosdfault" };

/** What ceph1 holds, read directly (not through the proxy) in one SSH command. */
interface HostView {
    dump: OsdDump;
    crush: Map<number, OsdCrushInfo>;
    lvs: CephVolumeLv[];
    /** `lv_path|lv_tags|devices` of every LV on vda-vdd. */
    lvLines: string[];
    /** PVs on vda-vdd: `pv vg`. */
    pvLines: string[];
    /** blkid's signature of vda (empty when wiped). */
    vdaSignature: string;
    /** ceph-volume / ceph-osd --mkfs processes still running. */
    procs: string[];
    /** Active ceph-osd@ units. */
    units: string[];
}

const viewScript = `
echo ==maps==; printf 'osd dump\\nosd tree\\n' | ceph --connect-timeout 60 -f json
echo ==list==; ceph-volume lvm list --format json
echo ==lvs==; lvs --noheadings --separator '|' -o lv_path,lv_tags,devices 2>/dev/null | grep '/dev/vd[a-d]' | tr -d ' '
echo ==pvs==; pvs --noheadings -o pv_name,vg_name 2>/dev/null | grep '/dev/vd[a-d]'
echo ==blkid==; blkid -p -o export ${disk} 2>/dev/null | grep -v '^DEVNAME='
echo ==procs==; pgrep -af 'ceph-volume|ceph-osd .*--mkfs' | grep -v pgrep
echo ==units==; systemctl list-units --no-legend --state=active 'ceph-osd@*' | awk '{print $1}'
echo ==end==
true`;

function section(text: string, name: string): string {
    const m = new RegExp(`==${name}==\\n([\\s\\S]*?)==\\w+==`).exec(text);
    if (!m) throw new Error(`no ${name} section in:\n${text.slice(0, 600)}`);
    return m[1];
}

function lines(text: string): string[] {
    return text.split("\n").map((l) => l.trim()).filter((l) => l !== "");
}

describe("CephOsd: SSH cut mid-create, mid-update, mid-delete (fault harness, real cluster in ceph1)", function () {
    this.timeout(30 * 60_000);
    const k = kinds.CephOsd;
    let f: FaultLab;
    let inputs: CephOsdInputs;
    let state: CephOsdState;

    /** With BM_CAPTURE_FIXTURES=<dir>, the probe create runs, as it sees ceph1 now (parser fixtures for test/unit). */
    async function captureProbe(name: string): Promise<void> {
        const dir = process.env.BM_CAPTURE_FIXTURES;
        if (!dir) return;
        const q = (x: string) => `'${x.replace(/'/g, `'\\''`)}'`;
        const out = await f.sh.try(vmName, `sh -c ${q(probeScript)} probe ceph ${q(inputs.device)} /etc/ceph/ceph.conf /var/lib/ceph/bootstrap-osd/ceph.keyring`, 300_000);
        fs.mkdirSync(dir, { recursive: true });
        fs.writeFileSync(path.join(dir, name), out.stdout);
    }

    async function view(): Promise<HostView> {
        const out = await f.sh.sh(vmName, viewScript, 300_000);
        const docs = lines(section(out, "maps")).filter((l) => l.startsWith("{"));
        const dump = parseOsdDump(docs.find((d) => d.includes('"osds"')) ?? "");
        const tree = parseOsdTree(docs.find((d) => d.includes('"nodes"')) ?? "");
        const crush = new Map<number, OsdCrushInfo>();
        for (const o of dump.osds) {
            const c = osdCrushInfo(tree, o.id);
            if (c) crush.set(o.id, c);
        }
        return {
            dump,
            crush,
            lvs: parseCephVolumeList(section(out, "list")),
            lvLines: lines(section(out, "lvs")),
            pvLines: lines(section(out, "pvs")),
            vdaSignature: section(out, "blkid").trim(),
            procs: lines(section(out, "procs")),
            units: lines(section(out, "units")),
        };
    }

    function describeView(v: HostView): string {
        const osds = v.dump.osds.map((o) => `osd.${o.id} ${o.up ? "up" : "down"}/${o.in ? "in" : "out"}`).join(", ") || "none";
        const lvs = v.lvs.map((l) => `osd.${l.osdId} ${l.type} ${l.devices.join("+")}${l.tags.length ? ` [${l.tags.join(",")}]` : ""}`).join(", ") || "none";
        return `OSD map: ${osds}; ceph-volume: ${lvs}; LVs on vda-vdd: ${v.lvLines.length}; ceph-volume/mkfs still running: ${v.procs.length}`;
    }

    /** The last commands ceph-volume ran (its log on ceph1), to say where in its work the cut landed. */
    async function cephVolumeLastCommands(n: number): Promise<string> {
        const r = await f.sh.try(vmName, `grep -h 'Running command:' /var/log/ceph/ceph-volume.log 2>/dev/null | tail -n ${n} | sed 's/.*Running command: //'`);
        return r.stdout.trim();
    }

    before(async function () {
        f = await FaultLab.open([vmName]);
        await f.sh.sh(vmName, "systemctl start systemd-udevd; true");
        // Whatever ran before (ceph.test.js's cluster, an earlier failed run of this file): start from nothing.
        let t0 = Date.now();
        await teardownCephCluster(f.sh, vmName);
        await f.sh.sh(vmName, ": > /var/log/ceph/ceph-volume.log 2>/dev/null; true");
        figure("teardown of leftovers", (Date.now() - t0) / 1000);
        t0 = Date.now();
        const cluster = await bootstrapCephCluster(f.sh, vmName);
        figure("cluster bootstrap (1 mon + 1 mgr)", cluster.bootstrapSeconds);
        const byId = f.lab.vms[vmName].disks.find((d) => d.device === disk)?.byId;
        assert.ok(byId, `${vmName} has a ${disk}`);
        const checked = k.check({}, { connection: f.connection(vmName), device: byId, allowDataLoss: true, drainTimeoutSeconds: 300 });
        assert.deepStrictEqual(checked.failures, []);
        inputs = checked.inputs as CephOsdInputs;
    });

    after(async function () {
        if (f) {
            await teardownCephCluster(f.sh, vmName).catch((e) => console.log(`      teardown failed: ${String(e)}`));
            await f.close();
        }
    });

    it("create cut while ceph-volume lvm create runs: the re-run makes exactly one OSD on vda, no orphan", async () => {
        const cut = await f.cutDuring(vmName, /ceph-volume lvm create/, halfMadeSign, (ctx) => k.create(inputs, ctx));
        figure("OSD create: ceph-volume's last commands before the cut", `\n${(await cephVolumeLastCommands(4)).replace(/^/gm, "        ")}`);
        const atCut = await view();
        figure("OSD create: on ceph1 right after the cut", describeView(atCut));
        await captureProbe("probe-vda-half-made.txt");
        const again = await f.rerun((ctx) => k.create(inputs, ctx));
        reportCut("OSD create", cut, again.seconds);
        figure("OSD create: re-run steps", again.steps.join(" | ") || "(no plan steps)");
        state = again.result.outs;

        const v = await view();
        figure("OSD create: on ceph1 after the re-run", describeView(v));
        assert.deepStrictEqual(v.dump.osds.map((o) => [o.id, o.uuid, o.up, o.in]), [[state.osdId, state.osdFsid, true, true]], "exactly one OSD in the map: the one create returned, up and in");
        assert.strictEqual(again.result.id, state.osdFsid);
        const blocks = v.lvs.filter((l) => l.type === "block");
        assert.deepStrictEqual(blocks.map((l) => [l.osdFsid, l.devices]), [[state.osdFsid, [disk]]], "ceph-volume knows one OSD, on vda");
        assert.strictEqual(v.lvLines.length, 1, `one LV on vda-vdd: ${v.lvLines.join("; ")}`);
        assert.match(v.lvLines[0], /pulumi-baremetal/, "the LV is tagged as made by pulumi-baremetal");
        assert.strictEqual(v.pvLines.length, 1, `one PV (vda): ${v.pvLines.join("; ")}`);
        assert.deepStrictEqual(v.procs, [], "no ceph-volume or mkfs left running");
        assert.deepStrictEqual(v.units, [`ceph-osd@${state.osdId}.service`]);
        assert.deepStrictEqual(state.devices, [disk]);
        assert.strictEqual((await f.sh.sh(vmName, `ls -A ${intentDir} 2>/dev/null | wc -l`)).trim(), "0", "no note of an unfinished create is left");
    });

    it("update cut while the OSD moves in CRUSH: the re-run gives the declared weight, class and location", async () => {
        assert.ok(state, "the create test made the OSD");
        const news = k.check(inputs as unknown as Record<string, unknown>, { ...inputs, crushWeight: 0.02, deviceClass: "ssd", crushLocation: movedTo }).inputs as CephOsdInputs;
        const d = k.diff(state.osdFsid, state, news);
        assert.deepStrictEqual([d.changes, d.replaces], [true, []], "an in-place update");
        const cut = await f.cutDuring(vmName, /move osd\.\d+ to/, runs("ceph", /--cluster ceph --connect-timeout \d+ osd crush set osd\.\d+ /), (ctx) => k.update(state.osdFsid, state, news, ctx));
        const again = await f.rerun((ctx) => k.update(state.osdFsid, state, news, ctx));
        reportCut("OSD update (weight, class, location)", cut, again.seconds);
        figure("OSD update: re-run steps", again.steps.join(" | ") || "(no plan steps)");
        const out = again.result;
        assert.deepStrictEqual([out.crushWeight, out.deviceClass, out.crushLocation], [0.02, "ssd", movedTo]);

        const v = await view();
        const c = v.crush.get(state.osdId);
        assert.ok(c, `osd.${state.osdId} is in CRUSH`);
        assert.ok(Math.abs(c.crushWeight - 0.02) < 1e-4, `CRUSH weight 0.02, got ${c.crushWeight}`);
        assert.strictEqual(c.deviceClass, "ssd");
        assert.deepStrictEqual(c.location, movedTo);
        assert.deepStrictEqual(v.dump.osds.map((o) => [o.uuid, o.up, o.in]), [[state.osdFsid, true, true]], "still the one OSD, up and in (not re-created)");
        const kept = await f.sh.sh(vmName, `ceph config get osd.${state.osdId} crush_location`);
        assert.strictEqual(kept.trim(), "root=default host=bmosdfault", "the location is kept across restarts");
        state = out;
    });

    it("delete (allowDataLoss) cut while ceph osd purge runs: the re-run removes it fully and wipes vda", async () => {
        assert.ok(state, "the create test made the OSD");
        const cut = await f.cutDuring(vmName, /purge osd\.\d+/, runs("ceph", /--cluster ceph --connect-timeout \d+ osd purge \d+ --yes-i-really-mean-it$/), (ctx) => k.delete(state.osdFsid, state, ctx));
        const atCut = await view();
        figure("OSD delete: on ceph1 right after the cut", describeView(atCut));
        const again = await f.rerun((ctx) => k.delete(state.osdFsid, state, ctx));
        reportCut("OSD delete (allowDataLoss)", cut, again.seconds);
        figure("OSD delete: re-run steps", again.steps.join(" | ") || "(no plan steps)");

        const v = await view();
        figure("OSD delete: on ceph1 after the re-run", describeView(v));
        assert.deepStrictEqual(v.dump.osds, [], "no OSD in the map");
        assert.strictEqual(v.crush.size, 0);
        assert.deepStrictEqual(v.lvs, [], "ceph-volume knows no OSD");
        assert.deepStrictEqual(v.lvLines, [], "no LV left on vda-vdd");
        assert.deepStrictEqual(v.pvLines, [], "no PV left on vda-vdd");
        assert.strictEqual(v.vdaSignature, "", "vda carries no signature");
        assert.deepStrictEqual(v.units, [], "no ceph-osd daemon running");
        const tree = await f.sh.sh(vmName, "ceph osd tree -f json");
        assert.doesNotMatch(tree, new RegExp(`"name":"osd\\.${state.osdId}"`), "gone from CRUSH");
    });
});
