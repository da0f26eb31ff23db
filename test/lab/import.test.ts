// `pulumi import` through the native provider against the lab VMs, under the real
// CLI and the Pulumi YAML host: a RAID1 array (mdadm on loop devices) and an LXC
// container (lxc-create) made by hand, and an NBD volume and a KVM guest made
// outside the importing stack (by a YAML stack of the same provider whose state
// then forgets them, as a stack moving its objects to another would). One
// `pulumi import --file` takes all four; the printed YAML, added to the program,
// previews with 0 changes; an ordinary update then applies; destroy removes what
// the stack now owns. Short on purpose (CI time): no guest OS, loop devices, one
// update.
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { changes, PulumiStack } from "../helpers/pulumi";
import { lab as labDescription } from "../helpers/lab";
import { requireTools } from "../helpers/tools";
import { LabShell, readLab } from "./lab";

const work = "/var/tmp/bmimp";
const md = "/dev/md77";
const vg = "bmimpvg";
const lv = "bmimp-var";
const nbdPort = 10877;
const guestMac = "52:54:00:ab:77:01";
const bridge = "bmimpbr";
const container = "bmimp-web";

function figure(name: string, value: string): void {
    process.stdout.write(`      figure: ${name} = ${value}\n`);
}

function yamlDir(program: string): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bm-import-"));
    fs.writeFileSync(path.join(dir, "Pulumi.yaml"), program);
    return dir;
}

