// PxeServer's dhcpRole: derived from what the box shows (dnsmasq alive, only its
// service running, neither) and whether the server is in standby mode, and read
// again after a start until it settles. Issue 15: the only PXE server of the quick
// start (standby mode, nobody else holding the lock) said "standby" in its first
// summary, because the read right after create ran before `consul lock` had taken
// the lock and started dnsmasq.
import * as assert from "assert";
import { check, dhcpRoleOf, dhcpSettling, pxeServer, PxeServerInputs } from "../../provider/resources/pxeServer";
import { pxeLayout } from "../../provider/pxe/shared";
import { argv, exit, ok, script, ScriptedRemote, unchanged } from "../fakes/scriptedRemote";
import { ScriptedSite } from "../fakes/scriptedSite";

const connection = { host: "198.51.100.10", hostKey: "SHA256:" + "A".repeat(43), password: "pw" };

function inputs(extra: Record<string, unknown> = {}): PxeServerInputs {
    const r = check({}, {
        connection,
        name: "pxe-a",
        address: "198.51.100.10",
        subnet: "198.51.100.0/24",
        profiles: { lab: { kind: "debian", kernel: { path: "/boot/vmlinuz" }, initramfs: { path: "/boot/initrd.img" } } },
        ...extra,
    });
    assert.deepStrictEqual(r.failures, []);
    return r.inputs as PxeServerInputs;
}

/**
 * A Debian PXE box whose read script reports the DHCP words in `roles`, one per
 * read (the last one repeating): what `consul lock` and dnsmasq show while starting.
 */
function box(roles: string[]): { s: ScriptedSite; host: ScriptedRemote; reads: () => number } {
    const s = new ScriptedSite();
    const host = s.host(connection);
    let n = 0;
    host.on(script("baremetal-install"), unchanged)
        .on(script("baremetal-mkdirs"), unchanged)
        .on(script("baremetal-fetch"), ok())
        .on(argv("systemctl", "daemon-reload"), ok())
        .on(script("baremetal-enable"), ok())
        .on(argv("systemctl", "start"), ok())
        .on(argv("systemctl", "restart"), ok())
        .on(script("baremetal-pxe-read"), (c) => {
            const descriptor = host.files.get(c.argv[7]);
            if (descriptor === undefined) return exit(3);
            const role = roles[Math.min(n++, roles.length - 1)];
            return ok(`==descriptor==\n${descriptor}==role==\n${role}\n==leases==\n==files==\n`);
        });
    return { s, host, reads: () => n };
}

describe("PxeServer dhcpRole", () => {
    describe("derived from what the box shows", () => {
        it("dnsmasq alive is active, with or without standby mode", () => {
            assert.strictEqual(dhcpRoleOf("dnsmasq", true), "active");
            assert.strictEqual(dhcpRoleOf("dnsmasq", false), "active");
        });
        it("the service without dnsmasq is a standby only in standby mode; otherwise DHCP is not served", () => {
            assert.strictEqual(dhcpRoleOf("service", true), "standby");
            assert.strictEqual(dhcpRoleOf("service", false), "stopped");
        });
        it("neither is stopped", () => {
            assert.strictEqual(dhcpRoleOf("none", true), "stopped");
            assert.strictEqual(dhcpRoleOf("none", false), "stopped");
        });
        it("is read again while stopped, and while standby only right after DHCP was started", () => {
            assert.deepStrictEqual(
                (["active", "standby", "stopped"] as const).map((r) => [dhcpSettling(r, true), dhcpSettling(r, false)]),
                [[false, false], [true, false], [true, true]],
            );
        });
    });

    describe("the first read after create", () => {
        it("the only server of a standby group reports active once consul lock has taken the lock", async () => {
            const { s, reads } = box(["standby", "standby", "active"]);
            const { outs } = await pxeServer.create(inputs({ standby: {} }), s.context());
            assert.strictEqual(outs.dhcpRole, "active");
            assert.strictEqual(reads(), 3, "read until it settled, not once");
            s.verify();
        });
        it("a server without standby mode is never reported standby: active once dnsmasq wrote its pid file", async () => {
            const { s } = box(["standby", "active"]);
            const { outs } = await pxeServer.create(inputs(), s.context());
            assert.strictEqual(outs.dhcpRole, "active");
            s.verify();
        });
    });

    it("a refresh of a server without standby mode whose service runs without dnsmasq reads stopped (the next update starts it)", async () => {
        const { s, host } = box(["active"]);
        const { outs } = await pxeServer.create(inputs(), s.context());
        host.on(script("baremetal-pxe-read"), ok(`==descriptor==\n${host.files.get(pxeLayout("pxe-a").descriptor)}==role==\nstandby\n==leases==\n==files==\n`));
        const read = await pxeServer.read("pxe-a@198.51.100.10", outs, s.context());
        assert.strictEqual(read?.dhcpRole, "stopped");
        s.verify();
    });
});
