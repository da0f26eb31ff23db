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
import { check, kvmGuest, KvmGuestInputs, KvmGuestState, ownerMarker, pathsOf, serviceName, tapName, unitPath } from "../../provider/resources/kvmGuest";
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
        it("a running guest service someone else wrote, with adopt: true: refused (replacing its definition would restart the guest), pointing at asFound; nothing written or stopped", async () => {
            const qemu = { running: true };
            const { s, host } = servicesBox(qemu, { [unit]: foreignUnit() });
            await assert.rejects(kvmGuest.create(inputs({ adopt: true }), s.context()), (e: Error) => {
                assert.ok(e instanceof RefusedError, e.message);
                assert.match(e.message, /the service baremetal-guest-guest0 on root@198\.51\.100\.12:22 runs a guest under a definition pulumi-baremetal did not write; adopting it would replace that definition and restart the guest\. Nothing was changed\. Adopt it as it runs with asFound/);
                return true;
            });
            assert.deepStrictEqual(host.plans, []);
            assert.deepStrictEqual(serviceActions(host), []);
            assert.strictEqual(host.files.get(unit), foreignUnit());
            assert.ok(qemu.running);
            s.verify();
        });

        it("a stopped guest service someone else wrote, with adopt: true: its definition becomes ours and it starts (nothing ran, nothing is disturbed)", async () => {
            const qemu = { running: false };
            const { s, host } = servicesBox(qemu, { [unit]: foreignUnit() });
            const { outs } = await kvmGuest.create(inputs({ adopt: true }), s.context());
            assert.ok((host.files.get(unit) ?? "").includes(ownerMarker(mac)), "the unit now carries our owner marker");
            assert.deepStrictEqual(serviceActions(host), [`systemctl start ${svc}`]);
            assert.strictEqual(outs.status, "running");
            s.verify();
        });
    });

    describe("adopt as it runs (asFound): a qemu under a unit of its own", () => {
        const found = { service: "handvm.service", qmpSocket: "/run/handvm.qmp" };
        /** The box of a hand-made guest: its own unit, QMP on its own socket (the captured replies), its tap on bmstor. */
        function handBox(qemu: Qemu) {
            const { s, host } = servicesBox(qemu);
            // Its taps are read whatever the unit (the read script prints every tap asked for that exists).
            host.on(script("baremetal-guest-read"), (c) => {
                const content = c.argv[4] === "" ? undefined : host.files.get(c.argv[4]);
                const taps = qemu.running ? c.argv.slice(6).map((t) => `tap ${t} bmstor\n`).join("") : "";
                const marker = (content ?? "").split("\n").slice(0, 2).filter((l) => l.startsWith("# pulumi-baremetal guest"));
                return ok(`unit=${content === undefined ? "absent" : "present"}\n${marker.map((l) => `${l}\n`).join("")}active=${qemu.running ? "active" : "inactive"}\n${taps}`);
            })
                .on(argv("systemctl", "--quiet", "--no-reload", "disable", "handvm.service"), ok())
                .on(argv("systemctl", "stop", "handvm.service"), () => ((qemu.running = false), ok()))
                .on(argv("systemctl", "start", "handvm.service"), () => ((qemu.running = true), ok()))
                .on(qmp("powerdown"), () => ((qemu.running = false), ok("powered-off 3.1\n")));
            return { s, host };
        }
        const disturbing = (h: ScriptedRemote) =>
            h.commands
                .filter((c) => (c.argv[0] === "systemctl" && /^(start|stop|restart|kill)$/.test(c.argv[1])) || (c.argv[0] === "python3" && !["call", "wait"].includes(c.argv[3])))
                .map((c) => (c.argv[0] === "python3" ? `QMP ${c.argv.slice(3).join(" ")}` : c.argv.join(" ")));

        it("taken over as it runs: no unit written, nothing started, stopped or powered down; read through its own QMP socket", async () => {
            const qemu = { running: true };
            const { s, host } = handBox(qemu);
            const { id, outs } = await kvmGuest.create(inputs({ adopt: true, asFound: found }), s.context());
            assert.strictEqual(id, mac);
            assert.deepStrictEqual(disturbing(host), [], "no restart, no stop, no power-down");
            assert.deepStrictEqual(host.plans, [], "no plan: no unit, no package step");
            assert.ok(host.ran(qmp("call")).every((c) => c.argv[4] === "/run/handvm.qmp"));
            assert.deepStrictEqual([outs.serviceName, outs.qmpSocket, outs.status, outs.running, outs.memoryMiB], ["handvm.service", "/run/handvm.qmp", "running", true, 64]);
            assert.deepStrictEqual(outs.taps, [{ mac, tap: tapName(mac), bridge: "bmstor" }]);
            assert.ok(s.log.kept().includes("guest0: adopting the qemu that runs under handvm.service on root@198.51.100.12:22 as it runs (running); nothing was restarted"));
            s.verify();
        });

        it("what runs differs from the declaration (memory): refused, naming the difference; nothing changed", async () => {
            const { s, host } = handBox({ running: true });
            await assert.rejects(kvmGuest.create(inputs({ adopt: true, asFound: found, memoryMiB: 128 }), s.context()), /guest guest0 on root@198\.51\.100\.12:22 runs with memoryMiB 64 \(declared 128\); adopting it as it runs cannot change that without a restart\. Nothing was changed/);
            assert.deepStrictEqual(disturbing(host), []);
            s.verify();
        });

        it("asFound needs adopt: check says so, naming the field", () => {
            const r = check({}, { connection, name: "guest0", memoryMiB: 64, nics: [{ bridge: "bmstor", mac }], asFound: found });
            assert.deepStrictEqual(r.failures, [{ field: "asFound", reason: "keeps an existing qemu as it runs, so it needs adopt: true" }]);
        });

        it("a hardware change while kept as found: refused before anything is stopped, saying to remove asFound", async () => {
            const qemu = { running: true };
            const { s, host } = handBox(qemu);
            const { outs } = await kvmGuest.create(inputs({ adopt: true, asFound: found }), s.context());
            await assert.rejects(kvmGuest.update(mac, outs, inputs({ adopt: true, asFound: found, memoryMiB: 128 }), s.context()), /changing memoryMiB needs it restarted under pulumi-baremetal's own service\. Nothing was changed\. Remove asFound in the same change/);
            assert.deepStrictEqual(disturbing(host), []);
            assert.ok(qemu.running);
            s.verify();
        });

        it("removing asFound: preview says the guest restarts; the update disables its unit, powers it down through QMP, and starts it under baremetal-guest-<name>", async () => {
            const qemu = { running: true };
            const { s, host } = handBox(qemu);
            const { outs } = await kvmGuest.create(inputs({ adopt: true, asFound: found }), s.context());
            const news = inputs({ adopt: true });
            const d = kvmGuest.diff(mac, outs, news);
            assert.ok(d.changes);
            assert.deepStrictEqual(d.notes, ["guest0 moves from handvm.service to baremetal-guest-guest0: the guest is powered down (ACPI, up to 120s) and started again"]);
            const after = await kvmGuest.update(mac, outs, news, s.context());
            assert.deepStrictEqual(disturbing(host), ["QMP powerdown /run/handvm.qmp 120", "systemctl stop handvm.service", `systemctl start ${svc}`]);
            assert.deepStrictEqual(host.ran(argv("systemctl", "--quiet", "--no-reload", "disable")).map((c) => c.argv[4]), ["handvm.service"], "its own unit stays on the box, disabled");
            assert.ok((host.files.get(unit) ?? "").includes(ownerMarker(mac)), "our unit");
            assert.deepStrictEqual([after.serviceName, after.qmpSocket, after.status], [svc, pathsOf("guest0").qmpSocket, "running"]);
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

    // qemu goes on migrating when the connection that started it is cut: the
    // re-run asks the source's qemu first and finishes that move instead of
    // starting a second one (which qemu refuses while one is under way, and
    // which finds no incoming qemu once the guest runs on the target).
    describe("re-run after an interrupted live migration", () => {
        const targetConnection = { host: "198.51.100.10", hostKey: "SHA256:" + "B".repeat(43), password: "pw" };
        const completed = fixture("migrate-completed.json").trim();
        const status = (st: string, run: boolean) => JSON.stringify({ return: { status: st, singlestep: false, running: run } });

        interface Move {
            source: "running" | "postmigrate" | "gone";
            migration: "none" | "active" | "completed";
            target: "absent" | "inmigrate" | "running";
            /** query-migrate answers "active" this many more times, then the migration completes. */
            activePolls: number;
        }

        /** Two Debian boxes: the guest runs on the source (198.51.100.12), the target (198.51.100.10) has none yet. */
        function moveSite(move: Move) {
            const s = new ScriptedSite();
            const source = s.host(connection, { files: { [unit]: `${ownerMarker(mac)}\n[Service]\n` } });
            const target = s.host(targetConnection);
            const complete = () => Object.assign(move, { migration: "completed", source: "postmigrate", target: "running" });
            const queryMigrate = () => {
                if (move.migration === "completed") return completed;
                if (move.migration === "none") return "{\"return\": {}}";
                if (--move.activePolls <= 0) complete();
                return JSON.stringify({ return: { status: "active", "total-time": 900, ram: { remaining: 1048576 } } });
            };
            source
                .on(qmp("call"), (c) => {
                    if (move.source === "gone") return exit(qmpNotRunning);
                    const requests = JSON.parse(c.stdin ?? "[]") as { execute: string }[];
                    return ok(`[${requests.map((r) => (r.execute === "query-migrate" ? queryMigrate() : r.execute === "quit" ? ((move.source = "gone"), "{\"return\": {}}") : "{\"return\": {}}")).join(", ")}]`);
                })
                .on(qmp("migrate"), () => (complete(), ok(completed)))
                .on(argv("systemctl", "stop", svc), ok())
                .on(script("baremetal-stop-service"), ok());
            target
                .on(script("baremetal-install"), unchanged)
                .on(script("baremetal-enable"), ok())
                .on(script("baremetal-guest-read"), (c) => {
                    const content = target.files.get(c.argv[4]);
                    if (content === undefined) return ok("unit=absent\nactive=inactive\n");
                    return ok(`unit=present\n${ownerMarker(mac)}\nactive=${move.target === "absent" ? "inactive" : "active"}\n`);
                })
                .on(argv("systemctl", "start", svc), () => ((move.target = move.target === "absent" ? "inmigrate" : move.target), ok()))
                .on(argv("journalctl", "-u", svc), ok(""))
                .on(qmp("wait"), () => (move.target === "absent" ? exit(qmpNotRunning) : ok(move.target === "running" ? statusRunning : status("inmigrate", false))))
                .on(qmp("call"), (c) => {
                    if (move.target !== "running") return exit(qmpNotRunning);
                    const requests = JSON.parse(c.stdin ?? "[]") as unknown[];
                    return ok(requests.length === 1 ? `[${statusRunning}]` : running);
                });
            return { s, source, target, complete };
        }

        const olds = (): KvmGuestState => {
            const p = pathsOf("guest0");
            return { ...inputs(), mac, serviceName: svc, qmpSocket: p.qmpSocket, consoleLog: p.consoleLog, status: "running", running: true, blockDevices: [], taps: [] };
        };
        const news = () => inputs({ connection: targetConnection });

        it("cut while qemu sends the guest: the re-run waits for that migration to complete and finishes the move; one migrate in all", async () => {
            const move: Move = { source: "running", migration: "none", target: "absent", activePolls: 0 };
            const { s, source, target, complete } = moveSite(move);
            source.on(qmp("migrate"), droppedAfter(() => Object.assign(move, { migration: "active", activePolls: 1 })));
            await assert.rejects(kvmGuest.update(mac, olds(), news(), s.context()), /connection dropped/);
            assert.deepStrictEqual([move.migration, move.target], ["active", "inmigrate"], "qemu goes on without the connection");
            // qemu refuses a second migrate while one is under way.
            const inProgress = '{"error": {"class": "GenericError", "desc": "There\'s a migration process in progress"}}';
            source.on(qmp("migrate"), () => (move.migration === "active" ? ok(inProgress) : (complete(), ok(completed))));

            const fromTarget = target.commands.length;
            const state = await kvmGuest.update(mac, olds(), news(), s.context());
            assert.strictEqual(source.ran(qmp("migrate")).length, 1, "no second migrate");
            assert.deepStrictEqual(target.commands.slice(fromTarget).filter(argv("systemctl", "start")), [], "no second incoming qemu");
            assert.deepStrictEqual([state.connection.host, state.status, state.lastMigration?.totalTimeMs, state.lastMigration?.downtimeMs], ["198.51.100.10", "running", 290, 56]);
            assert.strictEqual(move.source, "gone", "the paused source qemu was told to quit");
            assert.ok(!source.files.has(unit), "the source's service is gone");
            assert.ok(s.log.kept().includes("guest0: the live migration an earlier run started has brought the guest to root@198.51.100.10:22; finishing the move"));
            s.verify();
        });

        it("cut after the source's qemu quit, while its service stops: the re-run finds the guest running on the target and removes the source's service", async () => {
            const move: Move = { source: "running", migration: "none", target: "absent", activePolls: 0 };
            const { s, source, target } = moveSite(move);
            source.on(argv("systemctl", "stop", svc), droppedAfter());
            await assert.rejects(kvmGuest.update(mac, olds(), news(), s.context()), /connection dropped/);
            assert.deepStrictEqual([move.source, move.target], ["gone", "running"]);
            assert.ok(source.files.has(unit));
            source.on(argv("systemctl", "stop", svc), ok());

            const state = await kvmGuest.update(mac, olds(), news(), s.context());
            assert.strictEqual(source.ran(qmp("migrate")).length, 1, "no second migrate");
            assert.strictEqual(target.ran(argv("systemctl", "start", svc)).length, 1, "the incoming qemu was started once");
            assert.deepStrictEqual([state.connection.host, state.status], ["198.51.100.10", "running"]);
            assert.ok(!source.files.has(unit), "the source's service is gone");
            s.verify();
        });
    });
});
