// PxeServer's dhcpRole: derived from what the box shows (dnsmasq alive, only its
// service running, neither) and whether the server is in standby mode, and read
// again after a start until it settles. Issue 15: the only PXE server of the quick
// start (standby mode, nobody else holding the lock) said "standby" in its first
// summary, because the read right after create ran before `consul lock` had taken
// the lock and started dnsmasq.
import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { check, dhcpRoleOf, dhcpSettling, pxeServer, PxeServerInputs } from "../../provider/resources/pxeServer";
import { roleReadScript } from "../../provider/resources/pxeServer/read";
import { boxShells, shellName } from "../fakes/shells";
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
 * A Debian PXE box whose read scripts (the whole read and the role-only one) report the DHCP
 * words in `roles`, one per read (the last one repeating): what `consul lock` and dnsmasq show
 * while starting.
 */
function box(roles: string[]): { s: ScriptedSite; host: ScriptedRemote; reads: () => { whole: number; role: number } } {
    const s = new ScriptedSite();
    const host = s.host(connection);
    let n = 0;
    const counts = { whole: 0, role: 0 };
    const next = () => roles[Math.min(n++, roles.length - 1)];
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
            counts.whole++;
            return ok(`==descriptor==\n${descriptor}==role==\n${next()}\n==leases==\n==files==\n`);
        })
        .on(script("baremetal-pxe-role"), () => {
            counts.role++;
            return ok(`${next()}\n`);
        });
    return { s, host, reads: () => ({ ...counts }) };
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
            // standby (whole read), standby, active (the role alone while it settles), then the whole read once more
            assert.deepStrictEqual(reads(), { whole: 2, role: 2 }, "read until it settled, not once; only the role while settling");
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

describe("PxeServer role-only read script, under dash and BusyBox sh", () => {
    // An OpenRC box's answer (no /run/systemd/system): rc-service is a test double named as a
    // fake below, answering `status` as the real one does for a started or a stopped service.
    let dir: string;
    before(function () {
        if (fs.existsSync("/run/systemd/system")) this.skip(); // the script would ask this machine's systemd
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "baremetal-pxe-role-"));
        fs.writeFileSync(path.join(dir, "rc-service"), '#!/bin/sh\n# FAKE rc-service: status of the service named in $FAKE_STARTED is "started"\n[ "$2" = status ] && [ "$1" = "$FAKE_STARTED" ]\n', { mode: 0o755 });
    });
    after(() => dir && fs.rmSync(dir, { recursive: true, force: true }));
    const shells = boxShells();

    function role(shell: string[], pid: string | undefined, started: string): string {
        const pidFile = path.join(dir, "dnsmasq.pid");
        fs.rmSync(pidFile, { force: true });
        if (pid !== undefined) fs.writeFileSync(pidFile, `${pid}\n`);
        const r = spawnSync(shell[0], [...shell.slice(1), "-c", roleReadScript, "baremetal-pxe-role", pidFile, "baremetal-pxe-pxe-a-dhcp"], {
            encoding: "utf8",
            env: { PATH: `${dir}:/usr/bin:/bin`, FAKE_STARTED: started },
        });
        assert.strictEqual(r.status, 0, r.stderr);
        return r.stdout.trim();
    }

    for (const shell of shells) {
        it(`${shellName(shell)}: dnsmasq alive is active; its service alone is standby; neither is stopped`, () => {
            assert.strictEqual(role(shell, String(process.pid), ""), "active");
            assert.strictEqual(role(shell, "999999999", "baremetal-pxe-pxe-a-dhcp"), "standby", "a stale pid file");
            assert.strictEqual(role(shell, undefined, "baremetal-pxe-pxe-a-dhcp"), "standby");
            assert.strictEqual(role(shell, undefined, "other"), "stopped");
        });
    }
});
