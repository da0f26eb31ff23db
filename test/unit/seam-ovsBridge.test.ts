// OvsBridge against a scripted box: adopt, refuse, and the re-run after an
// interrupted create. The box answers the bridge read script from a small model
// in the format captured from Open vSwitch in the lab
// (test/unit/fixtures/ovs/read-nic-uplink.txt). The lab proves the same on real
// Open vSwitch (test/lab/faultsGuests.test.ts, test/lab/guests.test.ts).
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { RefusedError } from "../../provider/core/errors";
import { check, ovsBridge, OvsBridgeInputs } from "../../provider/resources/ovsBridge";
import { argv, droppedAfter, exit, ok, script, ScriptedRemote, unchanged, what } from "../fakes/scriptedRemote";
import { ScriptedSite } from "../fakes/scriptedSite";

const fixture = (name: string) => fs.readFileSync(path.join(__dirname, "../../../test/unit/fixtures/ovs", name), "utf8");
const connection = { host: "198.51.100.12", hostKey: "SHA256:" + "A".repeat(43), password: "pw" };
const address = "198.18.1.12/24";
/** `ip -4 -o addr show dev eth1` of a NIC carrying the address (iproute2's one-line format). */
const ipAddrLine = `3: eth1    inet ${address} brd 198.18.1.255 scope global eth1\\       valid_lft forever preferred_lft forever\n`;

function inputs(extra: Record<string, unknown> = {}): OvsBridgeInputs {
    const r = check({}, { connection, name: "bmstor", network: "storage", uplink: "eth1", moveAddresses: true, ...extra });
    assert.deepStrictEqual(r.failures, []);
    return r.inputs as OvsBridgeInputs;
}

interface Net {
    bridge?: { network: string; ports: string[]; addresses: string[] };
    /** IPv4 addresses on eth1. */
    nic: string[];
}

/** A Debian box with Open vSwitch: the read script answers from `net` as read-nic-uplink.txt shows a bridge. */
function box(net: Net) {
    const s = new ScriptedSite();
    const host: ScriptedRemote = s.host(connection);
    host.on(script("baremetal-install"), unchanged)
        .on(script("baremetal-enable"), unchanged)
        .on(argv("systemctl", "start", "openvswitch-switch"), ok())
        .on(script("baremetal-ovs-read"), () => {
            const b = net.bridge;
            if (!b) return exit(3);
            return ok([`network=${b.network}`, ...b.ports.map((p) => `port ${p}`), ...b.addresses.map((a) => `addr ${a}`), ""].join("\n"));
        })
        .on(what(/^ensure OVS bridge bmstor/), () => ((net.bridge ??= { network: "storage", ports: [], addresses: [] }), ok()))
        .on(what(/^bring bmstor up$/), ok())
        .on(what(/^add uplink eth1 to bmstor$/), () => (net.bridge?.ports.includes("eth1") || net.bridge?.ports.unshift("eth1"), ok()))
        .on(script("baremetal-ovs-move"), () => {
            if (net.nic.length === 0) return unchanged;
            const moved = net.nic.splice(0);
            net.bridge?.addresses.push(...moved);
            return ok(moved.map((a) => `moved ${a}\n`).join(""));
        })
        .on(argv("ip", "-4", "-o", "addr", "show", "dev", "eth1"), () => ok(net.nic.length > 0 ? ipAddrLine : ""));
    return { s, host };
}

const bridgeWrites = (h: ScriptedRemote) => h.commands.filter((c) => c.argv[0] === "ovs-vsctl" || c.argv[3] === "baremetal-ovs-move").map((c) => c.line);

/** Commands that stop, restart or reload something that runs (what adopting must never send). */
const disturbing = (h: ScriptedRemote) =>
    h.commands.filter((c) => (/^(systemctl|rc-service|service)$/.test(c.argv[0]) && c.argv.some((a) => /^(stop|restart|reload|try-restart|kill|disable)$/.test(a))) || /^(lxc-stop|vgchange|kill|pkill)$/.test(c.argv[0]) || (c.argv[0] === "mdadm" && c.argv.includes("--stop"))).map((c) => c.line);

