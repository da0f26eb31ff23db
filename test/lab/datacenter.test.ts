// The whole lab data center (examples/lab: the seed's program on the lab VMs)
// under the real pulumi CLI, as an operator lives with it:
// - preview with every host unreachable (SSH and Consul pointed at a listener
//   that only counts): it passes and dials nothing;
// - up from nothing, then a second up: 0 changes and 0 host commands (the host
//   layer's trace, PULUMI_BAREMETAL_TRACE, counts every dial and command);
// - changes: grow the guest's volume, move the guest to another box (a live
//   migration: an update), boot the PXE client into another profile;
// - refresh after drift made by hand (a container stopped), and up repairs it;
// - destroy: the array, volume group and volume refuse without the opt-in (data
//   kept), then everything goes with it; no secret in the state or the output.
// Prints figures: preview, up, second up, changes, destroy; connections per host
// and the commands' own time against the wall time of the first up.
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import { summarise, TraceSummary } from "../../bench/lib/traceSummary";
import { Checkout } from "../helpers/checkout";
import { lab as labDescription } from "../helpers/lab";
import { ConnectionCounter } from "../helpers/net";
import { PulumiStack } from "../helpers/pulumi";
import { requireTools } from "../helpers/tools";
import { blankDisksScript, Lab, labJsonPath, LabShell, readLab } from "./lab";

const boxes = ["pxe1", "storage1", "svc1"];

function figure(name: string, value: string): void {
    console.log(`      figure: ${name} = ${value}`);
}

function seconds(ms: number): string {
    return `${(ms / 1000).toFixed(0)}s`;
}

/** What a user clears away by hand if a run died half-way: only what this program makes. */
const sweep: Record<string, string> = {
    svc1: [
        "systemctl stop baremetal-guest-labvm1 2>/dev/null; rm -f /etc/systemd/system/baremetal-guest-labvm1.service",
        "lxc-stop -n labweb1 -k 2>/dev/null; lxc-destroy -n labweb1 2>/dev/null",
        "for b in brstor brwan; do ovs-vsctl --if-exists del-br $b 2>/dev/null; done",
        // only the program's tunnels (v<network><n>; the lab inventory's one tunnelled network is storage): the OpenRC file's vpnorc may run beside this file
        "for u in $(systemctl list-units --plain --no-legend 'baremetal-ovpn-vstorage*' | awk '{print $1}'); do systemctl stop $u; done",
        "ip -4 addr show dev eth1 | grep -q 198.18.1.12 || ip addr add 198.18.1.12/24 dev eth1",
        "ip -4 addr show dev eth2 | grep -q 198.18.2.12 || ip addr add 198.18.2.12/24 dev eth2",
        "systemctl daemon-reload; true",
    ].join("; "),
    pxe1: [
        "systemctl stop baremetal-guest-labvm1 2>/dev/null; rm -f /etc/systemd/system/baremetal-guest-labvm1.service",
        "ovs-vsctl --if-exists del-br brstor 2>/dev/null",
        "for u in $(systemctl list-units --plain --no-legend 'baremetal-ovpn-*' 'baremetal-pxe-*' | awk '{print $1}'); do systemctl stop $u; done",
        "systemctl daemon-reload; true",
    ].join("; "),
    storage1: [
        "systemctl stop 'baremetal-nbd@labvg-*' 2>/dev/null",
        "vgs labvg >/dev/null 2>&1 && { lvremove -q -y labvg; vgremove -q -y labvg; }",
        "[ -b /dev/md20 ] && { pvremove -q -y /dev/md20 2>/dev/null; mdadm --stop /dev/md20; }",
        "for d in /dev/vdc /dev/vdd; do mdadm --examine --export $d 2>/dev/null | grep -q '^MD_NAME=.*:lab-san$' && mdadm --zero-superblock $d; done",
        blankDisksScript(["/dev/disk/by-id/virtio-bm-storage1-2", "/dev/disk/by-id/virtio-bm-storage1-3"]),
        "true",
    ].join("; "),
};

