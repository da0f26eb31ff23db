// CephOsd under the real Pulumi CLI, against a real Ceph cluster in the lab VM
// ceph1: the test bootstraps one monitor and one manager (test/lab/cephCluster.ts),
// then the CephOsd resource creates OSDs on vda and vdb; a pool of size 2
// holds data; an OSD marked out by hand reads out on refresh; a CRUSH weight
// changes in place; an OSD made by hand on vdd is adopted; a delete that cannot
// become safe is refused after its timeout and leaves the OSD out but running; a
// delete with data present waits until safe-to-destroy agrees, then purges, and
// the pool's data stays readable; destroy with allowDataLoss wipes the disks.
// Prints figures: cluster bootstrap, OSD create, OSD remove (drain + purge).
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { changes, PulumiStack } from "../helpers/pulumi";
import { requireTools } from "../helpers/tools";
import { clientArgv, clientInput, probeScript, readCommands } from "../../provider/resources/cephOsd";
import { bootstrapCephCluster, CephCommand, cephCommands, cephJson, teardownCephCluster, waitActiveClean } from "./cephCluster";
import { Lab, LabShell, labJsonPath, readLab, repoRoot } from "./lab";
import type { CephOsdState } from "../../provider";
import { lvDeviceFields, reportOptions } from "../../provider/parsers/lvm";

const vmName = "ceph1";
const pool = "bmdata";
const objects = 12;

interface OsdDecl {
    name: string;
    device: string;
    crushWeight?: number;
    deviceClass?: string;
    adopt?: boolean;
}

/** A stack output per OSD: the provider's own state type, so the test reads what it returns. */
type OsdOut = Pick<CephOsdState, "osdId" | "osdFsid" | "clusterFsid" | "deviceClass" | "crushWeight" | "crushLocation" | "up" | "in" | "lvPath" | "devices">;

function figure(name: string, seconds: number): void {
    console.log(`      figure: ${name}: ${seconds.toFixed(1)} s`);
}

/**
 * The provider's own timing lines ("created osd.1 on ... in 74.2 s"), from the CLI's
 * output (which shows each twice: as it happens and among the diagnostics).
 */
function loggedFigures(text: string, pattern: RegExp): string[] {
    return [...new Set([...text.matchAll(pattern)].map((m) => m[0]))];
}

