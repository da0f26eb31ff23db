// The lab data center split into two stacks of one project, from one inventory
// (config `part`), their state in the lab's own Ceph through RGW (lab/rgw.sh), under
// the real CLI: `storage` (storage1's volume group and NBD export, svc1's STORAGE
// bridge) and `services` (the KVM guest on svc1 whose disk is that export, read from
// the storage stack's `storageExports` through a StackReference).
// up storage, up services; the volume grows in storage and the services stack sees
// the new size at its next up (0 resource changes); destroy services, then storage.
// Lean on purpose (CI time): no PXE, no array, no container; the full program runs
// in datacenter.test.ts. Uses storage1, svc1 (and RGW in ceph1, which the ceph1
// group's tests leave alone): the main lab group.
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import { Checkout } from "../helpers/checkout";
import { lab as labDescription } from "../helpers/lab";
import { changes, PulumiStack, StackBackend } from "../helpers/pulumi";
import { requireTools } from "../helpers/tools";
import { blankDisksScript, LabShell, readLab } from "./lab";
import { rgwBackend, startRgw } from "./rgw";

const vg = "teamvg";
const volume = "labvm1-var";
const guestUnit = "baremetal-guest-labvm1";

function figure(name: string, value: string): void {
    process.stdout.write(`      figure: ${name} = ${value}\n`);
}

const sweep: Record<string, string> = {
    svc1: [
        `systemctl stop ${guestUnit} 2>/dev/null; rm -f /etc/systemd/system/${guestUnit}.service`,
        "ovs-vsctl --if-exists del-br brstor 2>/dev/null",
        "ip -4 addr show dev eth1 | grep -q 198.18.1.12 || ip addr add 198.18.1.12/24 dev eth1",
        "systemctl daemon-reload; true",
    ].join("; "),
    storage1: [
        `systemctl stop 'baremetal-nbd@${vg}-*' 2>/dev/null; rm -f /etc/nbd-server/baremetal/${vg}-*`,
        `vgs ${vg} >/dev/null 2>&1 && { lvremove -q -y ${vg}; vgremove -q -y ${vg}; }`,
        "pvremove -q -ff -y /dev/disk/by-id/virtio-bm-storage1-2 >/dev/null 2>&1; wipefs -q -a /dev/disk/by-id/virtio-bm-storage1-2",
        blankDisksScript(["/dev/disk/by-id/virtio-bm-storage1-2"]),
        "true",
    ].join("; "),
};

