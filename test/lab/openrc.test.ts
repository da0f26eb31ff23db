// Every kind on the lab's OpenRC box, orc1 — Debian's OpenRC as PID 1
// (openrc-init), BusyBox as /bin/sh and as the coreutils the provider's scripts
// run on, a tmpfs root whose /etc survives a reboot only through the OS
// adapter's persist step — under the real pulumi CLI (fixture
// test/lab/fixtures/openrc): an OVS bridge joined to svc1's by an OpenVPN
// tunnel, a RAID1 with a volume group and an NBD export (nbd-server under
// OpenRC), a qemu guest on that export (under OpenRC: start, QMP, memory change,
// graceful stop), a busybox container, a PXE server in standby mode (dnsmasq
// under `consul lock` under OpenRC's supervise-daemon) PXE-booting the lab's
// disk-less client through its BMC; drift and repair; a
// power cycle through orc1's BMC after which what was declared persistent comes
// back and `pulumi preview --refresh` finds nothing to change; destroy. Then one
// cut-and-re-run fault (test/lab/faultHarness.ts): the SSH connection cut while
// OpenRC starts a guest.
import * as assert from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { kinds } from "../../provider";
import { parseDhcpLog } from "../../provider/parsers/dnsmasq";
import type { KvmGuestInputs } from "../../provider";
import { Host } from "../../provider/host";
import { connectionFor, lab as labDescription } from "../helpers/lab";
import { openvpnStaticKey } from "../helpers/keys";
import { changes, PulumiStack } from "../helpers/pulumi";
import { requireTools } from "../helpers/tools";
import { FaultLab, reportCut, script } from "./faultHarness";
import { LabShell, readLab, sleep } from "./lab";

const repo = path.resolve(__dirname, "../../..");
const orc = "orc1";
const webAddress = "198.18.4.50";
const guestTap = "vm5254007e0c01";
const nbdService = "baremetal-nbd.orcvg-orcg--disk";

function figure(name: string, value: string): void {
    process.stdout.write(`      figure: ${name} = ${value}\n`);
}

/** A throwaway checkout of the package with the fixture program in it (like test/helpers/checkout.ts). */
function checkout(): { root: string; program: string } {
    const root = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "bm-openrc-")), "a");
    fs.mkdirSync(path.join(root, "examples"), { recursive: true });
    fs.copyFileSync(path.join(repo, "package.json"), path.join(root, "package.json"));
    execFileSync("cp", ["-a", path.join(repo, "dist"), path.join(root, "dist")]);
    execFileSync("cp", ["-al", path.join(repo, "node_modules"), path.join(root, "node_modules")]);
    execFileSync("cp", ["-r", path.join(repo, "test/lab/fixtures/openrc"), path.join(root, "examples/openrc")]);
    return { root, program: path.join(root, "examples/openrc") };
}

/** Whatever a failed run left on orc1 and svc1 (only what this file makes). */
const sweepOrc = [
    "for s in /etc/init.d/baremetal-*; do [ -e \"$s\" ] || continue; n=${s##*/}; rc-service \"$n\" stop; rc-update del \"$n\" default; rm -f \"$s\"; done",
    "lxc-stop -n orc-web -k 2>/dev/null; lxc-destroy -n orc-web 2>/dev/null",
    "if ovs-vsctl --timeout=5 br-exists bmorc 2>/dev/null; then ovs-vsctl --timeout=10 del-br bmorc; fi",
    "vgremove -qq -f orcvg 2>/dev/null; mdadm --stop /dev/md20 2>/dev/null",
    "true",
].join("; ");
const sweepSvc = [
    "systemctl stop baremetal-ovpn-vpnorc 2>/dev/null; systemctl disable baremetal-ovpn-vpnorc 2>/dev/null",
    "rm -f /etc/systemd/system/baremetal-ovpn-vpnorc.service; systemctl daemon-reload",
    "if ovs-vsctl --timeout=5 br-exists bmorc 2>/dev/null; then ovs-vsctl --timeout=10 del-br bmorc; fi",
    "true",
].join("; ");

/**
 * The operator's one-time setup of orc1's persist medium (what setup-lbu does on Alpine): a file
 * system on its last disk, mounted where the persist step writes. Kept when already there.
 */
