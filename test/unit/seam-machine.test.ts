// Machine against scripted PXE boxes, a fake Consul and a fake BMC: adopt,
// refuse, and the re-run after an interrupted create. Each PXE box answers the
// Machine's read script from its file table (the descriptor as captured from
// pxe-a in test/unit/fixtures/dnsmasq/machine-read.txt, the lease and boot files
// plans wrote). The lab proves the same on real dnsmasq, Consul and ipmi_sim
// (test/lab/faultsPxe.test.ts, test/lab/pxe.test.ts).
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { RefusedError } from "../../provider/core/errors";
import { hostsFileOf, bootScriptOf, pxeLayout } from "../../provider/pxe/shared";
import { check, machine, MachineInputs } from "../../provider/resources/machine";
import { argv, droppedAfter, exit, ok, script, ScriptedRemote, writes } from "../fakes/scriptedRemote";
import { ScriptedSite } from "../fakes/scriptedSite";

const fixture = (name: string) => fs.readFileSync(path.join(__dirname, "../../../test/unit/fixtures/dnsmasq", name), "utf8");
const box = (host: string) => ({ host, hostKey: "SHA256:" + "A".repeat(43), password: "pw" });
// The descriptor pxe-a wrote (profiles default, lab-a, lab-b, lxc-repo, pxeboot; base URL http://198.51.100.10:8081).
const descriptor = /==descriptor==\n([\s\S]*?)==lease==/.exec(fixture("machine-read.txt"))?.[1] as string;
const layout = pxeLayout("pxe-a");
const mac = "52:54:00:b0:00:14";
const leaseFile = hostsFileOf(layout, mac);
const bootFile = bootScriptOf(layout, mac);
const consul = { address: "198.51.100.10:8500" };
const handMadeLease = `${mac},198.51.100.20,pxeclient1\n`;

function inputs(extra: Record<string, unknown> = {}): MachineInputs {
    const r = check({}, {
        mac,
        hostname: "pxeclient1",
        ip: "198.51.100.20",
        role: "storage",
        profile: "lab-a",
        pxeServers: [{ connection: box("198.51.100.10"), name: "pxe-a" }],
        consul,
        config: { "net/address": "198.51.100.20" },
        ...extra,
    });
    assert.deepStrictEqual(r.failures, []);
    return r.inputs as MachineInputs;
}

/** A PXE box running instance pxe-a: its read script answers from its files. */
function pxeBox(s: ScriptedSite, host: string, files: Record<string, string> = {}): ScriptedRemote {
    const h: ScriptedRemote = s.host(box(host), { files: { [layout.descriptor]: descriptor, ...files } });
    return h
        .on(script("baremetal-machine-read"), (c) => {
            const [desc, hosts, boot, dir, ip] = c.argv.slice(4);
            const d = h.files.get(desc);
            if (d === undefined) return exit(3);
            const clashes = [...h.files].filter(([p, text]) => p.startsWith(`${dir}/`) && p !== hosts && text.includes(`,${ip},`)).map(([p]) => p);
            return ok(`==descriptor==\n${d}==lease==\n${h.files.get(hosts) ?? ""}==boot==\n${h.files.get(boot) ?? ""}==clash==\n${clashes.map((p) => `${p}\n`).join("")}`);
        })
        .on(script("baremetal-hup"), ok());
}

function site(files: Record<string, string> = {}) {
    const s = new ScriptedSite();
    const pxe = pxeBox(s, "198.51.100.10", files);
    const agent = s.consulAt(consul);
    return { s, pxe, agent };
}

/** Commands that stop, restart or reload something that runs (what adopting must never send). */
const disturbing = (h: ScriptedRemote) =>
    h.commands.filter((c) => (/^(systemctl|rc-service|service)$/.test(c.argv[0]) && c.argv.some((a) => /^(stop|restart|reload|try-restart|kill|disable)$/.test(a))) || /^(lxc-stop|vgchange|kill|pkill)$/.test(c.argv[0]) || (c.argv[0] === "mdadm" && c.argv.includes("--stop"))).map((c) => c.line);

