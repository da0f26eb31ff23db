// Bringing a running data center in (issue #18), on the lab: a small site is made
// by hand with plain commands, deliberately not in this project's layout (an md
// array with its own mdadm.conf line, a VG/LV exported by a hand-written
// nbd-server config, a qemu guest under a hand-written unit on that NBD disk, an
// OVS bridge made with ovs-vsctl, an LXC container made with lxc-create, dnsmasq
// with a static host, Consul K/V). Then `baremetal discover` reads it (only
// reading: every file it could have touched has the same checksum after), and the
// data center program (examples/datacenter) takes it over with `pulumi up`:
// nothing re-created or restarted (PIDs and start times), the volume's data
// unchanged, the trace free of any stopping or removing step; a following preview
// shows 0 changes and refresh no drift; then ordinary changes (grow the volume,
// add a container mount) work. Prints figures: discover's wall time and commands
// per box, objects found per kind, preview/up times.
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import { Checkout } from "../helpers/checkout";
import { lab as labDescription } from "../helpers/lab";
import { PulumiStack, changes } from "../helpers/pulumi";
import { requireTools } from "../helpers/tools";
import { blankDisksScript, Lab, LabShell, readLab, repoRoot, run } from "./lab";

function figure(name: string, value: string): void {
    console.log(`      figure: ${name} = ${value}`);
}

/** The site, made by hand (one script per box). */
const handMade: Record<string, string> = {
    storage1: String.raw`set -eu
# An md array made with mdadm directly, and its own mdadm.conf line.
mdadm --create /dev/md21 --run --level=1 --raid-devices=2 --metadata=1.2 --name=handmd --assume-clean /dev/vdc /dev/vdd
mkdir -p /etc/mdadm
mdadm --detail --brief /dev/md21 | sed 's/$/ # made by hand/' >>/etc/mdadm/mdadm.conf
# A VG and an LV on it, with data.
pvcreate -q /dev/md21
vgcreate -q handvg /dev/md21
lvcreate -q -y -L 64M -n vm1disk handvg
dd if=/dev/urandom of=/dev/handvg/vm1disk bs=1M count=8 conv=fsync status=none
# nbd-server with a config written by hand (a named export on one port, an authfile).
mkdir -p /etc/nbd-server
cat >/etc/nbd-server/config <<'CONF'
[generic]
	user = root
	group = root
	port = 10830
	allowlist = true
[vm1disk]
	exportname = /dev/handvg/vm1disk
	authfile = /etc/nbd-server/hand.allow
CONF
echo 198.18.1.0/24 >/etc/nbd-server/hand.allow
systemctl restart nbd-server
for i in $(seq 20); do ss -ltn | grep -q ':10830 ' && break; sleep 1; done
ss -ltn | grep -q ':10830 '`,
    svc1: String.raw`set -eu
# An OVS bridge made with ovs-vsctl, the STORAGE NIC on it, its address moved onto the bridge.
systemctl start openvswitch-switch
ovs-vsctl --may-exist add-br brhand
ovs-vsctl --may-exist add-port brhand eth1
ip link set brhand up
ip addr del 198.18.1.12/24 dev eth1
ip addr add 198.18.1.12/24 dev brhand
# A qemu guest under a hand-written unit, its disk the NBD export of storage1.
cat >/etc/systemd/system/handvm.service <<'UNIT'
[Unit]
Description=hand-made guest handvm
After=openvswitch-switch.service
[Service]
ExecStartPre=-/sbin/ip link del tap-handvm
ExecStartPre=/sbin/ip tuntap add dev tap-handvm mode tap
ExecStartPre=/sbin/ip link set tap-handvm up
ExecStartPre=/usr/bin/ovs-vsctl --may-exist add-port brhand tap-handvm
ExecStart=/usr/bin/qemu-system-x86_64 -name handvm -machine pc,accel=tcg -m 64 -smp 1 -nodefaults -display none -qmp unix:/run/handvm.qmp,server=on,wait=off -drive file=nbd://198.18.1.11:10830/vm1disk,format=raw,if=none,id=d0 -device virtio-blk-pci,drive=d0 -netdev tap,id=n0,ifname=tap-handvm,script=no,downscript=no -device virtio-net-pci,netdev=n0,mac=52:54:00:7e:18:01 -boot order=c
ExecStopPost=-/usr/bin/ovs-vsctl --if-exists del-port brhand tap-handvm
[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
# qemu exits when it cannot open its NBD disk (CI once saw it gone after its QMP socket had
# appeared, on a loaded run): the export must answer over the new bridge first, and the guest is
# taken as up only once qemu holds its NBD connection and its unit is still active.
for i in $(seq 60); do timeout 3 bash -c '</dev/tcp/198.18.1.11/10830' 2>/dev/null && break; sleep 1; done
timeout 3 bash -c '</dev/tcp/198.18.1.11/10830'
systemctl start handvm
for i in $(seq 60); do ss -tn state established '( dport = :10830 )' | grep -q '198.18.1.11:10830' && break; sleep 1; done
if ! { ss -tn state established '( dport = :10830 )' | grep -q '198.18.1.11:10830' && systemctl is-active --quiet handvm && [ -S /run/handvm.qmp ]; }; then
    echo "handvm did not come up with its NBD disk:" >&2; journalctl -u handvm --no-pager | tail -20 >&2; exit 1
fi
# An LXC container made with lxc-create, its network written into its config by hand.
lxc-create -q -n handct -t busybox
cat >>/var/lib/lxc/handct/config <<'CONF'
lxc.net.0.type = veth
lxc.net.0.link = brhand
lxc.net.0.flags = up
lxc.net.0.name = eth0
lxc.net.0.hwaddr = 52:54:00:7e:18:50
lxc.net.0.ipv4.address = 198.18.1.61/24
lxc.start.auto = 0
CONF
lxc-start -n handct
lxc-wait -n handct -s RUNNING -t 60`,
    pxe1: String.raw`set -eu
# dnsmasq with a static host, configured by hand (no DNS, no range: it hands out nothing in the lab).
mkdir -p /etc/dnsmasq.d
printf 'port=0\ndhcp-host=52:54:00:b0:00:14,198.51.100.20,pxeclient1\n' >/etc/dnsmasq.d/hand.conf
systemd-run --unit=handdns /usr/sbin/dnsmasq -k --conf-file=/etc/dnsmasq.d/hand.conf
sleep 1
systemctl is-active --quiet handdns`,
};

