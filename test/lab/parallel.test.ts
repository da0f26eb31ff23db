// Parallelism: `pulumi up --parallel 32` of 36 resources spread over three lab
// hosts (12 Open vSwitch bridges on each of pxe1, storage1 and svc1), then
// `pulumi destroy --parallel 32`. Many resources share each host's pooled SSH
// connection and per-host locks at once; none may fail on a lock, a session
// limit or a busy ovsdb, and every bridge must really exist, then really be gone.
import * as assert from "assert";
import * as fs from "fs";
import { Checkout } from "../helpers/checkout";
import { lab as labDescription } from "../helpers/lab";
import { changes, PulumiStack } from "../helpers/pulumi";
import { requireTools } from "../helpers/tools";
import { LabShell, readLab } from "./lab";

const hosts = ["pxe1", "storage1", "svc1"];
const perHost = 12; // 36 in all: more than --parallel 32, so the engine keeps 32 at once
const sweep = `for b in $(ovs-vsctl list-br 2>/dev/null | grep '^bmpar'); do ovs-vsctl del-br "$b"; done; true`;

describe("pulumi up --parallel 32 on 36 resources over three lab hosts", function () {
    this.timeout(30 * 60_000);
    let sh: LabShell;
    let stack: PulumiStack;
    let co: Checkout;
    let svc1: { ssh: { host: string; port: number } };

    /** The URN of a resource of the stack by name, undefined when the state has none. */
    async function urnIfAny(name: string): Promise<string | undefined> {
        const state = JSON.parse(await stack.exportState()) as { deployment: { resources?: { urn: string }[] } };
        return state.deployment.resources?.find((x) => x.urn.endsWith(`::${name}`))?.urn;
    }

    async function urnOf(name: string): Promise<string> {
        const urn = await urnIfAny(name);
        if (!urn) throw new Error(`no resource ${name} in the stack's state`);
        return urn;
    }

    async function bridgesOn(host: string): Promise<string[]> {
        const out = await sh.sh(host, "ovs-vsctl list-br 2>/dev/null | grep '^bmpar' || true");
        return out.split("\n").map((l) => l.trim()).filter(Boolean).sort();
    }

    before(async function () {
        requireTools(["pulumi", "pulumi-language-nodejs"]);
        const desc = labDescription();
        svc1 = desc.vms.svc1;
        sh = new LabShell(readLab());
        for (const h of hosts) await sh.waitSsh(h, 180_000);
        for (const h of hosts) await sh.sh(h, sweep);
        co = Checkout.create("parallel", "test/lab/fixtures");
        stack = await PulumiStack.init(co.programDir, "lab");
        const boxes = Object.fromEntries(hosts.map((n) => [n, { host: desc.vms[n].ssh.host, port: desc.vms[n].ssh.port, user: desc.vms[n].ssh.user, hostKey: desc.vms[n].ssh.hostKey }]));
        await stack.setConfig("boxes", JSON.stringify(boxes));
        await stack.setConfig("perHost", String(perHost));
        await stack.setConfig("privateKeyBase64", Buffer.from(fs.readFileSync(desc.ssh.privateKeyPath, "utf8")).toString("base64"), true);
    });

    after(async function () {
        this.timeout(10 * 60_000);
        if (stack) {
            await stack.run(["destroy", "--yes", "--skip-preview", "--parallel", "32"]);
            await stack.cleanup();
        }
        if (co) co.remove();
        if (sh) for (const h of hosts) await sh.try(h, sweep);
    });

    it("creates every bridge with no lock or session failure", async function () {
        const t0 = Date.now();
        const r = await stack.run(["up", "--yes", "--skip-preview", "--parallel", "32"]);
        const text = `${r.stdout}\n${r.stderr}`;
        assert.strictEqual(r.code, 0, `pulumi up failed:\n${text}`);
        assert.doesNotMatch(text, /lock|busy|ECONNRESET|Channel open failure/i);
        console.log(`      figure: pulumi up --parallel 32 of ${hosts.length * perHost} bridges = ${((Date.now() - t0) / 1000).toFixed(0)}s`);
        const want = Array.from({ length: perHost }, (_, i) => `bmpar${i}`).sort();
        for (const h of hosts) assert.deepStrictEqual(await bridgesOn(h), want, `bridges on ${h}; pulumi printed:\n${r.stdout}`);
    });

    it("a second up finds nothing to change", async function () {
        const p = await stack.preview(["--parallel", "32"]);
        assert.strictEqual(changes(p.changeSummary), 0, JSON.stringify(p.changeSummary));
    });

    // A database that does not answer is not an absent bridge: a refresh must not drop the bridge from
    // the state, nor a delete skip it (CI once saw this file's destroy leave svc1's bmpar2 behind and
    // report it removed). svc1 is held by this file, so freezing its ovsdb-server touches no other test.
    it("a refresh while svc1's ovsdb-server is frozen fails naming svc1 and the call, and keeps the bridge in the state", async function () {
        const urn = await urnOf("svc1-bmpar2");
        await sh.sh("svc1", "kill -STOP $(pidof ovsdb-server)");
        let r;
        try {
            r = await stack.run(["refresh", "--yes", "--skip-preview", "--target", urn]);
        } finally {
            await sh.sh("svc1", "kill -CONT $(pidof ovsdb-server)");
        }
        const text = `${r.stdout}\n${r.stderr}`;
        assert.notStrictEqual(r.code, 0, `the refresh succeeded with the database frozen:\n${text}`);
        assert.match(text, /Open vSwitch did not answer `ovs-vsctl br-exists bmpar2` \(no answer in 30 s\)/);
        assert.ok(text.includes(`${svc1.ssh.host}:${svc1.ssh.port}`), `the error names svc1 (${svc1.ssh.host}:${svc1.ssh.port}):\n${text}`);
        assert.ok(await urnIfAny("svc1-bmpar2"), "still in the state");
        const p = await stack.preview(["--refresh", "--target", urn]);
        assert.strictEqual(changes(p.changeSummary), 0, JSON.stringify(p.changeSummary));
    });

    it("a destroy of a bridge while svc1's Open vSwitch is stopped starts it and removes the bridge", async function () {
        const urn = await urnOf("svc1-bmpar2");
        await sh.sh("svc1", "systemctl stop openvswitch-switch ovs-vswitchd ovsdb-server");
        // ovs-vsctl's own words with the database stopped (the fake of the unit tier answers with these)
        assert.match(await sh.sh("svc1", "ovs-vsctl br-exists bmpar2 2>&1; echo exit=$?"), /database connection failed \(No such file or directory\)\nexit=1/);
        const r = await stack.run(["destroy", "--yes", "--skip-preview", "--target", urn]);
        assert.strictEqual(r.code, 0, `pulumi destroy --target failed:\n${r.stdout}\n${r.stderr}`);
        assert.strictEqual((await sh.sh("svc1", "systemctl is-active openvswitch-switch; true")).trim(), "active");
        assert.deepStrictEqual(await bridgesOn("svc1"), Array.from({ length: perHost }, (_, i) => `bmpar${i}`).filter((b) => b !== "bmpar2").sort());
    });

    it("destroys every bridge with no lock or session failure", async function () {
        const t0 = Date.now();
        const r = await stack.run(["destroy", "--yes", "--skip-preview", "--parallel", "32"]);
        const text = `${r.stdout}\n${r.stderr}`;
        assert.strictEqual(r.code, 0, `pulumi destroy failed:\n${text}`);
        assert.doesNotMatch(text, /lock|busy|ECONNRESET|Channel open failure/i);
        console.log(`      figure: pulumi destroy --parallel 32 = ${((Date.now() - t0) / 1000).toFixed(0)}s`);
        for (const h of hosts) assert.deepStrictEqual(await bridgesOn(h), [], `bridges left on ${h}`);
    });
});
