// What the unit tier's script tests share: the shells of the boxes (dash on Debian, BusyBox sh on
// Alpine) as found on this machine, and a directory to put first on PATH holding test doubles of
// the host's commands (named as fakes: the real daemons do not run here).
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

/** dash and `busybox sh`, each by its absolute path (a test may run with a PATH that finds nothing); those not installed are left out. */
export function boxShells(): string[][] {
    return [["dash"], ["busybox", "sh"]]
        .map(([bin, ...rest]) => [spawnSync("sh", ["-c", `command -v ${bin}`], { encoding: "utf8" }).stdout.trim(), ...rest])
        .filter(([abs]) => abs !== "");
}

/** How a describe block names a shell: `dash`, `busybox sh`. */
export function shellName(shell: string[]): string {
    return [path.basename(shell[0]), ...shell.slice(1)].join(" ");
}

/** The repository's FAKE ovs-vsctl (test/fakes/ovs-vsctl.fake.sh; FAKE_OVS picks its answers). */
export const fakeOvsVsctl = path.join(__dirname, "../../../test/fakes/ovs-vsctl.fake.sh");

/** The repository's FAKE systemctl (test/fakes/systemctl.fake.sh; FAKE_SYSTEMD holds what systemd would hold, FAKE_UNIT_DIR the unit files). */
export const fakeSystemctl = path.join(__dirname, "../../../test/fakes/systemctl.fake.sh");

/**
 * A fresh directory of fake commands for one describe block: `commands` maps a command name to
 * a file to link there; `dir()` is the directory (put it first on PATH), removed after the block.
 */
export function fakeCommandsDir(commands: Record<string, string>): { dir: () => string } {
    let dir = "";
    before(() => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "baremetal-fake-bin-"));
        for (const [name, file] of Object.entries(commands)) fs.symlinkSync(file, path.join(dir, name));
    });
    after(() => dir && fs.rmSync(dir, { recursive: true, force: true }));
    return { dir: () => dir };
}
