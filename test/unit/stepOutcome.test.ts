// What the log says a step did. "done" only when one of its commands reported a
// change; a command that found nothing to do says so by the unchanged marker or by
// an exit code other than 0 that its step accepts (`systemctl stop` of a unit that
// is not loaded: 5). One rule, in provider/host/execute.ts, for Host and every
// Remote: NbdVolume's delete re-run used to log "done" for steps that changed nothing.
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { check, nbdVolume, NbdVolumeInputs } from "../../provider/resources/nbdVolume";
import { step } from "../../provider/host";
import { commandChanged, stepOutcome } from "../../provider/host/execute";
import { unchangedMarker } from "../../provider/host/os";
import { argv, exit, ok, script, unchanged } from "../fakes/scriptedRemote";
import { ScriptedSite } from "../fakes/scriptedSite";

describe("a step is logged done only when a command reported a change", () => {
    it("decides per command: read-only, the marker last, or an accepted non-zero exit code is no change", () => {
        assert.strictEqual(commandChanged({}, { exitCode: 0, stdout: "" }), true, "a command that cannot tell ran: a change");
        assert.strictEqual(commandChanged({}, { exitCode: 0, stdout: `removed\n${unchangedMarker}\n` }), false);
        assert.strictEqual(commandChanged({}, { exitCode: 0, stdout: `${unchangedMarker}\nthen something\n` }), true, "the marker counts only as the last line");
        assert.strictEqual(commandChanged({ changes: false }, { exitCode: 0, stdout: "a=1\n" }), false);
        assert.strictEqual(commandChanged({}, { exitCode: 5, stdout: "" }), false, "an accepted exit code other than 0 is the command's 'nothing to do'");
        assert.deepStrictEqual([stepOutcome({ changed: true }), stepOutcome({ changed: false })], ["done", "already so"]);
    });

    it("a scripted host logs and records a stop of a service that is not there as already so, and skips the persist", async () => {
        const s = new ScriptedSite();
        const host = s.host({ host: "198.51.100.12", password: "pw" });
        host.on(argv("systemctl", "stop"), exit(5, "Failed to stop ceph-osd@3.service: Unit ceph-osd@3.service not loaded."));
        const result = await host.apply([step.run(["systemctl", "stop", "ceph-osd@3"], { okExitCodes: [0, 5], what: "stop ceph-osd@3" }), step.persist()]);
        assert.deepStrictEqual(result.steps.map((r) => r.changed), [false, false]);
        assert.strictEqual(result.changed, false);
        assert.deepStrictEqual(s.log.kept(), ["root@198.51.100.12:22: [1/2] stop ceph-osd@3: already so (0.0 s)"]);
    });

    it("NbdVolume: a delete re-run claims nothing it did not do (every step already so, no Consul entry removed)", async () => {
        const fixture = (name: string) => fs.readFileSync(path.join(__dirname, "../../../test/unit/fixtures/nbd", name), "utf8");
        const lvs = { ours: fixture("read-serving.txt").split("==config==\n")[0], none: fixture("read-missing.txt").split("==config==\n")[0] };
        const connection = { host: "198.51.100.11", hostKey: "SHA256:" + "A".repeat(43), password: "pw" };
        const consul = { address: "198.51.100.2:8500" };
        const box = { lv: "none" as keyof typeof lvs, serving: false, enabled: false };
        const s = new ScriptedSite();
        s.consulAt(consul);
        const host = s.host(connection);
        const unit = "baremetal-nbd@bmvg-guest1--var";
        host.on(script("baremetal-install"), unchanged)
            .on(argv("vgs", "--noheadings", "-o", "vg_name", "--", "bmvg"), ok("  bmvg\n"))
            .on(script("baremetal-nbd-read"), (c) => ok(`${lvs[box.lv]}==config==\n${host.files.get(c.argv[6]) ?? ""}==auth==\n${host.files.get(c.argv[7]) ?? ""}==serving==\n${box.serving ? "active" : "inactive"}\n`))
            .on(script("baremetal-enable"), () => ((box.enabled = true), ok()))
            .on(argv("systemctl", "start", unit), () => ((box.serving = true), ok()))
            .on(script("baremetal-stop-service"), () => (box.serving ? ((box.serving = false), ok()) : unchanged))
            .on(script("baremetal-remove-service"), () => (box.enabled ? ((box.enabled = false), ok()) : unchanged))
            .on(argv("lvcreate"), () => ((box.lv = "ours"), ok()))
            .on(argv("lvremove"), () => ((box.lv = "none"), ok()));
        const r = check({}, { connection, volumeGroup: "bmvg", name: "guest1-var", size: "64MiB", port: 10820, owner: "52:54:00:12:34:56", consul, allowDataLoss: true });
        assert.deepStrictEqual(r.failures, []);
        const { outs } = await nbdVolume.create(r.inputs as NbdVolumeInputs, s.context());

        const first = s.log.kept().length;
        await nbdVolume.delete("198.51.100.11/bmvg/guest1-var", outs, s.context());
        const deleted = s.log.kept().slice(first);
        assert.ok(deleted.some((l) => /\] stop, disable and remove service .*: done/.test(l)), deleted.join("\n"));
        assert.ok(deleted.includes("removed nbd-bmvg-guest1--var from Consul node 198-51-100-11-nbd"), deleted.join("\n"));

        const second = s.log.kept().length;
        await nbdVolume.delete("198.51.100.11/bmvg/guest1-var", outs, s.context());
        const rerun = s.log.kept().slice(second);
        assert.deepStrictEqual(rerun.filter((l) => / done \(/.test(l) || /^removed /.test(l)), [], rerun.join("\n"));
        assert.ok(rerun.includes("nbd-bmvg-guest1--var is not registered on Consul node 198-51-100-11-nbd: nothing to remove"), rerun.join("\n"));
    });
});