describe("pulumi import of an array, a volume, a guest and a container (native provider, lab)", function () {
    this.timeout(15 * 60_000);
    let sh: LabShell;
    let storage: string;
    let svc: string;
    let consul: string;
    let arrayUuid: string;
    const stacks: { stack: PulumiStack; dir: string }[] = [];

    async function stackFor(program: string, name: string): Promise<PulumiStack> {
        const desc = labDescription();
        const dir = yamlDir(program);
        const stack = await PulumiStack.init(dir, name);
        stacks.push({ stack, dir });
        // Credentials are provider settings: the programs and the printed code name only hosts.
        await stack.setConfig("baremetal:privateKey", fs.readFileSync(desc.ssh.privateKeyPath, "utf8"), true);
        for (const vm of ["storage1", "svc1"]) await stack.ok(["config", "set", "--path", `baremetal:hostKeys["${desc.vms[vm].ssh.host}"]`, desc.vms[vm].ssh.hostKey]);
        return stack;
    }

    before(async function () {
        this.timeout(5 * 60_000);
        requireTools(["pulumi", "pulumi-language-yaml", "pulumi-resource-baremetal"]);
        const desc = labDescription();
        sh = new LabShell(readLab());
        storage = desc.vms.storage1.ssh.host;
        svc = desc.vms.svc1.ssh.host;
        consul = desc.consul.httpAddr;
        for (const name of ["storage1", "svc1"]) await sh.waitSsh(name, 180_000);
        await sweep();
        // By hand: a RAID1 of two loop devices, and a VG on a third (for the volume).
        const out = await sh.sh("storage1", [
            `mkdir -p ${work}`,
            ...["a", "b", "c"].map((d) => `truncate -s 64M ${work}/${d}.img && losetup -f --show ${work}/${d}.img >${work}/${d}.loop`),
            `mdadm --create ${md} --run --level=1 --raid-devices=2 --metadata=1.2 --name=bmimp "$(cat ${work}/a.loop)" "$(cat ${work}/b.loop)" >/dev/null 2>&1`,
            `pvcreate -q "$(cat ${work}/c.loop)" >/dev/null && vgcreate -q ${vg} "$(cat ${work}/c.loop)" >/dev/null`,
        ].join(" && "));
        // Read on its own: the commands above may print warnings (LVM on loop devices does).
        arrayUuid = (await sh.sh("storage1", `mdadm --detail --export ${md} | sed -n 's/^MD_UUID=//p'`)).trim();
        assert.match(arrayUuid, /^[0-9a-f]{8}(:[0-9a-f]{8}){3}$/, `not an md UUID: ${JSON.stringify(arrayUuid)} (made: ${out})`);
        // By hand: a running busybox container (a stopped one would be started by the
        // program's first update: a container is declared running), and a Linux bridge for the guest's NIC.
        await sh.sh("svc1", `ip link add ${bridge} type bridge && ip link set ${bridge} up && lxc-create -q -n ${container} -t busybox && lxc-start -n ${container}`);
        // Outside the importing stack: the volume and the guest, by this provider, then forgotten by that stack.
        const maker = await stackFor(
            `name: bmimp-maker
runtime: yaml
resources:
  var:
    type: baremetal:index:NbdVolume
    properties: { connection: { host: "${storage}" }, volumeGroup: ${vg}, name: ${lv}, size: 16MiB, port: ${nbdPort}, owner: "${guestMac}", consul: { address: "${consul}" } }
  guest:
    type: baremetal:index:KvmGuest
    properties:
      connection: { host: "${svc}" }
      name: bmimp
      memoryMiB: 32
      autostart: false
      shutdownTimeoutSeconds: 5
      nics: [{ bridge: ${bridge}, bridgeType: linux, mac: "${guestMac}" }]
`,
            "maker",
        );
        await maker.up();
        for (const r of ["NbdVolume::var", "KvmGuest::guest"]) await maker.ok(["state", "delete", `urn:pulumi:maker::bmimp-maker::baremetal:index:${r}`, "--yes"]);
    });

    after(async function () {
        this.timeout(5 * 60_000);
        for (const { stack, dir } of stacks.reverse()) {
            await stack.run(["destroy", "--yes", "--skip-preview"]);
            await stack.cleanup();
            fs.rmSync(dir, { recursive: true, force: true });
        }
        if (sh) await sweep();
    });

    /** Whatever the test (or an earlier failed run) made, gone. */
    async function sweep(): Promise<void> {
        await sh.try("svc1", [
            "systemctl stop baremetal-guest-bmimp 2>/dev/null; rm -f /etc/systemd/system/baremetal-guest-bmimp.service; systemctl daemon-reload",
            `lxc-stop -n ${container} -k 2>/dev/null; lxc-destroy -n ${container} 2>/dev/null`,
            `ip link del ${bridge} 2>/dev/null`,
            "true",
        ].join("; "));
        await sh.try("storage1", [
            `systemctl stop 'baremetal-nbd@${vg}-bmimp--var' 2>/dev/null; rm -f /etc/nbd-server/baremetal/${vg}-bmimp--var.*`,
            `lvremove -fy ${vg}/${lv} >/dev/null 2>&1; vgremove -fy ${vg} >/dev/null 2>&1`,
            `mdadm --stop ${md} >/dev/null 2>&1`,
            `for f in ${work}/*.loop; do [ -f "$f" ] || continue; d=$(cat "$f"); mdadm --zero-superblock "$d" 2>/dev/null; pvremove -ffy "$d" >/dev/null 2>&1; losetup -d "$d"; done`,
            `rm -rf ${work}`,
            "true",
        ].join("; "));
        await fetch(`http://${consul}/v1/catalog/deregister`, { method: "PUT", body: JSON.stringify({ Node: `${storage.replace(/[^A-Za-z0-9]+/g, "-")}-nbd` }) }).catch(() => undefined);
    }

    it("imports all four with one `pulumi import --file`; the printed code previews with 0 changes; an update applies", async () => {
        const stack = await stackFor("name: bmimp\nruntime: yaml\n", "importer");
        const dir = stacks[stacks.length - 1].dir;
        const importFile = path.join(dir, "import.json");
        fs.writeFileSync(importFile, JSON.stringify({
            resources: [
                { type: "baremetal:index:RaidArray", name: "md", id: `${arrayUuid}@${storage}` },
                { type: "baremetal:index:NbdVolume", name: "var", id: `${storage}/${vg}/${lv}@${consul}` },
                { type: "baremetal:index:KvmGuest", name: "guest", id: `${guestMac}@${svc}` },
                { type: "baremetal:index:LxcContainer", name: "web", id: `${container}@${svc}` },
            ],
        }));
        const code = path.join(dir, "imported.yaml");
        let t0 = Date.now();
        await stack.ok(["import", "--file", importFile, "--yes", "--protect=false", "--out", code]);
        figure("pulumi import of 4 resources", `${((Date.now() - t0) / 1000).toFixed(1)}s`);
        const printed = fs.readFileSync(code, "utf8");
        for (const want of [/type: baremetal:(index:)?RaidArray/, /device: \/dev\/md77/, /type: baremetal:(index:)?NbdVolume/, /owner: 52:54:00:ab:77:01/, /type: baremetal:(index:)?KvmGuest/, /memoryMiB: 32/, /type: baremetal:(index:)?LxcContainer/, /template: busybox/]) {
            assert.match(printed, want);
        }
        assert.doesNotMatch(printed, /PRIVATE KEY|privateKey|hostKey/, "a credential reached the printed code");
        fs.appendFileSync(path.join(dir, "Pulumi.yaml"), printed);

        t0 = Date.now();
        const preview = await stack.preview();
        figure("preview of the printed code", `${((Date.now() - t0) / 1000).toFixed(1)}s`);
        const changed = preview.steps.filter((s) => s.op !== "same").map((s) => `${s.op} ${s.urn} ${JSON.stringify(s.diffReasons ?? [])} ${JSON.stringify((s as unknown as { detailedDiff?: unknown }).detailedDiff ?? {})}`);
        assert.strictEqual(changes(preview.changeSummary), 0, `the printed code differs from what was imported: ${JSON.stringify(preview.changeSummary)}\n${changed.join("\n")}\n${printed}`);

        // An ordinary update: the volume's allowed clients (nothing restarts), and its opt-in to data loss for destroy.
        const program = fs.readFileSync(path.join(dir, "Pulumi.yaml"), "utf8");
        const edited = program.replace(/(\n  var:\n    type: [^\n]+\n    properties:\n)/, "$1      allowedClients:\n        - 198.18.1.0/24\n      allowDataLoss: true\n");
        assert.notStrictEqual(edited, program, "the volume's block was not found in the printed code");
        fs.writeFileSync(path.join(dir, "Pulumi.yaml"), edited);
        t0 = Date.now();
        await stack.up();
        figure("update after import", `${((Date.now() - t0) / 1000).toFixed(1)}s`);
        assert.match(await sh.sh("storage1", `cat /etc/nbd-server/baremetal/${vg}-bmimp--var.allow`), /198\.18\.1\.0\/24/);
        const again = await stack.preview();
        assert.strictEqual(changes(again.changeSummary), 0, JSON.stringify(again.changeSummary));
    });
});
