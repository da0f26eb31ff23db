// PxeServer and Machine against the lab, under the real pulumi CLI: two PXE servers
// in standby mode on pxe1 (dnsmasq, python3 http.server, consul lock), a disk-less
// VM (pxeclient1) that PXE-boots from whichever holds the lock, powered through its
// emulated BMC (ipmi_sim, ipmitool lanplus). Boot times are printed as figures.
import * as assert from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { gunzipSync } from "zlib";
import { Host, sharedPool } from "../../provider/host";
import { Bmc } from "../../provider/ipmi/ipmitool";
import { parseDhcpLog } from "../../provider/parsers/dnsmasq";
import { connectionFor, lab, LabDescription, vm } from "../helpers/lab";
import { changes, PulumiStack } from "../helpers/pulumi";
import { requireTools } from "../helpers/tools";

const repo = path.resolve(__dirname, "../../..");

/** lab.json's build section (test/helpers/lab.ts does not type it). */
type LabBuild = { vmlinuz: string; initrd: string; consulBinary: string; kernelRelease: string };
const build = (l: LabDescription): LabBuild => (l as LabDescription & { build: LabBuild }).build;
const servers = ["pxe-a", "pxe-b"] as const;
const port = { "pxe-a": 8081, "pxe-b": 8082 } as const;

function figure(what: string, value: string): void {
    console.log(`      figure: ${what}: ${value}`);
}

/** A throwaway checkout holding the built package and the fixture program (like test/helpers/checkout.ts, for a lab fixture). */
function checkout(): { programDir: string; remove(): void } {
    const root = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "bm-lab-pxe-")), "a");
    fs.mkdirSync(path.join(root, "examples"), { recursive: true });
    fs.copyFileSync(path.join(repo, "package.json"), path.join(root, "package.json"));
    execFileSync("cp", ["-a", path.join(repo, "dist"), path.join(root, "dist")]);
    execFileSync("cp", ["-al", path.join(repo, "node_modules"), path.join(root, "node_modules")]);
    execFileSync("cp", ["-r", path.join(repo, "test/lab/fixtures/pxe"), path.join(root, "examples/pxe")]);
    return { programDir: path.join(root, "examples/pxe"), remove: () => fs.rmSync(path.dirname(root), { recursive: true, force: true }) };
}

