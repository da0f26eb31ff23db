// Every OpenRC script the kinds render, read by OpenRC itself: Debian's
// `openrc-run` (the program /etc/init.d scripts run under) sources each one
// through OpenRC's own openrc-run.sh — here under BusyBox ash, Alpine's
// /bin/sh — and answers `depend` (the dependencies as OpenRC parsed them) and
// `describe`. It runs in a throwaway mount namespace with a fresh /run/openrc,
// so the machine's OpenRC state (if any) is never touched. Needs root (unshare)
// and the `openrc` and `busybox-static` packages (lab/host-packages.txt).
import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { DebianOpenrcAdapter, OsFamily, renderService, ServiceSpec, step } from "../../provider/host";
import { serviceSpecsOfTheKinds } from "../helpers/openrcScripts";

const openrcRun = "/sbin/openrc-run";
const openrcRunSh = "/lib/rc/sh/openrc-run.sh";
const busybox = ["/usr/bin/busybox", "/bin/busybox"].find((b) => fs.existsSync(b)) ?? "/usr/bin/busybox";

/**
 * Runs in the namespace: a tmpfs on /run/openrc, where openrc-run looks first for
 * its shell wrapper (openrc-run.sh, here with BusyBox as its interpreter), then
 * `depend` and `describe` of each script in $1, outputs beside it.
 */
const inNamespace = `set -eu
mount -t tmpfs -o mode=0755 bm-openrc-test /run/openrc
for d in daemons exclusive failed hotplugged inactive options scheduled started starting stopping tmp wasinactive; do mkdir -p /run/openrc/$d; done
{ echo "#!$2 sh"; tail -n +2 "$3"; } >/run/openrc/openrc-run.sh
chmod 0755 /run/openrc/openrc-run.sh
for f in "$1"/*.script; do
  for c in depend describe; do
    rc=0; "$4" "$f" "$c" >"$f.$c.out" 2>"$f.$c.err" || rc=$?
    echo "$rc" >"$f.$c.rc"
  done
done`;

interface Verdict {
    depend: { rc: number; out: string; err: string };
    describe: { rc: number; out: string; err: string };
}

function missing(): string | undefined {
    for (const f of [openrcRun, openrcRunSh, busybox]) if (!fs.existsSync(f)) return `${f} is missing: install openrc and busybox-static (lab/host-packages.txt)`;
    if (process.getuid?.() !== 0) return "needs root (a mount namespace for a throwaway /run/openrc)";
    return undefined;
}

/** Runs each script through openrc-run in one throwaway namespace. */
function throughOpenrcRun(scripts: [string, string][]): Map<string, Verdict> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bm-openrc-run-"));
    try {
        scripts.forEach(([, text], i) => fs.writeFileSync(path.join(dir, `${i}.script`), text, { mode: 0o755 }));
        const r = spawnSync("unshare", ["-m", "--propagation", "private", "sh", "-c", inNamespace, "bm-openrc-test", dir, busybox, openrcRunSh, openrcRun], { encoding: "utf8" });
        assert.strictEqual(r.status, 0, `unshare: ${r.stderr}`);
        const read = (i: number, c: string) => ({
            rc: Number(fs.readFileSync(path.join(dir, `${i}.script.${c}.rc`), "utf8")),
            out: fs.readFileSync(path.join(dir, `${i}.script.${c}.out`), "utf8"),
            err: fs.readFileSync(path.join(dir, `${i}.script.${c}.err`), "utf8"),
        });
        return new Map(scripts.map(([label], i) => [label, { depend: read(i, "depend"), describe: read(i, "describe") }]));
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

/** The OpenRC service the debian-openrc adapter writes for a boot script. */
function bootScriptService(): string {
    const cmds = new DebianOpenrcAdapter(true).lower(step.bootScript("bridges", "#!/bin/sh\nexit 0\n"));
    const init = cmds.find((c) => c.argv.includes("/etc/init.d/baremetal-local-bridges"));
    assert.ok(init?.stdin !== undefined);
    return String(init.stdin);
}

/** What `openrc-run SCRIPT depend` prints for a spec: one line per kind of dependency. */
function expectedDepend(spec: ServiceSpec): string {
    return [
        `need ${["net", ...(spec.needs ?? [])].join(" ")}`,
        ...(spec.wants?.length ? [`use ${spec.wants.join(" ")}`] : []),
        ...(spec.after?.length ? [`after ${spec.after.join(" ")}`] : []),
        ...(spec.provides?.length ? [`provide ${spec.provides.join(" ")}`] : []),
    ].join("\n");
}

describe("OpenRC scripts of the kinds, through openrc-run under BusyBox", function () {
    const families: OsFamily[] = ["alpine", "debian-openrc"];
    const cases = families.flatMap((family) => serviceSpecsOfTheKinds(family).map(([label, spec]): [string, ServiceSpec, string] => [`${family}: ${label}`, spec, renderService(spec, family)]));
    let verdicts: Map<string, Verdict>;

    before(function () {
        const why = missing();
        if (why) {
            if (process.env.CI === "true") throw new Error(why);
            this.skip();
        }
        verdicts = throughOpenrcRun([...cases.map(([label, , text]): [string, string] => [label, text]), ["boot script", bootScriptService()], ["broken", `${cases[0][2]}\nstart_pre() {\n\tif true; then\n}\n`]]);
    });

    it("renders at least one script per service of every kind, on both OpenRC families", () => {
        assert.ok(cases.length >= 18, `only ${cases.length} scripts`);
    });

    for (const [label, spec] of cases) {
        it(`${label}: OpenRC parses it, its dependencies are the spec's, it describes itself`, () => {
            const v = verdicts.get(label);
            assert.ok(v);
            assert.deepStrictEqual([v.depend.rc, v.depend.err], [0, ""], `depend: ${v.depend.err}`);
            assert.strictEqual(v.depend.out.trim(), expectedDepend(spec));
            // OpenRC's own built-in commands describe nothing; every command the script adds must.
            const undescribed = v.describe.err.split("\n").filter((l) => l.trim() !== "" && !/^\s*\* (healthcheck|unhealthy): no description$/.test(l));
            assert.deepStrictEqual([v.describe.rc, undescribed], [0, []], `describe: ${v.describe.err}`);
            assert.strictEqual(v.describe.out.split("\n")[0].replace(/^\s*\*\s*/, ""), spec.description.split("%i").join(spec.instance ?? ""));
        });
    }

    it("debian-openrc: a boot script's own OpenRC service (Debian's openrc has no `local`) parses, needs net, describes itself", () => {
        const v = verdicts.get("boot script");
        assert.ok(v);
        assert.deepStrictEqual([v.depend.rc, v.depend.err, v.depend.out.trim()], [0, "", "need net"]);
        assert.match(v.describe.out, /pulumi-baremetal boot script bridges/);
    });

    it("the check fails on a script that BusyBox cannot parse (openrc-run itself exits 0; the shell's complaint is the verdict)", () => {
        const v = verdicts.get("broken");
        assert.ok(v);
        assert.match(v.depend.err, /syntax error/);
    });
});
