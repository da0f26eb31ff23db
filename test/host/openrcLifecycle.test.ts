// The renderer's OpenRC scripts run for real: Debian's openrc-run (with Debian's
// /bin/sh and dpkg's start-stop-daemon, as on a "debian-openrc" box) starts,
// reads, reloads and stops services rendered from descriptions in every shape
// the kinds use — a background program with a pid file, hooks before and after,
// an environment file, a graceful stop command and an error log; a program
// supervised by supervise-daemon that comes back when it dies and re-reads its
// configuration on reload. In a throwaway mount namespace (a fresh /run/openrc:
// the machine's own OpenRC state is never touched); the programs are small shell
// scripts of this test, nothing of the machine's. Needs root and the `openrc`
// package (lab/host-packages.txt). The kinds' own scripts (qemu, nbd-server,
// dnsmasq, openvpn) run on the lab's OpenRC box (test/lab/openrc.test.ts).
import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { renderService, ServiceSpec } from "../../provider/host";

const openrcRun = "/sbin/openrc-run";

describe("OpenRC scripts of the renderer, run by Debian's openrc-run (debian-openrc)", function () {
    this.timeout(120_000);
    let dir: string;
    let transcript = "";

    before(function () {
        const why = !fs.existsSync(openrcRun) ? `${openrcRun} is missing: install openrc (lab/host-packages.txt)` : process.getuid?.() !== 0 ? "needs root (a mount namespace)" : undefined;
        if (why) {
            if (process.env.CI === "true") throw new Error(why);
            this.skip();
        }
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "bm-openrc-life-"));
        // The program: says its arguments and environment on stderr, marks a HUP, runs until killed.
        fs.writeFileSync(
            path.join(dir, "prog"),
            `#!/bin/sh\necho "args=$* env=$DEMO_X" >&2\ntrap 'echo hup >>${dir}/hup' HUP\nwhile :; do sleep 1; done\n`,
            { mode: 0o755 },
        );
        fs.writeFileSync(path.join(dir, "demo.env"), 'DEMO_X="from the env file"\n');
        const bg: ServiceSpec = {
            name: "bmtest-bg",
            description: "background demo",
            command: [path.join(dir, "prog"), "-m", "64", "$DEMO_X"],
            type: "simple",
            pidFile: path.join(dir, "bg.pid"),
            environmentFile: { path: path.join(dir, "demo.env"), optional: true },
            preStart: [{ argv: ["/bin/touch", path.join(dir, "pre")] }, { argv: ["/bin/false"], mayFail: true }],
            stop: { command: ["/bin/touch", path.join(dir, "graceful")], timeoutSeconds: 5 },
            postStop: [["/bin/touch", path.join(dir, "post")]],
            restart: { when: "on-failure", delaySeconds: 1 },
            errorLog: path.join(dir, "bg.log"),
        };
        const sup: ServiceSpec = { name: "bmtest-sup", description: "supervised demo", command: [path.join(dir, "prog"), "sup"], reloadSignal: "HUP", restart: { when: "always", delaySeconds: 1 }, errorLog: path.join(dir, "sup.log") };
        for (const spec of [bg, sup]) fs.writeFileSync(path.join(dir, spec.name), renderService(spec, "debian-openrc"), { mode: 0o755 });
        // Each step's output under a heading; progress-based waits (the pid changes), no fixed sleeps.
        const script = `set -u
d=$1
mount -t tmpfs -o mode=0755 bm-openrc-test /run/openrc
for s in daemons exclusive failed hotplugged inactive options scheduled started starting stopping tmp wasinactive; do mkdir -p /run/openrc/$s; done
touch /run/openrc/softlevel
step() { echo "== $*"; }
pidof_sup() { for p in /proc/[0-9]*; do tr '\\0' ' ' <$p/cmdline 2>/dev/null | grep -q "^/bin/sh $d/prog sup" && echo \${p#/proc/}; done; }
step bg start; $d/bmtest-bg --nodeps start 2>&1; echo rc=$?
step bg status; $d/bmtest-bg status 2>&1; echo rc=$?
step bg alive; kill -0 "$(cat $d/bg.pid)" && echo alive
step bg stop; $d/bmtest-bg --nodeps stop 2>&1; echo rc=$?
step bg gone; kill -0 "$(cat $d/bg.pid)" 2>/dev/null && echo still-running || echo gone
step sup start; $d/bmtest-sup --nodeps start 2>&1; echo rc=$?
p1=; i=0; while [ -z "$p1" ] && [ $i -lt 100 ]; do p1=$(pidof_sup); i=$((i+1)); sleep 0.1; done
step sup killed; kill -KILL $p1
p2=$p1; i=0; while { [ -z "$p2" ] || [ "$p2" = "$p1" ]; } && [ $i -lt 300 ]; do p2=$(pidof_sup); i=$((i+1)); sleep 0.1; done
[ -n "$p2" ] && [ "$p2" != "$p1" ] && echo respawned
step sup reload; $d/bmtest-sup reload 2>&1; echo rc=$?
i=0; while [ ! -s $d/hup ] && [ $i -lt 100 ]; do i=$((i+1)); sleep 0.1; done; cat $d/hup
step sup stop; $d/bmtest-sup --nodeps stop 2>&1; echo rc=$?
step sup gone; [ -z "$(pidof_sup)" ] && echo gone
`;
        const r = spawnSync("unshare", ["-m", "--propagation", "private", "sh", "-c", script, "bm-openrc-life", dir], { encoding: "utf8", timeout: 100_000 });
        transcript = `${r.stdout}${r.stderr}`;
    });

    after(() => {
        if (!dir) return;
        // Nothing may outlive the test: any demo program still running is killed.
        for (const p of fs.readdirSync("/proc").filter((x) => /^\d+$/.test(x))) {
            try {
                if (fs.readFileSync(`/proc/${p}/cmdline`, "utf8").includes(`${dir}/prog`)) process.kill(Number(p), "SIGKILL");
            } catch {
                // gone already
            }
        }
        fs.rmSync(dir, { recursive: true, force: true });
    });

    const section = (name: string): string => (transcript.split(`== ${name}\n`)[1] ?? "").split("\n== ")[0];

    it("starts a background program with its pid file, hooks, environment file and error log (dpkg's start-stop-daemon: --output)", () => {
        assert.match(section("bg start"), /rc=0/, transcript);
        assert.match(section("bg status"), /status: started/, transcript);
        assert.match(section("bg alive"), /alive/, transcript);
        assert.ok(fs.existsSync(path.join(dir, "pre")), "start_pre ran");
        assert.match(fs.readFileSync(path.join(dir, "bg.log"), "utf8"), /args=-m 64 from the env file env=from the env file/);
    });

    it("stops it with the graceful command first, then the signal, then the clean-up", () => {
        assert.match(section("bg stop"), /rc=0/, transcript);
        assert.match(section("bg gone"), /^gone/, transcript);
        assert.ok(fs.existsSync(path.join(dir, "graceful")), "the stop command ran");
        assert.ok(fs.existsSync(path.join(dir, "post")), "stop_post ran");
    });

    it("supervise-daemon brings a killed program back, passes reload on as HUP, and stops it", () => {
        assert.match(section("sup start"), /rc=0/, transcript);
        assert.match(section("sup killed"), /respawned/, transcript);
        assert.match(section("sup reload"), /rc=0\s+hup/, transcript);
        assert.match(section("sup stop"), /rc=0/, transcript);
        assert.match(section("sup gone"), /^gone/, transcript);
        assert.match(fs.readFileSync(path.join(dir, "sup.log"), "utf8"), /args=sup/);
    });
});