async function preparePersistMedium(sh: LabShell): Promise<void> {
    const disk = labDescription().vms[orc].disks.slice(-1)[0].byId;
    await sh.sh(orc, `mountpoint -q /media/persist || { mkfs.ext4 -q -F -L bm-persist ${disk} && mkdir -p /media/persist && mount ${disk} /media/persist; }`);
}

describe("every kind on the OpenRC box (orc1), under the real pulumi CLI", function () {
    this.timeout(60 * 60_000);
    let sh: LabShell;
    let stack: PulumiStack;
    let co: { root: string; program: string };
    let t0 = 0;

    async function up(what: string): Promise<string> {
        const t = Date.now();
        const r = await stack.up();
        figure(`pulumi up (${what})`, `${((Date.now() - t) / 1000).toFixed(0)}s`);
        return r.stdout;
    }

    before(async function () {
        t0 = Date.now();
        requireTools(["pulumi", "pulumi-language-nodejs"]);
        const desc = labDescription();
        sh = new LabShell(readLab());
        for (const name of [orc, "svc1"]) await sh.waitSsh(name, 180_000);
        await sh.sh(orc, sweepOrc);
        await sh.sh("svc1", sweepSvc);
        // The operator's one-time setup of the persist medium (what setup-lbu does on
        // Alpine): a file system on orc1's last disk, mounted where the persist step writes.
        await preparePersistMedium(sh);
        co = checkout();
        stack = await PulumiStack.init(co.program, "lab");
        const boxes = Object.fromEntries([orc, "svc1"].map((n) => [n, { host: desc.vms[n].ssh.host, port: desc.vms[n].ssh.port, user: desc.vms[n].ssh.user, hostKey: desc.vms[n].ssh.hostKey }]));
        const build = desc.build;
        const config: [string, string, boolean?][] = [
            ["boxes", JSON.stringify(boxes)],
            ["privateKeyPath", desc.ssh.privateKeyPath],
            // Base64: the key starts with "-----BEGIN", which the CLI would take for a flag.
            ["vpnKeyBase64", Buffer.from(openvpnStaticKey()).toString("base64"), true],
            ["members", JSON.stringify(desc.vms[orc].disks.slice(0, 2).map((d) => d.byId))],
            ["storageAddress", desc.vms[orc].addresses.storage],
            ["consulAddress", `${desc.consul.address}:8500`],
            ["guestMemoryMiB", "64"],
            ["webAddress", `${webAddress}/24`],
            ["webContent", "hello from orc1 v1\n"],
            ["subnet", desc.networks.lan.cidr],
            ["gateway", desc.networks.lan.gateway],
            ["kernelPath", build.vmlinuz],
            ["initrdPath", build.initrd],
            ["consulBinary", build.consulBinary],
        ];
        for (const [k, v, secret] of config) await stack.setConfig(k, v, secret);
    });

    after(async function () {
        this.timeout(20 * 60_000);
        if (stack) {
            await stack.setConfig("wipe", "true");
            const r = await stack.run(["destroy", "--yes", "--skip-preview"]);
            if (r.code !== 0) process.stderr.write(`destroy failed:\n${r.stdout}\n${r.stderr}\n`);
            await stack.cleanup();
        }
        if (co) fs.rmSync(path.dirname(co.root), { recursive: true, force: true });
        if (sh) {
            await sh.try(orc, sweepOrc);
            await sh.try("svc1", sweepSvc);
            sh.cleanup();
        }
        figure("openrc.test.ts (all of it)", `${((Date.now() - t0) / 1000).toFixed(0)}s`);
    });

    it("orc1 is the debian-openrc family by probing: OpenRC is PID 1, BusyBox is /bin/sh, the root is a tmpfs", async () => {
        const facts = await new Host(connectionFor(orc)).facts();
        assert.deepStrictEqual([facts.family, facts.diskless, facts.id], ["debian-openrc", true, "debian"]);
        const out = await sh.sh(orc, "readlink /proc/1/exe; readlink -f /bin/sh; stat -f -c %T /; echo \"$(cat /run/openrc/softlevel)\"; readlink -f \"$(command -v stat)\"");
        assert.deepStrictEqual(out.trim().split("\n"), ["/usr/sbin/openrc-init", "/usr/lib/bmlab/busybox", "tmpfs", "default", "/usr/lib/bmlab/busybox"]);
    });

    it("up: the bridges and their tunnel, the RAID1, the volume group, the NBD export, the guest, the container, the PXE server", async () => {
        const out = await up("create");
        assert.match(out, /baremetal:KvmGuest/);
        const o = await stack.outputs();
        assert.strictEqual(o.guestStatus, "running", JSON.stringify(o));
        assert.strictEqual(o.volumeServing, true);
        assert.deepStrictEqual(o.orcTunnels, { vpnorc: "active" });
        assert.deepStrictEqual(o.svcTunnels, { vpnorc: "active" });
        assert.ok(["clean", "resyncing"].includes(String(o.arrayState)), String(o.arrayState));
        assert.strictEqual(o.webState, "RUNNING");
        assert.strictEqual(o.pxeFamily, "debian-openrc");
        // Every service is an openrc-run script, enabled with rc-update where it should start at boot.
        const rc = await sh.sh(orc, "head -n 1 /etc/init.d/baremetal-* | grep -c openrc-run; ls /etc/runlevels/default | grep baremetal | sort");
        const [scripts, ...enabled] = rc.trim().split("\n");
        assert.ok(Number(scripts) >= 5, rc);
        for (const s of ["baremetal-guest-orcg", nbdService, "baremetal-ovpn-vpnorc"]) assert.ok(enabled.includes(s), `${s} not in the default runlevel: ${rc}`);
    });

    it("the container on orc1 answers HTTP from svc1, across the OVS bridges joined by the OpenVPN tunnel", async () => {
        const out = await sh.sh("svc1", `ip addr add 198.18.4.2/24 dev bmorc && { curl -fsS -m 20 --retry 5 --retry-all-errors http://${webAddress}/; r=$?; ip addr del 198.18.4.2/24 dev bmorc; exit $r; }`);
        assert.strictEqual(out, "hello from orc1 v1\n");
    });

    it("QMP on orc1 shows the guest's disk from orc1's own NBD export and its tap on the bridge", async () => {
        const o = await stack.outputs();
        assert.deepStrictEqual(o.guestTaps, [{ mac: "52:54:00:7e:0c:01", tap: guestTap, bridge: "bmorc" }]);
        assert.strictEqual((o.guestBlockDevices as { file: string }[])[0].file, `nbd://${labDescription().vms[orc].addresses.storage}:10820/orcg-disk`);
        const st = await sh.sh(orc, `rc-service baremetal-guest-orcg status; rc-service ${nbdService} status; true`);
        assert.match(st, /status: started[\s\S]*status: started/);
    });

    it("the PXE server in standby holds the Consul lock: dnsmasq runs under `consul lock`, supervised by OpenRC", async () => {
        const o = await stack.outputs();
        assert.strictEqual(o.pxeRole, "active");
        const st = await sh.sh(orc, "rc-service baremetal-pxe-orc-dhcp status; true");
        assert.match(st, /status: started/);
        // dnsmasq is the child of `consul lock`, which is supervise-daemon's (it may be between a restart and the lock).
        let ps = "";
        for (let i = 0; i < 30; i++) {
            ps = await sh.sh(orc, String.raw`for p in $(pgrep -x dnsmasq); do pp=$(awk '{print $4}' /proc/$p/stat); echo "dnsmasq $p parent $pp $(tr '\0' ' ' </proc/$pp/cmdline)"; done; true`);
            if (/consul lock .*baremetal\/lab\/orc-pxe-leader/.test(ps)) break;
            await sleep(2000);
        }
        assert.match(ps, /^dnsmasq \d+ parent \d+ \S*consul lock .*baremetal\/lab\/orc-pxe-leader/m, ps);
    });

    it("the standby PXE server PXE-boots the disk-less client (pxeclient1) powered on through its BMC: a static lease from orc1's dnsmasq, then SSH", async () => {
        const c = labDescription().vms.pxeclient1;
        await stack.setConfig("client", JSON.stringify({ mac: c.mac, ip: c.addresses.lan, hostKey: c.ssh.hostKey, bmc: { address: c.bmc.address, user: c.bmc.user } }));
        await stack.setConfig("bmcPassword", c.bmc.password, true);
        await up("a machine PXE-booted from orc1");
        const o = await stack.outputs();
        figure("PXE boot from orc1: BMC power on to SSH", `${o.clientBootSeconds} s`);
        const facts = o.clientFacts as { bootedProfile?: string; nics: { name: string; mac: string }[] };
        assert.strictEqual(facts.bootedProfile, "lab", JSON.stringify(facts));
        assert.deepStrictEqual(facts.nics, [{ name: "eth0", mac: c.mac }]);
        const acks = parseDhcpLog(await sh.sh(orc, "cat /var/log/baremetal-pxe-orc.log; true")).filter((e) => e.kind === "DHCPACK" && e.mac === c.mac && e.ip === c.addresses.lan);
        assert.ok(acks.length >= 1, "orc1's dnsmasq did not lease the client its declared address");
        // Removed again (powered off through its BMC): the power cycle below must not find a Machine whose PXE server is gone.
        await stack.ok(["config", "rm", "client"]);
        await up("the machine removed");
        assert.match(await sh.ipmi("pxeclient1", "chassis", "power", "status"), /is off/);
    });

    it("a second up finds nothing to change", async () => {
        const preview = await stack.preview();
        assert.strictEqual(changes(preview.changeSummary), 0, JSON.stringify(preview.changeSummary));
    });

    it("a memory change restarts the guest through OpenRC after a graceful power-down attempt", async () => {
        await stack.setConfig("guestMemoryMiB", "96");
        const out = await up("guest memory 64 -> 96 MiB");
        assert.match(out, /memoryMiB changed; restarting the guest/);
        assert.match(out, /did not power off within 5s .*qemu was told to quit/);
        assert.strictEqual((await stack.outputs()).guestMemoryMiB, 96);
        const qmp = await sh.sh(orc, `printf '%s\\n' '{"execute":"qmp_capabilities"}' '{"execute":"query-memory-size-summary"}' | socat -t 2 - UNIX-CONNECT:/run/baremetal/guests/orcg/qmp.sock`);
        assert.match(qmp, /"base-memory": 100663296/);
    });

    it("refresh sees drift (the container and the NBD export stopped by hand); up repairs both", async () => {
        await sh.sh(orc, `lxc-stop -n orc-web -k; rc-service ${nbdService} stop`);
        await stack.ok(["refresh", "--yes"]);
        assert.strictEqual((await stack.resourceOutputs("web")).state, "STOPPED");
        assert.strictEqual((await stack.resourceOutputs("volume")).serving, false);
        await up("repair");
        assert.strictEqual((await stack.resourceOutputs("web")).state, "RUNNING");
        assert.strictEqual((await stack.resourceOutputs("volume")).serving, true);
    });

    it("a power cycle through orc1's BMC: what was declared persistent comes back, and preview --refresh finds nothing to change", async () => {
        // What a diskless box can keep: no container (its rootfs is in RAM) and no PXE server (its boot files are).
        await stack.setConfig("stage", "persistent");
        await up("drop what a RAM root cannot keep");
        const archive = await sh.sh(orc, "ls -l /media/persist; tar -tzf /media/persist/orc1.etc.tar.gz | grep -E 'runlevels/default/baremetal|mdadm.conf|openvswitch/conf.db|init.d/baremetal' | sort");
        assert.match(archive, /etc\/runlevels\/default\/baremetal-guest-orcg/);
        assert.match(archive, /etc\/mdadm\/mdadm.conf/);
        assert.match(archive, /etc\/openvswitch\/conf.db/);
        const bootId = (await sh.sh(orc, "cat /proc/sys/kernel/random/boot_id")).trim();
        const t = Date.now();
        await sh.ipmi(orc, "chassis", "power", "cycle");
        // The old system stops answering, then the new one answers.
        for (;;) {
            const r = await sh.try(orc, "cat /proc/sys/kernel/random/boot_id", 15_000);
            if (r.code === 0 && r.stdout.trim() !== bootId) break;
            await sleep(2000);
        }
        figure("orc1 power cycle until SSH answers (a boot, not a restore)", `${((Date.now() - t) / 1000).toFixed(0)}s`);
        // The services OpenRC starts at boot may still be coming up: wait for the guest (the last in the chain).
        for (let i = 0; ; i++) {
            const r = await sh.try(orc, "rc-service baremetal-guest-orcg status");
            if (/status: started/.test(r.stdout)) break;
            if (i > 90) throw new Error(`the guest did not come back: ${r.stdout}${r.stderr}\n${await sh.sh(orc, "rc-status -a; cat /proc/mdstat; true")}`);
            await sleep(2000);
        }
        const back = await sh.sh(orc, `cat /proc/mdstat; lvs --noheadings -o lv_name orcvg; ovs-vsctl --timeout=10 list-ports bmorc; rc-service baremetal-ovpn-vpnorc status; rc-service ${nbdService} status; [ -x /etc/baremetal/libexec/baremetal-qmp ] && echo stop-script-kept; true`);
        // The guest's graceful stop needs its QMP script: kept only because it lives under /etc on OpenRC boxes.
        assert.match(back, /stop-script-kept/);
        assert.match(back, /md20 : active (\(auto-read-only\) )?raid1/);
        assert.match(back, /orcg-disk/);
        assert.match(back, /vpnorc/);
        assert.match(back, new RegExp(guestTap));
        const preview = await stack.preview(["--refresh"]);
        assert.strictEqual(changes(preview.changeSummary), 0, JSON.stringify(preview.changeSummary, null, 1) + JSON.stringify(preview.steps.filter((s) => s.op !== "same"), null, 1));
    });

    it("destroy removes everything it made from orc1 and svc1", async () => {
        await stack.setConfig("wipe", "true");
        await up("allow the data to go");
        const t = Date.now();
        await stack.ok(["destroy", "--yes", "--skip-preview"]);
        figure("pulumi destroy", `${((Date.now() - t) / 1000).toFixed(0)}s`);
        const left = await sh.sh(orc, "ls /etc/init.d | grep -c baremetal-; ls /etc/runlevels/default | grep -c baremetal-; ovs-vsctl --timeout=10 br-exists bmorc; echo br=$?; grep -c md20 /proc/mdstat; pgrep -c qemu-system; true");
        assert.deepStrictEqual(left.trim().split("\n"), ["0", "0", "br=2", "0", "0"]);
        const svc = await sh.sh("svc1", "ovs-vsctl --timeout=10 br-exists bmorc; echo br=$?; systemctl is-active baremetal-ovpn-vpnorc; true");
        assert.match(svc, /br=2/);
    });
});

