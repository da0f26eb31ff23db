// Issue #10 for the guest side of a services box: the SSH connection to svc1 is
// cut while an OvsBridge, an LxcContainer or a KvmGuest is being created, updated
// and deleted (test/lab/faultHarness.ts), then the same operation runs again as
// the next `pulumi up` would, and svc1 itself is checked: exactly one bridge,
// one container, one qemu process, one tunnel, no leftover port or veth, and the
// object in the state that was asked for.
//
// Everything here is named bmfault* and lives on svc1 (in the main lab group, so
// that ceph1's one vCPU is left to the Ceph and storage tests); nothing else of
// the box is touched. The three kinds share one bridge (bmfault0, no uplink: svc1's
// NICs carry the lab's networks), the container's veth and the guest's tap are its
// ports. The guest has no disk (network boot, nothing answers): 64 MiB of TCG,
// nothing that needs a block device.
//
// The cut steps are ones that change the host: the bridge's add-br, the tunnel
// service's restart and stop; lxc-create, the write of the container's config
// (its limits), lxc-stop; the guest service's start and stop. Each cut comes when
// svc1 shows that step's command running (the harness holds the process until
// the cut is made), so even the config write of a few milliseconds is hit.
import * as assert from "assert";
import { kinds } from "../../provider";
import { productionContext } from "../../provider/context";
import type { KvmGuestInputs, KvmGuestState, LxcContainerInputs, LxcContainerState, OvsBridgeInputs, OvsBridgeState } from "../../provider";
import { openvpnStaticKey } from "../helpers/keys";
import { FaultLab, figure, reportCut, runs, script } from "./faultHarness";

const vm = "svc1";
const bridge = "bmfault0";
const tunnel = "bmfaultv0";
const tunnelPort = 11941;
const container = "bmfault-ct";
const guest = "bmfault-vm";
const guestMac = "52:54:00:7e:fa:01";
const tap = "vm5254007efa01";

/** Removes whatever an earlier, failed run left on svc1: only bmfault* objects. */
const sweep = [
    `systemctl stop baremetal-guest-${guest} baremetal-ovpn-${tunnel} 2>/dev/null`,
    `systemctl disable baremetal-guest-${guest} baremetal-ovpn-${tunnel} 2>/dev/null`,
    `rm -f /etc/systemd/system/baremetal-guest-${guest}.service /etc/systemd/system/baremetal-ovpn-${tunnel}.service /etc/baremetal/openvpn/${tunnel}.key`,
    "systemctl daemon-reload",
    `if lxc-info -n ${container} >/dev/null 2>&1; then lxc-stop -n ${container} -k 2>/dev/null; lxc-destroy -n ${container}; fi`,
    `rm -f /run/baremetal-lxc-${container}.conf /run/lock/baremetal-lxc-${container}.lock`,
    `if ovs-vsctl --timeout=5 br-exists ${bridge} 2>/dev/null; then ovs-vsctl --timeout=10 del-br ${bridge}; fi`,
    `ip link del ${tap} 2>/dev/null`,
    `ip link del ${tunnel} 2>/dev/null`,
    `rm -rf /run/baremetal/guests/${guest} /run/baremetal/guests/${guest}.stop /run/baremetal/guests/${guest}.incoming /var/log/baremetal/guests/${guest}.console.log`,
    "true",
].join("; ");

