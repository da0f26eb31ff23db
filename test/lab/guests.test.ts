// KvmGuest, OvsBridge and LxcContainer against the lab VMs, under the real pulumi
// CLI and the real daemons (qemu, QMP, nbd-server, Open vSwitch, OpenVPN, LXC):
// - svc1 replicates the STORAGE switch with OVS (uplink eth1, its address moved
//   onto the bridge); pxe1, which has no STORAGE NIC, gets the same bridge through
//   an OpenVPN tunnel (tap, static key) to svc1;
// - a guest on svc1 with its disk from an NBD export on storage1 and its NIC on
//   that bridge; QMP shows both;
// - a memory change restarts it gracefully; a host change to pxe1 live-migrates
//   it (an update, not a replacement) and the downtime is printed;
// - a busybox container on svc1 serves HTTP on its STORAGE address, reachable
//   from this machine; a config change restarts it; drift is seen and repaired;
// - destroy leaves nothing behind.
// The test makes its own NBD export (a sparse file on storage1, port 10810) and
// removes it and everything else it made at the end.
import * as assert from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { changes, PulumiStack } from "../helpers/pulumi";
import { lab as labDescription } from "../helpers/lab";
import { requireTools } from "../helpers/tools";
import { LabShell, readLab, sleep } from "../lab/lab";

const repo = path.resolve(__dirname, "../../..");
const nbdPort = 10810;
const nbdDir = "/var/tmp/guests-test";
const webAddress = "198.18.1.50";

/** A throwaway checkout of the package with the fixture program in it (like test/helpers/checkout.ts). */
function checkout(): { root: string; program: string } {
    const root = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "bm-guests-")), "a");
    fs.mkdirSync(path.join(root, "examples"), { recursive: true });
    fs.copyFileSync(path.join(repo, "package.json"), path.join(root, "package.json"));
    execFileSync("cp", ["-a", path.join(repo, "dist"), path.join(root, "dist")]);
    execFileSync("cp", ["-al", path.join(repo, "node_modules"), path.join(root, "node_modules")]);
    execFileSync("cp", ["-r", path.join(repo, "test/lab/fixtures/guests"), path.join(root, "examples/guests")]);
    return { root, program: path.join(root, "examples/guests") };
}

/** An OpenVPN static key made by the real openvpn (the one the lab VMs run). */
function staticKey(): string {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "bm-vpnkey-")), "key");
    execFileSync("openvpn", ["--genkey", "secret", file]);
    const text = fs.readFileSync(file, "utf8");
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
    return text.slice(text.indexOf("-----BEGIN"));
}

async function httpGet(url: string): Promise<string> {
    const r = await fetch(url, { signal: AbortSignal.timeout(10_000) });
    return r.text();
}

function figure(name: string, value: string): void {
    process.stdout.write(`      figure: ${name} = ${value}\n`);
}