describe("the lab data center split into stacks (storage, services) on the RGW backend", function () {
    this.timeout(45 * 60_000);
    let sh: LabShell;
    let co: Checkout;
    let work: string;
    let inventoryFile: string;
    let backend: StackBackend;
    let storage: PulumiStack;
    let services: PulumiStack;

    /** The lab inventory, lean: storage1 serves the guest's disk from a plain disk; svc1 runs the guest. */
    function writeInventory(size: string): void {
        const doc = YAML.parseDocument(fs.readFileSync(path.join(co.programDir, "inventory.yaml"), "utf8"));
        const inv = doc.toJS() as Record<string, unknown> & {
            machines: { name: string; raid?: unknown; san?: unknown; bridges?: string[] }[];
            guests: { name: string }[];
            volumes: { name: string; size: string; port: number }[];
        };
        delete inv.pxe;
        delete inv.containers;
        inv.machines = inv.machines.filter((m) => m.name === "storage1" || m.name === "svc1");
        for (const m of inv.machines) {
            if (m.name === "storage1") {
                delete m.raid;
                m.san = { volumeGroup: vg, devices: ["/dev/disk/by-id/virtio-bm-storage1-2"], exportNetwork: "storage" };
            } else {
                m.bridges = ["storage"];
            }
        }
        inv.volumes = inv.volumes.filter((v) => v.name === volume).map((v) => ({ ...v, size, port: 10821 }));
        fs.writeFileSync(inventoryFile, YAML.stringify(inv));
    }

    async function lvBytes(): Promise<number> {
        return Number(await sh.sh("storage1", `lvs --noheadings --units b --nosuffix -o lv_size ${vg}/${volume}`));
    }

    async function upOk(stack: PulumiStack, what: string): Promise<string> {
        const t0 = Date.now();
        const r = await stack.run(["up", "--yes", "--skip-preview"]);
        assert.strictEqual(r.code, 0, `pulumi up (${what}) failed:\n${r.stdout}\n${r.stderr}`);
        figure(`pulumi up (${what})`, `${((Date.now() - t0) / 1000).toFixed(0)} s`);
        return r.stdout;
    }

    async function exportedSize(stack: PulumiStack): Promise<number> {
        const out = await stack.outputs();
        const summary = out.summary as { exports: { volume: string; sizeBytes: number }[] };
        return summary.exports.find((e) => e.volume === volume)?.sizeBytes ?? -1;
    }

    before(async function () {
        this.timeout(15 * 60_000);
        requireTools(["pulumi", "pulumi-language-nodejs"]);
        labDescription();
        sh = new LabShell(readLab());
        for (const b of ["storage1", "svc1"]) await sh.waitSsh(b, 180_000);
        for (const [box, script] of Object.entries(sweep)) await sh.try(box, script, 300_000);
        const rgw = await startRgw();
        figure("lab/rgw.sh (made, or found running)", `${rgw.seconds} s`);
        backend = rgwBackend(rgw, "teamsstacks");
        work = fs.mkdtempSync(path.join(os.tmpdir(), "bm-teams-"));
        inventoryFile = path.join(work, "inventory.yaml");
        co = Checkout.create("lab", "examples");
        co.include("datacenter", "examples");
        writeInventory("64MiB");
        // One project, two stacks, one inventory.
        storage = await PulumiStack.init(co.programDir, "storage", backend);
        await storage.setConfig("part", "storage");
        await storage.setConfig("inventory", inventoryFile);
        services = await PulumiStack.init(co.programDir, "services", backend);
        await services.setConfig("part", "services");
        await services.setConfig("inventory", inventoryFile);
    });

    after(async function () {
        this.timeout(20 * 60_000);
        for (const s of [services, storage]) {
            if (!s) continue;
            const r = await s.run(["destroy", "--yes", "--skip-preview"]);
            if (r.code !== 0 && s === storage) {
                await s.setConfig("allowDataLoss", "true");
                await s.run(["up", "--yes", "--skip-preview"]);
                await s.run(["destroy", "--yes", "--skip-preview"]);
            }
            await s.cleanup();
        }
        if (sh) for (const [box, script] of Object.entries(sweep)) await sh.try(box, script, 300_000);
        if (co) co.remove();
        if (work) fs.rmSync(work, { recursive: true, force: true });
    });

    it("up storage, then up services: the guest's disk is the storage stack's export", async () => {
        await upOk(storage, "storage");
        assert.strictEqual(await lvBytes(), 64 << 20);
        const exported = (await storage.outputs()).storageExports as { volumes: Record<string, { port: number; exportAddress: string }> };
        assert.strictEqual(exported.volumes[volume]?.port, 10821, JSON.stringify(exported));
        await upOk(services, "services");
        assert.strictEqual((await sh.try("svc1", `systemctl is-active --quiet ${guestUnit}`)).code, 0, "the guest runs on svc1");
        const unit = await sh.sh("svc1", `systemctl cat ${guestUnit}`);
        assert.ok(unit.includes(`${exported.volumes[volume].exportAddress}`) && unit.includes("10821"), `the guest's qemu does not use the export:\n${unit}`);
        assert.strictEqual(await exportedSize(services), 64 << 20);
        // Neither stack holds the other's resources.
        const kinds = async (s: PulumiStack) => (JSON.parse((await s.ok(["stack", "export"])).stdout) as { deployment: { resources?: { type: string }[] } })
            .deployment.resources?.map((r) => r.type) ?? [];
        assert.ok(!(await kinds(storage)).includes("baremetal:index:KvmGuest"), "the storage stack holds a guest");
        assert.ok(!(await kinds(services)).some((t) => /NbdVolume|VolumeGroup|OvsBridge/.test(t)), "the services stack holds storage");
    });

    it("the volume grows in storage; the services stack sees the new size at its next up, changing no resource", async () => {
        writeInventory("96MiB");
        await upOk(storage, "storage: grow the volume");
        assert.strictEqual(await lvBytes(), 96 << 20);
        const p = await services.preview();
        // (The StackReference is read at every run: a "read", not a change.)
        const { read: _read, ...summary } = p.changeSummary;
        assert.strictEqual(changes(summary), 0, `services after the grow: ${JSON.stringify(p.changeSummary)}`);
        await upOk(services, "services: read the new size");
        assert.strictEqual(await exportedSize(services), 96 << 20);
        assert.strictEqual((await sh.try("svc1", `systemctl is-active --quiet ${guestUnit}`)).code, 0, "the guest still runs");
    });

    it("destroy services, then storage", async () => {
        const t0 = Date.now();
        await services.ok(["destroy", "--yes", "--skip-preview"]);
        assert.notStrictEqual((await sh.try("svc1", `systemctl is-active --quiet ${guestUnit}`)).code, 0, "the guest still runs");
        await storage.setConfig("allowDataLoss", "true");
        await upOk(storage, "storage: opt in to data loss");
        await storage.ok(["destroy", "--yes", "--skip-preview"]);
        figure("destroy services, then storage", `${((Date.now() - t0) / 1000).toFixed(0)} s`);
        assert.notStrictEqual((await sh.try("storage1", `vgs ${vg}`)).code, 0, "the volume group is still there");
    });
});