describe("PxeServer and Machine in the lab, under the real pulumi CLI", function () {
    this.timeout(900_000);
    let l: LabDescription;
    let stack: PulumiStack;
    let co: { programDir: string; remove(): void };
    let pxe: Host;
    let bmc: Bmc;
    let destroyed = false;
    const client = () => vm("pxeclient1");
    const consul = () => `http://${lab().consul.address}:8500/v1`;

    const sh = async (cmd: string): Promise<string> => (await pxe.run(["sh", "-c", cmd], { timeoutMs: 120_000 })).stdout;
    /** Which instance's dnsmasq runs (holds the lock), by its pid file. */
    const leader = async (): Promise<string[]> => {
        const out = await sh('for n in pxe-a pxe-b; do p=/run/baremetal-pxe-$n.pid; [ -f $p ] && kill -0 "$(cat $p)" 2>/dev/null && echo $n; done; exit 0');
        return out.split("\n").filter((x) => x !== "");
    };
    const acks = async (server: string): Promise<number> =>
        parseDhcpLog(await sh(`cat /var/log/baremetal-pxe-${server}.log 2>/dev/null; exit 0`)).filter((e) => e.kind === "DHCPACK" && e.mac === client().mac && e.ip === client().addresses.lan).length;
    const httpGets = async (server: string): Promise<string> => sh(`journalctl -q -u baremetal-pxe-${server}-http --no-pager | grep '^.*${client().addresses.lan} - - ' ; exit 0`);
    const outputs = async () => (await stack.outputs()) as { facts: { kernel: string; bootedProfile: string; nics: { name: string; mac: string }[]; addresses: string[] }; bootSeconds: number; roles: Record<string, string> };

    before(async () => {
        requireTools(["pulumi", "pulumi-language-nodejs", "ipmitool"]);
        l = lab();
        pxe = new Host(connectionFor("pxe1"));
        bmc = new Bmc({ address: client().bmc.address, user: client().bmc.user, password: client().bmc.password });
        co = checkout();
        stack = await PulumiStack.init(co.programDir, "lab");
        const c = client();
        const config: [string, string, boolean?][] = [
            ["pxeHost", vm("pxe1").ssh.host], ["pxeHostKey", vm("pxe1").ssh.hostKey], ["pxeAddress", vm("pxe1").addresses.lan],
            ["privateKeyPath", l.ssh.privateKeyPath],
            ["kernelPath", build(l).vmlinuz], ["initrdPath", build(l).initrd],
            ["consulBinary", build(l).consulBinary],
            ["subnet", l.networks.lan.cidr], ["gateway", l.networks.lan.gateway], ["consulAddress", `${l.consul.address}:8500`],
            ["clientMac", c.mac], ["clientIp", c.addresses.lan], ["clientHostKey", c.ssh.hostKey], ["profile", "lab-a"],
            ["bmcAddress", c.bmc.address], ["bmcUser", c.bmc.user], ["bmcPassword", c.bmc.password, true],
        ];
        for (const [k, v, secret] of config) await stack.setConfig(k, v, secret);
    });

    after(async () => {
        if (stack && !destroyed) await stack.run(["destroy", "--yes", "--skip-preview"]);
        await stack?.cleanup();
        co?.remove();
        await sharedPool().closeAll();
    });

    it("previews readable types without touching the lab", async () => {
        const preview = await stack.preview();
        const types = preview.steps.map((s) => s.newState?.type).filter(Boolean);
        assert.deepStrictEqual(types.filter((t) => /baremetal/.test(t ?? "")).sort(), [
            "pulumi-nodejs:dynamic/baremetal:Machine", "pulumi-nodejs:dynamic/baremetal:PxeServer", "pulumi-nodejs:dynamic/baremetal:PxeServer",
        ]);
    });

    it("up: the disk-less client PXE-boots the declared profile from the lock holder, with its static lease, and answers SSH", async () => {
        const t0 = Date.now();
        await stack.up();
        figure("pulumi up (2 PXE servers + machine booted)", `${Math.round((Date.now() - t0) / 1000)} s`);
        const out = await outputs();
        figure("PXE boot: BMC power on to SSH (profile lab-a)", `${out.bootSeconds} s`);
        assert.strictEqual(out.facts.bootedProfile, "lab-a");
        assert.strictEqual(out.facts.kernel, build(l).kernelRelease);
        assert.deepStrictEqual(out.facts.nics, [{ name: "eth0", mac: client().mac }]);
        assert.ok(out.facts.addresses.includes(`${client().addresses.lan}/24`), JSON.stringify(out.facts.addresses));
        const holders = await leader();
        assert.strictEqual(holders.length, 1, `exactly one PXE server must serve DHCP, got ${JSON.stringify(holders)}`);
        assert.ok((await acks(holders[0])) >= 1, "the lock holder's dnsmasq did not lease the declared address to the client");
        const other = servers.find((s) => s !== holders[0]) as string;
        assert.strictEqual(await acks(other), 0, "the standby served DHCP");
        const gets = await httpGets(holders[0]);
        for (const f of ["/boot.ipxe", `/boot/${client().mac.replace(/:/g, "-")}.ipxe`, "/profiles/lab-a/boot.ipxe", "/profiles/lab-a/vmlinuz", "/profiles/lab-a/initramfs"]) {
            assert.ok(gets.includes(`"GET ${f} `), `the client did not fetch ${f} over HTTP:\n${gets}`);
        }
    });

    it("registers the machine in Consul as an external node with its meta, and writes its configuration", async () => {
        const node = (await (await fetch(`${consul()}/catalog/node/pxeclient1`)).json()) as { Node: { Address: string; Meta: Record<string, string> } };
        assert.strictEqual(node.Node.Address, client().addresses.lan);
        assert.deepStrictEqual(
            { mac: node.Node.Meta.mac, role: node.Node.Meta.role, profile: node.Node.Meta.profile, ext: node.Node.Meta["external-node"] },
            { mac: client().mac, role: "pxe-client", profile: "lab-a", ext: "true" },
        );
        assert.strictEqual(await (await fetch(`${consul()}/kv/machines/pxeclient1/boot/profile?raw`)).text(), "lab-a");
    });

    it("serves the seed's Alpine profiles: real apkovl overlays and Alpine kernel arguments", async () => {
        const base = `http://${vm("pxe1").addresses.lan}:${port["pxe-a"]}/profiles`;
        for (const p of ["pxeboot", "default", "lxc-repo"]) {
            const r = await fetch(`${base}/${p}/${p}.apkovl.tar.gz`);
            assert.strictEqual(r.status, 200, `${p}.apkovl.tar.gz`);
            const tar = gunzipSync(Buffer.from(await r.arrayBuffer()));
            const listing = execFileSync("tar", ["-tf", "-"], { input: tar, encoding: "utf8" }).split("\n");
            assert.ok(listing.includes("etc/apk/world") && listing.includes("etc/local.d/baremetal-profile.start"), listing.join(" "));
            const script = await (await fetch(`${base}/${p}/boot.ipxe`)).text();
            assert.match(script, new RegExp(`ip=dhcp modules=loop,squashfs alpine_repo=\\S+ modloop=${base}/${p}/modloop apkovl=${base}/${p}/${p}\\.apkovl\\.tar\\.gz`));
        }
    });

    it("a second preview finds nothing to change", async () => {
        const preview = await stack.preview();
        assert.strictEqual(changes(preview.changeSummary), 0, JSON.stringify(preview.changeSummary));
    });

    it("refresh shows a lease edited by hand; up puts it back", async () => {
        const file = `/etc/baremetal/pxe/pxe-a/hosts.d/${client().mac.replace(/:/g, "-")}.conf`;
        await sh(`sed -i 's/,${client().addresses.lan},/,198.51.100.99,/' ${file}`);
        await stack.ok(["refresh", "--yes", "--skip-preview"]);
        const entries = (await stack.resourceOutputs("client")).entries as { server: string; lease: string }[];
        assert.match(entries.find((e) => e.server.startsWith("pxe-a@"))?.lease ?? "", /,198\.51\.100\.99,pxeclient1/);
        const preview = await stack.preview();
        assert.strictEqual(preview.steps.find((s) => s.urn.endsWith("::client"))?.op, "update");
        await stack.up();
        assert.match(await sh(`cat ${file}`), new RegExp(`^${client().mac},${client().addresses.lan.replace(/\./g, "\\.")},pxeclient1$`, "m"));
    });

    it("changing the profile cycles the machine through its BMC into the new profile", async () => {
        await stack.setConfig("profile", "lab-b");
        const preview = await stack.preview();
        assert.strictEqual(preview.steps.find((s) => s.urn.endsWith("::client"))?.op, "update");
        await stack.up();
        const out = await outputs();
        figure("profile change: BMC power cycle to SSH (profile lab-b)", `${out.bootSeconds} s`);
        assert.strictEqual(out.facts.bootedProfile, "lab-b");
        const [holder] = await leader();
        assert.ok((await httpGets(holder)).includes('"GET /profiles/lab-b/vmlinuz '), "the client did not fetch the lab-b kernel");
    });

    it("standby failover: stop the leader, the standby takes the lock and serves DHCP, and the machine still boots", async () => {
        const [old] = await leader();
        const standby = servers.find((s) => s !== old) as string;
        const acksBefore = await acks(standby);
        const t0 = Date.now();
        await sh(`systemctl stop baremetal-pxe-${old}-dhcp`);
        let holders = await leader();
        while (!(holders.length === 1 && holders[0] === standby)) {
            assert.ok(Date.now() - t0 < 120_000, `the standby did not take over within 120 s (holders: ${JSON.stringify(holders)})`);
            await new Promise((r) => setTimeout(r, 1000));
            holders = await leader();
        }
        figure("failover: leader stopped to standby serving DHCP", `${((Date.now() - t0) / 1000).toFixed(1)} s`);
        const t1 = Date.now();
        await bmc.bootFromNetworkOnce();
        await bmc.cycle((ms) => new Promise((r) => setTimeout(r, ms)));
        const probe = new Host(connectionFor("pxeclient1"));
        for (;;) {
            assert.ok(Date.now() - t1 < 300_000, "the client did not answer SSH within 300 s after the failover");
            try {
                const up = await probe.run(["sh", "-c", "cat /proc/uptime"], { timeoutMs: 20_000 });
                if (Number(up.stdout.split(" ")[0]) < (Date.now() - t1) / 1000) break;
            } catch {
                /* still booting */
            }
            await new Promise((r) => setTimeout(r, 3000));
        }
        figure("PXE boot from the new leader: power cycle to SSH", `${Math.round((Date.now() - t1) / 1000)} s`);
        assert.ok((await acks(standby)) > acksBefore, `the new leader ${standby} did not lease the client its address`);
        // refresh sees the stopped server; up starts it again, as a standby
        await stack.ok(["refresh", "--yes", "--skip-preview"]);
        assert.strictEqual((await stack.resourceOutputs(old)).dhcpRole, "stopped");
        await stack.up();
        assert.strictEqual((await stack.resourceOutputs(old)).dhcpRole, "standby");
        assert.deepStrictEqual(await leader(), [standby]);
    });

    it("destroy removes the entries, the PXE servers and the Consul registrations, and powers the machine off", async () => {
        await stack.ok(["destroy", "--yes", "--skip-preview"]);
        destroyed = true;
        // Consul answers 200 "null" for a node it does not know
        assert.strictEqual((await (await fetch(`${consul()}/catalog/node/pxeclient1`)).text()).trim(), "null");
        assert.strictEqual((await fetch(`${consul()}/kv/machines/pxeclient1/boot/profile`)).status, 404);
        assert.strictEqual(await sh("ls -d /etc/baremetal/pxe/* /srv/baremetal/pxe/* /etc/systemd/system/baremetal-pxe-* 2>/dev/null; exit 0"), "");
        assert.deepStrictEqual(await leader(), []);
        assert.strictEqual(await bmc.powerState(), "off");
    });
});
