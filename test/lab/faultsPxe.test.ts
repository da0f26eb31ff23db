// Issue #10 for PxeServer and Machine: the SSH connection to the PXE box (pxe1,
// through FaultLab's proxy) is cut while a chosen plan step runs, mid-create,
// mid-update and mid-delete; then the same operation runs again, as the next
// `pulumi up` would, and the test looks at pxe1 directly for duplicates (a second
// dnsmasq, a second `consul lock` or session, stray files next to the lease and boot
// entries) and for the intended final state (files, the running daemon's config).
//
// Where the two kinds use SSH: PxeServer does everything on its box over SSH.
// Machine writes (and removes) its lease and per-MAC boot script on each PXE box
// over SSH; that is where its cuts land. Its Consul registration is HTTP, its power
// actions are IPMI over UDP (no SSH to cut), and on the machine itself it only
// waits for SSH and reads facts (read-only; a cut there fails the operation after
// the boot, and the re-run boots it again).
//
// One PXE server instance (`bmfault-pxe`, its own Consul lock key and HTTP port)
// and one Machine (pxeclient1 under the Consul node name `bmfault-client1`), so
// nothing clashes with pxe.test.ts. Two PXE boots in all (create, profile change).
import * as assert from "assert";
import { kinds } from "../../provider";
import type { MachineInputs, MachineState, PxeServerInputs, PxeServerState } from "../../provider";
import { Bmc } from "../../provider/ipmi/ipmitool";
import { parseDhcpLog } from "../../provider/parsers/dnsmasq";
import { bootScript, leaseLine } from "../../provider/resources/machine";
import { expectedDigests } from "../../provider/resources/pxeServer";
import { bootScriptOf, hostsFileOf, pxeLayout } from "../../provider/pxe/shared";
import { CutOutcome, escapeRegExp, FaultLab, figure, reportCut, runs, script } from "./faultHarness";

const instance = "bmfault-pxe";
const nodeName = "bmfault-client1";
const lockKey = "baremetal/lab/bmfault-pxe-leader";
const sessionName = `baremetal-pxe-${instance}`;
const httpPort = 8091;
const layout = pxeLayout(instance);
const labCmdline = ["console=ttyS0", "loglevel=4", "net.ifnames=0", "apparmor=0", "panic=10", "systemd.unit=bmlab.target"];

/** The running processes of this instance on the box, by what they are. */
interface Daemons {
    dnsmasq: number[];
    lock: number[];
    http: number[];
}

