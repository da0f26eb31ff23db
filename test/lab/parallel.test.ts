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

    async function bridgesOn(host: string): Promise<string[]> {
        const out = await sh.sh(host, "ovs-vsctl list-br 2>/dev/null | grep '^bmpar' || true");
        return out.split("\n").map((l) => l.trim()).filter(Boolean).sort();
    }

    before(async function () {
        requireTools(["pulumi", "pulumi-language-nodejs"]);
        const desc = labDescription();
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
