// The native provider (bin/pulumi-resource-baremetal) under the real pulumi CLI,
// found on PATH as lab/env.sh puts it there, with the real Pulumi YAML language
// host and a real Consul agent on loopback: the schema as pulumi reads and binds
// it, the YAML slice of examples/yaml previewed with every host unreachable, its
// ConsulKeys applied and destroyed, and `pulumi import` of keys made by hand,
// whose printed code previews with 0 changes and then takes an ordinary update;
// and a stack's move from the dynamic resource to the native one (by import).
import * as assert from "assert";
import { execFile } from "child_process";
import { generateKeyPairSync } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Checkout } from "../helpers/checkout";
import { DevConsul, startConsul } from "../helpers/consul";
import { ConnectionCounter } from "../helpers/net";
import { changes, CliResult, PulumiStack } from "../helpers/pulumi";
import { requireTools } from "../helpers/tools";

const repo = path.resolve(__dirname, "../../..");
const plugin = path.join(repo, "bin", "pulumi-resource-baremetal");
const tsigKey = "e2e-TSIG-" + Math.random().toString(36).slice(2);

function pulumi(args: string[], cwd: string): Promise<CliResult> {
    return new Promise((resolve) => {
        execFile("pulumi", args, { cwd, env: { ...process.env, PULUMI_SKIP_UPDATE_CHECK: "true" }, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
            resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
        });
    });
}

