// The Debian adapter's unit scripts themselves (install, remove), run by dash and BusyBox sh
// against a test double of systemctl (test/fakes/systemctl.fake.sh, named as a fake: systemd does
// not run on this machine; every lab file runs the same scripts against the real one). What they
// must get right: systemd runs what the unit file says after every install, and a daemon-reload,
// seconds of a small box's whole CPU (3.5 s on the lab's), happens only when systemd holds
// another version than the file: not for a new unit, not for an unchanged one, not for a removal
// systemd forgets by itself.
import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { boxShells, fakeCommandsDir, fakeSystemctl, shellName } from "../fakes/shells";
import { debianRemoveServiceScript, installUnitScript, unchangedMarker } from "../../provider/host/os";

const shells = boxShells();
const unit = "baremetal-demo.service";
const v1 = "[Service]\nExecStart=/bin/sleep 1000\n";
const v2 = "[Service]\nExecStart=/bin/sleep 2000\n";

describe("systemd unit scripts against a fake systemctl", () => {
    const fakes = fakeCommandsDir({ systemctl: fakeSystemctl });
    // Whether the tests run as root decides the owner the write can give; the script is told the one it may.
    const owner = `${os.userInfo().username}:${spawnSync("id", ["-gn"], { encoding: "utf8" }).stdout.trim()}`;
    let box = "";
    beforeEach(() => {
        box = fs.mkdtempSync(path.join(os.tmpdir(), "baremetal-fake-systemd-"));
        fs.mkdirSync(path.join(box, "units"));
        fs.mkdirSync(path.join(box, "state"));
    });
    afterEach(() => fs.rmSync(box, { recursive: true, force: true }));

    const unitFile = () => path.join(box, "units", unit);
    const calls = () => (fs.existsSync(path.join(box, "state", "calls")) ? fs.readFileSync(path.join(box, "state", "calls"), "utf8").trim().split("\n") : []);
    const reloads = () => calls().filter((c) => c === "daemon-reload").length;
    /** What systemd holds (runs) for the unit, per the fake: undefined when it holds nothing. */
    const held = () => {
        const f = path.join(box, "state", "loaded", unit);
        return fs.existsSync(f) ? fs.readFileSync(f, "utf8") : undefined;
    };
    const mark = (what: "enabled" | "failed" | "loaded", content = "") => {
        fs.mkdirSync(path.join(box, "state", what), { recursive: true });
        fs.writeFileSync(path.join(box, "state", what, unit), content);
    };

    function sh(shell: string[], script: string, args: string[], stdin = "") {
        const r = spawnSync(shell[0], [...shell.slice(1), "-c", script, "baremetal-test", ...args], {
            encoding: "utf8",
            input: stdin,
            env: { PATH: `${fakes.dir()}:/usr/bin:/bin`, FAKE_SYSTEMD: path.join(box, "state"), FAKE_UNIT_DIR: path.join(box, "units") },
            timeout: 20_000,
        });
        assert.strictEqual(r.status, 0, `${r.stderr}\n${r.stdout}`);
        return { changed: r.stdout.trim().split("\n").pop() !== unchangedMarker, stdout: r.stdout };
    }
    const install = (shell: string[], content: string) => sh(shell, installUnitScript, [unitFile(), "0644", owner, "644", String(Buffer.byteLength(content)), unit], content);
    const remove = (shell: string[], file: string) => sh(shell, debianRemoveServiceScript, [unit, file]);

    for (const shell of shells) {
        describe(shellName(shell), () => {
            it("a new unit: written, and systemd loads it on first use without a reload", () => {
                assert.strictEqual(install(shell, v1).changed, true);
                assert.strictEqual(fs.readFileSync(unitFile(), "utf8"), v1);
                assert.strictEqual(reloads(), 0, calls().join("\n"));
                assert.strictEqual(held(), v1, "systemd runs the new file");
            });

            it("the same unit again: unchanged, no reload", () => {
                install(shell, v1);
                assert.strictEqual(install(shell, v1).changed, false);
                assert.strictEqual(reloads(), 0, calls().join("\n"));
            });

            it("a changed unit systemd holds: one reload, and systemd runs the new file", () => {
                install(shell, v1);
                assert.strictEqual(held(), v1);
                assert.strictEqual(install(shell, v2).changed, true);
                assert.strictEqual(reloads(), 1, calls().join("\n"));
                assert.strictEqual(held(), v2);
            });

            it("the file already new but systemd holding the old one (a run cut before the reload): reloaded", () => {
                fs.writeFileSync(unitFile(), v2);
                fs.chmodSync(unitFile(), 0o644);
                mark("loaded", v1);
                assert.strictEqual(install(shell, v2).changed, true);
                assert.strictEqual(reloads(), 1);
                assert.strictEqual(held(), v2);
            });

            it("remove an enabled, stopped unit: unlinked and its file gone, no reload (systemd drops it)", () => {
                install(shell, v1);
                mark("enabled");
                assert.strictEqual(remove(shell, unitFile()).changed, true);
                assert.strictEqual(fs.existsSync(unitFile()), false);
                assert.strictEqual(fs.existsSync(path.join(box, "state", "enabled", unit)), false);
                assert.ok(calls().includes(`--quiet --no-reload disable ${unit}`), calls().join("\n"));
                assert.strictEqual(reloads(), 0, calls().join("\n"));
            });

            it("remove a failed unit systemd still holds: one reload, so that it no longer does", () => {
                install(shell, v1);
                mark("failed");
                remove(shell, unitFile());
                assert.strictEqual(reloads(), 1, calls().join("\n"));
                assert.strictEqual(held(), undefined);
            });

            it("remove an instance (its template stays): unlinked only, no reload", () => {
                mark("enabled");
                assert.strictEqual(remove(shell, "").changed, true);
                assert.strictEqual(reloads(), 0, calls().join("\n"));
            });

            it("remove what is not there: unchanged, nothing run but the questions", () => {
                assert.strictEqual(remove(shell, unitFile()).changed, false);
                assert.deepStrictEqual(calls(), [`is-enabled --quiet ${unit}`]);
            });
        });
    }
});