describe("OvsBridge against a scripted box", () => {
    it("the model reads like the captured bridge (read-nic-uplink.txt)", async () => {
        const { s } = box({ bridge: { network: "storage", ports: ["eth1", "vm5254007e0001"], addresses: [address] }, nic: [] });
        const out = await s.context().remote(connection).run(["sh", "-c", "", "baremetal-ovs-read", "bmstor"]);
        assert.strictEqual(out.stdout, fixture("read-nic-uplink.txt"));
    });

    describe("adopt", () => {
        it("a bridge of the same network already carrying the uplink's address: taken over, nothing re-made, and the address is remembered for delete", async () => {
            const { s, host } = box({ bridge: { network: "storage", ports: ["eth1", "vm5254007e0001"], addresses: [address] }, nic: [] });
            const { id, outs } = await ovsBridge.create(inputs(), s.context());
            assert.strictEqual(id, "bmstor@198.51.100.12");
            assert.deepStrictEqual(outs.movedAddresses, [address], "delete will move it back to eth1");
            assert.deepStrictEqual(outs.ports, ["eth1", "vm5254007e0001"], "the guest's tap stays on the bridge");
            assert.deepStrictEqual(host.ran(script("baremetal-ovs-move")).map((c) => c.reply?.stdout), ["=baremetal-unchanged=\n"]);
            assert.ok(s.log.kept().includes("bmstor: adopting the existing bridge on root@198.51.100.12:22"));
            s.verify();
        });

        it("adopting restarts nothing: Open vSwitch is only started (a no-op when it runs), the bridge and its ports stay", async () => {
            const { s, host } = box({ bridge: { network: "storage", ports: ["eth1", "vm5254007e0001"], addresses: [address] }, nic: [] });
            await ovsBridge.create(inputs(), s.context());
            assert.deepStrictEqual(disturbing(host), []);
            assert.ok(host.commands.every((c) => !c.argv.some((a) => /^(del-br|del-port|--if-exists)$/.test(a))), "nothing removed from the bridge");
            s.verify();
        });
    });

    describe("refuse", () => {
        it("a bridge of that name for another network, without adopt: refused naming its network and ports; nothing run", async () => {
            const { s, host } = box({ bridge: { network: "storage", ports: ["eth1", "vm5254007e0001"], addresses: [address] }, nic: [] });
            await assert.rejects(ovsBridge.create(inputs({ network: "lan" }), s.context()), (e: Error) => {
                assert.ok(e instanceof RefusedError, e.message);
                assert.match(e.message, /OVS bridge bmstor already exists on root@198\.51\.100\.12:22 for network storage with ports eth1, vm5254007e0001\. Nothing was changed\. Set adopt: true/);
                return true;
            });
            assert.deepStrictEqual(host.plans, []);
            s.verify();
        });

        it("an uplink that carries an address, without moveAddresses: refused before the box loses that network", async () => {
            const { s, host } = box({ nic: [address] });
            await assert.rejects(ovsBridge.create(inputs({ moveAddresses: false }), s.context()), /the uplink eth1 on root@198\.51\.100\.12:22 carries 198\.18\.1\.12\/24; as a bridge port it would lose them and cut the box off that network\. Nothing was changed\. Set moveAddresses: true/);
            assert.deepStrictEqual(host.plans, []);
            s.verify();
        });
    });

    describe("re-run after an interrupted create", () => {
        it("cut while the addresses moved (their 'moved' lines lost): the re-run finds them on the bridge and still remembers to give them back", async () => {
            const net: Net = { nic: [address] };
            const { s, host } = box(net);
            host.on(script("baremetal-ovs-move"), droppedAfter(() => net.bridge?.addresses.push(...net.nic.splice(0))));
            await assert.rejects(ovsBridge.create(inputs(), s.context()), /connection dropped/);
            assert.deepStrictEqual([net.nic, net.bridge?.addresses], [[], [address]]);
            host.on(script("baremetal-ovs-move"), unchanged);

            const { outs } = await ovsBridge.create(inputs(), s.context());
            assert.deepStrictEqual(outs.movedAddresses, [address]);
            assert.strictEqual(host.ran(what(/^ensure OVS bridge bmstor/)).length, 2, "add-br --may-exist: the same bridge, not a second one");
            assert.deepStrictEqual(net.bridge?.ports, ["eth1"]);
            assert.ok(bridgeWrites(host).every((l) => !l.includes("del-br")));
            s.verify();
        });
    });
});

describe("OvsBridge re-runs while a step of the cut run still runs on the box", () => {
    it("create: the address move still running after the re-run's first look: every address it moved is remembered for delete", async () => {
        const second = "198.18.1.13/24";
        const net: Net = { nic: [address, second] };
        const { s, host } = box(net);
        let moving = false;
        // The cut move has put the first address on the bridge and goes on with the second (the move holds no lock).
        host.on(script("baremetal-ovs-move"), droppedAfter(() => (net.bridge?.addresses.push(...net.nic.splice(0, 1)), (moving = true))));
        await assert.rejects(ovsBridge.create(inputs(), s.context()), /connection dropped/);
        assert.deepStrictEqual([net.nic, net.bridge?.addresses], [[second], [address]]);
        host.on(script("baremetal-ovs-read"), () => {
            const b = net.bridge as NonNullable<Net["bridge"]>;
            const reply = ok([`network=${b.network}`, ...b.ports.map((p) => `port ${p}`), ...b.addresses.map((a) => `addr ${a}`), ""].join("\n"));
            // It ends just after the re-run's first look.
            if (moving) (b.addresses.push(...net.nic.splice(0)), (moving = false));
            return reply;
        }).on(script("baremetal-ovs-move"), () => (net.nic.length === 0 ? unchanged : exit(2, "RTNETLINK answers: Cannot assign requested address")));

        const { outs } = await ovsBridge.create(inputs(), s.context());
        assert.deepStrictEqual(outs.addresses, [address, second]);
        assert.deepStrictEqual(outs.movedAddresses, [address, second], "delete gives both back to eth1");
        s.verify();
    });
});