/** A directory holding a copy of a YAML program (a YAML project needs nothing else). */
function yamlProject(from?: string, text?: string): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bm-yaml-"));
    if (from) fs.copyFileSync(path.join(repo, from, "Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));
    else fs.writeFileSync(path.join(dir, "Pulumi.yaml"), text ?? "");
    return dir;
}

describe("native provider under the real pulumi CLI (Pulumi YAML)", function () {
    this.timeout(240_000);
    let consul: DevConsul;
    const cleanups: (() => Promise<void> | void)[] = [];

    before(async () => {
        requireTools(["pulumi", "pulumi-language-yaml", "pulumi-resource-baremetal", "pulumi-language-nodejs", "pulumi-resource-pulumi-nodejs", "consul"]);
        consul = await startConsul();
    });

    after(async () => {
        for (const c of cleanups.reverse()) await c();
        await consul?.stop();
    });

    it("pulumi package get-schema prints the schema, and pulumi binds it without a diagnostic", async () => {
        const r = await pulumi(["package", "get-schema", plugin], os.tmpdir());
        assert.strictEqual(r.code, 0, r.stderr);
        const schema = JSON.parse(r.stdout) as { name: string; version: string; resources: Record<string, unknown>; types: Record<string, unknown> };
        const pkg = JSON.parse(fs.readFileSync(path.join(repo, "package.json"), "utf8")) as { version: string };
        assert.strictEqual(schema.name, "baremetal");
        assert.strictEqual(schema.version, pkg.version);
        assert.strictEqual(Object.keys(schema.resources).length, 10);
        assert.ok(schema.resources["baremetal:index:LxcContainer"] && schema.types["baremetal:index:Connection"]);
        assert.doesNotMatch(r.stderr, /failed to bind|error/i);
    });

    describe("examples/yaml", () => {
        let stack: PulumiStack;
        const urn = (kind: string, name: string) => `urn:pulumi:e2e::baremetal-yaml::baremetal:index:${kind}::${name}`;

        before(async () => {
            const dir = yamlProject("examples/yaml");
            stack = await PulumiStack.init(dir);
            cleanups.push(async () => {
                await stack.cleanup();
                fs.rmSync(dir, { recursive: true, force: true });
            });
            const key = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs1", format: "pem" }).toString();
            await stack.setConfig("baremetal:privateKey", key, true);
            await stack.ok(["config", "set", "--path", 'baremetal:hostKeys["127.0.0.1"]', "SHA256:" + "C".repeat(43)]);
            await stack.setConfig("tsigKey", tsigKey, true);
            await stack.setConfig("pxeHost", "127.0.0.1");
            await stack.setConfig("svcHost", "127.0.0.1");
        });

        it("previews the slice with every box and Consul unreachable, without a single connection", async () => {
            const counter = await new ConnectionCounter().start();
            try {
                await stack.setConfig("consulAddress", `127.0.0.1:${counter.port}`);
                await stack.setConfig("baremetal:port", String(counter.port));
                const preview = await stack.preview();
                const planned = preview.steps.filter((s) => s.op === "create" && s.newState?.type.startsWith("baremetal:index:")).map((s) => s.newState?.type).sort();
                assert.deepStrictEqual(planned, ["baremetal:index:ConsulKeys", "baremetal:index:LxcContainer", "baremetal:index:Machine"]);
                assert.strictEqual(counter.count, 0, "preview opened a connection");
                assert.ok(!stack.transcript.join("").includes(tsigKey), "the secret reached the CLI's output");
            } finally {
                await counter.stop();
                await stack.ok(["config", "rm", "baremetal:port"]);
            }
        });

        it("applies its ConsulKeys to a real Consul, keeps the secret encrypted, then a no-op, then destroys it", async () => {
            await stack.setConfig("consulAddress", consul.address);
            const target = ["--target", urn("ConsulKeys", "dns01-config")];
            await stack.up(target);
            assert.strictEqual(await consul.get("config/dns01/listen"), "198.18.1.53");
            assert.strictEqual(await consul.get("config/dns01/tsig/key"), tsigKey);
            assert.ok(!(await stack.exportState()).includes(tsigKey), "the secret is in the state in plain text");
            const again = await stack.preview(target);
            assert.strictEqual(changes(again.changeSummary), 0, JSON.stringify(again.changeSummary));
            await stack.ok(["destroy", "--yes", "--skip-preview", ...target]);
            assert.deepStrictEqual(await consul.keys("config/dns01/"), []);
            assert.ok(!stack.transcript.join("").includes(tsigKey), "the secret reached the CLI's output");
        });
    });

    it("imports keys made by hand; the printed code previews with 0 changes, then an ordinary update applies", async () => {
        await consul.put("config/hand/listen", "192.0.2.53");
        await consul.put("config/hand/forwarders/0", "192.0.2.1");
        const dir = yamlProject(undefined, "name: imported\nruntime: yaml\n");
        const stack = await PulumiStack.init(dir);
        cleanups.push(async () => {
            await stack.cleanup();
            fs.rmSync(dir, { recursive: true, force: true });
        });
        const out = path.join(dir, "imported.yaml");
        await stack.ok(["import", "baremetal:index:ConsulKeys", "hand", `config/hand/@${consul.address}`, "--yes", "--protect=false", "--out", out]);
        const code = fs.readFileSync(out, "utf8");
        assert.match(code, /type: baremetal:(index:)?ConsulKeys/);
        assert.match(code, /prefix: config\/hand\//);
        assert.match(code, /listen: 192\.0\.2\.53/);
        fs.appendFileSync(path.join(dir, "Pulumi.yaml"), code);
        const preview = await stack.preview();
        assert.strictEqual(changes(preview.changeSummary), 0, `the printed code differs from what was imported: ${JSON.stringify(preview.changeSummary)}\n${code}`);
        fs.writeFileSync(path.join(dir, "Pulumi.yaml"), fs.readFileSync(path.join(dir, "Pulumi.yaml"), "utf8").replace("192.0.2.53", "192.0.2.54"));
        await stack.up();
        assert.strictEqual(await consul.get("config/hand/listen"), "192.0.2.54");
        assert.strictEqual(await consul.get("config/hand/forwarders/0"), "192.0.2.1");
    });
    it("moves a ConsulKeys from a TypeScript stack's dynamic resource to a YAML stack's native one, touching nothing", async () => {
        const password = "e2e-Moved-Pa55word";
        // The TypeScript stack makes it with the dynamic resource ...
        const checkout = Checkout.create("consul-keys");
        const ts = await PulumiStack.init(checkout.programDir);
        cleanups.push(async () => {
            await ts.cleanup();
            checkout.remove();
        });
        await ts.setConfig("consulAddress", consul.address);
        await ts.setConfig("prefix", "config/moved/");
        await ts.setConfig("keys", JSON.stringify({ listen: "192.0.2.80" }));
        await ts.setConfig("dbPassword", password, true);
        await ts.up();
        const exported = JSON.parse(await ts.exportState()) as { deployment: { resources: { urn: string; type: string }[] } };
        const dynamicUrn = exported.deployment.resources.find((r) => r.type === "pulumi-nodejs:dynamic/baremetal:ConsulKeys")?.urn;
        assert.ok(dynamicUrn);
        // ... forgets it (the keys stay in Consul) ...
        await ts.ok(["state", "delete", dynamicUrn, "--yes"]);
        // ... and the YAML stack imports it, naming the secret key, and refers to the secret by config.
        const dir = yamlProject(undefined, "name: moved\nruntime: yaml\nconfig:\n  dbPassword:\n    type: string\n    secret: true\n");
        const yaml = await PulumiStack.init(dir);
        cleanups.push(async () => {
            await yaml.cleanup();
            fs.rmSync(dir, { recursive: true, force: true });
        });
        await yaml.setConfig("dbPassword", password, true);
        const out = path.join(dir, "imported.yaml");
        await yaml.ok(["import", "baremetal:index:ConsulKeys", "svc", `config/moved/@${consul.address}#db/password`, "--yes", "--protect=false", "--out", out]);
        assert.ok(!(await yaml.exportState()).includes(password), "the imported secret is in the state in plain text");
        const code = fs.readFileSync(out, "utf8");
        assert.match(code, /secrets:\n\s+db\/password: /);
        fs.appendFileSync(path.join(dir, "Pulumi.yaml"), code.replace(new RegExp(`(db/password: ).*`), "$1${dbPassword}"));
        const preview = await yaml.preview();
        assert.strictEqual(changes(preview.changeSummary), 0, JSON.stringify(preview.changeSummary));
        assert.strictEqual(await consul.get("config/moved/db/password"), password);
        assert.strictEqual(await consul.get("config/moved/listen"), "192.0.2.80");
    });
});
