// NbdVolume against a scripted SAN box and a fake Consul: adopt, refuse, and the
// re-run after an interrupted create. The box's read script is answered from a
// small model (the LV as `lvs` reports it in test/unit/fixtures/nbd, the files
// the plans wrote, whether the export's service runs), so each run sees what the
// previous one left. The lab proves the same on real LVM and nbd-server
// (test/lab/ceph1FaultsStorage.test.ts, test/lab/storage.test.ts).
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { RefusedError } from "../../provider/core/errors";
import { check, nbdVolume, NbdVolumeInputs, NbdVolumeState } from "../../provider/resources/nbdVolume";
import { argv, droppedAfter, exit, fileWrites, ok, script, ScriptedRemote, unchanged } from "../fakes/scriptedRemote";
import { ScriptedSite } from "../fakes/scriptedSite";

const fixture = (name: string) => fs.readFileSync(path.join(__dirname, "../../../test/unit/fixtures/nbd", name), "utf8");
const connection = { host: "198.51.100.11", hostKey: "SHA256:" + "A".repeat(43), password: "pw" };
const consul = { address: "198.51.100.2:8500" };
const owner = "52:54:00:12:34:56";
// read-serving.txt: LV bmvg/guest1-var, 64 MiB, tagged pulumi-baremetal; read-missing.txt: no such LV.
const lvsOurs = fixture("read-serving.txt").split("==config==\n")[0];
const lvsForeign = lvsOurs.replace('"lv_tags":"pulumi-baremetal"', '"lv_tags":""');
const lvsNone = fixture("read-missing.txt").split("==config==\n")[0];
const lvUuid = "zFXTPJ-Vemw-3pra-Ooct-pYXW-XkpD-cOeMRu";
const unit = "baremetal-nbd@bmvg-guest1--var";

function inputs(extra: Record<string, unknown> = {}): NbdVolumeInputs {
    const r = check({}, { connection, volumeGroup: "bmvg", name: "guest1-var", size: "64MiB", port: 10820, allowedClients: ["198.18.1.12"], owner, consul, ...extra });
    assert.deepStrictEqual(r.failures, []);
    return r.inputs as NbdVolumeInputs;
}

interface Box {
    lv: "none" | "ours" | "foreign";
    serving: boolean;
}

/** The SAN box: lvm2 and nbd-server installed, VG bmvg present; reads answered from `box` and the files plans wrote. */
function san(box: Box) {
    const s = new ScriptedSite();
    const consulAgent = s.consulAt(consul);
    const host: ScriptedRemote = s.host(connection);
    const serve = () => ((box.serving = true), ok());
    host.on(script("baremetal-install"), unchanged)
        .on(argv("vgs", "--noheadings", "-o", "vg_name", "--", "bmvg"), ok("  bmvg\n"))
        .on(script("baremetal-nbd-read"), (c) => {
            const [conf, auth] = [c.argv[6], c.argv[7]];
            const lvs = { none: lvsNone, ours: lvsOurs, foreign: lvsForeign }[box.lv];
            return ok(`${lvs}==config==\n${host.files.get(conf) ?? ""}==auth==\n${host.files.get(auth) ?? ""}==serving==\n${box.serving ? "active" : "inactive"}\n`);
        })
        .on(argv("systemctl", "daemon-reload"), ok())
        .on(script("baremetal-enable"), ok())
        .on(argv("systemctl", "start", unit), serve)
        .on(argv("systemctl", "restart", unit), serve)
        .on(argv("lvcreate"), () => ((box.lv = "ours"), ok()));
    return { s, host, consulAgent };
}

const lines = (h: ScriptedRemote) => h.commands.map((c) => c.line);
const lvmWrites = (h: ScriptedRemote) => lines(h).filter((l) => /^(lvcreate|lvextend|lvremove)\b/.test(l));