describe("SSH cut mid-create, mid-update and mid-delete: PxeServer and Machine (pxe1, pxeclient1)", function () {
    this.timeout(900_000);
    let f: FaultLab;
    let bmc: Bmc;
    let t0 = 0; // set in before(): the describe body runs when mocha loads every file
    const px = kinds.PxeServer;
    const mk = kinds.Machine;
    let server: { id: string; state: PxeServerState } | undefined;
    let client: { id: string; state: MachineState } | undefined;

    const box = (cmd: string): Promise<string> => f.sh.sh("pxe1", cmd);
    const consul = (): string => `http://${f.lab.consul.httpAddr}/v1`;
    const clientVm = () => f.sh.vm("pxeclient1");
    const mac = () => clientVm().mac;

    function serverInputs(rev: 1 | 2): PxeServerInputs {
        const build = f.lab.build;
        const kernel = { path: build.vmlinuz };
        const initramfs = { path: build.initrd };
        const r = px.check({}, {
            connection: f.connection("pxe1"),
            name: instance,
            address: f.sh.vm("pxe1").addresses.lan,
            interface: "eth0",
            subnet: f.lab.networks.lan.cidr,
            gateway: f.lab.networks.lan.gateway,
            httpPort,
            // rev 2: an option of the daemon (lease time) and a profile's kernel arguments change in place
            leaseSeconds: rev === 1 ? 3600 : 7200,
            ipxeBootloaders: false,
            profiles: {
                "bmf-a": { kind: "debian", kernel, initramfs, cmdline: labCmdline },
                "bmf-b": { kind: "debian", kernel, initramfs, cmdline: [...labCmdline, "baremetal.variant=b", ...(rev === 2 ? ["baremetal.rev=2"] : [])] },
            },
            standby: { lockKey, consulAddress: "127.0.0.1:8500", consulBinary: build.consulBinary },
        });
        assert.deepStrictEqual(r.failures, []);
        return r.inputs as PxeServerInputs;
    }

    function machineInputs(profile: "bmf-a" | "bmf-b"): MachineInputs {
        const c = clientVm();
        const ip = c.addresses.lan;
        const r = mk.check({}, {
            mac: c.mac,
            hostname: nodeName,
            ip,
            role: "bmfault",
            profile,
            // the lab's initramfs names and addresses the box from these (its host key follows bm.name)
            kernelArgs: ["bm.name=pxeclient1", `bm.net=eth0:${ip}/24`, `bm.gw=${f.lab.networks.lan.gateway}`],
            pxeServers: [{ connection: f.connection("pxe1"), name: instance }],
            consul: { address: f.lab.consul.httpAddr },
            config: { "boot/profile": profile },
            ipmi: { address: c.bmc.address, user: c.bmc.user, password: c.bmc.password },
            power: { onCreate: "pxe", cycleOnBootChange: true, offOnDelete: true },
            waitForSsh: { connection: f.connection("pxeclient1"), timeoutSeconds: 300 },
        });
        assert.deepStrictEqual(r.failures, []);
        return r.inputs as MachineInputs;
    }

    async function daemons(): Promise<Daemons> {
        const out = await box("ps -eo pid=,comm=,args=");
        const d: Daemons = { dnsmasq: [], lock: [], http: [] };
        for (const line of out.split("\n")) {
            const m = /^\s*(\d+)\s+(\S+)\s+(.*)$/.exec(line);
            if (!m) continue;
            const [pid, comm, args] = [Number(m[1]), m[2], m[3]];
            if (comm === "dnsmasq" && args.includes(`--conf-file=${layout.dnsmasqConf}`)) d.dnsmasq.push(pid);
            else if (comm === "consul" && / lock /.test(args) && args.includes(`-name=${sessionName} `)) d.lock.push(pid);
            else if (/^python3/.test(comm) && args.includes(`--directory ${layout.httpRoot} `)) d.http.push(pid);
        }
        return d;
    }

    async function sessions(): Promise<string[]> {
        const list = (await (await fetch(`${consul()}/session/list`)).json()) as { ID: string; Name: string }[];
        return list.filter((s) => s.Name === sessionName).map((s) => s.ID);
    }

    /** Every regular file of the instance (config, data, lease dirs), sorted. */
    async function instanceFiles(): Promise<string[]> {
        const out = await box(`find ${layout.configDir} ${layout.dataDir} ${layout.leaseFile.replace(/\/[^/]+$/, "")} -type f 2>/dev/null | sort; exit 0`);
        return out.split("\n").filter((l) => l !== "");
    }

    /** What the box holds at each generated path, by sha256 ("missing" when absent). */
    async function digests(paths: string[]): Promise<Record<string, string>> {
        const out = await box(`for p in ${paths.join(" ")}; do if [ -f "$p" ]; then sha256sum "$p"; else echo "missing  $p"; fi; done`);
        const got: Record<string, string> = {};
        for (const line of out.split("\n")) {
            const m = /^(\S+)\s+(\S+)$/.exec(line.trim());
            if (m) got[m[2]] = m[1];
        }
        return got;
    }

    /** The lease time the running dnsmasq announced at its last start (its log), and whether it started after its config was last written. */
    async function runningConfig(pid: number): Promise<{ leaseTime: string; startedAfterConf: boolean }> {
        const out = await box(`grep -o 'lease time [0-9a-z]*' ${layout.logFile} | tail -n 1; echo "$(( $(date +%s) - $(ps -o etimes= -p ${pid}) ))"; stat -c %Y ${layout.dnsmasqConf}`);
        const [line, started, mtime] = out.trim().split("\n");
        return { leaseTime: line.replace(/^lease time /, ""), startedAfterConf: Number(started) >= Number(mtime) };
    }

    /** One dnsmasq, one `consul lock`, one session, one HTTP server; both units active; every file as the inputs make it and nothing else. */
    async function assertOneServer(inputs: PxeServerInputs, machineFiles: string[]): Promise<Daemons> {
        const d = await daemons();
        assert.strictEqual(d.dnsmasq.length, 1, `dnsmasq processes of ${instance}: ${JSON.stringify(d)}`);
        assert.strictEqual(d.lock.length, 1, `consul lock processes of ${instance}: ${JSON.stringify(d)}`);
        assert.strictEqual(d.http.length, 1, `HTTP servers of ${instance}: ${JSON.stringify(d)}`);
        assert.strictEqual((await sessions()).length, 1, `Consul sessions named ${sessionName}`);
        const units = await box(`systemctl list-units --all --plain --no-legend '${sessionName}-*' | awk '{print $1, $3, $4}'`);
        assert.deepStrictEqual(units.trim().split("\n").sort(), [`${layout.dhcpService}.service active running`, `${layout.httpService}.service active running`]);
        const want = expectedDigests(inputs, "debian");
        assert.deepStrictEqual(await digests(Object.keys(want)), want);
        const profileFiles = Object.keys(inputs.profiles).flatMap((n) => ["vmlinuz", "initramfs"].map((x) => `${layout.httpRoot}/profiles/${n}/${x}`));
        const generated = Object.keys(want).filter((p) => !p.startsWith("/etc/systemd/"));
        const leases = (await box(`[ -f ${layout.leaseFile} ] && echo ${layout.leaseFile}; exit 0`)).trim();
        const expected = [...generated, ...profileFiles, ...machineFiles, ...(leases ? [leases] : [])].sort();
        assert.deepStrictEqual(await instanceFiles(), expected, "the instance's files (a stray temporary or second copy shows here)");
        return d;
    }

    /** The machine's files on the PXE box: exactly one lease and one boot script, as the inputs make them; nothing else under hosts.d and boot. */
    async function assertEntries(m: MachineInputs): Promise<void> {
        const listing = await box(`ls -A ${layout.hostsDir} ${layout.bootDir}`);
        assert.deepStrictEqual(listing.trim().split("\n").filter((l) => l !== "" && !l.endsWith(":")).sort(), [`${mac().replace(/:/g, "-")}.conf`, `${mac().replace(/:/g, "-")}.ipxe`]);
        assert.strictEqual(await box(`cat ${hostsFileOf(layout, m.mac)}`), leaseLine(m));
        assert.strictEqual(await box(`cat ${bootScriptOf(layout, m.mac)}`), bootScript(m, `http://${f.sh.vm("pxe1").addresses.lan}:${httpPort}`));
    }

    async function consulNode(): Promise<{ Node: { Address: string; Meta: Record<string, string> } } | null> {
        return (await (await fetch(`${consul()}/catalog/node/${nodeName}`)).json()) as { Node: { Address: string; Meta: Record<string, string> } } | null;
    }

    async function kvProfile(): Promise<string | undefined> {
        const r = await fetch(`${consul()}/kv/machines/${nodeName}/boot/profile?raw`);
        return r.status === 404 ? undefined : await r.text();
    }

    /** Everything this file could have left on pxe1, in Consul and on pxeclient1, by its own names only. */
    async function cleanup(): Promise<void> {
        await box([
            ...[layout.dhcpService, layout.httpService].map((s) => `systemctl stop ${s} 2>/dev/null; systemctl --quiet disable ${s} 2>/dev/null; rm -f /etc/systemd/system/${s}.service`),
            `systemctl daemon-reload; systemctl reset-failed '${sessionName}-*' 2>/dev/null`,
            `rm -rf ${layout.configDir} ${layout.dataDir} ${layout.leaseFile.replace(/\/[^/]+$/, "")} ${layout.logFile} ${layout.pidFile}`,
            // the parents, only when this test left them empty
            "rmdir /etc/baremetal/pxe /srv/baremetal/pxe /var/lib/baremetal/pxe 2>/dev/null; exit 0",
        ].join("\n"));
        await fetch(`${consul()}/catalog/deregister`, { method: "PUT", body: JSON.stringify({ Node: nodeName }) });
        await fetch(`${consul()}/kv/machines/${nodeName}/?recurse`, { method: "DELETE" });
        for (const id of await sessions()) await fetch(`${consul()}/session/destroy/${id}`, { method: "PUT" });
        await fetch(`${consul()}/kv/${lockKey}?recurse`, { method: "DELETE" });
        if ((await bmc.powerState()) === "on") await bmc.powerOff();
    }

    /** Where the cut really landed (the host layer's error names the step) and what the re-run ran, briefly. */
    function reportError(what: string, cut: CutOutcome, steps: string[]): void {
        figure(`${what}: error`, cut.error.message.split("\n")[0].replace(/ \(mode [^)]*\)/, ""));
        const waits = steps.filter((s) => /waiting for SSH/.test(s)).length;
        const brief = steps.filter((s) => !/waiting for SSH/.test(s)).map((s) => s.replace(/ \(mode [^)]*\)/, "").replace(/ from \/\S+/, ""));
        figure(`${what}: re-run steps`, `${brief.join(" | ") || "(none)"}${waits ? ` | then waited for SSH (${waits} progress reports)` : ""}`);
    }

    before(async () => {
        t0 = Date.now();
        f = await FaultLab.open(["pxe1", "pxeclient1"]);
        const c = clientVm();
        bmc = new Bmc({ address: c.bmc.address, user: c.bmc.user, password: c.bmc.password });
        const t = Date.now();
        await cleanup();
        figure("cleanup of leftovers", (Date.now() - t) / 1000);
    });

    after(async () => {
        if (f) {
            await cleanup();
            await f.close();
            figure("whole file (wall)", (Date.now() - t0) / 1000);
        }
    });

    it("PxeServer: a cut while the DHCP service (consul lock → dnsmasq) starts; the re-run leaves one dnsmasq, one lock, the intended files", async () => {
        const inputs = serverInputs(1);
        const cut = await f.cutDuring("pxe1", new RegExp(`restart service ${layout.dhcpService}$`), runs("systemctl", new RegExp(`restart ${layout.dhcpService}$`)), (ctx) => px.create(inputs, ctx));
        const again = await f.rerun((ctx) => px.create(inputs, ctx));
        reportCut("PxeServer create", cut, again.seconds);
        reportError("PxeServer create", cut, again.steps);
        server = { id: again.result.id, state: again.result.outs };
        assert.strictEqual(server.state.dhcpRole, "active");
        const d = await assertOneServer(inputs, []);
        const running = await runningConfig(d.dnsmasq[0]);
        assert.deepStrictEqual(running, { leaseTime: "1h", startedAfterConf: true });
    });

    it("PxeServer: a cut after the new config is written, before DHCP restarts (option + profile change); the re-run runs the new config, still one daemon", async () => {
        assert.ok(server, "the PxeServer was not created");
        const olds = server.state;
        const news = serverInputs(2);
        const before = await daemons();
        // The DHCP service's install is the last file step before the restarts (its unit reloaded only if it changed).
        const unitFile = new RegExp(`${escapeRegExp(`/etc/systemd/system/${layout.dhcpService}.service`)} `);
        const cut = await f.cutDuring("pxe1", new RegExp(`install service ${layout.dhcpService}$`), script("baremetal-install-unit", unitFile), (ctx) => px.update(server!.id, olds, news, ctx));
        const again = await f.rerun((ctx) => px.update(server!.id, olds, news, ctx));
        reportCut("PxeServer update", cut, again.seconds);
        reportError("PxeServer update", cut, again.steps);
        server = { id: server.id, state: again.result };
        const d = await assertOneServer(news, []);
        assert.notDeepStrictEqual(d.dnsmasq, before.dnsmasq, "dnsmasq was not restarted");
        assert.deepStrictEqual(await runningConfig(d.dnsmasq[0]), { leaseTime: "2h", startedAfterConf: true });
        const served = await (await fetch(`http://${f.sh.vm("pxe1").addresses.lan}:${httpPort}/profiles/bmf-b/boot.ipxe`)).text();
        assert.match(served, / baremetal\.rev=2 /, "the changed profile is not served");
    });

    it("Machine: a cut while its lease is written on the PXE box; the re-run writes one lease and one boot entry and PXE-boots it", async () => {
        assert.ok(server, "the PxeServer was not created");
        const inputs = machineInputs("bmf-a");
        const cut = await f.cutDuring("pxe1", /write \S+\/hosts\.d\/\S+\.conf /, script("baremetal-write", new RegExp(`${escapeRegExp(hostsFileOf(layout, mac()))} `)), (ctx) => mk.create(inputs, ctx));
        assert.strictEqual(await bmc.powerState(), "off", "the failed create went on to power the machine");
        const again = await f.rerun((ctx) => mk.create(inputs, ctx));
        reportCut("Machine create", cut, again.seconds);
        reportError("Machine create", cut, again.steps);
        client = { id: again.result.id, state: again.result.outs };
        figure("Machine create: PXE boot, power action to SSH", `${client.state.bootSeconds} s`);
        assert.strictEqual(client.state.facts?.bootedProfile, "bmf-a");
        assert.deepStrictEqual(client.state.facts?.nics, [{ name: "eth0", mac: mac() }]);
        await assertEntries(inputs);
        await assertOneServer(serverInputs(2), [hostsFileOf(layout, mac()), bootScriptOf(layout, mac())]);
        const acks = parseDhcpLog(await box(`cat ${layout.logFile}`)).filter((e) => e.kind === "DHCPACK" && e.mac === mac() && e.ip === clientVm().addresses.lan);
        assert.ok(acks.length >= 1, "the instance's dnsmasq did not lease the machine its address");
        const node = await consulNode();
        assert.deepStrictEqual([node?.Node.Address, node?.Node.Meta.profile], [clientVm().addresses.lan, "bmf-a"]);
        assert.strictEqual(await kvProfile(), "bmf-a");
    });

    it("Machine: a cut while the new boot entry is written (profile change); the re-run rewrites it and cycles the machine into the new profile", async () => {
        assert.ok(client, "the Machine was not created");
        const olds = client.state;
        const news = machineInputs("bmf-b");
        const cut = await f.cutDuring("pxe1", /write \S+\/boot\/\S+\.ipxe /, script("baremetal-write", new RegExp(`${escapeRegExp(bootScriptOf(layout, mac()))} `)), (ctx) => mk.update(client!.id, olds, news, ctx));
        const again = await f.rerun((ctx) => mk.update(client!.id, olds, news, ctx));
        reportCut("Machine update", cut, again.seconds);
        reportError("Machine update", cut, again.steps);
        client = { id: client.id, state: again.result };
        figure("Machine update: power cycle to SSH", `${client.state.bootSeconds} s`);
        assert.ok(client.state.bootSeconds !== undefined, "the re-run did not cycle the machine into the new profile");
        assert.strictEqual(client.state.facts?.bootedProfile, "bmf-b");
        // the kernel arguments of the profile as changed in place on the PXE server
        assert.match(await f.sh.sh("pxeclient1", "cat /proc/cmdline"), / baremetal\.rev=2 /);
        await assertEntries(news);
        await assertOneServer(serverInputs(2), [hostsFileOf(layout, mac()), bootScriptOf(layout, mac())]);
        assert.strictEqual((await consulNode())?.Node.Meta.profile, "bmf-b");
        assert.strictEqual(await kvProfile(), "bmf-b");
    });

    it("Machine: a cut while its lease is removed; the re-run removes its entries and registration and powers it off", async () => {
        assert.ok(client, "the Machine was not created");
        const state = client.state;
        const cut = await f.cutDuring("pxe1", /remove \S+\/hosts\.d\/\S+\.conf$/, script("baremetal-remove", new RegExp(`${escapeRegExp(hostsFileOf(layout, mac()))}$`)), (ctx) => mk.delete(client!.id, state, ctx));
        const again = await f.rerun((ctx) => mk.delete(client!.id, state, ctx));
        reportCut("Machine delete", cut, again.seconds);
        reportError("Machine delete", cut, again.steps);
        client = undefined;
        assert.strictEqual(await box(`ls -A ${layout.hostsDir} ${layout.bootDir} | grep -v -e '^$' -e ':$'; exit 0`), "");
        await assertOneServer(serverInputs(2), []);
        assert.strictEqual(await consulNode(), null);
        assert.strictEqual(await kvProfile(), undefined);
        assert.strictEqual(await bmc.powerState(), "off");
    });

    it("PxeServer: a cut while its DHCP service stops; the re-run removes every process, unit, file and lock session", async () => {
        assert.ok(server, "the PxeServer was not created");
        const state = server.state;
        const cut = await f.cutDuring("pxe1", new RegExp(`stop, disable and remove service ${layout.dhcpService} `), runs("systemctl", new RegExp(`stop ${layout.dhcpService}$`)), (ctx) => px.delete(server!.id, state, ctx));
        const again = await f.rerun((ctx) => px.delete(server!.id, state, ctx));
        reportCut("PxeServer delete", cut, again.seconds);
        reportError("PxeServer delete", cut, again.steps);
        server = undefined;
        assert.deepStrictEqual(await daemons(), { dnsmasq: [], lock: [], http: [] });
        assert.deepStrictEqual(await sessions(), []);
        assert.strictEqual(await box(`ls -d ${layout.configDir} ${layout.dataDir} ${layout.leaseFile.replace(/\/[^/]+$/, "")} ${layout.logFile} /etc/systemd/system/${sessionName}-* 2>/dev/null; exit 0`), "");
        assert.strictEqual(await box(`systemctl list-units --all --plain --no-legend '${sessionName}-*'`), "");
    });
});
