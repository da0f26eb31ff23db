// The seed's storage chain under the real Pulumi CLI, against the lab: two virtual
// disks of storage1 become a RAID1 (RaidArray), the array a volume group
// (VolumeGroup), a logical volume an NBD export registered in Consul (NbdVolume).
// svc1 is the NBD client. The lab has no separate SAN VM: LVM and nbd-server run
// on storage1 itself. Prints figures: array build, export, grow, rebuild times.
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { changes, PulumiStack } from "../helpers/pulumi";
import { requireTools } from "../helpers/tools";
import { sanForGuest } from "../../sdk/nbdVolume";
import { readScript } from "../../provider/resources/nbdVolume";
import { blankDisksScript, Lab, LabShell, labJsonPath, readLab, repoRoot } from "./lab";

const st = "storage1";
const client = "svc1";
const vgName = "bmvg";
const lvName = "guest1-var";
const port = 10820;
const owner = "52:54:00:6e:00:01";
const consulNode = "storage1-nbd";
const serviceId = "nbd-bmvg-guest1--var";
const dataBytes = 16 << 20;

function figure(name: string, seconds: number): void {
    console.log(`      figure: ${name}: ${seconds.toFixed(1)} s`);
}

/** Removes what this test makes (and only that), so a failed run does not block the next. */
const cleanScript = [
    "systemctl stop 'baremetal-nbd@bmvg-*' 2>/dev/null; systemctl disable --quiet 'baremetal-nbd@bmvg-guest1--var' 2>/dev/null",
    "rm -f /etc/nbd-server/baremetal/bmvg-*",
    "udevadm settle",
    "vgs bmvg >/dev/null 2>&1 && { lvremove -q -y bmvg; vgremove -q -y bmvg; }",
    "for md in /dev/md[0-9]*; do [ -b \"$md\" ] || continue; mdadm --detail --export \"$md\" 2>/dev/null | grep -q '^MD_NAME=.*:bmstorage$' || continue; pvremove -q -y \"$md\" 2>/dev/null; mdadm --stop \"$md\"; done",
    "for d in /dev/vdb /dev/vdc /dev/vdd; do mdadm --examine --export \"$d\" 2>/dev/null | grep -q '^MD_NAME=.*:bmstorage$' && mdadm --zero-superblock \"$d\"; done",
    "[ -f /etc/mdadm/mdadm.conf ] && sed -i '/:bmstorage/d' /etc/mdadm/mdadm.conf",
    // the member replaced out of md10 keeps a copy of bmvg: blank all three for the next file
    blankDisksScript(["/dev/vdb", "/dev/vdc", "/dev/vdd"]),
    "true",
].join("\n");

