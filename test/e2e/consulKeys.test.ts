// ConsulKeys under the real Pulumi CLI and the real Consul agent: the whole
// lifecycle a user goes through, including a checkout that moves.
import * as assert from "assert";
import { Checkout } from "../helpers/checkout";
import { DevConsul, startConsul } from "../helpers/consul";
import { ConnectionCounter } from "../helpers/net";
import { changes, PulumiStack } from "../helpers/pulumi";
import { assertNoSecretIn, assertStateEncrypted, secretFragments } from "../helpers/secrets";
import { requireTools } from "../helpers/tools";

const password = "e2e-Secret-Pa55word";
const type = "pulumi-nodejs:dynamic/baremetal:ConsulKeys";

describe("ConsulKeys under the real pulumi CLI", function () {
    this.timeout(180_000);
    let consul: DevConsul;
    let checkout: Checkout;
    let stack: PulumiStack;

    before(async () => {
        requireTools(["pulumi", "pulumi-language-nodejs", "pulumi-resource-pulumi-nodejs", "consul"]);
        consul = await startConsul();
        checkout = Checkout.create("consul-keys");
        stack = await PulumiStack.init(checkout.programDir);
        await stack.setConfig("prefix", "config/web01/");
        await stack.setConfig("keys", JSON.stringify({ listen: "192.0.2.80", "upstream/0": "192.0.2.81" }));
        await stack.setConfig("dbPassword", password, true);
    });

    after(async () => {
        await stack?.cleanup();
        checkout?.remove();
        await consul?.stop();
    });

    it("previews with Consul unreachable, without a single connection", async () => {
        const counter = await new ConnectionCounter().start();
        try {
            await stack.setConfig("consulAddress", `127.0.0.1:${counter.port}`);
            const preview = await stack.preview();
            const step = preview.steps.find((s) => s.urn.endsWith("::svc"));
            assert.strictEqual(step?.op, "create");
            assert.strictEqual(step?.newState?.type, type);
            assert.strictEqual(counter.count, 0, "preview opened a connection to Consul");
        } finally {
            await counter.stop();
        }
    });

    it("rejects bad input before anything runs, naming the field", async () => {
        await stack.setConfig("consulAddress", consul.address);
        await stack.setConfig("prefix", "/etc/passwd");
        const r = await stack.run(["preview"]);
        assert.notStrictEqual(r.code, 0);
        assert.match(r.stdout + r.stderr, /prefix: "\/etc\/passwd\/" must be a relative path/);
        assert.deepStrictEqual(await consul.keys(""), []);
        await stack.setConfig("prefix", "config/web01/");
    });

    it("up writes the keys, secrets included, and logs against the resource", async () => {
        const r = await stack.up();
        assert.match(r.stdout, /baremetal:ConsulKeys \(svc\):\s+writing 3 of 3 key\(s\) under config\/web01\//);
        assert.strictEqual(await consul.get("config/web01/listen"), "192.0.2.80");
        assert.strictEqual(await consul.get("config/web01/upstream/0"), "192.0.2.81");
        assert.strictEqual(await consul.get("config/web01/db/password"), password);
    });

    it("a second up finds nothing to change", async () => {
        const preview = await stack.preview();
        assert.strictEqual(changes(preview.changeSummary), 0, JSON.stringify(preview.changeSummary));
        await stack.up(["--expect-no-changes"]);
    });

    it("an update changes, adds and removes keys in place", async () => {
        await stack.setConfig("keys", JSON.stringify({ listen: "192.0.2.88", workers: "4" }));
        const preview = await stack.preview();
        assert.strictEqual(preview.steps.find((s) => s.urn.endsWith("::svc"))?.op, "update");
        await stack.up();
        assert.strictEqual(await consul.get("config/web01/listen"), "192.0.2.88");
        assert.strictEqual(await consul.get("config/web01/workers"), "4");
        assert.strictEqual(await consul.get("config/web01/upstream/0"), undefined);
        assert.strictEqual(await consul.get("config/web01/db/password"), password);
    });

    it("refresh shows a key changed by hand, and up puts it back", async () => {
        await consul.put("config/web01/listen", "198.51.100.1");
        const refresh = JSON.parse((await stack.ok(["refresh", "--preview-only", "--json"])).stdout) as { steps: { op: string; urn: string }[] };
        assert.ok(refresh.steps.some((s) => s.urn.endsWith("::svc") && s.op === "refresh"), JSON.stringify(refresh.steps));
        await stack.ok(["refresh", "--yes"]);
        assert.deepStrictEqual((await stack.resourceOutputs("svc")).keys, { listen: "198.51.100.1", workers: "4" });
        const preview = await stack.preview();
        assert.strictEqual(preview.steps.find((s) => s.urn.endsWith("::svc"))?.op, "update");
        await stack.up();
        assert.strictEqual(await consul.get("config/web01/listen"), "192.0.2.88");
    });

    it("refuses to take over existing keys without adopt, and changes nothing", async () => {
        await consul.put("config/web02/listen", "198.51.100.2");
        await stack.setConfig("prefix", "config/web02/");
        const r = await stack.run(["up", "--yes", "--skip-preview"]);
        assert.notStrictEqual(r.code, 0);
        assert.match(r.stdout, /already exist in Consul with other values \(config\/web02\/listen\)/);
        assert.match(r.stdout, /Set adopt: true/);
        assert.strictEqual(await consul.get("config/web02/listen"), "198.51.100.2");
        assert.strictEqual(await consul.get("config/web01/listen"), "192.0.2.88", "the old keys must survive a failed replacement");
    });

    it("adopts existing keys when told to, replacing the old prefix", async () => {
        await stack.setConfig("adopt", "true");
        await stack.up();
        assert.strictEqual(await consul.get("config/web02/listen"), "192.0.2.88");
        assert.deepStrictEqual(await consul.keys("config/web01/"), []);
    });

    it("keeps secrets out of state and out of everything the CLI printed", async () => {
        await assertStateEncrypted(stack, secretFragments([password]), [password]);
        assertNoSecretIn(stack.transcript.join("\n"), secretFragments([password]), "CLI output");
    });

    it("keeps working after the checkout moves to another directory", async () => {
        const oldRoot = checkout.root;
        const state = await stack.exportState();
        assert.ok(!state.includes(oldRoot), "state mentions the checkout path");
        stack.dir = checkout.programDir.replace(oldRoot, checkout.move("b"));
        await stack.up(["--expect-no-changes"]);
        await consul.put("config/web02/listen", "198.51.100.3");
        await stack.ok(["refresh", "--yes"]);
        assert.strictEqual(((await stack.resourceOutputs("svc")).keys as Record<string, string>).listen, "198.51.100.3");
        await stack.ok(["destroy", "--yes"]);
        assert.deepStrictEqual(await consul.keys("config/"), []);
    });
});