describe("OvsBridge when Open vSwitch's database does not answer", () => {
    const notRunning = "ovs-vsctl: unix:/var/run/openvswitch/db.sock: database connection failed (No such file or directory)";
    const hung = "Open vSwitch did not answer `ovs-vsctl br-exists bmstor` (no answer in 30 s): is ovsdb-server stuck or the box overloaded? Check `ovs-vsctl show` there and re-run.";
    const live = { network: "storage", ports: ["eth1"], addresses: [address] };
    const state = () => ({ ...inputs(), ports: ["eth1"], addresses: [address], movedAddresses: [address], tunnelStates: {} });

    /** A box whose ovsdb-server is stopped until `systemctl start openvswitch-switch`; the bridge is in its database. */
    function stoppedBox() {
        const net: Net = { bridge: { ...live, ports: [...live.ports], addresses: [...live.addresses] }, nic: [] };
        const { s, host } = box(net);
        let running = false;
        host.on(argv("systemctl", "start", "openvswitch-switch"), () => ((running = true), ok())).on(script("baremetal-ovs-read"), () => {
            if (!running) return exit(5, notRunning);
            const b = net.bridge;
            if (!b) return exit(3);
            return ok([`network=${b.network}`, ...b.ports.map((p) => `port ${p}`), ...b.addresses.map((a) => `addr ${a}`), ""].join("\n"));
        });
        return { s, host, net };
    }

    it("create: starts Open vSwitch before it looks, so a bridge of another network in its database is still refused", async () => {
        const { s, host } = stoppedBox();
        await assert.rejects(ovsBridge.create(inputs({ network: "lan" }), s.context()), /OVS bridge bmstor already exists on root@198\.51\.100\.12:22 for network storage/);
        assert.strictEqual(host.ran(argv("systemctl", "start", "openvswitch-switch")).length, 1);
        assert.deepStrictEqual(bridgeWrites(host), [], "nothing written to the bridge");
        s.verify();
    });

    it("refresh with ovsdb-server stopped: an error naming the box and what to start, never 'gone' (the bridge is still in its database)", async () => {
        const { s, host } = stoppedBox();
        await assert.rejects(ovsBridge.read("bmstor@198.51.100.12", state(), s.context()), (e: Error) => {
            assert.match(e.message, /cannot read OVS bridge bmstor on root@198\.51\.100\.12:22: Open vSwitch's database server is not running there \(ovs-vsctl: unix:.*database connection failed/);
            assert.match(e.message, /start Open vSwitch on that box \(systemctl start openvswitch-switch, or rc-service ovsdb-server start\) and re-run/);
            return true;
        });
        assert.deepStrictEqual(disturbing(host), []);
        assert.strictEqual(host.ran(argv("systemctl", "start")).length, 0, "a refresh starts nothing");
        s.verify();
    });

    it("refresh while ovsdb-server hangs: the read fails with the script's words, never 'gone'", async () => {
        const { s, host } = box({ bridge: live, nic: [] });
        host.on(script("baremetal-ovs-read"), exit(4, hung));
        await assert.rejects(ovsBridge.read("bmstor@198.51.100.12", state(), s.context()), /read OVS bridge bmstor[\s\S]*did not answer `ovs-vsctl br-exists bmstor` \(no answer in 30 s\)/);
        s.verify();
    });

    it("delete while ovsdb-server hangs: fails and removes nothing (it does not report a bridge removed that is still there)", async () => {
        const { s, host } = box({ bridge: live, nic: [] });
        host.on(script("baremetal-ovs-read"), exit(4, hung));
        await assert.rejects(ovsBridge.delete("bmstor@198.51.100.12", state(), s.context()), /did not answer/);
        assert.deepStrictEqual(bridgeWrites(host), []);
        assert.deepStrictEqual(host.plans, []);
        s.verify();
    });

    it("delete with ovsdb-server stopped: starts it (only; not enabled at boot), then removes the bridge and gives the address back", async () => {
        const { s, host, net } = stoppedBox();
        host.on(script("baremetal-ovs-restore"), () => ((net.nic = [...(net.bridge?.addresses ?? [])]), ok()))
            .on(what(/^remove OVS bridge bmstor$/), () => (delete net.bridge, ok()));
        await ovsBridge.delete("bmstor@198.51.100.12", state(), s.context());
        assert.strictEqual(net.bridge, undefined);
        assert.deepStrictEqual(net.nic, [address]);
        assert.strictEqual(host.ran(script("baremetal-enable")).length, 0, "a delete does not enable Open vSwitch at boot");
        s.verify();
    });
});
