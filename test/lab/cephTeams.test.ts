// A team on shared state: the stack's state in the lab's own Ceph through RGW
// (Pulumi's S3 backend, lab/rgw.sh), two operators with a working copy each (the
// second with a fresh HOME and PULUMI_HOME: nothing of the first one's machine),
// under the real CLI. Only ceph1 is used (RGW and the resources), so the test runs
// in the ceph1 group beside the others.
// - Two `pulumi up` at once: the second, started while the first runs, is refused
//   by the backend's lock with a message naming the lock; its provider never
//   started (the host layer's trace has no connection and no command); the first
//   finishes; the state exports whole and the second operator's preview and
//   refresh show 0 changes.
// - A workstation killed mid-`up` (SIGKILL of the CLI and its plugins) inside a
//   create (a volume's LV made, its export not yet): the other operator's `up`
//   reports the lock it left, `pulumi cancel` clears it, the next `up` converges
//   (the create adopts the LV), and ceph1 holds every declared volume once (one LV,
//   one export config, one running export service each).
// The resources: a volume group on a loop device in the VM's memory and a chain of
// small NBD exports (each waits for the one before), so nothing touches the disks
// the Ceph tests use.
import * as assert from "assert";
import { ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { summarise } from "../../bench/lib/traceSummary";
import { lab as labDescription } from "../helpers/lab";
import { killTree } from "../helpers/processes";
import { changes, CliResult, PulumiStack, StackBackend } from "../helpers/pulumi";
import { requireTools } from "../helpers/tools";
import { waitFor } from "../helpers/wait";
import { LabShell, readLab } from "./lab";
import { LabRgw, rgwBackend, startRgw } from "./rgw";

const repo = path.resolve(__dirname, "../../..");
const vm = "ceph1";
const vgName = "bmteams";
const work = "/var/tmp/bmteams";
const portBase = 10890;

function figure(name: string, value: string): void {
    process.stdout.write(`      figure: ${name} = ${value}\n`);
}

function secs(ms: number): string {
    return `${(ms / 1000).toFixed(1)} s`;
}


/** `pulumi up` in the background, in a process group of its own (the CLI and its plugins). */
class BackgroundUp {
    readonly child: ChildProcess;
    private text = "";
    readonly done: Promise<CliResult & { ms: number }>;

    constructor(stack: PulumiStack) {
        const t0 = Date.now();
        this.child = spawn("pulumi", ["up", "--yes", "--skip-preview", "--non-interactive", "--color", "never", "--stack", stack.stack], {
            cwd: stack.dir, env: stack.env, detached: true, stdio: ["ignore", "pipe", "pipe"],
        });
        let stdout = "";
        let stderr = "";
        this.child.stdout!.on("data", (d: Buffer) => { stdout += d.toString(); this.text += d.toString(); });
        this.child.stderr!.on("data", (d: Buffer) => { stderr += d.toString(); this.text += d.toString(); });
        this.done = new Promise((resolve) => this.child.on("exit", (code) => resolve({ code: code ?? 1, stdout, stderr, ms: Date.now() - t0 })));
    }

    get output(): string {
        return this.text;
    }

    /** The workstation loses power: the CLI and every process under it (plugins included) die at once. */
    async kill(): Promise<void> {
        const exited = this.done;
        await killTree(this.child.pid!);
        await exited;
    }
}

/** The lines of a refusal worth showing a person (the CLI prints its error and the lock's path). */
function refusal(r: CliResult): string {
    return `${r.stdout}\n${r.stderr}`.split("\n").filter((l) => /locked|lock|cancel/i.test(l)).map((l) => l.trim()).join("\n");
}

describe("teams: shared state in the lab's own Ceph (RGW), two operators at once, a workstation killed mid-up", function () {
    this.timeout(30 * 60_000);
    let sh: LabShell;
    let rgw: LabRgw;
    let backend: StackBackend;
    let a: PulumiStack;
    let b: PulumiStack;
    let dirA: string;
    let dirB: string;
    let running: BackgroundUp | undefined;

    /** Operator B's working copy catches up with A's (as `git pull` does: Pulumi.<stack>.yaml). */
    function pull(): void {
        fs.copyFileSync(path.join(dirA, "Pulumi.lab.yaml"), path.join(dirB, "Pulumi.lab.yaml"));
    }

    function workingCopy(prefix: string): string {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
        for (const f of ["Pulumi.yaml", "index.js"]) fs.copyFileSync(path.join(repo, "test/lab/fixtures/teams", f), path.join(dir, f));
        fs.symlinkSync(path.join(repo, "node_modules"), path.join(dir, "node_modules"));
        return dir;
    }

    /** Our objects on ceph1 as a person would list them: LVs, export configs, running export services. */
    async function onHost(): Promise<{ lvs: string[]; configs: string[]; services: string[] }> {
        const out = await sh.sh(vm, [
            `echo "lvs: $(lvs --noheadings -o lv_name ${vgName} 2>/dev/null | xargs)"`,
            `echo "configs: $(cd /etc/nbd-server/baremetal 2>/dev/null && ls ${vgName}-*.conf 2>/dev/null | xargs)"`,
            `echo "services: $(systemctl list-units --plain --no-legend --state=running 'baremetal-nbd@${vgName}-*' | awk '{print $1}' | xargs)"`,
        ].join("; "));
        const field = (k: string) => (out.split("\n").find((l) => l.startsWith(`${k}:`)) ?? "").slice(k.length + 1).trim().split(/\s+/).filter((x) => x !== "").sort();
        return { lvs: field("lvs"), configs: field("configs"), services: field("services") };
    }

    /** Exactly one LV, one export config and one running export service per declared volume. */
    async function assertEachOnce(names: string[]): Promise<void> {
        const h = await onHost();
        const lvs = names.map((n) => `${vgName}-${n}`).sort();
        assert.deepStrictEqual(h.lvs, lvs, "logical volumes on ceph1");
        assert.strictEqual(h.configs.length, names.length, `export configs on ceph1: ${h.configs.join(" ")}`);
        assert.strictEqual(h.services.length, names.length, `running export services on ceph1: ${h.services.join(" ")}`);
    }

    async function sweep(): Promise<void> {
        await sh.try(vm, [
            `for u in $(systemctl list-units --plain --no-legend --all 'baremetal-nbd@${vgName}-*' | awk '{print $1}'); do systemctl stop "$u"; done`,
            `rm -f /etc/nbd-server/baremetal/${vgName}-*`,
            `vgs ${vgName} >/dev/null 2>&1 && { lvremove -q -y ${vgName}; vgremove -q -y ${vgName}; }`,
            `for l in $(losetup -j ${work}/disk.img -O NAME -n 2>/dev/null); do pvremove -q -ff -y "$l" >/dev/null 2>&1; losetup -d "$l"; done`,
            `rm -rf ${work}`,
            "true",
        ].join("; "), 120_000);
    }

    before(async function () {
        this.timeout(15 * 60_000);
        requireTools(["pulumi", "pulumi-language-nodejs"]);
        const desc = labDescription();
        sh = new LabShell(readLab());
        await sh.waitSsh(vm, 180_000);
        rgw = await startRgw();
        figure("lab/rgw.sh (made: cluster, radosgw, user, bucket; or found running)", `${rgw.seconds} s`);
        backend = rgwBackend(rgw, "cephteams");
        await sweep();
        const device = (await sh.sh(vm, `mkdir -p ${work} && truncate -s 192M ${work}/disk.img && losetup -f --show ${work}/disk.img`)).trim();
        dirA = workingCopy("bm-teams-a-");
        a = await PulumiStack.init(dirA, "lab", backend);
        const v = desc.vms[vm];
        await a.setConfig("host", v.ssh.host);
        await a.setConfig("hostKey", v.ssh.hostKey);
        await a.setConfig("privateKeyPath", desc.ssh.privateKeyPath);
        await a.setConfig("device", device);
        await a.setConfig("vgName", vgName);
        await a.setConfig("portBase", String(portBase));
        await a.setConfig("clients", desc.networks.lan?.cidr ?? "198.51.100.0/24");
        await a.setConfig("volumes", JSON.stringify(["a", "b"]));
        a.env.PULUMI_BAREMETAL_TRACE = path.join(dirA, "trace.jsonl");
        dirB = workingCopy("bm-teams-b-");
        pull();
        b = PulumiStack.open(dirB, "lab", backend);
        b.env.PULUMI_BAREMETAL_TRACE = path.join(dirB, "trace.jsonl");
    });

    after(async function () {
        this.timeout(10 * 60_000);
        if (running) await running.kill().catch(() => undefined);
        if (a) {
            await a.run(["cancel", "--yes"]); // only a lock a failed test left
            await a.setConfig("wipe", "true");
            const up = await a.run(["up", "--yes", "--skip-preview"]);
            const r = await a.run(["destroy", "--yes", "--skip-preview"]);
            if (r.code !== 0) process.stderr.write(`destroy (the sweep clears the rest):\n${up.stdout}\n${r.stdout}\n${r.stderr}\n`);
            await a.cleanup();
        }
        if (b) await b.cleanup();
        if (sh) await sweep();
        for (const d of [dirA, dirB]) if (d) fs.rmSync(d, { recursive: true, force: true });
    });

    it("two ups at once: one proceeds, the other is refused by the backend's lock and changes nothing", async () => {
        running = new BackgroundUp(a);
        const first = running;
        // Operator A's up holds the lock once its engine runs the program's steps.
        await waitFor("operator A's up to start creating", () => /creating/.test(first.output), 10 * 60_000);
        const t0 = Date.now();
        const r = await b.run(["up", "--yes", "--skip-preview"]);
        figure("operator B's up, refused", secs(Date.now() - t0));
        assert.notStrictEqual(r.code, 0, `operator B's up ran while A's held the lock:\n${r.stdout}`);
        const message = refusal(r);
        console.log(message.split("\n").map((l) => `      refusal: ${l}`).join("\n"));
        assert.match(message, /the stack is currently locked by 1 lock\(s\)/);
        assert.match(message, /pulumi cancel/);
        assert.match(message, new RegExp(`\\.pulumi/locks/.*/lab/[0-9a-f-]+\\.json.*created by \\S+@\\S+ \\(pid ${first.child.pid}\\)`));
        assert.doesNotMatch(r.stdout, /creat(ing|ed)|updat(ing|ed)|delet(ing|ed)/, "operator B's up started a step");
        const traced = summarise(b.env.PULUMI_BAREMETAL_TRACE!);
        assert.strictEqual(traced.connectionsOpened + traced.dialsFailed + traced.commands, 0, `operator B's provider reached a host: ${JSON.stringify(traced)}`);

        const done = await first.done;
        running = undefined;
        assert.strictEqual(done.code, 0, `operator A's up failed:\n${done.stdout}\n${done.stderr}`);
        figure("operator A's up (a volume group, 2 exports)", secs(done.ms));
        await assertEachOnce(["a", "b"]);

        // The state is whole, and the other operator, on a fresh HOME, sees nothing to do.
        const state = JSON.parse((await b.ok(["stack", "export"])).stdout) as { deployment: { resources?: { urn: string }[]; pending_operations?: unknown[] } };
        const urns = (state.deployment.resources ?? []).map((x) => x.urn.split("::").pop());
        for (const n of ["vg", "volume-a", "volume-b"]) assert.ok(urns.includes(n), `${n} is not in the exported state`);
        assert.strictEqual((state.deployment.pending_operations ?? []).length, 0, "pending operations in the state");
        const t1 = Date.now();
        const p = await b.preview();
        figure("operator B's preview (fresh HOME, PULUMI_HOME)", secs(Date.now() - t1));
        assert.strictEqual(changes(p.changeSummary), 0, `operator B's preview: ${JSON.stringify(p.changeSummary)}`);
        const refresh = await b.run(["refresh", "--yes", "--skip-preview", "--expect-no-changes"]);
        assert.strictEqual(refresh.code, 0, `operator B's refresh found drift:\n${refresh.stdout}\n${refresh.stderr}`);
    });

    it("a workstation killed mid-up: its lock is reported, pulumi cancel clears it, the next up converges with nothing twice", async () => {
        await a.setConfig("volumes", JSON.stringify(["a", "b", "c", "d"]));
        pull();
        const traceA = a.env.PULUMI_BAREMETAL_TRACE!;
        fs.rmSync(traceA, { force: true });
        running = new BackgroundUp(a);
        const killed = running;
        // The kill lands inside volume-c's create: its logical volume made (the host layer's trace
        // shows the lvcreate done), its export not yet configured; the state does not have it.
        await waitFor("operator A's up to run lvcreate for volume-c", () => fs.existsSync(traceA) && /"command":"[^"]*lvcreate [^"]*bmteams-c/.test(fs.readFileSync(traceA, "utf8")), 10 * 60_000);
        await killed.kill();
        running = undefined;
        const left = await onHost();
        figure("ceph1 when the workstation died", `LVs ${left.lvs.join(" ")}; export configs ${left.configs.length}`);
        assert.ok(left.lvs.includes(`${vgName}-c`), "the kill came before volume-c's logical volume was made");

        const blocked = await b.run(["up", "--yes", "--skip-preview"]);
        assert.notStrictEqual(blocked.code, 0, "an up ran over the dead workstation's lock");
        const message = refusal(blocked);
        console.log(message.split("\n").map((l) => `      left lock: ${l}`).join("\n"));
        assert.match(message, /the stack is currently locked by 1 lock\(s\)/);
        assert.match(message, new RegExp(`\\(pid ${killed.child.pid}\\)`), "the message names the dead workstation's pulumi");

        await b.ok(["cancel", "--yes"]);
        const t0 = Date.now();
        const r = await b.run(["up", "--yes", "--skip-preview"]);
        figure("operator B's up after the cancel", secs(Date.now() - t0));
        assert.strictEqual(r.code, 0, `the up after the cancel failed:\n${r.stdout}\n${r.stderr}`);
        const warned = `${r.stdout}\n${r.stderr}`.split("\n").filter((l) => /pending|interrupted/i.test(l));
        if (warned.length > 0) console.log(warned.slice(0, 3).map((l) => `      after the kill: ${l.trim()}`).join("\n"));
        await assertEachOnce(["a", "b", "c", "d"]);
        const p = await a.preview();
        assert.strictEqual(changes(p.changeSummary), 0, `operator A's preview afterwards: ${JSON.stringify(p.changeSummary)}`);
    });
});
