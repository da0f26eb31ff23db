// The constant scripts of the Alpine adapter, run under BusyBox (Alpine's
// userland: ash, mktemp, stat, cmp, timeout ...) over a real sshd. This machine
// is Debian, so each command gets a PATH of BusyBox applets only; what cannot be
// had here (OpenRC, apk, lbu, BusyBox flock) is covered by the plan tests.
import * as assert from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { Host, renderService, ServiceSpec, SshPool, step } from "../../provider/host";
import {
    alpineRemoveServiceScript,
    AlpineAdapter,
    alpineStopServiceScript,
    debianRemoveServiceScript,
    debianStopServiceScript,
    installUnitScript,
    persistEtcScript,
    openrcServiceScript,
    RemoteCommand,
    unchangedMarker,
} from "../../provider/host/os";
import { withRemoteTimeout } from "../../provider/host/execute";
import { MaybeSecret } from "../../provider/host/redact";
import { openrcScriptsOfTheKinds } from "../helpers/openrcScripts";
import { startSshd, TestSshd } from "../helpers/sshd";

const busybox = "/usr/bin/busybox";

describe("Alpine scripts under BusyBox over a real sshd", function () {
    let sshd: TestSshd;
    let pool: SshPool;
    let host: Host;
    let applets: string;
    let work: string;
    const alpine = new AlpineAdapter(true);

    before(async () => {
        if (!fs.existsSync(busybox)) throw new Error(`${busybox} is missing: install busybox-static (listed in lab/host-packages.txt)`);
        sshd = await startSshd();
        applets = fs.mkdtempSync(path.join(sshd.dir, "busybox-"));
        execFileSync(busybox, ["--install", "-s", applets]);
        work = fs.mkdtempSync(path.join(sshd.dir, "work-"));
        pool = new SshPool();
        host = new Host(sshd.connection(), { pool });
    });
    after(async () => {
        await pool?.closeAll();
        await sshd?.stop();
    });

    /** Runs one lowered Alpine command with BusyBox as the only userland. */
    async function underBusybox(cmd: RemoteCommand): Promise<string> {
        const argv: MaybeSecret[] = cmd.argv[0] === "sh" ? ["busybox", ...cmd.argv] : cmd.argv;
        const out = await host.run(["env", "-i", `PATH=${applets}`, busybox, ...argv.slice(argv[0] === "busybox" ? 1 : 0)], { stdin: cmd.stdin });
        return out.stdout;
    }

    it("writes a file atomically with mode and owner, and leaves an identical one alone", async () => {
        const file = path.join(work, "etc", "nbd-server", "config");
        const [cmd] = alpine.lower(step.writeFile(file, "[generic]\nuser = nbd\n", { mode: "0640", owner: "nobody:nogroup" }));
        assert.notStrictEqual((await underBusybox(cmd)).trim(), unchangedMarker);
        assert.strictEqual(fs.readFileSync(file, "utf8"), "[generic]\nuser = nbd\n");
        assert.strictEqual(fs.statSync(file).mode & 0o7777, 0o640);
        const ino = fs.statSync(file).ino;
        assert.strictEqual((await underBusybox(cmd)).trim(), unchangedMarker);
        assert.strictEqual(fs.statSync(file).ino, ino);
        assert.deepStrictEqual(fs.readdirSync(path.dirname(file)), ["config"]);
    });

    it("keeps the old file when the content arrives cut short (a connection dropped mid-write)", async () => {
        const file = path.join(work, "etc", "short.conf");
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, "original\n");
        const [cmd] = alpine.lower(step.writeFile(file, "[generic]\nuser = nbd\n"));
        await assert.rejects(underBusybox({ ...cmd, stdin: "[gen" }), /received 4 of 21 bytes for .*short\.conf/);
        assert.strictEqual(fs.readFileSync(file, "utf8"), "original\n");
        assert.deepStrictEqual(fs.readdirSync(path.dirname(file)).filter((f) => f.startsWith(".baremetal")), []);
    });

    it("installs a boot script in local.d form, executable", async () => {
        const file = path.join(work, "local.d", "bridges.start");
        const [cmd] = alpine.lower(step.writeFile(file, "#!/bin/sh\nexit 0\n", { mode: "0755" }));
        await underBusybox(cmd);
        assert.strictEqual(fs.statSync(file).mode & 0o7777, 0o755);
    });

    it("removes a file, and reports unchanged when it is already gone", async () => {
        const file = path.join(work, "stale.conf");
        fs.writeFileSync(file, "x");
        const [cmd] = alpine.lower(step.removeFile(file));
        assert.strictEqual((await underBusybox(cmd)).trim(), "");
        assert.ok(!fs.existsSync(file));
        assert.strictEqual((await underBusybox(cmd)).trim(), unchangedMarker);
    });

    it("every OpenRC script the kinds render is valid shell for BusyBox sh (sh -n)", async () => {
        const scripts = [...openrcScriptsOfTheKinds("alpine"), ...openrcScriptsOfTheKinds("debian-openrc").map(([l, t]): [string, string] => [`debian-openrc ${l}`, t])];
        assert.ok(scripts.length >= 8, `only ${scripts.length} scripts`);
        for (const [label, text] of scripts) {
            const file = path.join(work, `openrc-${label.replace(/[^a-z0-9-]/gi, "_")}`);
            fs.writeFileSync(file, text);
            const out = await host.exec(["env", "-i", `PATH=${applets}`, busybox, "sh", "-n", file]);
            assert.strictEqual(out.exitCode, 0, `${label}: ${out.stderr}\n${text}`);
        }
        // The check itself fails on a script that is not shell.
        const broken = path.join(work, "openrc-broken");
        fs.writeFileSync(broken, `${scripts[0][1]}\nstart_pre() {\n\tif true; then\n}\n`);
        assert.notStrictEqual((await host.exec(["env", "-i", `PATH=${applets}`, busybox, "sh", "-n", broken])).exitCode, 0);
    });

    it("the adapters' service scripts are valid shell for BusyBox sh and for this Debian's sh", async () => {
        const scripts = { installUnitScript, debianStopServiceScript, debianRemoveServiceScript, alpineStopServiceScript, alpineRemoveServiceScript, persistEtcScript, openrcServiceScript };
        for (const [name, text] of Object.entries(scripts)) {
            for (const shell of [[busybox, "sh"], ["/bin/sh"]]) {
                const out = await host.exec(["env", "-i", `PATH=${applets}`, ...shell, "-n", "-c", text]);
                assert.strictEqual(out.exitCode, 0, `${name} under ${shell.join(" ")}: ${out.stderr}`);
            }
        }
    });

    it("an OpenRC script reads its environment file before command_args, and exports it to the program", async () => {
        const env = path.join(work, "demo.incoming");
        const spec: ServiceSpec = {
            name: "baremetal-demo",
            description: "demo",
            command: ["/usr/bin/demo", "-m", "512", "$DEMO_INCOMING"],
            pidFile: path.join(work, "demo.pid"),
            environmentFile: { path: env, optional: true },
        };
        const file = path.join(work, "openrc-demo");
        fs.writeFileSync(file, renderService(spec, "alpine"));
        // What openrc-run does first: source the script; then the program's environment.
        const probe = `. "$1"; echo "args=$command_args"; sh -c 'echo "env=$DEMO_INCOMING"'`;
        const run = async () => (await host.run(["env", "-i", `PATH=${applets}`, busybox, "sh", "-c", probe, "probe", file])).stdout;
        assert.strictEqual(await run(), "args=-m 512 \nenv=\n");
        fs.writeFileSync(env, 'DEMO_INCOMING="-incoming tcp:0.0.0.0:49152"\n');
        assert.strictEqual(await run(), "args=-m 512 -incoming tcp:0.0.0.0:49152\nenv=-incoming tcp:0.0.0.0:49152\n");
    });

    it("uninstall: a service that is not running is left alone; its script goes, then nothing is left to do", async () => {
        // A runlevel that does not exist here, so that no rc-update is reached on this Debian machine.
        const adapter = new AlpineAdapter(true, "baremetal-test-none");
        const [stop, remove] = adapter.lower(step.uninstallService({ name: "baremetal-demo" }));
        assert.strictEqual((await underBusybox(stop)).trim(), unchangedMarker, "neither systemctl nor rc-service answers: not running");
        const script = path.join(work, "init.d-demo");
        fs.writeFileSync(script, "#!/sbin/openrc-run\n");
        const here = { ...remove, argv: remove.argv.map((a) => (a === "/etc/init.d/baremetal-demo" ? script : a)) };
        assert.strictEqual((await underBusybox(here)).trim(), "");
        assert.ok(!fs.existsSync(script));
        assert.strictEqual((await underBusybox(here)).trim(), unchangedMarker);
    });

    it("BusyBox timeout accepts the wrapper's syntax and kills the command", async () => {
        const out = await host.exec(["env", "-i", `PATH=${applets}`, busybox, ...withRemoteTimeout(["sleep", "10"], 100)]);
        // Killed by SIGKILL: reported as the signal, or as 128+9 by a parent that caught it.
        // (A sleep that ran its course would exit 0: the kill is the proof, not a wall time,
        // which a loaded machine would break.)
        assert.ok(/^(SIG)?KILL$/.test(out.signal ?? "") || out.exitCode === 137, JSON.stringify(out));
    });
});
