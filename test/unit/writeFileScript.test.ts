// The atomic write every plan's file steps use (writeFileScript), run by dash and BusyBox sh, the
// shells of Debian and Alpine boxes, on this machine's files. What a user notices: the file is
// there with its content, mode and owner; an identical file is reported unchanged and left
// alone; input cut short never replaces the file; nothing is left behind.
import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { boxShells, shellName } from "../fakes/shells";
import { unchangedMarker, writeFileScript } from "../../provider/host/os";

const owner = `${os.userInfo().username}:${spawnSync("id", ["-gn"], { encoding: "utf8" }).stdout.trim()}`;

describe("writeFileScript, the atomic write", () => {
    let dir = "";
    beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "baremetal-write-"))));
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    /** Runs the script as a plan's writeFile step does; `bytes` is the count the step sends (the content's unless a cut is simulated). */
    function write(shell: string[], target: string, content: string, mode = "0644", bytes = Buffer.byteLength(content)) {
        const r = spawnSync(shell[0], [...shell.slice(1), "-c", writeFileScript, "baremetal-write", target, mode, owner, String(parseInt(mode, 8).toString(8)), String(bytes)], {
            encoding: "utf8",
            input: content,
            env: { PATH: "/usr/bin:/bin" },
            timeout: 20_000,
        });
        return { code: r.status, stderr: r.stderr, unchanged: r.stdout.trim() === unchangedMarker };
    }
    const modeOf = (f: string) => (fs.statSync(f).mode & 0o777).toString(8);
    const leftovers = (d: string) => fs.readdirSync(d).filter((n) => n.startsWith(".baremetal-write."));

    for (const shell of boxShells()) {
        describe(shellName(shell), () => {
            it("a new file in a directory that does not exist yet: written with its mode", () => {
                const f = path.join(dir, "etc", "demo", "a.conf");
                const r = write(shell, f, "one\n", "0640");
                assert.deepStrictEqual([r.code, r.unchanged], [0, false], r.stderr);
                assert.strictEqual(fs.readFileSync(f, "utf8"), "one\n");
                assert.strictEqual(modeOf(f), "640");
                assert.deepStrictEqual(leftovers(path.dirname(f)), []);
            });

            it("the same file again: unchanged, not replaced, nothing left behind", () => {
                const f = path.join(dir, "a.conf");
                write(shell, f, "one\n");
                const inode = fs.statSync(f).ino;
                const r = write(shell, f, "one\n");
                assert.deepStrictEqual([r.code, r.unchanged], [0, true], r.stderr);
                assert.strictEqual(fs.statSync(f).ino, inode, "the file was left alone");
                assert.deepStrictEqual(leftovers(dir), []);
            });

            it("other content of the same size, or only another mode: replaced", () => {
                const f = path.join(dir, "a.conf");
                write(shell, f, "one\n");
                assert.strictEqual(write(shell, f, "two\n").unchanged, false);
                assert.strictEqual(fs.readFileSync(f, "utf8"), "two\n");
                assert.strictEqual(write(shell, f, "two\n", "0600").unchanged, false);
                assert.strictEqual(modeOf(f), "600");
            });

            it("input cut short: exit 75 naming the file, the old file kept, nothing left behind", () => {
                const f = path.join(dir, "a.conf");
                write(shell, f, "one\n");
                const r = write(shell, f, "tw", "0644", 4);
                assert.strictEqual(r.code, 75);
                assert.match(r.stderr, new RegExp(`received 2 of 4 bytes for ${f.replace(/[.]/g, "\\.")} \\(the input was cut short\\)`));
                assert.strictEqual(fs.readFileSync(f, "utf8"), "one\n");
                assert.deepStrictEqual(leftovers(dir), []);
            });

            it("a symbolic link where the file goes: replaced by the file, what it pointed at untouched", () => {
                const elsewhere = path.join(dir, "elsewhere");
                fs.writeFileSync(elsewhere, "one\n");
                const f = path.join(dir, "a.conf");
                fs.symlinkSync(elsewhere, f);
                assert.strictEqual(write(shell, f, "one\n").unchanged, false);
                assert.strictEqual(fs.lstatSync(f).isSymbolicLink(), false);
                assert.strictEqual(fs.readFileSync(elsewhere, "utf8"), "one\n");
            });
        });
    }
});
