// The provider keeps no state outside Pulumi's that a second workstation would
// miss: no cache of host facts, no lock, no key, no known_hosts of its own on the
// machine that runs `pulumi`. Everything it knows comes from its inputs (stack
// config and state) and from the hosts themselves; host keys are pinned by input,
// locks are taken on the hosts. This test holds the code to that: no module under
// provider/ or sdk/ touches the file system, the home directory, a temp directory
// or the environment, but for the few listed here with the reason each is harmless
// to a second workstation. (The lab test cephTeams.test.ts proves the behaviour: a
// second operator with a fresh HOME, PULUMI_HOME and TMPDIR previews and refreshes
// the first one's stack with 0 changes.)
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";

const repo = path.resolve(__dirname, "../../..");

/** What may reach the machine's own state, and why it does not matter to another workstation. */
const allowed: Record<string, string> = {
    "provider/host/trace.ts": "appends to the file PULUMI_BAREMETAL_TRACE names (diagnostics, opt-in, never read back)",
    "provider/host/pool.ts": "SSH_AUTH_SOCK: the operator's own SSH agent, used only when the connection names no key or password",
    "provider/ipmi/ipmitool.ts": "passes the BMC password to ipmitool through its environment (not argv), with the rest of the environment",
    "provider/native/server.ts": "PULUMI_CONFIG: the engine hands the provider its configuration there",
    "sdk/provider.ts": "PULUMI_DEBUG_PROMISE_LEAKS: Pulumi's own debugging switch",
    // The command-line entry (`baremetal discover`, `baremetal map`) reads and writes the files the user names.
    "provider/cli/": "the baremetal command: files the user names on its command line",
    "provider/schema/generate.ts": "build time: writes the schema and reference pages into the repository",
};

const reaches = /from "(node:)?(fs|fs\/promises|os|child_process)"|require\("(node:)?(fs|os)"\)|process\.env|homedir|tmpdir|\.cache|known_hosts/;

function sources(dir: string): string[] {
    return fs.readdirSync(path.join(repo, dir), { withFileTypes: true }).flatMap((e) => {
        const rel = path.join(dir, e.name);
        if (e.isDirectory()) return sources(rel);
        return e.name.endsWith(".ts") && !e.name.endsWith(".d.ts") ? [rel] : [];
    });
}

describe("the provider keeps no state of its own on the workstation", () => {
    it("no module of provider/ or sdk/ reaches the machine's files, home, temp dir or environment, but the listed ones", () => {
        const offenders: string[] = [];
        for (const file of [...sources("provider"), ...sources("sdk")]) {
            if (Object.keys(allowed).some((a) => file === a || (a.endsWith("/") && file.startsWith(a)))) continue;
            const text = fs.readFileSync(path.join(repo, file), "utf8");
            text.split("\n").forEach((line, i) => {
                if (reaches.test(line)) offenders.push(`${file}:${i + 1}: ${line.trim()}`);
            });
        }
        assert.deepStrictEqual(offenders, [], "a module reaches the workstation's own state; if it must, list it in `allowed` with why a second workstation does not need it");
    });

    it("every listed exception still exists (the list stays true)", () => {
        for (const a of Object.keys(allowed)) assert.ok(fs.existsSync(path.join(repo, a)), `${a} is listed but gone`);
    });
});