describe("CephOsd under the real pulumi CLI: a real cluster in ceph1", function () {
    this.timeout(40 * 60_000);
    let lab: Lab;
    let sh: LabShell;
    let stack: PulumiStack;
    let dir: string;
    let clusterFsid: string;
    let sums: string;
    const osds: OsdDecl[] = [];
    const byId = (i: number) => lab.vms[vmName].disks[i].byId;
    const capture = process.env.BM_CAPTURE_FIXTURES;

    const ceph = (cmd: string, timeoutMs = 180_000) => sh.sh(vmName, cmd, timeoutMs);
    /** The test's own queries and changes: one librados client per batch, not a ceph CLI per command (see cephCommands). */
    const admin = (...commands: CephCommand[]) => cephCommands(sh, vmName, commands);
    const flags = ["noout", "nobackfill", "norecover", "norebalance"];
    async function setOsds(): Promise<void> {
        await stack.setConfig("osds", JSON.stringify(osds));
    }
    async function outputsOf(): Promise<Record<string, OsdOut>> {
        return (await stack.outputs()).osds as Record<string, OsdOut>;
    }
    async function dump(): Promise<{ osds: { osd: number; uuid: string; up: number; in: number }[] }> {
        return cephJson(sh, vmName, { prefix: "osd dump" });
    }
    /**
     * Writes (`put`) or reads back (`get`) the pool's objects and prints each one's sha256.
     * One librados client (python3-rados, what the ceph CLI itself uses) for all of
     * them: a `rados` process per object costs ~10 s of start-up under TCG (measured).
     */
    async function poolObjects(mode: "put" | "get"): Promise<string> {
        const script = [
            "import hashlib, os, sys, rados",
            "c = rados.Rados(conffile='/etc/ceph/ceph.conf'); c.connect()",
            `io = c.open_ioctx('${pool}')`,
            `for i in range(1, ${objects} + 1):`,
            "    name = 'obj%d' % i",
            "    if sys.argv[1] == 'put':",
            "        data = os.urandom(1 << 20); io.write_full(name, data)",
            "    else:",
            "        data = io.read(name, 4 << 20)",
            "    print(name, hashlib.sha256(data).hexdigest())",
            "io.close(); c.shutdown()",
        ].join("\n");
        return ceph(`python3 -c "${script}" ${mode}`, 300_000);
    }
    const poolChecksums = () => poolObjects("get");
    async function save(name: string, content: string): Promise<void> {
        if (!capture) return;
        fs.mkdirSync(capture, { recursive: true });
        fs.writeFileSync(path.join(capture, name), content);
    }

    before(async function () {
        if (!fs.existsSync(labJsonPath)) throw new Error(`the lab is not running (no ${labJsonPath}); start it with \`bash lab/lab.sh start\` or run \`npm test\``);
        requireTools(["pulumi", "pulumi-language-nodejs"]);
        lab = readLab();
        if (!lab.vms[vmName]) throw new Error(`the lab has no VM ${vmName}; rebuild it with the current lab/topology.txt`);
        sh = new LabShell(lab);
        await ceph("systemctl start systemd-udevd; true");
        // Whatever an earlier (failed) run left: daemons, LVs on the disks, the monitor's store.
        let t0 = Date.now();
        await teardownCephCluster(sh, vmName);
        figure("teardown of leftovers", (Date.now() - t0) / 1000);
        t0 = Date.now();
        const cluster = await bootstrapCephCluster(sh, vmName);
        clusterFsid = cluster.fsid;
        figure("cluster bootstrap (1 mon + 1 mgr, to manager available)", cluster.bootstrapSeconds);

        dir = fs.mkdtempSync(path.join(os.tmpdir(), "bm-lab-ceph-"));
        for (const f of ["Pulumi.yaml", "index.js"]) fs.copyFileSync(path.join(repoRoot, "test/lab/fixtures/ceph", f), path.join(dir, f));
        fs.symlinkSync(path.join(repoRoot, "node_modules"), path.join(dir, "node_modules"));
        stack = await PulumiStack.init(dir, "lab");
        const vm = lab.vms[vmName];
        await stack.setConfig("host", vm.ssh.host);
        await stack.setConfig("hostKey", vm.ssh.hostKey);
        await stack.setConfig("privateKeyPath", lab.ssh.privateKeyPath);
        await stack.setConfig("drainTimeoutSeconds", "900");
    });

    after(async function () {
        if (sh) await teardownCephCluster(sh, vmName).catch((e) => console.log(`      teardown failed: ${String(e)}`));
        await stack?.cleanup();
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
        sh?.cleanup();
    });

    it("creates two OSDs on vda and vdb (ceph-volume, bluestore), up and in", async () => {
        // Two, not three: each bluestore create is minutes under TCG, and the pool of size 2 needs no more
        // until vdd's OSD is adopted below (the deletes then have a third OSD to move data to).
        osds.push({ name: "osd-a", device: byId(0) }, { name: "osd-b", device: byId(1) });
        await setOsds();
        const t0 = Date.now();
        const r = await stack.up();
        figure("pulumi up creating 2 OSDs", (Date.now() - t0) / 1000);
        for (const line of loggedFigures(r.stdout, /created osd\.\d+ on \S+ in [\d.]+ s/g)) console.log(`      figure: ${line}`);
        const out = await outputsOf();
        const ids = ["osd-a", "osd-b"].map((n) => out[n].osdId);
        assert.strictEqual(new Set(ids).size, 2, `two distinct OSD ids: ${JSON.stringify(ids)}`);
        for (const [n, disk] of [["osd-a", "/dev/vda"], ["osd-b", "/dev/vdb"]]) {
            assert.strictEqual(out[n].up, true, `${n} up`);
            assert.strictEqual(out[n].in, true, `${n} in`);
            assert.strictEqual(out[n].clusterFsid, clusterFsid);
            assert.strictEqual(out[n].deviceClass, "hdd");
            assert.deepStrictEqual(out[n].devices, [disk]);
            assert.strictEqual(out[n].crushLocation.host, vmName);
            assert.ok(out[n].crushWeight > 0.005 && out[n].crushWeight < 0.007, `a 6 GiB disk weighs ~0.0059 TiB, got ${out[n].crushWeight}`);
        }
        const live = await dump();
        assert.deepStrictEqual(live.osds.map((o) => [o.uuid, o.up, o.in]).sort(), ["osd-a", "osd-b"].map((n) => [out[n].osdFsid, 1, 1]).sort());
        if (capture) {
            await save("ceph-volume-lvm-list.json", await ceph("ceph-volume lvm list --format json"));
            // the same LVs as LVM reports them (what the create probe reads), nothing changed in between
            await save("lvs-ceph-volume.json", await ceph(`lvs ${reportOptions.join(" ")} -o ${lvDeviceFields}`));
            await save("ceph-volume-lvm-list-empty.json", await ceph("ceph-volume lvm list /dev/vdd --format json"));
            await save("osd-tree.json", await ceph("ceph osd tree -f json"));
            const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
            await save("read-maps.txt", await ceph(`echo ${q(clientInput(readCommands))} | ${clientArgv("ceph").map(q).join(" ")}`));
            await save("probe-vdb.txt", await ceph(`sh -c ${q(probeScript)} probe ceph ${q(byId(1))} /etc/ceph/ceph.conf /var/lib/ceph/bootstrap-osd/ceph.keyring`));
            await save("probe-vdd-empty.txt", await ceph(`sh -c ${q(probeScript)} probe ceph /dev/vdd /etc/ceph/ceph.conf /var/lib/ceph/bootstrap-osd/ceph.keyring`));
        }
    });

    it("a second up finds nothing to change", async () => {
        assert.strictEqual(changes((await stack.preview()).changeSummary), 0);
    });

    it("a pool of size 2 (min_size 1) holds data on them", async () => {
        await admin(
            { prefix: "osd pool create", pool, pg_num: 8, pgp_num: 8, pool_type: "replicated" },
            { prefix: "osd pool set", pool, var: "size", val: "2" },
            { prefix: "osd pool set", pool, var: "min_size", val: "1" },
            { prefix: "osd pool application enable", pool, app: "rados" },
        );
        sums = await poolObjects("put");
        assert.strictEqual(sums.trim().split("\n").length, objects);
        assert.strictEqual(await poolChecksums(), sums, "read back as written");
        assert.match(await ceph(`rados -p ${pool} ls | sort`), /^obj1\nobj10\nobj11\nobj12\nobj2\n/);
        figure("pool active+clean after writing 12 MiB", await waitActiveClean(sh, vmName, 600_000));
        if (capture) {
            await save("osd-dump.json", await ceph("ceph osd dump -f json"));
            await save("health-warn.json", await ceph("ceph health -f json"));
            await save("safe-to-destroy-busy.json", (await sh.try(vmName, "ceph osd safe-to-destroy osd.0 -f json >/tmp/bm-std.out 2>/tmp/bm-std.err; rc=$?; cat /tmp/bm-std.out; echo; echo exit=$rc; cat /tmp/bm-std.err")).stdout);
        }
    });

    it("shows an OSD marked out by hand as out on refresh", async () => {
        const b = (await outputsOf())["osd-b"];
        await admin({ prefix: "osd out", ids: [`osd.${b.osdId}`] });
        await stack.ok(["refresh", "--yes"]);
        const now = await stack.resourceOutputs("osd-b");
        assert.strictEqual(now.in, false);
        assert.strictEqual(now.reweight, 0);
        assert.strictEqual(now.up, true, "marked out, still running");
        if (capture) await save("osd-dump-one-out.json", await ceph("ceph osd dump -f json"));
        await admin({ prefix: "osd in", ids: [`osd.${b.osdId}`] });
        await waitActiveClean(sh, vmName, 600_000);
    });

    it("changes an OSD's CRUSH weight in place (no re-create)", async () => {
        const before = (await outputsOf())["osd-a"];
        osds[0].crushWeight = 0.01;
        await setOsds();
        const preview = await stack.preview();
        assert.strictEqual(preview.steps.find((s) => s.urn.endsWith("::osd-a"))?.op, "update");
        await stack.up();
        const after = (await outputsOf())["osd-a"];
        assert.strictEqual(after.crushWeight, 0.01);
        assert.strictEqual(after.osdFsid, before.osdFsid);
        const tree = await cephJson<{ nodes: { id: number; crush_weight?: number }[] }>(sh, vmName, { prefix: "osd tree" });
        const w = tree.nodes.find((n) => n.id === before.osdId)?.crush_weight ?? 0;
        assert.ok(Math.abs(w - 0.01) < 1e-4, `CRUSH holds ${w}`);
        assert.strictEqual(changes((await stack.preview()).changeSummary), 0, "no diff after the weight change (16.16 fixed point)");
        await waitActiveClean(sh, vmName, 600_000);
    });

    it("refuses a device change at preview without allowDataLoss, naming the field", async () => {
        osds[1].device = "/dev/vdd";
        try {
            await setOsds();
            const r = await stack.run(["preview"]);
            assert.notStrictEqual(r.code, 0);
            assert.match(r.stdout + r.stderr, /device: changing device from \/dev\/disk\/by-id\/virtio-bm-ceph1-1 to \/dev\/vdd re-creates the OSD: a new, empty OSD is made on \/dev\/vdd and the old one on \/dev\/disk\/by-id\/virtio-bm-ceph1-1 is drained and purged[\s\S]* Set allowDataLoss: true to allow it/);
        } finally {
            osds[1].device = byId(1);
            await setOsds();
        }
    });

    it("adopts an OSD made by hand on vdd (refused without adopt; not re-created)", async () => {
        let t0 = Date.now();
        await ceph("ceph-volume lvm create --bluestore --data /dev/vdd", 1_800_000);
        figure("OSD create by hand (ceph-volume lvm create on vdd)", (Date.now() - t0) / 1000);
        const hand = JSON.parse(await ceph("ceph-volume lvm list /dev/vdd --format json")) as Record<string, { tags: Record<string, string> }[]>;
        const [handId] = Object.keys(hand);
        const handFsid = hand[handId][0].tags["ceph.osd_fsid"];
        if (capture) await save("ceph-volume-lvm-list-vdd.json", await ceph("ceph-volume lvm list /dev/vdd --format json"));

        osds.push({ name: "osd-d", device: "/dev/vdd" });
        await setOsds();
        const refused = await stack.run(["up", "--yes", "--skip-preview"]);
        assert.notStrictEqual(refused.code, 0);
        assert.match(refused.stdout + refused.stderr, new RegExp(`already holds osd\\.${handId} .*not created by pulumi-baremetal\\. Nothing was changed\\. Set adopt: true`));

        osds[2].adopt = true;
        await setOsds();
        t0 = Date.now();
        await stack.up();
        figure("adopt (pulumi up)", (Date.now() - t0) / 1000);
        const d = (await outputsOf())["osd-d"];
        assert.strictEqual(d.osdId, Number(handId));
        assert.strictEqual(d.osdFsid, handFsid);
        assert.strictEqual((await dump()).osds.length, 3, "no fourth OSD");
        assert.match(await ceph("lvs --noheadings -o lv_tags " + d.lvPath), /pulumi-baremetal/);
        await waitActiveClean(sh, vmName, 600_000);
    });

    it("a delete that cannot become safe fails after its timeout: the OSD is left out but running, with its data", async () => {
        // The short timeout goes into osd-b's state only (--target): an update of each OSD reads the
        // maps through the ceph CLI, seconds of ceph1's one emulated vCPU apiece.
        const osdB = ["--target", JSON.parse(await stack.exportState()).deployment.resources.find((r: { urn: string }) => r.urn.endsWith("::osd-b")).urn as string];
        await stack.setConfig("drainTimeoutSeconds", "10"); // the least the field allows
        await stack.up(osdB);
        const b = (await outputsOf())["osd-b"];
        // Make osd-b hold the only copy of some PG: stop the OSD it shares one with (noout: it stays in),
        // and pause recovery so that the copy cannot be rebuilt elsewhere in time. Ceph's own answer
        // must then be "not safe". (With every OSD up and min_size 1, the other replica suffices: safe.)
        const pgs = await cephJson<{ pg_stats: { pgid: string; acting: number[] }[] }>(sh, vmName, { prefix: "pg ls-by-osd", osd: b.osdId });
        const partner = pgs.pg_stats.flatMap((p) => p.acting).find((id) => id !== b.osdId);
        assert.notStrictEqual(partner, undefined, `osd-b shares a PG with another OSD: ${JSON.stringify(pgs.pg_stats)}`);
        await admin(...flags.map((key) => ({ prefix: "osd set", key })));
        await ceph(`systemctl stop ceph-osd@${partner}`);
        try {
            const without = osds.filter((o) => o.name !== "osd-b");
            await stack.setConfig("osds", JSON.stringify(without));
            const r = await stack.run(["up", "--yes", "--skip-preview", ...osdB]);
            assert.notStrictEqual(r.code, 0, "the delete must fail");
            assert.match(r.stdout + r.stderr, new RegExp(`osd\\.${b.osdId} \\(.*\\) is still not safe to destroy after \\d+s`));
            assert.match(r.stdout + r.stderr, /It was NOT destroyed: it is marked out and still running, with its data/);
            const live = (await dump()).osds.find((o) => o.uuid === b.osdFsid);
            assert.deepStrictEqual([live?.up, live?.in], [1, 0]);
            assert.match(await stack.exportState(), /::osd-b"/, "still in the stack");
            if (capture) await save("safe-to-destroy-busy-last-copy.txt", (await sh.try(vmName, `ceph osd safe-to-destroy osd.${b.osdId} -f json >/tmp/bm-std.out 2>/tmp/bm-std.err; rc=$?; cat /tmp/bm-std.out; echo; echo exit=$rc; cat /tmp/bm-std.err`)).stdout);
        } finally {
            await ceph(`systemctl start ceph-osd@${partner}`);
            await admin(...[...flags].reverse().map((key) => ({ prefix: "osd unset", key })));
        }
        await admin({ prefix: "osd in", ids: [`osd.${b.osdId}`] });
        await stack.setConfig("osds", JSON.stringify(osds));
        await stack.setConfig("drainTimeoutSeconds", "900");
        await stack.up(osdB);
        assert.strictEqual(changes((await stack.preview()).changeSummary), 0, "every OSD as declared again");
        await waitActiveClean(sh, vmName, 600_000);
        assert.strictEqual(await poolChecksums(), sums, "the pool's data is intact");
    });

    it("deletes an OSD holding data: waits until safe-to-destroy, then purges; no zap without the opt-in; data readable", async () => {
        const b = (await outputsOf())["osd-b"];
        const pgs = await cephJson<{ pg_stats?: unknown[] }>(sh, vmName, { prefix: "pg ls-by-osd", osd: b.osdId });
        assert.ok(pgs.pg_stats?.length, "osd-b holds PGs before the delete");
        osds.splice(osds.findIndex((o) => o.name === "osd-b"), 1);
        await setOsds();
        const t0 = Date.now();
        const r = await stack.up();
        figure("OSD remove (pulumi up: out, drain until safe-to-destroy, stop, purge)", (Date.now() - t0) / 1000);
        for (const line of loggedFigures(r.stdout, /removed osd\.\d+: drained in [\d.]+ s, stopped and purged in [\d.]+ s/g)) console.log(`      figure: ${line}`);
        assert.strictEqual((await dump()).osds.find((o) => o.uuid === b.osdFsid), undefined, "purged from the OSD map");
        assert.match(await ceph("lvs --noheadings -o lv_path,devices"), new RegExp(`${b.lvPath}\\s+/dev/vdb`), "the LV (and its data) stays without allowDataLoss");
        assert.strictEqual(await poolChecksums(), sums, "the pool's data reads back the same");
        figure("pool active+clean after the delete", await waitActiveClean(sh, vmName, 600_000));
    });

    it("destroys the rest with allowDataLoss: drained, purged, disks wiped", async () => {
        await admin({ prefix: "osd pool rm", pool, pool2: pool, yes_i_really_really_mean_it: true });
        await stack.setConfig("zap", "true");
        await stack.up();
        const t0 = Date.now();
        const r = await stack.ok(["destroy", "--yes", "--skip-preview"]);
        figure("destroy 2 OSDs with zap (no data left)", (Date.now() - t0) / 1000);
        for (const line of loggedFigures(r.stdout, /removed osd\.\d+: [^\n]*/g)) console.log(`      figure: ${line}`);
        assert.deepStrictEqual((await dump()).osds, []);
        const left = await ceph("lvs --noheadings -o lv_path,devices 2>/dev/null; echo ==; ceph-volume lvm list --format json");
        assert.doesNotMatch(left, /\/dev\/vd[ad]/, "vda and vdd carry no LVs any more");
    });
});
