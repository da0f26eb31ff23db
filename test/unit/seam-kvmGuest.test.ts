// KvmGuest against a scripted services box: adopt, refuse, and the re-run after
// an interrupted create. The box answers the guest's read script from its file
// table (the unit the plan installed, its owner marker) and whether qemu runs;
// QMP answers with the replies captured from the lab's qemu
// (test/unit/fixtures/qmp). The lab proves the same on real qemu and systemd
// (test/lab/faultsGuests.test.ts, test/lab/guests.test.ts).
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { RefusedError } from "../../provider/core/errors";
import { qmpNotRunning } from "../../provider/qmp/script";
import { check, kvmGuest, KvmGuestInputs, ownerMarker, pathsOf, serviceName, tapName, unitPath } from "../../provider/resources/kvmGuest";
import { argv, droppedAfter, exit, ok, qmp, script, ScriptedRemote, unchanged } from "../fakes/scriptedRemote";
import { ScriptedSite } from "../fakes/scriptedSite";

const fixture = (name: string) => fs.readFileSync(path.join(__dirname, "../../../test/unit/fixtures/qmp", name), "utf8");
const connection = { host: "198.51.100.12", hostKey: "SHA256:" + "A".repeat(43), password: "pw" };
// guest-running-nbd-ovs.json: 64 MiB, disk nbd://198.18.1.11:10810/guest0, NIC 52:54:00:7e:00:01 on tap vm5254007e0001 in bmstor.
const mac = "52:54:00:7e:00:01";
const svc = serviceName("guest0");
const unit = unitPath("guest0", "debian");
const running = fixture("guest-running-nbd-ovs.json");
const statusRunning = JSON.stringify(JSON.parse(running)[0]);

function inputs(extra: Record<string, unknown> = {}): KvmGuestInputs {
    const r = check({}, { connection, name: "guest0", memoryMiB: 64, disks: [{ nbd: { host: "198.18.1.11", port: 10810, export: "guest0" } }], nics: [{ bridge: "bmstor", mac }], ...extra });
    assert.deepStrictEqual(r.failures, []);
    return r.inputs as KvmGuestInputs;
}

interface Qemu {
    running: boolean;
}

/** A Debian services box: its read script answers from the unit file and whether qemu runs; QMP from the captured replies. */
function servicesBox(qemu: Qemu, files: Record<string, string> = {}) {
    const s = new ScriptedSite();
    const host: ScriptedRemote = s.host(connection, { files });
    host.on(script("baremetal-install"), unchanged)
        .on(script("baremetal-enable"), ok())
        .on(script("baremetal-guest-read"), (c) => {
            const content = host.files.get(c.argv[4]);
            if (content === undefined) return ok(`unit=absent\nactive=inactive\n`);
            const marker = content.split("\n").slice(0, 2).filter((l) => l.startsWith("# pulumi-baremetal guest"));
            const taps = qemu.running ? c.argv.slice(6).map((t) => `tap ${t} bmstor\n`).join("") : "";
            return ok(`unit=present\n${marker.map((l) => `${l}\n`).join("")}active=${qemu.running ? "active" : "inactive"}\n${taps}`);
        })
        .on(argv("systemctl", "start", svc), () => ((qemu.running = true), ok()))
        .on(argv("systemctl", "stop", svc), () => {
            qemu.running = false;
            host.putFile(pathsOf("guest0").stopOutcome, "powered-off 2.4\n");
            return ok();
        })
        .on(qmp("wait"), () => (qemu.running ? ok(statusRunning) : exit(qmpNotRunning)))
        .on(qmp("call"), () => (qemu.running ? ok(running) : exit(qmpNotRunning)));
    return { s, host };
}

/** A unit someone else wrote for a guest of that name (another MAC's marker, or none). */
const foreignUnit = (owner?: string) => `${owner ? `${ownerMarker(owner)}\n` : ""}[Unit]\nDescription=hand-made guest0\n[Service]\nExecStart=/usr/bin/qemu-system-x86_64 -name guest0\n`;
const serviceActions = (h: ScriptedRemote) => h.commands.filter((c) => c.argv[0] === "systemctl" && (c.argv[1] === "start" || c.argv[1] === "stop" || c.argv[1] === "restart")).map((c) => c.line);