describe("NbdVolume against a scripted SAN box", () => {
    describe("adopt", () => {
        it("an LV someone else made, with adopt: true: exported and registered as it is (no lvcreate, no lvextend), its data kept", async () => {
            const box: Box = { lv: "foreign", serving: false };
            const { s, host, consulAgent } = san(box);
            const { id, outs } = await nbdVolume.create(inputs({ adopt: true }), s.context());
            assert.strictEqual(id, "198.51.100.11/bmvg/guest1-var");
            assert.deepStrictEqual(lvmWrites(host), [], "the LV is not created or resized");
            assert.deepStrictEqual([outs.lvUuid, outs.sizeBytes, outs.serving, outs.registered], [lvUuid, 67108864, true, true]);
            assert.strictEqual(outs.uri, "nbd://198.51.100.11:10820/guest1-var");
            assert.strictEqual(host.ran(argv("systemctl", "start", unit)).length, 1);
            assert.deepStrictEqual(host.ran(argv("systemctl", "restart", unit)), [], "a start, not a restart: nobody was connected");
            // The config nbd-server reads is the one captured from the lab.
            assert.strictEqual(host.files.get("/etc/nbd-server/baremetal/bmvg-guest1--var.conf"), fixture("baremetal-export.conf"));
            assert.strictEqual(host.files.get("/etc/nbd-server/baremetal/bmvg-guest1--var.allow"), fixture("baremetal-export.allow"));
            assert.deepStrictEqual(consulAgent.writes, ["register service nbd-bmvg-guest1--var on 198-51-100-11-nbd"]);
            assert.strictEqual((await consulAgent.services.service("198-51-100-11-nbd", "nbd-bmvg-guest1--var"))?.meta.owner, owner);
            assert.ok(s.log.kept().includes("logical volume bmvg/guest1-var already exists (64MiB): adopting it"));
            s.verify();
        });
    });

    describe("refuse", () => {
        it("an LV of that name pulumi-baremetal did not make, without adopt: refused naming the host and its size; nothing exported, nothing registered", async () => {
            const { s, host, consulAgent } = san({ lv: "foreign", serving: false });
            await assert.rejects(nbdVolume.create(inputs(), s.context()), (e: Error) => {
                assert.ok(e instanceof RefusedError, e.message);
                assert.match(e.message, /logical volume bmvg\/guest1-var already exists on root@198\.51\.100\.11:22 \(64MiB\) and was not created by pulumi-baremetal\. Nothing was changed\. Set adopt: true/);
                return true;
            });
            assert.deepStrictEqual(host.stepsApplied(), ["install packages lvm2 nbd-server (if missing)"]);
            assert.deepStrictEqual(lvmWrites(host), []);
            assert.deepStrictEqual([...host.files.keys()], [], "no export file written");
            assert.deepStrictEqual(consulAgent.writes, []);
            s.verify();
        });

        it("no such volume group: refused, naming it and the host", async () => {
            const { s, host } = san({ lv: "none", serving: false });
            host.on(argv("vgs", "--noheadings", "-o", "vg_name", "--", "bmvg"), exit(5, '  Volume group "bmvg" not found'));
            await assert.rejects(nbdVolume.create(inputs(), s.context()), /volume group bmvg does not exist on root@198\.51\.100\.11:22\. Nothing was changed\. Create it first/);
            assert.deepStrictEqual(lvmWrites(host), []);
            s.verify();
        });

        it("delete without allowDataLoss: refused before the box is touched, naming the data it would lose", async () => {
            const { s, host, consulAgent } = san({ lv: "none", serving: false });
            const { outs } = await nbdVolume.create(inputs(), s.context());
            const before = host.commands.length;
            await assert.rejects(nbdVolume.delete(outs.uri, outs, s.context()), /deleting NbdVolume bmvg\/guest1-var on root@198\.51\.100\.11:22 would remove its data \(64MiB\), export guest1-var and its Consul entry\. Nothing was changed\. To delete it, set allowDataLoss: true/);
            assert.strictEqual(host.commands.length, before);
            assert.ok(!consulAgent.writes.some((w) => w.startsWith("deregister")));
            s.verify();
        });

        it("delete when the LV is now another one (other uuid): refused, the export keeps serving", async () => {
            const { s, host } = san({ lv: "none", serving: false });
            const { outs } = await nbdVolume.create(inputs({ allowDataLoss: true }), s.context());
            const stale: NbdVolumeState = { ...outs, lvUuid: "aaaaaa-bbbb-cccc-dddd-eeee-ffff-gggggg" };
            await assert.rejects(nbdVolume.delete(outs.uri, stale, s.context()), /bmvg\/guest1-var on root@198\.51\.100\.11:22 is now a different LV \(uuid zFXTPJ-.*expected aaaaaa-.*Nothing was changed/);
            assert.deepStrictEqual(host.ran(argv("systemctl", "stop")), []);
            assert.deepStrictEqual(lvmWrites(host), ["lvcreate -q -y -L 67108864b -n guest1-var --addtag pulumi-baremetal bmvg"]);
            s.verify();
        });
    });

    describe("re-run after an interrupted create", () => {
        it("cut during lvcreate: the re-run takes back its own tagged LV (no adopt needed), exports and registers it; lvcreate ran once", async () => {
            const box: Box = { lv: "none", serving: false };
            const { s, host, consulAgent } = san(box);
            host.on(argv("lvcreate"), droppedAfter(() => (box.lv = "ours")));
            await assert.rejects(nbdVolume.create(inputs(), s.context()), /connection dropped/);
            assert.deepStrictEqual(consulAgent.writes, []);

            const { outs } = await nbdVolume.create(inputs(), s.context());
            assert.deepStrictEqual(lvmWrites(host), ["lvcreate -q -y -L 67108864b -n guest1-var --addtag pulumi-baremetal bmvg"], "no second LV");
            assert.strictEqual(host.ran(argv("lvcreate"))[0].lock, "lvm");
            assert.deepStrictEqual([outs.serving, outs.registered, outs.adopt], [true, true, false]);
            assert.deepStrictEqual(consulAgent.writes, ["register service nbd-bmvg-guest1--var on 198-51-100-11-nbd"]);
            s.verify();
        });

        it("cut after the files were written, before the start: the re-run finds them already so and starts the export (no restart)", async () => {
            const box: Box = { lv: "none", serving: false };
            const { s, host } = san(box);
            host.on(script("baremetal-enable"), droppedAfter());
            await assert.rejects(nbdVolume.create(inputs(), s.context()), /connection dropped/);
            assert.strictEqual(box.serving, false);
            host.on(script("baremetal-enable"), ok());

            const from = host.commands.length;
            await nbdVolume.create(inputs(), s.context());
            const rewrites = host.commands.slice(from).filter(fileWrites);
            assert.deepStrictEqual(rewrites.map((c) => [c.argv[4], c.reply?.stdout]), [
                ["/etc/systemd/system/baremetal-nbd@.service", "=baremetal-unchanged=\n"],
                ["/etc/nbd-server/baremetal/bmvg-guest1--var.allow", "=baremetal-unchanged=\n"],
                ["/etc/nbd-server/baremetal/bmvg-guest1--var.conf", "=baremetal-unchanged=\n"],
            ], "every file is already so");
            assert.strictEqual(host.ran(argv("lvcreate")).length, 1);
            assert.strictEqual(host.ran(argv("systemctl", "start", unit)).length, 1);
            assert.deepStrictEqual(host.ran(argv("systemctl", "restart", unit)), []);
            s.verify();
        });

        it("cut at the very end (served and registered): the re-run changes nothing and does not restart the export (its clients stay connected)", async () => {
            const box: Box = { lv: "none", serving: false };
            const { s, host, consulAgent } = san(box);
            await nbdVolume.create(inputs(), s.context());
            const restartsBefore = host.ran(argv("systemctl", "restart")).length;
            await nbdVolume.create(inputs(), s.context());
            assert.strictEqual(host.ran(argv("systemctl", "restart")).length, restartsBefore);
            assert.strictEqual(host.ran(argv("lvcreate")).length, 1);
            assert.strictEqual(consulAgent.serviceData.get("198-51-100-11-nbd")?.size, 1, "one catalog entry");
            assert.ok(!s.log.lines.some((l) => l.level === "warn" && /restarting the nbd-server/.test(l.message)));
            s.verify();
        });
    });

    // The command of a cut run may still be running on the box when the re-run
    // reads (it holds the LVM lock until it exits): the read that create, update
    // and delete act on waits for it under that lock, so the command is not issued twice.
    describe("re-run while the cut run's LVM command still runs", () => {
        const mib = (n: number) => n * 2 ** 20;
        /** The SAN box with the LV's size modelled: `lvs` reports `lv.sizeBytes`, lvextend fails like LVM when the size would not change. */
        function sizedSan(box: Box, lv: { sizeBytes: number }) {
            const site = san(box);
            const { host } = site;
            const lvs = () => (box.lv === "ours" ? lvsOurs.replace('"lv_size":"67108864"', `"lv_size":"${lv.sizeBytes}"`) : lvsNone);
            host.on(script("baremetal-nbd-read"), (c) => {
                const [conf, auth] = [c.argv[6], c.argv[7]];
                return ok(`${lvs()}==config==\n${host.files.get(conf) ?? ""}==auth==\n${host.files.get(auth) ?? ""}==serving==\n${box.serving ? "active" : "inactive"}\n`);
            });
            return site;
        }
        /** lvextend as LVM answers it: to the size the LV already has, it fails. */
        const lvextend = (lv: { sizeBytes: number }) => (c: { argv: string[] }) => {
            const want = Number(c.argv[3].replace(/b$/, ""));
            if (want === lv.sizeBytes) return exit(5, `  New size (${want / mib(4)} extents) matches existing size (${want / mib(4)} extents).`);
            lv.sizeBytes = want;
            return ok();
        };
        const readsBeforeChange = (h: ScriptedRemote, from: number) => h.commands.slice(from).filter(script("baremetal-nbd-read"))[0];

        it("grow cut while lvextend runs on: the re-run's read waits for it (LVM lock), sees the new size and issues no second lvextend", async () => {
            const box: Box = { lv: "none", serving: false };
            const lv = { sizeBytes: mib(64) };
            const { s, host } = sizedSan(box, lv);
            const { outs } = await nbdVolume.create(inputs(), s.context());
            const news = inputs({ size: "128MiB" });
            host.on(argv("lvextend"), host.cutWhileRunning(() => (lv.sizeBytes = mib(128))));
            await assert.rejects(nbdVolume.update(outs.uri, outs, news, s.context()), /connection dropped/);
            assert.strictEqual(lv.sizeBytes, mib(64), "the orphaned lvextend has not finished yet");
            host.on(argv("lvextend"), lvextend(lv));

            const from = host.commands.length;
            const grown = await nbdVolume.update(outs.uri, outs, news, s.context());
            assert.strictEqual(readsBeforeChange(host, from).lock, "lvm", "the read update acts on is taken under the LVM lock");
            assert.deepStrictEqual(lvmWrites(host).filter((l) => l.startsWith("lvextend")), ["lvextend -q -L 134217728b bmvg/guest1-var"], "one lvextend: the orphaned one");
            assert.strictEqual(grown.sizeBytes, mib(128));
            s.verify();
        });

        it("create cut while lvcreate runs on: the re-run's read waits for it and takes back its own LV; lvcreate ran once", async () => {
            const box: Box = { lv: "none", serving: false };
            const { s, host } = sizedSan(box, { sizeBytes: mib(64) });
            host.on(argv("lvcreate"), host.cutWhileRunning(() => (box.lv = "ours")));
            await assert.rejects(nbdVolume.create(inputs(), s.context()), /connection dropped/);
            // A second lvcreate of the same name fails as LVM fails it.
            host.on(argv("lvcreate"), () => (box.lv === "none" ? ((box.lv = "ours"), ok()) : exit(5, '  Logical Volume "guest1-var" already exists in volume group "bmvg"')));

            const from = host.commands.length;
            const { outs } = await nbdVolume.create(inputs(), s.context());
            assert.strictEqual(readsBeforeChange(host, from).lock, "lvm");
            assert.strictEqual(host.ran(argv("lvcreate")).length, 1);
            assert.deepStrictEqual([outs.lvUuid, outs.serving, outs.registered], [lvUuid, true, true]);
            s.verify();
        });

        it("delete cut while lvremove runs on: the re-run's read waits for it, finds the LV gone and removes the rest; lvremove ran once", async () => {
            const box: Box = { lv: "none", serving: false };
            const { s, host, consulAgent } = sizedSan(box, { sizeBytes: mib(64) });
            const { outs } = await nbdVolume.create(inputs({ allowDataLoss: true }), s.context());
            host.on(script("baremetal-stop-service"), () => ((box.serving = false), ok())).on(argv("lvremove"), host.cutWhileRunning(() => (box.lv = "none")));
            await assert.rejects(nbdVolume.delete(outs.uri, outs, s.context()), /connection dropped/);
            host.on(argv("lvremove"), () => (box.lv === "none" ? exit(5, '  Failed to find logical volume "bmvg/guest1-var"') : ((box.lv = "none"), ok())));

            const from = host.commands.length;
            await nbdVolume.delete(outs.uri, outs, s.context());
            assert.strictEqual(readsBeforeChange(host, from).lock, "lvm");
            assert.strictEqual(host.ran(argv("lvremove")).length, 1);
            assert.strictEqual(consulAgent.serviceData.get("198-51-100-11-nbd")?.size ?? 0, 0, "the Consul entry is gone");
            s.verify();
        });
    });

    describe("adopt as it runs (asFound): an export of the box's own nbd-server", () => {
        // The config written by hand in the lab's discover test (one named export on one port, an authfile).
        const handConfig = "[generic]\n\tuser = root\n\tgroup = root\n\tport = 10830\n\tallowlist = true\n[guest1-var]\n\texportname = /dev/bmvg/guest1-var\n\tauthfile = /etc/nbd-server/hand.allow\n";
        const found = { service: "nbd-server.service", config: "/etc/nbd-server/config" };
        const asDeclared = (extra: Record<string, unknown> = {}) => inputs({ adopt: true, asFound: found, port: 10830, allowedClients: ["198.18.1.0/24"], ...extra });
        function handSan(box: Box) {
            const made = san(box);
            made.host.putFile("/etc/nbd-server/config", handConfig);
            made.host.putFile("/etc/nbd-server/hand.allow", "198.18.1.0/24\n");
            made.host.on(argv("lvextend"), ok())
                .on(argv("systemctl", "stop", "nbd-server.service"), () => ((box.serving = false), ok()))
                .on(argv("systemctl", "--quiet", "--no-reload", "disable", "nbd-server.service"), ok())
                .on(script("baremetal-nbd-drop"), (c) => {
                    const conf = made.host.files.get(c.argv[4]) ?? "";
                    made.host.putFile(c.argv[4], conf.replace(/\[guest1-var\][^[]*/, ""));
                    return ok();
                });
            return made;
        }
        const serviceActions = (h: ScriptedRemote) => h.commands.filter((c) => c.argv[0] === "systemctl" && /^(start|stop|restart|reload|kill)$/.test(c.argv[1])).map((c) => c.argv.join(" "));

        it("taken over as it is: no export file written, no nbd-server started, restarted or stopped; registered in Consul", async () => {
            const box: Box = { lv: "foreign", serving: true };
            const { s, host, consulAgent } = handSan(box);
            const { outs } = await nbdVolume.create(asDeclared(), s.context());
            assert.deepStrictEqual(serviceActions(host), []);
            assert.deepStrictEqual(host.ran(fileWrites), [], "no file written");
            assert.deepStrictEqual(lvmWrites(host), []);
            assert.strictEqual(host.files.get("/etc/nbd-server/config"), handConfig, "its config untouched");
            assert.deepStrictEqual([outs.serving, outs.port, outs.exportName, outs.allowedClients, outs.registered], [true, 10830, "guest1-var", ["198.18.1.0/24"], true]);
            assert.deepStrictEqual(consulAgent.writes, ["register service nbd-bmvg-guest1--var on 198-51-100-11-nbd"]);
            assert.ok(s.log.kept().some((l) => /adopting the export \[guest1-var\] of \/etc\/nbd-server\/config on root@198\.51\.100\.11:22 \(served by nbd-server\.service\) as it is; nothing was restarted/.test(l)));
            s.verify();
        });

        it("an export that differs from the declaration (its port): refused, naming the difference; nothing changed", async () => {
            const { s, host, consulAgent } = handSan({ lv: "foreign", serving: true });
            await assert.rejects(nbdVolume.create(asDeclared({ port: 10820 }), s.context()), /the export of bmvg\/guest1-var in \/etc\/nbd-server\/config on root@198\.51\.100\.11:22 has port 10830 \(declared 10820\); adopting it as it is cannot change that without restarting its server\. Nothing was changed/);
            assert.deepStrictEqual(serviceActions(host), []);
            assert.deepStrictEqual(consulAgent.writes, []);
            s.verify();
        });

        it("kept as found: it grows online (lvextend only); an export setting change is refused, saying to remove asFound", async () => {
            const { s, host } = handSan({ lv: "foreign", serving: true });
            const { outs } = await nbdVolume.create(asDeclared(), s.context());
            await nbdVolume.update("x", outs, asDeclared({ size: "96MiB" }), s.context());
            assert.deepStrictEqual(lvmWrites(host).map((l) => l.split(" ")[0]), ["lvextend"]);
            await assert.rejects(nbdVolume.update("x", outs, asDeclared({ allowedClients: ["198.18.1.12"] }), s.context()), /changing allowedClients needs its server restarted\. Nothing was changed\. Remove asFound in the same change/);
            assert.deepStrictEqual(serviceActions(host), []);
            s.verify();
        });

        it("removing asFound: preview says the clients reconnect; its section leaves the config, the box's nbd-server (serving nothing else) stops, and the export's own starts", async () => {
            const box: Box = { lv: "foreign", serving: true };
            const { s, host } = handSan(box);
            const { outs } = await nbdVolume.create(asDeclared(), s.context());
            const news = inputs({ adopt: true, port: 10830, allowedClients: ["198.18.1.0/24"] });
            assert.deepStrictEqual(nbdVolume.diff("x", outs, news).notes, [
                "bmvg/guest1-var moves from nbd-server.service (/etc/nbd-server/config) to an nbd-server of its own on port 10830: nbd-server.service is restarted, or stopped if it serves nothing else, and the export's clients reconnect",
            ]);
            const after = await nbdVolume.update("x", outs, news, s.context());
            assert.deepStrictEqual(serviceActions(host), ["systemctl stop nbd-server.service", `systemctl start ${unit}`]);
            assert.doesNotMatch(host.files.get("/etc/nbd-server/config") ?? "", /guest1-var/);
            assert.match(host.files.get("/etc/nbd-server/baremetal/bmvg-guest1--var.conf") ?? "", /port = 10830/);
            assert.deepStrictEqual([after.serving, after.asFound], [true, undefined]);
            s.verify();
        });
    });
});