/** Clears the hand-made site away (and what the program may have added), whatever state a run left. */
const sweep: Record<string, string> = {
    svc1: [
        "lxc-stop -n handct -k 2>/dev/null; lxc-destroy -n handct 2>/dev/null",
        "systemctl stop handvm baremetal-guest-handvm 2>/dev/null; rm -f /etc/systemd/system/handvm.service /etc/systemd/system/baremetal-guest-handvm.service /run/handvm.qmp",
        "ovs-vsctl --if-exists del-br brhand 2>/dev/null",
        "ip -4 addr show dev eth1 | grep -q 198.18.1.12 || ip addr add 198.18.1.12/24 dev eth1",
        "systemctl daemon-reload; true",
    ].join("; "),
    storage1: [
        "systemctl stop nbd-server 'baremetal-nbd@handvg-*' 2>/dev/null; rm -f /etc/nbd-server/hand.allow /etc/nbd-server/baremetal/handvg-*",
        "vgs handvg >/dev/null 2>&1 && { lvremove -q -y handvg; vgremove -q -y handvg; }",
        "[ -b /dev/md21 ] && { pvremove -q -y /dev/md21 2>/dev/null; mdadm --stop /dev/md21; }",
        "mdadm --zero-superblock /dev/vdc /dev/vdd 2>/dev/null",
        blankDisksScript(["/dev/vdc", "/dev/vdd"]),
        "sed -i '/handmd/d' /etc/mdadm/mdadm.conf 2>/dev/null; true",
    ].join("; "),
    pxe1: "systemctl stop handdns 2>/dev/null; rm -f /etc/dnsmasq.d/hand.conf; true",
};

/** The checksum of every file discover could have touched on a box. */
const watchedFiles = "{ find /etc /var/lib/lxc -xdev -type f -print0 2>/dev/null | sort -z | xargs -0 md5sum; } | md5sum";

/** `name pid start-time` of what must not restart, one line each (one SSH command per box). */
const processes: Record<string, string> = {
    svc1: 'for p in "qemu $(systemctl show -p MainPID --value handvm)" "container $(lxc-info -n handct -p -H)" "ovs $(pidof ovs-vswitchd)"; do set -- $p; echo "$1 $2 $(ps -o lstart= -p "$2")"; done',
    // The oldest nbd-server is the server itself (it forks one child per client; Debian's unit records no MainPID).
    storage1: 'p=$(pgrep -o -x nbd-server); echo "nbd-server $p $(ps -o lstart= -p "$p")"',
    pxe1: 'p=$(systemctl show -p MainPID --value handdns); echo "dnsmasq $p $(ps -o lstart= -p "$p")"',
};

