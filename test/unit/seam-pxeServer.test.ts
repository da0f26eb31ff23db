// PxeServer against a scripted PXE box: adopt, refuse, and the re-run after an
// interrupted create. The box's files are the scripted host's file table; its
// read script is answered from them (digests, descriptor) and from whether the
// DHCP service was started. The lab proves the same on real dnsmasq
// (test/lab/faultsPxe.test.ts, test/lab/pxe.test.ts).
import * as assert from "assert";
import { createHash } from "crypto";
import { RefusedError } from "../../provider/core/errors";
import { pxeLayout } from "../../provider/pxe/shared";
import { check, pxeServer, PxeServerInputs } from "../../provider/resources/pxeServer";
import { argv, droppedAfter, exit, fileWrites, ok, script, ScriptedRemote, unchanged } from "../fakes/scriptedRemote";
import { ScriptedSite } from "../fakes/scriptedSite";

const connection = { host: "198.51.100.10", hostKey: "SHA256:" + "A".repeat(43), password: "pw" };
const layout = pxeLayout("pxe-a");
const dhcp = layout.dhcpService;
const http = layout.httpService;
// What an operator's own dnsmasq instance config looks like: no pulumi-baremetal marker.
const foreignConf = "# hand-made\nport=0\ninterface=eth0\ndhcp-range=198.51.100.0,static\n";

function inputs(extra: Record<string, unknown> = {}): PxeServerInputs {
    const r = check({}, {
        connection,
        name: "pxe-a",
        address: "198.51.100.10",
        subnet: "198.51.100.0/24",
        profiles: { lab: { kind: "debian", kernel: { path: "/boot/vmlinuz" }, initramfs: { path: "/boot/initrd.img" }, cmdline: ["console=ttyS0"] } },
        ...extra,
    });
    assert.deepStrictEqual(r.failures, []);
    return r.inputs as PxeServerInputs;
}

/** The PXE box (Debian): packages present, profile files on it; the read script answers from its files and services. */
function box(files: Record<string, string> = {}) {
    const s = new ScriptedSite();
    const running = new Set<string>();
    const host: ScriptedRemote = s.host(connection, { files });
    const start = (c: { argv: string[] }) => (running.add(c.argv[2]), ok());
    host.on(script("baremetal-install"), unchanged)
        .on(script("baremetal-mkdirs"), unchanged)
        .on(script("baremetal-fetch"), ok())
        .on(argv("systemctl", "daemon-reload"), ok())
        .on(script("baremetal-enable"), ok())
        .on(argv("systemctl", "start"), start)
        .on(argv("systemctl", "restart"), start)
        .on(script("baremetal-service-state"), (c) => ok(running.has(c.argv[4]) ? "active\n" : "inactive\n"))
        .on(script("baremetal-pxe-read"), (c) => {
            const [desc, ...paths] = c.argv.slice(7);
            const descriptor = host.files.get(desc);
            if (descriptor === undefined) return exit(3);
            const digests = paths.map((p) => {
                const content = host.files.get(p);
                return content === undefined ? `missing  ${p}` : `${createHash("sha256").update(content).digest("hex")}  ${p}`;
            });
            return ok(`==descriptor==\n${descriptor}==role==\n${running.has(dhcp) ? "active" : "stopped"}\n==leases==\n==files==\n${digests.join("\n")}\n`);
        });
    return { s, host, running };
}

const serviceLines = (h: ScriptedRemote) => h.commands.filter((c) => c.argv[0] === "systemctl" && c.argv[1] !== "daemon-reload").map((c) => c.line);