describe("orc1: SSH cut while OpenRC starts a guest; the re-run finds it running (one qemu, one tap)", function () {
    this.timeout(15 * 60_000);
    let f: FaultLab;
    const guest = "orcfault";
    const mac = "52:54:00:7e:0c:fa";
    const tap = "vm5254007e0cfa";
    const cleanup = `rc-service baremetal-guest-${guest} stop 2>/dev/null; rm -f /etc/init.d/baremetal-guest-${guest}; ip link del bmfault0 2>/dev/null; true`;

    before(async () => {
        f = await FaultLab.open([orc]);
        await preparePersistMedium(f.sh);
        await f.sh.sh(orc, `${cleanup}; ip link add bmfault0 type bridge && ip link set bmfault0 up`);
    });
    after(async () => {
        await f?.sh.try(orc, cleanup);
        await f?.close();
    });

    // The sign is the adapter's wrapper (openrcServiceScript), which lives as long as the start: rc-service
    // itself execs the init script at once, so its own command line shows for a moment only.
    it("KvmGuest create cut during `rc-service ... start`; the re-run adopts the running guest", async () => {
        const r = kinds.KvmGuest.check({}, {
            connection: f.connection(orc),
            name: guest,
            memoryMiB: 64,
            // No disk and nothing to boot from: SeaBIOS and iPXE wait, quietly.
            disks: [],
            nics: [{ bridge: "bmfault0", bridgeType: "linux", mac }],
            autostart: false,
            shutdownTimeoutSeconds: 3,
        });
        assert.deepStrictEqual(r.failures, []);
        const inputs = r.inputs as KvmGuestInputs;
        const cut = await f.cutDuring(orc, /start service baremetal-guest-orcfault/, script("baremetal-rc-service", /baremetal-guest-orcfault start$/), (ctx) => kinds.KvmGuest.create(inputs, ctx));
        const again = await f.rerun((ctx) => kinds.KvmGuest.create(inputs, ctx));
        reportCut("KvmGuest create on OpenRC", cut, again.seconds);
        assert.strictEqual(again.result.outs.status, "running");
        const seen = await f.sh.sh(orc, `pgrep -fc '[q]emu-system.*guest=${guest}' ; ip -o link show master bmfault0 | grep -c ${tap}; rc-service baremetal-guest-${guest} status; true`);
        assert.match(seen, /^1\n1\n.*status: started/);
        await f.rerun((ctx) => kinds.KvmGuest.delete(mac, again.result.outs, ctx));
        assert.strictEqual((await f.sh.sh(orc, `pgrep -fc '[q]emu-system.*guest=${guest}'; true`)).trim(), "0");
    });
});