/**
 * With BM_CAPTURE_FIXTURES=<dir>: every command discover's survey sends to each box
 * and what the box answered, read through the real host layer (test/unit/fixtures/discover).
 */
async function captureFixtures(lab: Lab, boxes: string[], dir: string): Promise<void> {
    const { Host, SshPool } = await import("../../provider/host");
    const { ReadOnlyRemote } = await import("../../provider/host/readOnly");
    const { surveyBox } = await import("../../provider/cli/discover/survey");
    const pool = new SshPool();
    try {
        for (const box of boxes) {
            const vm = lab.vms[box];
            const host = new Host({ host: vm.ssh.host, user: vm.ssh.user, privateKey: fs.readFileSync(lab.ssh.privateKeyPath, "utf8"), hostKey: vm.ssh.hostKey }, { pool });
            const seen: { what: string; exitCode: number | null; stdout: string }[] = [];
            const recording = Object.create(host) as typeof host;
            recording.exec = async (argv, options) => {
                const out = await host.exec(argv, options);
                seen.push({ what: options?.what ?? String(argv[0]), exitCode: out.exitCode, stdout: out.stdout });
                return out;
            };
            recording.run = async (argv, options) => {
                const out = await host.run(argv, options);
                seen.push({ what: options?.what ?? String(argv[0]), exitCode: out.exitCode, stdout: out.stdout });
                return out;
            };
            await surveyBox(new ReadOnlyRemote(recording), vm.ssh.host);
            fs.mkdirSync(dir, { recursive: true });
            fs.writeFileSync(path.join(dir, `${box}.json`), JSON.stringify(seen, null, 1) + "\n");
        }
    } finally {
        await pool.closeAll();
    }
}