describe("Machine against scripted PXE boxes, Consul and a BMC", () => {
    describe("adopt", () => {
        it("entries and keys someone else made, with adopt: true: rewritten as ours (lease, boot script, K/V), node registered", async () => {
            const { s, pxe, agent } = site({ [leaseFile]: handMadeLease, [bootFile]: "#!ipxe\nchain http://elsewhere/boot.ipxe\n" });
            agent.kvData.set("machines/pxeclient1/net/address", "10.0.0.99");
            const { id, outs } = await machine.create(inputs({ adopt: true }), s.context());
            assert.strictEqual(id, mac);
            assert.match(pxe.files.get(leaseFile) ?? "", /^# managed by pulumi-baremetal: machine pxeclient1\n52:54:00:b0:00:14,198\.51\.100\.20,pxeclient1\n$/);
            assert.match(pxe.files.get(bootFile) ?? "", /chain --autofree http:\/\/198\.51\.100\.10:8081\/profiles\/lab-a\/boot\.ipxe/);
            assert.strictEqual(agent.kvData.get("machines/pxeclient1/net/address"), "198.51.100.20");
            assert.deepStrictEqual(outs.consulNode?.address, "198.51.100.20");
            assert.deepStrictEqual(agent.writes, ["register node pxeclient1", "kv set machines/pxeclient1/net/address"]);
            s.verify();
        });

        it("adopting restarts nothing on the PXE box: dnsmasq reads its hosts directory by itself, and no power action is taken", async () => {
            const { s, pxe } = site({ [leaseFile]: handMadeLease, [bootFile]: "#!ipxe\nchain http://elsewhere/boot.ipxe\n" });
            await machine.create(inputs({ adopt: true }), s.context());
            assert.deepStrictEqual(disturbing(pxe), []);
            s.verify();
        });
    });

    describe("refuse", () => {
        it("entries someone else made on one of two PXE servers: refused naming that server; nothing written on either, nothing in Consul", async () => {
            const { s, pxe, agent } = site();
            const other = pxeBox(s, "198.51.100.13", { [leaseFile]: handMadeLease });
            const servers = [{ connection: box("198.51.100.10"), name: "pxe-a" }, { connection: box("198.51.100.13"), name: "pxe-a" }];
            await assert.rejects(machine.create(inputs({ pxeServers: servers }), s.context()), (e: Error) => {
                assert.ok(e instanceof RefusedError, e.message);
                assert.match(e.message, /PXE server pxe-a@198\.51\.100\.13 already has entries for 52:54:00:b0:00:14 that pulumi-baremetal did not write\. Nothing was changed\. Set adopt: true/);
                return true;
            });
            assert.deepStrictEqual([pxe.plans, other.plans], [[], []]);
            assert.strictEqual(other.files.get(leaseFile), handMadeLease);
            assert.deepStrictEqual(agent.writes, []);
            s.verify();
        });

        it("an address another machine is leased: refused naming the other entry; nothing written", async () => {
            const theirs = hostsFileOf(layout, "52:54:00:aa:bb:cc");
            const { s, pxe, agent } = site({ [theirs]: "# managed by pulumi-baremetal: machine other\n52:54:00:aa:bb:cc,198.51.100.20,other\n" });
            await assert.rejects(machine.create(inputs(), s.context()), new RegExp(`ip: 198\\.51\\.100\\.20 is already leased to another machine on PXE server pxe-a@198\\.51\\.100\\.10 \\(${theirs.replace(/[./]/g, "\\$&")}\\)\\. Nothing was changed`));
            assert.deepStrictEqual(pxe.plans, []);
            assert.deepStrictEqual(agent.writes, []);
            s.verify();
        });

        it("configuration keys someone else holds in Consul: refused before any PXE entry is written", async () => {
            const { s, pxe, agent } = site();
            agent.kvData.set("machines/pxeclient1/net/address", "10.0.0.99");
            await assert.rejects(machine.create(inputs(), s.context()), /1 key\(s\) under machines\/pxeclient1\/ already exist in Consul with other values \(machines\/pxeclient1\/net\/address\)\. Nothing was changed\. Set adopt: true/);
            assert.deepStrictEqual(pxe.plans, [], "no lease or boot script written");
            assert.deepStrictEqual(agent.writes, [], "no node registered");
            s.verify();
        });

        it("a hostname a running Consul agent uses: refused before anything is written", async () => {
            const { s, pxe, agent } = site();
            agent.agents.add("pxeclient1");
            await assert.rejects(machine.create(inputs(), s.context()), /hostname: pxeclient1 is the name of a running Consul agent\. Nothing was changed/);
            assert.deepStrictEqual(pxe.plans, []);
            assert.deepStrictEqual(agent.writes, []);
            s.verify();
        });
    });

    describe("re-run after an interrupted create", () => {
        it("cut while the boot script was written: the re-run takes its own lease (no adopt), writes the boot script, registers once", async () => {
            const { s, pxe, agent } = site();
            pxe.on(writes(bootFile), droppedAfter());
            await assert.rejects(machine.create(inputs(), s.context()), /connection dropped/);
            assert.ok(pxe.files.has(leaseFile) && !pxe.files.has(bootFile), "the cut left the lease without its boot script");
            assert.deepStrictEqual(agent.writes, []);

            pxe.on(writes(bootFile), ok()); // the connection is back: the write lands
            const { outs } = await machine.create(inputs(), s.context());
            assert.deepStrictEqual(outs.entries.map((e) => e.server), ["pxe-a@198.51.100.10"]);
            const leaseWrites = pxe.ran(writes(leaseFile));
            assert.deepStrictEqual(leaseWrites.map((c) => c.reply?.stdout), ["", "=baremetal-unchanged=\n"], "written once, already so on the re-run");
            assert.deepStrictEqual(agent.writes, ["register node pxeclient1", "kv set machines/pxeclient1/net/address"]);
            s.verify();
        });
    });

    describe("power and first boot", () => {
        it("onCreate pxe with a running box: next boot from PXE, power cycled, then it answers SSH and its facts are read", async () => {
            const { s, pxe } = site();
            const ipmi = { address: "198.18.3.20", user: "admin", password: "bmc-Secret-77" };
            const bmc = s.bmcAt(ipmi, "on");
            const booted = box("198.51.100.20");
            const facts = ["==kernel==", "6.1.0-56-amd64", "==cmdline==", "console=ttyS0 baremetal.profile=lab-a", "==disks==", "vda 4294967296", "==nics==", `eth0 ${mac}`, "==addresses==", ""].join("\n");
            const client = s.host(booted).on(argv("true"), ok()).on(script("baremetal-facts"), ok(facts));
            const { outs } = await machine.create(inputs({ ipmi, waitForSsh: { connection: booted, timeoutSeconds: 60 } }), s.context());
            assert.deepStrictEqual(bmc.actions, ["bootdev pxe", "power off", "power on"]);
            assert.strictEqual(bmc.nextBoot, "pxe");
            assert.deepStrictEqual(client.commands.map((c) => c.what), ["probe SSH", "read the facts of pxeclient1"]);
            assert.deepStrictEqual([outs.facts?.kernel, outs.facts?.bootedProfile], ["6.1.0-56-amd64", "lab-a"]);
            assert.ok(pxe.files.has(bootFile));
            s.verify();
        });
    });
});