describe("svc1: SSH cut mid-create, mid-update and mid-delete of OvsBridge, LxcContainer and KvmGuest; the re-run converges with no duplicates", function () {
    this.timeout(20 * 60_000);
    let f: FaultLab;
    let ovsWasActive = true;
    let vethsBefore = 0;
    const key = openvpnStaticKey();
    let t0 = 0; // set in before(): the describe body runs when mocha loads every file

    // What the engine holds between the steps: the state of the last successful operation.
    let bridgeState: OvsBridgeState;
    let containerState: LxcContainerState;
    let guestState: KvmGuestState;

    const sh = (command: string) => f.sh.sh(vm, command);

    function bridgeInputs(withTunnel: boolean): OvsBridgeInputs {
        const raw = {
            connection: f.connection(vm),
            name: bridge,
            network: "bmfault",
            tunnels: withTunnel ? [{ name: tunnel, port: tunnelPort, key }] : [],
        };
        return checked(kinds.OvsBridge.check({}, raw));
    }

    function containerInputs(memoryMiB: number, content: string): LxcContainerInputs {
        return checked(
            kinds.LxcContainer.check({}, {
                connection: f.connection(vm),
                name: container,
                template: "busybox",
                network: [{ bridge, hwaddr: "52:54:00:7e:fa:50" }],
                limits: { memoryMiB },
                autostart: false,
                files: [{ path: "/www/index.html", content }],
                timeoutSeconds: 5,
            }),
        );
    }

    function guestInputs(memoryMiB: number): KvmGuestInputs {
        return checked(
            kinds.KvmGuest.check({}, {
                connection: f.connection(vm),
                name: guest,
                memoryMiB,
                // No disk and nothing to boot from: SeaBIOS and iPXE wait, quietly.
                disks: [],
                nics: [{ bridge, mac: guestMac }],
                autostart: false,
                shutdownTimeoutSeconds: 3,
            }),
        );
    }

    /**
     * Runs each command on svc1 in one SSH session (stderr folded into stdout)
     * and returns each one's output: fewer round trips on a busy one-CPU VM.
     */
    async function probe(...commands: string[]): Promise<string[]> {
        const sep = "=bmfault-probe=";
        const out = await sh(commands.map((c) => `{ ${c}; } 2>&1; echo ${sep}`).join("; "));
        return out.split(`${sep}\n`).slice(0, commands.length);
    }

    const lines = (text: string) => text.split("\n").filter(Boolean);
    const listPorts = `ovs-vsctl --timeout=10 list-ports ${bridge}`;
    const countVeths = "ip -o link show type veth | wc -l";
    const countQemu = `pgrep -c -f 'qemu-system-x86_64 -name [g]uest=${guest} '`;
    const countTap = `ip -o link show | grep -c ': ${tap}:'`;

    async function assertOneBridge(): Promise<void> {
        const [bridges, network, link] = await probe("ovs-vsctl --timeout=10 list-br", `ovs-vsctl --timeout=10 br-get-external-id ${bridge} baremetal-network`, `ip -o link show dev ${bridge}`);
        assert.deepStrictEqual(lines(bridges).filter((b) => b.startsWith("bmfault")), [bridge], "exactly one bmfault bridge");
        assert.strictEqual(network.trim(), "bmfault");
        assert.match(link, /[<,]UP[,>]/, `${bridge} is up`);
    }

    async function assertTunnel(): Promise<void> {
        const [active, openvpns, taps, ports] = await probe(`systemctl is-active baremetal-ovpn-${tunnel}`, `pgrep -c -f 'openvpn --dev [b]mfaultv0 '`, `ip -o link show | grep -c ': ${tunnel}[:@]'`, listPorts);
        assert.strictEqual(active.trim(), "active");
        assert.strictEqual(openvpns.trim(), "1", "exactly one openvpn for the tunnel");
        assert.strictEqual(taps.trim(), "1", "exactly one tunnel tap");
        assert.deepStrictEqual(lines(ports), [tunnel], `the tunnel is the only port of ${bridge}`);
    }

    async function assertContainer(memoryMiB: number, content: string): Promise<void> {
        const [names, info, memoryMax, file, ports, veths] = await probe(
            "lxc-ls -1",
            `lxc-info -n ${container} -s`,
            // The live cgroup, not the config file: a limit written but never applied is drift.
            `lxc-cgroup -n ${container} memory.max`,
            `lxc-attach -n ${container} -- /bin/cat /www/index.html`,
            listPorts,
            countVeths,
        );
        assert.deepStrictEqual(names.split(/\s+/).filter((n) => n.startsWith("bmfault")), [container], "exactly one bmfault container");
        assert.match(info, /State:\s+RUNNING/);
        assert.strictEqual(memoryMax.trim(), String(memoryMiB * 1048576), "the running container's memory.max");
        assert.strictEqual(file, content);
        const onBridge = lines(ports).filter((p) => p.startsWith("veth"));
        assert.strictEqual(onBridge.length, 1, `one veth of the container on ${bridge}: ${onBridge.join(", ")}`);
        assert.strictEqual(Number(veths), vethsBefore + 1, "one veth more on svc1 than before the test");
    }

    async function assertGuest(memoryMiB: number): Promise<void> {
        const [qemus, active, taps, ports, qmp] = await probe(
            countQemu,
            `systemctl is-active baremetal-guest-${guest}`,
            countTap,
            listPorts,
            `printf '%s\\n' '{"execute":"qmp_capabilities"}' '{"execute":"query-status"}' '{"execute":"query-memory-size-summary"}' | socat -t 2 - UNIX-CONNECT:/run/baremetal/guests/${guest}/qmp.sock`,
        );
        assert.strictEqual(qemus.trim(), "1", "exactly one qemu for the guest");
        assert.strictEqual(active.trim(), "active");
        assert.strictEqual(taps.trim(), "1", "exactly one tap");
        assert.ok(lines(ports).includes(tap), `${tap} is a port of ${bridge}`);
        assert.match(qmp, /"status": "running"/);
        assert.match(qmp, new RegExp(`"base-memory": ${memoryMiB * 1048576}\\b`));
    }

    before(async function () {
        t0 = Date.now();
        f = await FaultLab.open([vm]);
        await f.sh.waitSsh(vm, 180_000);
        await sh(sweep);
        ovsWasActive = (await sh("systemctl is-active openvswitch-switch; true")).trim() === "active";
        vethsBefore = Number((await probe(countVeths))[0]);
    });

    after(async function () {
        if (!f) return;
        await f.sh.try(vm, sweep);
        // Open vSwitch was started for this test only: stop it again when nothing else uses it.
        if (!ovsWasActive) await f.sh.try(vm, "[ -z \"$(ovs-vsctl --timeout=5 list-br)\" ] && systemctl stop openvswitch-switch ovs-vswitchd ovsdb-server; true");
        await f.close();
        figure("faultsGuests: whole file", (Date.now() - t0) / 1000);
    });

    it("OvsBridge: cut during add-br; the re-run finds the bridge and makes no second one", async () => {
        const inputs = bridgeInputs(false);
        const cut = await f.cutDuring(vm, /ensure OVS bridge bmfault0/, runs("ovs-vsctl", /--timeout=\d+ --may-exist add-br bmfault0 /), (ctx) => kinds.OvsBridge.create(inputs, ctx));
        const again = await f.rerun((ctx) => kinds.OvsBridge.create(inputs, ctx));
        reportCut("OvsBridge create", cut, again.seconds);
        figure("OvsBridge create: re-run steps", again.steps.join(" | "));
        bridgeState = again.result.outs;
        await assertOneBridge();
        assert.deepStrictEqual(lines((await probe(listPorts))[0]), []);
    });

    it("OvsBridge: cut while an added tunnel's service restarts; the re-run leaves one openvpn, one tap, one port", async () => {
        const news = bridgeInputs(true);
        assert.ok(kinds.OvsBridge.diff("", bridgeState, news).changes);
        const cut = await f.cutDuring(vm, /restart service baremetal-ovpn-bmfaultv0/, runs("systemctl", /restart baremetal-ovpn-bmfaultv0$/), (ctx) => kinds.OvsBridge.update("", bridgeState, news, ctx));
        const again = await f.rerun((ctx) => kinds.OvsBridge.update("", bridgeState, news, ctx));
        reportCut("OvsBridge update (add tunnel)", cut, again.seconds);
        figure("OvsBridge update: re-run steps", again.steps.join(" | "));
        bridgeState = again.result;
        assert.deepStrictEqual(bridgeState.tunnelStates, { [tunnel]: "active" });
        await assertOneBridge();
        await assertTunnel();
    });

    it("LxcContainer: cut during lxc-create; the re-run adopts it (one container), starts and provisions it", async () => {
        const inputs = containerInputs(32, "bmfault v1\n");
        const cut = await f.cutDuring(vm, /create container bmfault-ct from template busybox/, runs("lxc-create", /-q -n bmfault-ct -t busybox /), (ctx) => kinds.LxcContainer.create(inputs, ctx));
        const again = await f.rerun((ctx) => kinds.LxcContainer.create(inputs, ctx));
        reportCut("LxcContainer create", cut, again.seconds);
        figure("LxcContainer create: re-run steps", again.steps.join(" | "));
        containerState = again.result.outs;
        assert.strictEqual(containerState.state, "RUNNING");
        await assertContainer(32, "bmfault v1\n");
    });

    it("KvmGuest: cut while its service starts; the re-run finds it running (one qemu, one tap)", async () => {
        const inputs = guestInputs(64);
        const cut = await f.cutDuring(vm, /start service baremetal-guest-bmfault-vm/, runs("systemctl", /start baremetal-guest-bmfault-vm$/), (ctx) => kinds.KvmGuest.create(inputs, ctx));
        const again = await f.rerun((ctx) => kinds.KvmGuest.create(inputs, ctx));
        reportCut("KvmGuest create", cut, again.seconds);
        figure("KvmGuest create: re-run steps", again.steps.join(" | "));
        guestState = again.result.outs;
        assert.strictEqual(again.result.id, guestMac);
        assert.strictEqual(guestState.status, "running");
        await assertGuest(64);
    });

    it("LxcContainer: cut while the new limits are written; the re-run restarts it so they apply, and writes the new content", async () => {
        const news = containerInputs(48, "bmfault v2\n");
        assert.ok(kinds.LxcContainer.diff("", containerState, news).changes);
        const cut = await f.cutDuring(vm, /write bmfault-ct's network, mounts, autostart and limits/, script("baremetal-lxc-config", /\/var\/lib\/lxc\/bmfault-ct\/config$/), (ctx) => kinds.LxcContainer.update("", containerState, news, ctx));
        const again = await f.rerun((ctx) => kinds.LxcContainer.update("", containerState, news, ctx));
        reportCut("LxcContainer update (limits, content)", cut, again.seconds);
        figure("LxcContainer update: re-run steps", again.steps.join(" | "));
        containerState = again.result;
        await assertContainer(48, "bmfault v2\n");
    });

    it("KvmGuest: cut during the graceful stop of a memory change; the re-run starts it with the new memory (one qemu)", async () => {
        const news = guestInputs(80);
        assert.ok(kinds.KvmGuest.diff(guestMac, guestState, news).changes);
        const cut = await f.cutDuring(vm, /stop service baremetal-guest-bmfault-vm/, runs("systemctl", /stop baremetal-guest-bmfault-vm$/), (ctx) => kinds.KvmGuest.update(guestMac, guestState, news, ctx));
        const again = await f.rerun((ctx) => kinds.KvmGuest.update(guestMac, guestState, news, ctx));
        reportCut("KvmGuest update (memory 64 -> 80 MiB)", cut, again.seconds);
        figure("KvmGuest update: re-run steps", again.steps.join(" | "));
        guestState = again.result;
        assert.strictEqual(guestState.memoryMiB, 80);
        await assertGuest(80);
    });

    it("KvmGuest: cut during the graceful stop of delete; the re-run removes the service: no qemu, no tap, no unit", async () => {
        const cut = await f.cutDuring(vm, /stop service baremetal-guest-bmfault-vm/, runs("systemctl", /stop baremetal-guest-bmfault-vm$/), (ctx) => kinds.KvmGuest.delete(guestMac, guestState, ctx));
        const again = await f.rerun((ctx) => kinds.KvmGuest.delete(guestMac, guestState, ctx));
        reportCut("KvmGuest delete", cut, again.seconds);
        figure("KvmGuest delete: re-run steps", again.steps.join(" | "));
        const [qemus, taps, units, ports] = await probe(countQemu, countTap, `ls /etc/systemd/system | grep -c baremetal-guest-${guest}`, listPorts);
        assert.deepStrictEqual([qemus.trim(), taps.trim(), units.trim()], ["0", "0", "0"], "no qemu, tap or unit of the guest");
        assert.ok(!lines(ports).includes(tap));
        assert.strictEqual(await kinds.KvmGuest.read(guestMac, guestState, productionContext(quiet)), undefined);
    });

    it("LxcContainer: cut while delete stops it; the re-run destroys it: no container, no rootfs, no veth left", async () => {
        const cut = await f.cutDuring(vm, /stop bmfault-ct \(up to/, runs("lxc-stop", /-n bmfault-ct -t \d+$/), (ctx) => kinds.LxcContainer.delete("", containerState, ctx));
        const again = await f.rerun((ctx) => kinds.LxcContainer.delete("", containerState, ctx));
        reportCut("LxcContainer delete", cut, again.seconds);
        figure("LxcContainer delete: re-run steps", again.steps.join(" | "));
        assert.deepStrictEqual((await sh("lxc-ls -1")).split(/\s+/).filter((n) => n.startsWith("bmfault")), []);
        const [dir, ports, veths] = await probe(`ls -d /var/lib/lxc/${container}`, listPorts, countVeths);
        assert.match(dir, /No such file/, `/var/lib/lxc/${container} is gone`);
        assert.deepStrictEqual(lines(ports), [tunnel], `only the tunnel is left on ${bridge}`);
        assert.strictEqual(Number(veths), vethsBefore, "no veth left on svc1");
    });

    it("OvsBridge: cut while delete stops the tunnel; the re-run removes the rest: no bridge, no tunnel service, key, tap or openvpn", async () => {
        const cut = await f.cutDuring(vm, /stop, disable and remove service baremetal-ovpn-bmfaultv0 /, runs("systemctl", /stop baremetal-ovpn-bmfaultv0$/), (ctx) => kinds.OvsBridge.delete("", bridgeState, ctx));
        const again = await f.rerun((ctx) => kinds.OvsBridge.delete("", bridgeState, ctx));
        reportCut("OvsBridge delete", cut, again.seconds);
        figure("OvsBridge delete: re-run steps", again.steps.join(" | "));
        assert.deepStrictEqual((await sh("ovs-vsctl --timeout=10 list-br")).split("\n").filter((b) => b.startsWith("bmfault")), []);
        const left = await sh(
            `ls /etc/systemd/system/baremetal-ovpn-${tunnel}.service /etc/baremetal/openvpn/${tunnel}.key 2>/dev/null; ip -o link show | grep -e ': ${tunnel}[:@]' -e ': ${bridge}:'; pgrep -f 'openvpn --dev [b]mfaultv0 '; true`,
        );
        assert.strictEqual(left.trim(), "", `left on svc1:\n${left}`);
        assert.strictEqual(await kinds.OvsBridge.read("", bridgeState, productionContext(quiet)), undefined);
    });
});

const quiet = { info() {}, warn() {}, progress() {} };

function checked<I>(outcome: { inputs?: I; failures: { field: string; reason: string }[] }): I {
    assert.deepStrictEqual(outcome.failures, []);
    return outcome.inputs as I;
}