describe("bringing a hand-made data center in: baremetal discover, then adoption with nothing restarted", function () {
    this.timeout(30 * 60_000);
    let lab: Lab;
    let sh: LabShell;
    let stack: PulumiStack;
    let co: Checkout;
    let work: string;
    let inventoryFile: string;
    const boxes = ["pxe1", "storage1", "svc1"];

    /** `box name pid start-time` for every process `processes` names. */
    async function pidsAndStarts(): Promise<string[]> {
        const outs = await Promise.all(Object.entries(processes).map(async ([box, script]) => (await sh.sh(box, script)).trim().split("\n").map((l) => `${box} ${l}`)));
        const lines = outs.flat();
        for (const l of lines) assert.match(l, /^\S+ \S+ [0-9]+ \w{3} \w{3} .*[0-9]{4}$/, `a process to watch is not running: ${l}`);
        return lines;
    }

    const volumeSum = () => sh.sh("storage1", "dd if=/dev/handvg/vm1disk bs=1M count=8 status=none | sha256sum");

    before(async function () {
        requireTools(["pulumi", "pulumi-language-nodejs"]);
        labDescription();
        lab = readLab();
        sh = new LabShell(lab);
        for (const b of boxes) await sh.waitSsh(b, 180_000);
        for (const [box, script] of Object.entries(sweep)) await sh.try(box, script, 120_000);
        const t0 = Date.now();
        await Promise.all(Object.entries(handMade).map(([box, script]) => sh.sh(box, script, 300_000)));
        const consul = `http://${lab.consul.httpAddr}/v1/kv/site/hand`;
        for (const [k, v] of [["motd", "hello from the hand-made site"], ["workers", "3"], ["api-token", "s3cr3t-hand-token"]]) {
            const r = await run("curl", ["-sf", "-X", "PUT", "--data", v, `${consul}/${k}`], 30_000);
            assert.strictEqual(r.code, 0, `consul kv put ${k}: ${r.stderr}`);
        }
        figure("the hand-made site, built", `${((Date.now() - t0) / 1000).toFixed(0)}s`);
        if (process.env.BM_CAPTURE_FIXTURES) await captureFixtures(lab, boxes, process.env.BM_CAPTURE_FIXTURES);
        work = fs.mkdtempSync(path.join(os.tmpdir(), "bm-discover-"));
        inventoryFile = path.join(work, "inventory.yaml");
    });

    after(async function () {
        this.timeout(10 * 60_000);
        if (stack) await stack.cleanup();
        if (sh) for (const [box, script] of Object.entries(sweep)) await sh.try(box, script, 120_000);
        if (sh) await run("curl", ["-s", "-X", "DELETE", `http://${lab.consul.httpAddr}/v1/kv/site/hand?recurse`], 30_000);
        if (co) co.remove();
        if (work) fs.rmSync(work, { recursive: true, force: true });
    });

    it("discover reads every box (only reading: every file it could have touched is unchanged) and writes an inventory the program accepts", async function () {
        const before = await Promise.all(boxes.map((b) => sh.sh(b, watchedFiles)));
        const t0 = Date.now();
        const r = await run("node", [path.join(repoRoot, "bin", "baremetal"), "discover",
            "--key", lab.ssh.privateKeyPath, "--known-hosts", lab.ssh.knownHostsPath,
            "--network", "storage=198.18.1.0/24", "--network", "wan=198.18.2.0/24",
            "--consul", lab.consul.httpAddr, "--consul-datacenter", lab.consul.datacenter, "--kv-prefix", "site/hand/",
            "--datacenter", "hand", "-o", inventoryFile, "--host-key", `198.51.100.99=SHA256:${"A".repeat(43)}`,
            ...boxes.map((b) => lab.vms[b].ssh.host), "198.51.100.99"], 300_000);
        const wall = Date.now() - t0;
        // The unreachable box is reported, the others read: exit 1 says the inventory is partial.
        assert.strictEqual(r.code, 1, r.stderr);
        assert.match(r.stderr, /198\.51\.100\.99: NOT READ: connect on root@198\.51\.100\.99:22 failed/);
        for (const b of boxes) assert.match(r.stderr, new RegExp(`${lab.vms[b].ssh.host} \\(${b}\\): .* in [0-9.]+ s, [0-9]+ command\\(s\\)`));
        figure("discover wall time (3 boxes and one unreachable, in parallel)", `${(wall / 1000).toFixed(1)}s`);
        for (const line of r.stderr.split("\n").filter((l) => / command\(s\)$/.test(l))) figure("discover per box", line.replace(/^discover: /, ""));
        const after = await Promise.all(boxes.map((b) => sh.sh(b, watchedFiles)));
        assert.deepStrictEqual(after, before, "discover changed a file under /etc or /var/lib/lxc");

        const text = fs.readFileSync(inventoryFile, "utf8");
        assert.ok(!text.includes("s3cr3t-hand-token"), "a secret-looking K/V value was written");
        assert.ok(!text.includes("PRIVATE KEY"), "the key was written");
        assert.match(text, /sshPrivateKey: the private key/);
        assert.match(text, /# pxe1: dnsmasq static hosts in \/etc\/dnsmasq\.d\/hand\.conf \(served by handdns\.service\)\n#   why: .*\n#   found: dhcp-host=52:54:00:b0:00:14,198\.51\.100\.20,pxeclient1/);
        const inv = YAML.parse(text) as Record<string, { name: string; [k: string]: unknown }[]>;
        const found = {
            machines: inv.machines.length,
            raid: inv.machines.flatMap((m) => (m.raid as unknown[]) ?? []).length,
            volumeGroups: inv.machines.filter((m) => m.san).length,
            volumes: inv.volumes?.length ?? 0,
            guests: inv.guests?.length ?? 0,
            containers: inv.containers?.length ?? 0,
            bridges: inv.machines.flatMap((m) => (m.bridges as unknown[]) ?? []).length,
            kv: Object.keys((inv.consulKeys as unknown as { keys: object }[])?.[0]?.keys ?? {}).length,
        };
        figure("found per kind (made by hand: 3 boxes, 1 array, 1 VG, 1 export, 1 guest, 1 container, 1 bridge, 2 K/V + 1 secret, 1 dnsmasq host)", JSON.stringify(found));
        assert.deepStrictEqual(found, { machines: 3, raid: 1, volumeGroups: 1, volumes: 1, guests: 1, containers: 1, bridges: 1, kv: 2 });
        const { loadInventory } = await import("../../examples/datacenter/program/validate");
        loadInventory(inventoryFile);
    });

    it("pulumi up of the data center program adopts every object: nothing re-created or restarted, data intact, no stopping step", async function () {
        co = Checkout.create("datacenter", "examples");
        stack = await PulumiStack.init(co.programDir, "hand");
        const trace = path.join(work, "trace.jsonl");
        stack.env.PULUMI_BAREMETAL_TRACE = trace;
        await stack.setConfig("inventory", inventoryFile);
        await stack.setConfig("sshPrivateKey", fs.readFileSync(lab.ssh.privateKeyPath, "utf8"), true);
        const pids = await pidsAndStarts();
        const sum = await volumeSum();

        let t0 = Date.now();
        const preview = await stack.preview();
        figure("pulumi preview (fresh stack)", `${((Date.now() - t0) / 1000).toFixed(0)}s`);
        const ops = preview.steps.filter((s) => !s.urn.includes("pulumi:pulumi:Stack")).map((s) => s.op);
        assert.ok(ops.length > 0 && ops.every((op) => op === "create"), `only adoptions (creates in a new stack), got ${ops.join(", ")}`);

        t0 = Date.now();
        const up = await stack.run(["up", "--yes", "--skip-preview"]);
        assert.strictEqual(up.code, 0, `${up.stdout}\n${up.stderr}`);
        figure("pulumi up (adoption)", `${((Date.now() - t0) / 1000).toFixed(0)}s`);
        figure("resources adopted", String(ops.length));
        assert.deepStrictEqual(await pidsAndStarts(), pids, "a process restarted");
        assert.strictEqual(await volumeSum(), sum, "the volume's data changed");

        const commands = fs.readFileSync(trace, "utf8").split("\n").filter((l) => l.includes('"event":"command"')).map((l) => (JSON.parse(l) as { command: string }).command);
        // A command's first and last lines: the program and its arguments around a constant script's body.
        const ends = (c: string) => { const l = c.split("\n"); return `${l[0]} ${l.length > 1 ? l[l.length - 1] : ""}`; };
        const disturbing = commands.filter((c) => /systemctl (stop|restart|reload|kill)|rc-service \S+ (stop|restart)|(^|\s)lxc-(stop|destroy|create)\s|mdadm (--stop|--create|--assemble|--zero)|\b(lvremove|vgremove|lvcreate|vgcreate|pvcreate)\b|del-br|' (powerdown|migrate) /.test(ends(c)));
        assert.deepStrictEqual(disturbing, [], "the trace shows a step that stops, removes or re-creates");
        figure("host commands of the adoption", String(commands.length));
        assert.ok(up.stdout.includes("adopting"), "the log says what was adopted");
    });

    it("a following preview shows 0 changes and refresh no drift", async function () {
        const t0 = Date.now();
        const p = await stack.preview();
        figure("pulumi preview after adoption", `${((Date.now() - t0) / 1000).toFixed(0)}s`);
        assert.strictEqual(changes(p.changeSummary), 0, JSON.stringify(p.changeSummary));
        const r = await stack.run(["refresh", "--yes", "--skip-preview", "--expect-no-changes"]);
        assert.strictEqual(r.code, 0, `refresh found drift:\n${r.stdout}\n${r.stderr}`);
    });

    it("ordinary changes on adopted objects work: the volume grows online, a mount added restarts only the container", async function () {
        const doc = YAML.parseDocument(fs.readFileSync(inventoryFile, "utf8"));
        doc.setIn(["volumes", 0, "size"], "96MiB");
        const mounts = doc.getIn(["containers", 0, "mounts"]) as YAML.YAMLSeq;
        mounts.add(doc.createNode({ target: "/srv/hand", source: "/srv", type: "none", options: "bind,create=dir" }));
        const changed = path.join(work, "inventory-changed.yaml");
        fs.writeFileSync(changed, doc.toString());
        await stack.setConfig("inventory", changed);
        const before = await pidsAndStarts();
        const sum = await volumeSum();
        const up = await stack.run(["up", "--yes", "--skip-preview"]);
        assert.strictEqual(up.code, 0, `${up.stdout}\n${up.stderr}`);
        assert.strictEqual((await sh.sh("storage1", "lvs --noheadings --units b --nosuffix -o lv_size handvg/vm1disk")).trim(), String(96 * 2 ** 20));
        assert.strictEqual(await volumeSum(), sum, "the volume's data changed when it grew");
        const config = await sh.sh("svc1", "cat /var/lib/lxc/handct/config");
        assert.match(config, /lxc\.mount\.entry = \/srv srv\/hand none bind,create=dir 0 0/);
        assert.strictEqual(config.match(/^lxc\.net\.0\.link/gm)?.length, 1, `one NIC in the rewritten config:\n${config}`);
        const after = await pidsAndStarts();
        const unchanged = (lines: string[]) => lines.filter((l) => !/ container /.test(l));
        assert.deepStrictEqual(unchanged(after), unchanged(before), "the guest, nbd-server, OVS or dnsmasq restarted");
        assert.notDeepStrictEqual(after.find((l) => / container /.test(l)), before.find((l) => / container /.test(l)), "the container restarted onto its new mount");
        assert.strictEqual((await sh.sh("svc1", "lxc-info -n handct -s -H")).trim(), "RUNNING");
    });
});