describe("KvmGuest against a scripted services box", () => {
    describe("adopt", () => {
        it("a running guest service someone else wrote, with adopt: true: its definition is replaced by ours and the guest restarted gracefully onto it", async () => {
            const qemu = { running: true };
            const { s, host } = servicesBox(qemu, { [unit]: foreignUnit() });
            const { id, outs } = await kvmGuest.create(inputs({ adopt: true }), s.context());
            assert.strictEqual(id, mac);
            assert.ok((host.files.get(unit) ?? "").includes(ownerMarker(mac)), "the unit now carries our owner marker");
            assert.deepStrictEqual(serviceActions(host), [`systemctl stop ${svc}`, `systemctl start ${svc}`]);
            assert.deepStrictEqual([outs.status, outs.memoryMiB, outs.taps[0]], ["running", 64, { mac, tap: tapName(mac), bridge: "bmstor" }]);
            assert.deepStrictEqual(outs.blockDevices.map((b) => b.file), ["nbd://198.18.1.11:10810/guest0"]);
            assert.ok(s.log.kept().some((l) => l === "guest0: adopting the existing service on root@198.51.100.12:22"));
            assert.ok(s.log.kept().some((l) => l === "guest0: powered off by itself after 2.4s"));
            s.verify();
        });
    });

    describe("refuse", () => {
        it("a guest service of that name for another guest, without adopt: refused naming the host and that guest's MAC; nothing written, nothing stopped", async () => {
            const qemu = { running: true };
            const { s, host } = servicesBox(qemu, { [unit]: foreignUnit("52:54:00:00:00:99") });
            await assert.rejects(kvmGuest.create(inputs(), s.context()), (e: Error) => {
                assert.ok(e instanceof RefusedError, e.message);
                assert.match(e.message, /a service baremetal-guest-guest0 already exists on root@198\.51\.100\.12:22 for the guest with MAC 52:54:00:00:00:99\. Nothing was changed\. Set adopt: true on this KvmGuest/);
                return true;
            });
            assert.deepStrictEqual(host.plans, []);
            assert.ok(qemu.running);
            assert.strictEqual(host.files.get(unit), foreignUnit("52:54:00:00:00:99"));
            s.verify();
        });

        it("delete when the service now belongs to another guest: refused, that guest keeps running", async () => {
            const qemu = { running: false };
            const { s, host } = servicesBox(qemu);
            const { outs } = await kvmGuest.create(inputs(), s.context());
            host.putFile(unit, foreignUnit("52:54:00:00:00:99"));
            await assert.rejects(kvmGuest.delete(mac, outs, s.context()), /the service baremetal-guest-guest0 on root@198\.51\.100\.12:22 now belongs to the guest with MAC 52:54:00:00:00:99, not 52:54:00:7e:00:01\. Nothing was changed/);
            assert.deepStrictEqual(serviceActions(host), [`systemctl start ${svc}`], "no stop");
            s.verify();
        });
    });

    describe("re-run after an interrupted create", () => {
        it("cut while the service was starting (qemu came up): the re-run finds its own running guest and neither stops nor starts it again", async () => {
            const qemu = { running: false };
            const { s, host } = servicesBox(qemu);
            host.on(argv("systemctl", "start", svc), droppedAfter(() => (qemu.running = true)));
            await assert.rejects(kvmGuest.create(inputs(), s.context()), /connection dropped/);
            assert.ok(qemu.running);

            const { outs } = await kvmGuest.create(inputs(), s.context());
            assert.deepStrictEqual(serviceActions(host), [`systemctl start ${svc}`], "one start in all, no stop");
            assert.strictEqual(outs.status, "running");
            assert.ok(s.log.kept().includes("guest0: found the service an earlier run created on root@198.51.100.12:22"));
            s.verify();
        });

        it("cut after the unit was installed, before the start: the re-run keeps the unit (already so) and starts the guest", async () => {
            const qemu = { running: false };
            const { s, host } = servicesBox(qemu);
            host.on(script("baremetal-enable"), droppedAfter());
            await assert.rejects(kvmGuest.create(inputs(), s.context()), /connection dropped/);
            assert.ok(host.files.has(unit) && !qemu.running);
            host.on(script("baremetal-enable"), unchanged);

            const from = host.commands.length;
            await kvmGuest.create(inputs(), s.context());
            const unitWrites = host.commands.slice(from).filter((c) => c.argv[4] === unit && c.step?.kind === "installService");
            assert.deepStrictEqual(unitWrites.map((c) => c.reply?.stdout), ["=baremetal-unchanged=\n"]);
            assert.deepStrictEqual(serviceActions(host), [`systemctl start ${svc}`]);
            s.verify();
        });
    });
});