describe("the lab data center (examples/lab) end to end under the real pulumi CLI", function () {
    this.timeout(90 * 60_000);
    let lab: Lab;
    let sh: LabShell;
    let stack: PulumiStack;
    let co: Checkout;
    let work: string;
    let trace: string;
    let resourceCount = 0;

    /** Runs the CLI with a fresh trace file; returns the output and what the hosts saw. */
    async function traced(args: string[]): Promise<{ code: number; text: string; ms: number; hosts: TraceSummary }> {
        fs.rmSync(trace, { force: true });
        const t0 = Date.now();
        const r = await stack.run(args);
        return { code: r.code, text: `${r.stdout}\n${r.stderr}`, ms: Date.now() - t0, hosts: summarise(trace) };
    }

    async function upOk(what: string, extra: string[] = []): Promise<{ text: string; hosts: TraceSummary }> {
        const r = await traced(["up", "--yes", "--skip-preview", ...extra]);
        assert.strictEqual(r.code, 0, `pulumi up (${what}) failed:\n${r.text}`);
        figure(`pulumi up (${what})`, seconds(r.ms));
        return r;
    }

    /** The lab inventory with `edit` applied, written beside the program; config `inventory` names it. */
    async function useInventory(name: string, edit: (doc: YAML.Document) => void): Promise<void> {
        const doc = YAML.parseDocument(fs.readFileSync(path.join(co.programDir, "inventory.yaml"), "utf8"));
        edit(doc);
        const file = path.join(work, `${name}.yaml`);
        fs.writeFileSync(file, doc.toString());
        await stack.setConfig("inventory", file);
    }

    function indexOf(doc: YAML.Document, list: string, name: string): number {
        const items = (doc.toJS() as Record<string, { name: string }[]>)[list];
        const i = items.findIndex((x) => x.name === name);
        assert.ok(i >= 0, `no ${list} entry ${name} in the lab inventory`);
        return i;
    }

    async function guestRunningOn(box: string): Promise<boolean> {
        const r = await sh.try(box, "systemctl is-active --quiet baremetal-guest-labvm1");
        return r.code === 0;
    }

    before(async function () {
        requireTools(["pulumi", "pulumi-language-nodejs"]);
        labDescription();
        lab = readLab();
        sh = new LabShell(lab);
        for (const b of [...boxes, "ceph1"]) await sh.waitSsh(b, 180_000);
        work = fs.mkdtempSync(path.join(os.tmpdir(), "bm-dc-"));
        trace = path.join(work, "trace.jsonl");
        co = Checkout.create("lab", "examples");
        co.include("datacenter", "examples");
        stack = await PulumiStack.init(co.programDir, "lab");
        stack.env.PULUMI_BAREMETAL_TRACE = trace;
    });

    after(async function () {
        this.timeout(20 * 60_000);
        if (stack) {
            // Only what a failed test left: an `up` here would build the data center again.
            const r = await stack.run(["destroy", "--yes", "--skip-preview"]);
            if (r.code !== 0) process.stderr.write(`destroy after a failed test (the sweep below clears the rest):\n${r.stdout}\n${r.stderr}\n`);
            await stack.cleanup();
        }
        if (sh) {
            for (const [box, script] of Object.entries(sweep)) await sh.try(box, script, 300_000);
            await sh.try("pxeclient1", "poweroff", 10_000); // no-op when the Machine powered it off
        }
        if (co) co.remove();
        if (work) fs.rmSync(work, { recursive: true, force: true });
    });

    it("previews with every host unreachable, dialling nothing", async function () {
        // A copy of lab.json whose SSH endpoints and Consul lead to listeners that only count:
        // one per box, as each box is its own SSH endpoint (the program's site check keys
        // per-box names on it).
        const unreachable = JSON.parse(fs.readFileSync(labJsonPath, "utf8")) as Lab & { consul: { httpAddr: string } };
        const counters = await Promise.all([...Object.keys(unreachable.vms), "consul"].map(() => new ConnectionCounter().start()));
        const counter = { get count() { return counters.reduce((n, c) => n + c.count, 0); }, stop: () => Promise.all(counters.map((c) => c.stop())) };
        try {
            Object.values(unreachable.vms).forEach((vm, i) => {
                vm.ssh.host = "127.0.0.1";
                vm.ssh.port = counters[i].port;
            });
            unreachable.consul.httpAddr = `127.0.0.1:${counters[counters.length - 1].port}`;
            const file = path.join(work, "lab-unreachable.json");
            fs.writeFileSync(file, JSON.stringify(unreachable), { mode: 0o600 });
            await stack.setConfig("labJson", file);
            fs.rmSync(trace, { force: true });
            const t0 = Date.now();
            const p = await stack.preview();
            figure("pulumi preview (hosts unreachable)", seconds(Date.now() - t0));
            const creates = p.steps.filter((s) => s.op === "create" && s.urn.includes("baremetal:")).length;
            assert.ok(creates >= 10, `expected the lab data center's resources in the plan, got ${creates} creates`);
            resourceCount = creates;
            assert.strictEqual(counter.count, 0, "preview dialled a host");
            const hosts = summarise(trace);
            assert.strictEqual(hosts.connectionsOpened + hosts.dialsFailed + hosts.commands, 0, JSON.stringify(hosts));
            figure("resources planned", String(creates));
        } finally {
            await stack.run(["config", "rm", "labJson"]);
            await counter.stop();
        }
    });

    it("up brings it up: PXE, the storage chain, the bridges, the guest, the container, the PXE-booted machine", async function () {
        const r = await upOk("from nothing");
        const h = r.hosts;
        figure("SSH connections opened per host", h.hosts.filter((x) => x.connectionsOpened > 0).map((x) => `${x.target}=${x.connectionsOpened}`).join(", "));
        figure("host commands", String(h.commands));
        figure("sum of the commands' own durations", seconds(h.sumCommandMs));
        figure("commands' span (first start to last end)", seconds(h.spanMs));
        // One pooled connection per host and process: a handful, never one per command.
        for (const x of h.hosts) assert.ok(x.connectionsOpened <= 6, `${x.target}: ${x.connectionsOpened} connections for ${x.commands} commands`);
        // What an operator would check by hand.
        assert.match(await sh.sh("storage1", "cat /proc/mdstat"), /md20 : active raid1/);
        assert.match(await sh.sh("storage1", "lvs --noheadings -o lv_name labvg"), /labvm1-var/);
        assert.ok(await guestRunningOn("svc1"), "the guest runs on svc1");
        assert.match(await sh.sh("svc1", "lxc-info -n labweb1 -s"), /RUNNING/);
        assert.match(await sh.sh("pxe1", "systemctl list-units --plain --no-legend 'baremetal-pxe-*'"), /running/);
        const page = await fetch("http://198.18.1.60/", { signal: AbortSignal.timeout(20_000) });
        assert.match(await page.text(), /hello from the lab data center/);
        assert.strictEqual((await sh.try("pxeclient1", "true", 60_000)).code, 0, "pxeclient1 answers SSH after its PXE boot");
        const out = (await stack.run(["stack", "output", "summaryText"])).stdout;
        assert.match(out, /pxeclient1/);
        assert.match(out, /labvm1/);
    });

    it("a second up changes nothing and runs no host command", async function () {
        const r = await upOk("no changes");
        assert.match(r.text, /(\d+) unchanged/);
        assert.doesNotMatch(r.text, /[+~-]\s+\d+ (to )?(create|update|delete|replace)/);
        assert.strictEqual(r.hosts.commands, 0, `a no-op up ran ${r.hosts.commands} host commands`);
        assert.strictEqual(r.hosts.connectionsOpened, 0, `a no-op up opened ${r.hosts.connectionsOpened} connections`);
        figure("no-op up: host commands", String(r.hosts.commands));
    });

    it("changes: the volume grows, the guest live-migrates to pxe1, the PXE client boots another profile", async function () {
        await useInventory("changed", (doc) => {
            doc.setIn(["volumes", indexOf(doc, "volumes", "labvm1-var"), "size"], "96MiB");
            doc.setIn(["guests", indexOf(doc, "guests", "labvm1"), "host"], "pxe1");
            const profiles = doc.getIn(["pxe", "profiles"]) as YAML.YAMLMap;
            const lab2 = (doc.getIn(["pxe", "profiles", "lab"]) as YAML.YAMLMap).toJSON() as { cmdline: string[] };
            profiles.set("lab2", doc.createNode({ ...lab2, cmdline: [...lab2.cmdline, "bm.profile=lab2"] }));
            doc.setIn(["machines", indexOf(doc, "machines", "pxeclient1"), "profile"], "lab2");
        });
        const p = await stack.preview();
        const guest = p.steps.find((s) => s.urn.endsWith("::guest-labvm1"));
        assert.strictEqual(guest?.op, "update", `moving the guest must be an update (a live migration), not ${guest?.op}`);
        assert.ok(!p.steps.some((s) => s.op === "replace" || s.op === "delete-replaced"), "nothing is replaced");
        await upOk("grow, migrate, re-profile");
        const bytes = Number(await sh.sh("storage1", "lvs --noheadings --units b --nosuffix -o lv_size labvg/labvm1-var"));
        assert.strictEqual(bytes, 96 << 20);
        assert.ok(await guestRunningOn("pxe1"), "the guest runs on pxe1");
        assert.ok(!(await guestRunningOn("svc1")), "and no longer on svc1");
        assert.match(await sh.sh("pxeclient1", "cat /proc/cmdline", 60_000), /bm\.profile=lab2/);
    });

    it("refresh sees a container stopped by hand, and up starts it again", async function () {
        await sh.sh("svc1", "lxc-stop -n labweb1");
        const r = await traced(["refresh", "--yes", "--skip-preview"]);
        assert.strictEqual(r.code, 0, r.text);
        assert.match(r.text, /container-labweb1.*updated|~ 1 updated|1 updated/s);
        await upOk("repair the container");
        assert.match(await sh.sh("svc1", "lxc-info -n labweb1 -s"), /RUNNING/);
    });

    it("keeps the SSH key, the BMC password and the OpenVPN keys out of the state's plain text and the output", async function () {
        const state = await stack.exportState();
        const secrets = [
            ...fs.readFileSync(lab.ssh.privateKeyPath, "utf8").split("\n").filter((l) => l.length > 40),
            ...Object.values(lab.vms).map((v) => v.bmc.password),
        ];
        for (const s of secrets) {
            assert.ok(!state.includes(s), "a secret is in the state's plain text");
            assert.ok(!stack.transcript.some((t) => t.includes(s)), "a secret is in what the CLI printed");
        }
        assert.match(state, /"secure":|ciphertext/);
    });

    it("destroy without the opt-in refuses the array, the volume group and the volume; their data stays", async function () {
        const before = await sh.sh("storage1", "lvs --noheadings -o lv_uuid labvg/labvm1-var");
        const r = await traced(["destroy", "--yes", "--skip-preview"]);
        assert.notStrictEqual(r.code, 0, "destroy without allowDataLoss must fail");
        console.log(r.text.split("\n").filter((l) => /refus|allowDataLoss|wipe|opt/i.test(l)).slice(0, 6).map((l) => `      refusal: ${l.trim()}`).join("\n"));
        assert.match(r.text, /allowDataLoss|opt-in|refus/i);
        assert.strictEqual(await sh.sh("storage1", "lvs --noheadings -o lv_uuid labvg/labvm1-var"), before, "the volume is untouched");
        assert.match(await sh.sh("storage1", "cat /proc/mdstat"), /md20 : active raid1/);
    });

    it("destroy with the opt-in removes everything", async function () {
        await stack.setConfig("allowDataLoss", "true");
        await upOk("opt in to data loss");
        const r = await traced(["destroy", "--yes", "--skip-preview"]);
        assert.strictEqual(r.code, 0, `destroy failed:\n${r.text}`);
        figure("pulumi destroy (everything)", seconds(r.ms));
        assert.doesNotMatch(await sh.sh("storage1", "cat /proc/mdstat"), /md20/);
        assert.strictEqual((await sh.try("storage1", "vgs labvg")).code === 0, false, "the volume group is gone");
        assert.ok(!(await guestRunningOn("pxe1")) && !(await guestRunningOn("svc1")), "no guest left");
        assert.strictEqual((await sh.try("svc1", "lxc-info -n labweb1")).code === 0, false, "no container left");
        assert.doesNotMatch(await sh.sh("svc1", "ovs-vsctl list-br || true"), /brstor|brwan/);
        figure("resources destroyed", String(resourceCount));
    });
});