describe("storage chain under the real pulumi CLI: RAID1 → VG → LV → NBD → Consul", function () {
    this.timeout(30 * 60_000);
    let lab: Lab;
    let sh: LabShell;
    let stack: PulumiStack;
    let dir: string;
    let uri: string;
    let dataSum: string;
    let exportSum: string;
    const byId = (i: number) => lab.vms[st].disks[i].byId;

    async function consulEntry(): Promise<unknown[]> {
        const r = await fetch(`http://${lab.consul.httpAddr}/v1/catalog/service/nbd?filter=${encodeURIComponent(`ServiceID == "${serviceId}"`)}`);
        return (await r.json()) as unknown[];
    }

    async function cleanLab(): Promise<void> {
        await sh.sh(st, cleanScript, 300_000);
        await fetch(`http://${lab.consul.httpAddr}/v1/catalog/deregister`, { method: "PUT", body: JSON.stringify({ Node: consulNode }) });
        // an anti-entropy control a failed run left (the agent's sync would remove it too)
        await fetch(`http://${lab.consul.httpAddr}/v1/catalog/deregister`, { method: "PUT", body: JSON.stringify({ Node: st, ServiceID: "bm-ae-control" }) });
    }

    /** Checksum of the whole export, read through NBD from svc1. */
    async function checksumOverNbd(): Promise<string> {
        return (await sh.sh(client, `nbdcopy ${uri} - | sha256sum`, 300_000)).split(" ")[0];
    }

    before(async function () {
        if (!fs.existsSync(labJsonPath)) throw new Error(`the lab is not running (no ${labJsonPath}); start it with \`bash lab/lab.sh start\` or run \`npm test\``);
        requireTools(["pulumi", "pulumi-language-nodejs"]);
        lab = readLab();
        sh = new LabShell(lab);
        await sh.sh(st, "modprobe raid1; modprobe nbd; systemctl start systemd-udevd; true");
        await cleanLab();
        // The program runs from a copy, as a user's would; node_modules resolves pulumi-baremetal (built).
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "bm-lab-storage-"));
        for (const f of ["Pulumi.yaml", "index.js"]) fs.copyFileSync(path.join(repoRoot, "test/lab/fixtures/storage", f), path.join(dir, f));
        fs.symlinkSync(path.join(repoRoot, "node_modules"), path.join(dir, "node_modules"));
        stack = await PulumiStack.init(dir, "lab");
        const vm = lab.vms[st];
        await stack.setConfig("host", vm.ssh.host);
        await stack.setConfig("hostKey", vm.ssh.hostKey);
        await stack.setConfig("privateKeyPath", lab.ssh.privateKeyPath);
        await stack.setConfig("device", "/dev/md10");
        await stack.setConfig("members", JSON.stringify([byId(1), byId(2)]));
        await stack.setConfig("vgName", vgName);
        await stack.setConfig("lvName", lvName);
        await stack.setConfig("size", "64MiB");
        await stack.setConfig("port", String(port));
        await stack.setConfig("allowedClients", JSON.stringify([lab.vms[client].addresses.storage]));
        await stack.setConfig("owner", owner);
        await stack.setConfig("exportAddress", vm.addresses.storage);
        await stack.setConfig("consulAddress", lab.consul.httpAddr);
        await stack.setConfig("consulNode", consulNode);
        uri = `nbd://${vm.addresses.storage}:${port}/${lvName}`;
    });

    after(async function () {
        if (sh) await cleanLab().catch((e) => console.log(`      cleanup failed: ${String(e)}`));
        await stack?.cleanup();
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
        sh?.cleanup();
    });

    it("builds a RAID1 from two virtual disks and waits until it is clean", async () => {
        await stack.setConfig("stage", "raid");
        const t0 = Date.now();
        await stack.up();
        figure("array build (create + resync of 2x1 GiB, waitForSync)", (Date.now() - t0) / 1000);
        const out = await stack.outputs();
        assert.strictEqual(out.arrayState, "clean");
        assert.deepStrictEqual(out.arrayMembers, [byId(1), byId(2)]);
        assert.match(await sh.sh(st, "cat /proc/mdstat"), /md10 : active raid1 vdc\[1\] vdb\[0\]|md10 : active raid1 vdb\[0\] vdc\[1\]/);
    });

    it("puts a volume group and an NBD export on it, registered in Consul", async () => {
        await stack.setConfig("stage", "all");
        const t0 = Date.now();
        await stack.up();
        figure("export (VG + LV + nbd-server + Consul)", (Date.now() - t0) / 1000);
        const out = await stack.outputs();
        assert.strictEqual(out.uri, uri);
        assert.strictEqual(out.sizeBytes, 64 << 20);
        assert.match(await sh.sh(st, "pvs --noheadings -o pv_name,vg_name"), /\/dev\/md10\s+bmvg/);
        assert.strictEqual(await sh.sh(st, "systemctl is-active baremetal-nbd@bmvg-guest1--var"), "active\n");
        if (process.env.BM_CAPTURE_FIXTURES) await captureFixtures(process.env.BM_CAPTURE_FIXTURES);
        await registerAntiEntropyControl();
    });

    // The anti-entropy proof. A control: the same kind of entry put straight into the catalog on
    // storage1's own agent node, as a design without the external node would. The agent's next full
    // sync (about a minute apart on a small cluster, and no way to ask for one) removes it, which
    // shows that a sync ran; the export's entry must still be there afterwards. The control is
    // registered as soon as the export exists and looked at a few tests later, so that the
    // minute passes while those tests run.
    const consulUrl = () => `http://${lab.consul.httpAddr}`;
    let controlSince = 0;
    async function registerAntiEntropyControl(): Promise<void> {
        const agentNode = (await (await fetch(`${consulUrl()}/v1/catalog/node/${st}`)).json()) as { Node?: { Address: string } } | null;
        assert.ok(agentNode?.Node, `${st}'s Consul agent is a catalog node`);
        const control = { Node: st, Address: agentNode.Node.Address, Service: { ID: "bm-ae-control", Service: "bm-ae-control", Port: 1 }, SkipNodeUpdate: true };
        assert.ok((await fetch(`${consulUrl()}/v1/catalog/register`, { method: "PUT", body: JSON.stringify(control) })).ok);
        assert.strictEqual(await controlEntries(), 1, "the control entry is in the catalog");
        controlSince = Date.now();
    }
    async function controlEntries(): Promise<number> {
        return ((await (await fetch(`${consulUrl()}/v1/catalog/service/bm-ae-control`)).json()) as unknown[]).length;
    }

    async function captureFixtures(to: string): Promise<void> {
        fs.mkdirSync(to, { recursive: true });
        fs.writeFileSync(path.join(to, "baremetal-export.conf"), await sh.sh(st, "cat /etc/nbd-server/baremetal/bmvg-guest1--var.conf"));
        fs.writeFileSync(path.join(to, "baremetal-export.allow"), await sh.sh(st, "cat /etc/nbd-server/baremetal/bmvg-guest1--var.allow"));
        const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
        const args = (lv: string) => ["bmvg", lv, `/etc/nbd-server/baremetal/bmvg-${lv.replace(/-/g, "--")}.conf`, `/etc/nbd-server/baremetal/bmvg-${lv.replace(/-/g, "--")}.allow`, `baremetal-nbd@bmvg-${lv.replace(/-/g, "--")}`].map(q).join(" ");
        fs.writeFileSync(path.join(to, "read-serving.txt"), await sh.sh(st, `sh -c ${q(readScript)} baremetal-nbd-read ${args(lvName)}`));
        fs.writeFileSync(path.join(to, "read-missing.txt"), await sh.sh(st, `sh -c ${q(readScript)} baremetal-nbd-read ${args("nothing-here")}`));
        fs.writeFileSync(path.join(to, "lvs-md.json"), await sh.sh(st, "lvs --reportformat json --units b --nosuffix -o lv_name,vg_name,lv_uuid,lv_size,lv_path,lv_tags,lv_active bmvg/guest1-var"));
        fs.writeFileSync(path.join(to, "vgs-md.json"), await sh.sh(st, "vgs --reportformat json --units b --nosuffix -o vg_name,vg_uuid,vg_size,vg_free,vg_extent_size,lv_count,pv_count,vg_tags bmvg"));
    }

    it("a client on svc1 writes data through the export and reads it back", async () => {
        const t0 = Date.now();
        dataSum = (await sh.sh(client, `head -c ${dataBytes} /dev/urandom >/tmp/bm-nbd-data && nbdcopy --flush /tmp/bm-nbd-data ${uri} && sha256sum </tmp/bm-nbd-data`, 300_000)).split(" ")[0];
        const back = (await sh.sh(client, `nbdcopy ${uri} - | head -c ${dataBytes} | sha256sum`, 300_000)).split(" ")[0];
        figure(`write + read ${dataBytes >> 20} MiB over NBD from svc1`, (Date.now() - t0) / 1000);
        assert.strictEqual(back, dataSum);
        assert.strictEqual((await sh.sh(client, `nbdinfo --size ${uri}`)).trim(), String(64 << 20));
        exportSum = await checksumOverNbd();
    });

    it("lets only the allowed clients in (authfile)", async () => {
        assert.strictEqual((await sh.try(client, `nbdinfo --size ${uri}`)).code, 0, "svc1 is allowed and must get in");
        const r = await sh.try(st, `nbdinfo --size ${uri}`);
        assert.notStrictEqual(r.code, 0, "storage1 is not in allowedClients and must be refused");
    });

    it("answers 'which SAN serves guest X' from one Consul lookup", async () => {
        const found = await sanForGuest({ address: lab.consul.httpAddr }, owner.toUpperCase());
        assert.deepStrictEqual(found, [
            { san: consulNode, host: lab.vms[st].addresses.storage, port, exportName: lvName, volumeGroup: vgName, volume: lvName, readOnly: false, uri },
        ]);
        assert.deepStrictEqual(await sanForGuest({ address: lab.consul.httpAddr }, "52:54:00:6e:00:99"), []);
    });

    it("a second up finds nothing to change", async () => {
        const preview = await stack.preview();
        assert.strictEqual(changes(preview.changeSummary), 0, JSON.stringify(preview.changeSummary));
    });

    it("grows the volume online; the client sees the new size; data intact", async () => {
        await stack.setConfig("size", "128MiB");
        const preview = await stack.preview();
        assert.strictEqual(preview.steps.find((s) => s.urn.endsWith("::volume"))?.op, "update");
        const t0 = Date.now();
        await stack.up();
        figure("grow 64 → 128 MiB", (Date.now() - t0) / 1000);
        assert.strictEqual((await sh.sh(client, `nbdinfo --size ${uri}`)).trim(), String(128 << 20));
        assert.strictEqual((await sh.sh(client, `nbdcopy ${uri} - | head -c ${dataBytes} | sha256sum`, 300_000)).split(" ")[0], dataSum);
        exportSum = await checksumOverNbd();
    });

    it("refuses to shrink at preview, saying how to replace instead", async () => {
        await stack.setConfig("size", "64MiB");
        const r = await stack.run(["preview"]);
        assert.notStrictEqual(r.code, 0);
        assert.match(r.stdout + r.stderr, /size: shrinking bmvg\/guest1-var from 128MiB to 64MiB is refused/);
        assert.match(r.stdout + r.stderr, /declare a new NbdVolume of the smaller size, copy the data/);
        await stack.setConfig("size", "128MiB");
    });

    it("refuses destroy without the opt-in and changes nothing (checksum unchanged)", async () => {
        const r = await stack.run(["destroy", "--yes", "--skip-preview"]);
        assert.notStrictEqual(r.code, 0, "destroy must fail without allowDataLoss");
        assert.match(r.stdout + r.stderr, /would remove its data .* Nothing was changed\. To delete it, set allowDataLoss: true/);
        assert.strictEqual(await checksumOverNbd(), exportSum);
        assert.strictEqual((await consulEntry()).length, 1);
        assert.match(await sh.sh(st, "cat /proc/mdstat"), /md10 : active raid1/);
        assert.strictEqual(changes((await stack.preview()).changeSummary), 0, "the stack must be as before the refused destroy");
    });

    it("keeps the Consul entry through anti-entropy (external node)", async function () {
        assert.ok(controlSince > 0, "the control entry was registered with the export");
        while ((await controlEntries()) > 0) {
            if (Date.now() - controlSince > 240_000) throw new Error(`${st}'s Consul agent ran no anti-entropy sync in 240 s: the control entry on its own node is still there`);
            await new Promise((r) => setTimeout(r, 2000));
        }
        figure("anti-entropy sync seen (after the control was registered)", (Date.now() - controlSince) / 1000);
        assert.strictEqual((await consulEntry()).length, 1, "the export's entry (external node) survives the sync that removed the control");
    });

    it("shows a member failed by hand as degraded on refresh", async () => {
        await sh.sh(st, "mdadm /dev/md10 --fail /dev/vdc");
        await stack.ok(["refresh", "--yes"]);
        const raid = await stack.resourceOutputs("array");
        assert.strictEqual(raid.state, "degraded");
        assert.deepStrictEqual(raid.failedMembers, [byId(2)]);
        assert.deepStrictEqual(raid.activeMembers, [byId(1)]);
    });

    it("replaces the failed member in place and returns to clean, data intact", async () => {
        await stack.setConfig("members", JSON.stringify([byId(1), byId(3)]));
        const preview = await stack.preview();
        assert.strictEqual(preview.steps.find((s) => s.urn.endsWith("::array"))?.op, "update");
        const t0 = Date.now();
        await stack.up();
        figure("replace member + rebuild (1 GiB)", (Date.now() - t0) / 1000);
        const out = await stack.outputs();
        assert.strictEqual(out.arrayState, "clean");
        assert.deepStrictEqual(out.arrayMembers, [byId(1), byId(3)]);
        assert.deepStrictEqual(out.failedMembers, []);
        assert.strictEqual(await checksumOverNbd(), exportSum);
    });

    it("destroys with the opt-in and leaves nothing behind", async () => {
        await stack.setConfig("wipe", "true");
        await stack.up();
        const t0 = Date.now();
        await stack.ok(["destroy", "--yes", "--skip-preview"]);
        figure("destroy (export, LV, VG, array)", (Date.now() - t0) / 1000);
        assert.deepStrictEqual(await consulEntry(), []);
        const left = await sh.sh(st, "ls /etc/nbd-server/baremetal/ 2>/dev/null | grep bmvg; vgs bmvg 2>&1; cat /proc/mdstat; mdadm --examine /dev/vdb /dev/vdd 2>&1 | grep -c 'No md superblock'");
        assert.match(left, /Volume group "bmvg" not found/);
        assert.doesNotMatch(left, /md10/);
        assert.match(left, /^2$/m, "the members' superblocks must be zeroed");
        assert.strictEqual((await sh.try(client, `nbdinfo --size ${uri}`)).code === 0, false, "the export must be gone");
    });
});