describe("KvmGuest, OvsBridge and LxcContainer in the lab, under the real pulumi CLI", function () {
    this.timeout(60 * 60_000);
    let sh: LabShell;
    let stack: PulumiStack;
    let co: { root: string; program: string };
    let vpnKey: string;

    async function up(what: string): Promise<string> {
        const t0 = Date.now();
        const r = await stack.up();
        figure(`pulumi up (${what})`, `${((Date.now() - t0) / 1000).toFixed(0)}s`);
        return r.stdout;
    }

    before(async function () {
        requireTools(["pulumi", "pulumi-language-nodejs", "openvpn"]);
        const desc = labDescription();
        sh = new LabShell(readLab());
        for (const name of ["svc1", "pxe1", "storage1"]) await sh.waitSsh(name, 180_000);
        // The disk: a sparse file on storage1 exported by an nbd-server of our own.
        await sh.sh("storage1", [
            `mkdir -p ${nbdDir} && truncate -s 64M ${nbdDir}/guest0.img`,
            `printf '[generic]\\nport = ${nbdPort}\\n[guest0]\\nexportname = ${nbdDir}/guest0.img\\n' >${nbdDir}/nbd.conf`,
            `[ -f ${nbdDir}/nbd.pid ] && kill -0 "$(cat ${nbdDir}/nbd.pid)" 2>/dev/null || nbd-server -C ${nbdDir}/nbd.conf -p ${nbdDir}/nbd.pid`,
        ].join(" && "));
        co = checkout();
        stack = await PulumiStack.init(co.program, "lab");
        vpnKey = staticKey();
        const boxes = Object.fromEntries(["svc1", "pxe1"].map((n) => [n, { host: desc.vms[n].ssh.host, port: desc.vms[n].ssh.port, user: desc.vms[n].ssh.user, hostKey: desc.vms[n].ssh.hostKey }]));
        await stack.setConfig("boxes", JSON.stringify(boxes));
        // Base64: the keys start with "-----BEGIN", which the CLI would take for a flag.
        await stack.setConfig("privateKeyBase64", Buffer.from(fs.readFileSync(desc.ssh.privateKeyPath, "utf8")).toString("base64"), true);
        await stack.setConfig("vpnKeyBase64", Buffer.from(vpnKey).toString("base64"), true);
        await stack.setConfig("guestHost", "svc1");
        await stack.setConfig("guestMemoryMiB", "64");
        await stack.setConfig("nbd", JSON.stringify({ host: desc.vms.storage1.addresses.storage, port: nbdPort, export: "guest0" }));
        await stack.setConfig("webAddress", `${webAddress}/24`);
        await stack.setConfig("webGateway", desc.networks.storage.gateway);
        await stack.setConfig("webMemoryMiB", "64");
        await stack.setConfig("webContent", "hello from guests-web v1\n");
    });

    after(async function () {
        this.timeout(20 * 60_000);
        if (stack) {
            const r = await stack.run(["destroy", "--yes", "--skip-preview"]);
            if (r.code !== 0) process.stderr.write(`destroy failed:\n${r.stdout}\n${r.stderr}\n`);
            await stack.cleanup();
        }
        if (co) fs.rmSync(path.dirname(co.root), { recursive: true, force: true });
        if (sh) {
            // Whatever a failed test left: the guest, the container, the bridges, the export.
            const sweep = [
                "systemctl stop baremetal-guest-gtest baremetal-ovpn-vpnstor 2>/dev/null",
                "rm -f /etc/systemd/system/baremetal-guest-gtest.service /etc/systemd/system/baremetal-ovpn-vpnstor.service; systemctl daemon-reload",
                "lxc-stop -n guests-web -k 2>/dev/null; lxc-destroy -n guests-web 2>/dev/null",
                "if ovs-vsctl br-exists bmstor 2>/dev/null; then ovs-vsctl del-br bmstor; fi",
                "true",
            ].join("; ");
            await sh.try("svc1", `${sweep}; ip -4 addr show dev eth1 | grep -q 198.18.1.12 || ip addr add 198.18.1.12/24 dev eth1`);
            await sh.try("pxe1", sweep);
            await sh.try("storage1", `[ -f ${nbdDir}/nbd.pid ] && kill "$(cat ${nbdDir}/nbd.pid)"; rm -rf ${nbdDir}`);
            sh.cleanup();
        }
    });

    it("up: bridges (NIC and OpenVPN uplinks), the guest on svc1 with its NBD disk, the container", async () => {
        const out = await up("create");
        assert.match(out, /baremetal:KvmGuest/);
        const o = await stack.outputs();
        assert.strictEqual(o.guestStatus, "running", JSON.stringify(o));
        assert.deepStrictEqual(o.guestBlockDevices, [{ device: "disk0", file: `nbd://198.18.1.11:${nbdPort}/guest0`, driver: "raw", readOnly: false }]);
        assert.deepStrictEqual(o.guestTaps, [{ mac: "52:54:00:7e:00:01", tap: "vm5254007e0001", bridge: "bmstor" }]);
        assert.deepStrictEqual(o.pxe1Tunnels, { vpnstor: "active" });
        assert.ok((o.svc1Ports as string[]).includes("eth1") && (o.svc1Ports as string[]).includes("vpnstor"), JSON.stringify(o.svc1Ports));
    });

    it("QMP on svc1 shows the NBD disk attached and the NIC's tap, which is a port of the OVS bridge", async () => {
        const out = await sh.sh("svc1", [
            `printf '%s\\n' '{"execute":"qmp_capabilities"}' '{"execute":"query-block"}' '{"execute":"human-monitor-command","arguments":{"command-line":"info network"}}' | socat -t 2 - UNIX-CONNECT:/run/baremetal/guests/gtest/qmp.sock`,
            "echo; ovs-vsctl port-to-br vm5254007e0001",
        ].join("; "));
        assert.match(out, /"file": "nbd:\/\/198\.18\.1\.11:10810\/guest0"/);
        assert.match(out, /ifname=vm5254007e0001/);
        assert.match(out, /\nbmstor\s*$/);
    });

    it("pxe1, with no STORAGE NIC, reaches storage1's NBD export through its OpenVPN-uplinked bridge", async () => {
        const out = await sh.sh("pxe1", `ip addr add 198.18.1.210/24 dev bmstor && { timeout 20 nbdinfo --size nbd://198.18.1.11:${nbdPort}/guest0; r=$?; ip addr del 198.18.1.210/24 dev bmstor; exit $r; }`);
        assert.strictEqual(out.trim(), String(64 * 1048576));
    });

    it("the container serves HTTP on its address, reachable from this machine", async () => {
        const o = await stack.outputs();
        assert.strictEqual(o.webState, "RUNNING");
        assert.deepStrictEqual(o.webAddresses, [webAddress]);
        assert.strictEqual(await httpGet(`http://${webAddress}/`), "hello from guests-web v1\n");
    });

    it("a second up finds nothing to change", async () => {
        const preview = await stack.preview();
        assert.strictEqual(changes(preview.changeSummary), 0, JSON.stringify(preview.changeSummary));
    });

    it("a memory change restarts the guest after a graceful power-down attempt", async () => {
        await stack.setConfig("guestMemoryMiB", "96");
        const preview = await stack.preview();
        assert.strictEqual(preview.steps.find((s) => s.urn.endsWith("::guest"))?.op, "update");
        const out = await up("memory 64 -> 96 MiB");
        assert.match(out, /memoryMiB changed; restarting the guest/);
        assert.match(out, /powering down on .* \(ACPI, up to 5s, then quit\)/);
        // No OS answers ACPI on this guest, so the timeout and the quit are what must happen.
        assert.match(out, /did not power off within 5s .*qemu was told to quit/);
        assert.strictEqual((await stack.outputs()).guestMemoryMiB, 96);
    });

    it("a config change restarts the container; a content change re-provisions it", async () => {
        await stack.setConfig("webMemoryMiB", "48");
        await stack.setConfig("webContent", "hello from guests-web v2\n");
        const out = await up("container limits and content");
        assert.match(out, /config changed; restarting/);
        assert.match(await sh.sh("svc1", "grep memory.max /var/lib/lxc/guests-web/config"), /= 48M/);
        assert.strictEqual(await httpGet(`http://${webAddress}/`), "hello from guests-web v2\n");
    });

    it("refresh sees a container stopped by hand, and up starts and provisions it again", async () => {
        await sh.sh("svc1", "lxc-stop -n guests-web -k");
        await stack.ok(["refresh", "--yes"]);
        // Stack outputs change only on up; refresh updates the resource's state.
        assert.strictEqual((await stack.resourceOutputs("web")).state, "STOPPED");
        const preview = await stack.preview();
        assert.strictEqual(preview.steps.find((s) => s.urn.endsWith("::web"))?.op, "update");
        await up("repair the container");
        assert.strictEqual((await stack.resourceOutputs("web")).state, "RUNNING");
        assert.strictEqual(await httpGet(`http://${webAddress}/`), "hello from guests-web v2\n");
    });

    it("changing the guest's host to pxe1 live-migrates it: an update, QMP shows it running there", async () => {
        await stack.setConfig("guestHost", "pxe1");
        const preview = await stack.preview();
        const step = preview.steps.find((s) => s.urn.endsWith("::guest"));
        assert.strictEqual(step?.op, "update", JSON.stringify(step));
        const out = await up("migrate svc1 -> pxe1");
        assert.match(out, /live migration from .*198\.51\.100\.12.* to .*198\.51\.100\.10/);
        const m = (await stack.outputs()).lastMigration as { wallTimeMs: number; totalTimeMs: number; downtimeMs: number; ramTransferredBytes: number };
        figure("migration wall time (incoming qemu, copy, verify, source stop)", `${(m.wallTimeMs / 1000).toFixed(1)}s`);
        figure("migration qemu total-time", `${m.totalTimeMs} ms`);
        figure("migration downtime (query-migrate)", `${m.downtimeMs} ms`);
        figure("migration RAM sent", `${(m.ramTransferredBytes / 1048576).toFixed(1)} MiB`);
        assert.ok(m.downtimeMs >= 0 && m.totalTimeMs > 0, JSON.stringify(m));
        const qmp = await sh.sh("pxe1", `printf '%s\\n' '{"execute":"qmp_capabilities"}' '{"execute":"query-status"}' '{"execute":"query-block"}' | socat -t 2 - UNIX-CONNECT:/run/baremetal/guests/gtest/qmp.sock`);
        assert.match(qmp, /"status": "running"/);
        assert.match(qmp, /nbd:\/\/198\.18\.1\.11:10810\/guest0/);
        const left = await sh.try("svc1", "systemctl is-active baremetal-guest-gtest; ls /etc/systemd/system/baremetal-guest-gtest.service");
        assert.doesNotMatch(left.stdout, /^active/m);
        assert.match(left.stderr, /No such file/);
        assert.strictEqual((await stack.outputs()).guestStatus, "running");
        await sleep(1000);
    });

    it("keeps the OpenVPN key and the SSH key out of the state's plain text and out of everything the CLI printed", async () => {
        const state = await stack.exportState();
        const keyLine = vpnKey.split("\n")[1];
        const sshLine = fs.readFileSync(labDescription().ssh.privateKeyPath, "utf8").split("\n")[1];
        for (const [what, line] of [["OpenVPN key", keyLine], ["SSH key", sshLine]]) {
            assert.ok(line.length >= 32, what);
            assert.ok(!state.includes(line), `the ${what} is in plain text in the state`);
            assert.ok(!stack.transcript.join("\n").includes(line), `the ${what} appeared in CLI output`);
        }
    });

    it("destroy powers the guest down, removes the container and the bridges, and gives svc1's address back to eth1", async () => {
        const t0 = Date.now();
        const r = await stack.ok(["destroy", "--yes", "--skip-preview"]);
        figure("pulumi destroy", `${((Date.now() - t0) / 1000).toFixed(0)}s`);
        assert.match(r.stdout, /powering down/);
        const svc1 = await sh.sh("svc1", "ovs-vsctl br-exists bmstor; echo br=$?; ip -4 -o addr show dev eth1; lxc-ls; systemctl is-active baremetal-ovpn-vpnstor; true");
        assert.match(svc1, /br=2/);
        assert.match(svc1, /198\.18\.1\.12\/24/);
        assert.doesNotMatch(svc1, /guests-web/);
        const pxe1 = await sh.sh("pxe1", "ovs-vsctl br-exists bmstor; echo br=$?; ls /etc/systemd/system | grep -c baremetal-guest; pgrep -c qemu-system; true");
        assert.match(pxe1, /br=2\n0\n0/);
    });
});