describe("PxeServer against a scripted PXE box", () => {
    describe("adopt", () => {
        it("an instance config someone else wrote, its DHCP running, with adopt: true: refused (the rewrite would restart DHCP); nothing written, nothing restarted", async () => {
            const { s, host, running } = box({ [layout.dnsmasqConf]: foreignConf });
            running.add(dhcp);
            await assert.rejects(pxeServer.create(inputs({ adopt: true }), s.context()), (e: Error) => {
                assert.ok(e instanceof RefusedError, e.message);
                assert.match(e.message, new RegExp(`the PXE instance pxe-a on root@198\\.51\\.100\\.10:22 serves DHCP \\(${dhcp.replace(/[.]/g, "\\.")}\\) from a config pulumi-baremetal did not write; adopting it would rewrite that config and restart DHCP\\. Nothing was changed\\. Stop`));
                return true;
            });
            assert.deepStrictEqual(host.plans, []);
            assert.deepStrictEqual(serviceLines(host), []);
            assert.strictEqual(host.files.get(layout.dnsmasqConf), foreignConf);
            s.verify();
        });

        it("an instance config someone else wrote, its DHCP stopped, with adopt: true: rewritten as ours and started (nothing ran, nothing is disturbed)", async () => {
            const { s, host } = box({ [layout.dnsmasqConf]: foreignConf });
            const { id, outs } = await pxeServer.create(inputs({ adopt: true }), s.context());
            assert.strictEqual(id, "pxe-a@198.51.100.10");
            const conf = host.files.get(layout.dnsmasqConf) ?? "";
            assert.match(conf, /^# managed by pulumi-baremetal: PXE server pxe-a/);
            assert.deepStrictEqual(serviceLines(host), [`systemctl restart ${http}`, `systemctl restart ${dhcp}`]);
            assert.strictEqual(outs.dhcpRole, "active");
            assert.ok(Object.values(outs.files).every((d) => /^[0-9a-f]{64}$/.test(d)), "every generated file is on the box");
            s.verify();
        });

        it("its own instance (a config with our marker), without adopt: not refused; an unchanged box is not restarted", async () => {
            const { s, host } = box();
            await pxeServer.create(inputs(), s.context());
            const before = serviceLines(host).length;
            const from = host.commands.length;
            await pxeServer.create(inputs(), s.context());
            assert.deepStrictEqual(serviceLines(host).slice(before), [`systemctl start ${http}`, `systemctl start ${dhcp}`], "start (a no-op on a running unit), never restart");
            const rewrites = host.commands.slice(from).filter(fileWrites);
            assert.ok(rewrites.length > 0 && rewrites.every((c) => c.reply?.stdout === "=baremetal-unchanged=\n"), "every file already so");
            s.verify();
        });
    });

    describe("refuse", () => {
        it("an instance config someone else wrote, without adopt: refused naming the file and the host; nothing written or started", async () => {
            const { s, host } = box({ [layout.dnsmasqConf]: foreignConf });
            await assert.rejects(pxeServer.create(inputs(), s.context()), (e: Error) => {
                assert.ok(e instanceof RefusedError, e.message);
                assert.match(e.message, /\/etc\/baremetal\/pxe\/pxe-a\/dnsmasq\.conf on root@198\.51\.100\.10:22 exists and was not written by pulumi-baremetal\. Nothing was changed\. Set adopt: true on this PxeServer/);
                return true;
            });
            assert.deepStrictEqual(host.plans, []);
            assert.strictEqual(host.files.get(layout.dnsmasqConf), foreignConf, "the operator's file is untouched");
            assert.deepStrictEqual(host.commands.map((c) => c.what), [`read ${layout.dnsmasqConf}`]);
            s.verify();
        });
    });

    describe("re-run after an interrupted create", () => {
        it("cut while DHCP was restarting: the re-run finds its files already so, starts DHCP, and reports it active", async () => {
            const { s, host, running } = box();
            host.on(argv("systemctl", "restart", dhcp), droppedAfter());
            await assert.rejects(pxeServer.create(inputs(), s.context()), /connection dropped/);
            assert.ok(!running.has(dhcp));
            const filesAfterCut = new Map(host.files);

            const from = host.commands.length;
            const { outs } = await pxeServer.create(inputs(), s.context());
            const rerun = host.commands.slice(from);
            assert.deepStrictEqual(new Map(host.files), filesAfterCut, "no file written twice or differently");
            assert.ok(rerun.filter(fileWrites).every((c) => c.reply?.stdout === "=baremetal-unchanged=\n"));
            assert.deepStrictEqual(rerun.filter((c) => c.argv[0] === "systemctl" && c.argv[1] !== "daemon-reload").map((c) => c.line), [`systemctl start ${http}`, `systemctl start ${dhcp}`]);
            assert.strictEqual(outs.dhcpRole, "active");
            s.verify();
        });
    });
});
