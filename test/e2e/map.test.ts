/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// `baremetal map` end to end: the command (bin/baremetal) on real states, and its
// page in a real browser (Debian's headless Chromium, driven over a pipe):
// - the seed's data center (116 resources: the state test/helpers/seedState.ts makes
//   from the real preview of examples/datacenter), healthy, then with a degraded array,
//   a stopped guest and a down OSD;
// - a stack brought up for real by the Pulumi CLI (a Machine against a loopback sshd
//   and Consul), read with --stack through the CLI;
// - the lab data center's state after `npm run demo` (test/e2e/fixtures/map/lab-state.json,
//   exported from the lab), whose screenshot is docs/map.png (rewritten by this test
//   when BAREMETAL_UPDATE_DOCS=1).
// Every page: each resource of the state is a node, nothing is fetched, no console
// error, no ciphertext anywhere, secrets read [secret]. Screenshots go to
// dist/test-artifacts/ (or $BAREMETAL_ARTIFACTS).
import * as assert from "assert";
import { execFile } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Host, SshPool, step } from "../../provider/host";
import { TestBrowser, OpenedPage } from "../helpers/browser";
import { Checkout } from "../helpers/checkout";
import { DevConsul, startConsul } from "../helpers/consul";
import { freePort } from "../helpers/net";
import { PulumiStack } from "../helpers/pulumi";
import { ciphertexts, seedStateFixture, trouble, withTrouble } from "../helpers/seedState";
import { startSshd, TestSshd } from "../helpers/sshd";
import { requireTools } from "../helpers/tools";

const repo = path.resolve(__dirname, "../../..");
const bin = path.join(repo, "bin", "baremetal");
const labStateFixture = path.join(repo, "test/e2e/fixtures/map/lab-state.json");
const artifacts = process.env.BAREMETAL_ARTIFACTS ?? path.join(repo, "dist", "test-artifacts");

interface ExportedState { deployment: { resources: { urn: string; type: string }[] } }

/** Runs `baremetal` with the given arguments and environment. */
function baremetal(args: string[], env: NodeJS.ProcessEnv = process.env, cwd?: string): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
        execFile(process.execPath, [bin, ...args], { env, cwd, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
            resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
        });
    });
}

function ourUrns(state: ExportedState): string[] {
    return state.deployment.resources.filter((r) => r.type.includes("baremetal:")).map((r) => r.urn).sort();
}

/** What every map page must be: each resource a node, no request but the page, no error, no ciphertext. */
async function assertSoundPage(opened: OpenedPage, state: ExportedState, file: string): Promise<void> {
    assert.deepStrictEqual(opened.requests, [`file://${path.resolve(file)}`], "the page fetched something");
    assert.deepStrictEqual(opened.errors, [], "console errors");
    const shown = await opened.page.$$eval("g.node[data-urns]", (els) => els.flatMap((e) => (e.getAttribute("data-urns") ?? "").split(" ")));
    assert.deepStrictEqual([...shown].sort(), ourUrns(state), "not every resource is a node");
    const html = await opened.page.content();
    const leaked = ciphertexts(state).filter((c) => html.includes(c) || html.includes(c.split(":").pop()!));
    assert.deepStrictEqual(leaked, [], "ciphertext in the page");
    assert.ok(!html.includes("4dabf18193072939515e22adb298388d"), "the secret signature is in the page");
}

/** The text of the details panel while the pointer is on the node that shows `urnName`. */
async function hoverDetails(opened: OpenedPage, urnName: string): Promise<string> {
    const id = await opened.page.$$eval("g.node[data-urns]", (els, name) => {
        const g = els.find((e) => (e.getAttribute("data-urns") ?? "").split(" ").some((u) => u.endsWith(`::${name}`)));
        return g?.getAttribute("data-id") ?? "";
    }, urnName);
    assert.ok(id, `no node for ${urnName}`);
    // The title text of the node: a point inside it that no child covers.
    await opened.page.hover(`g.node[data-id="${id}"] text.title`);
    return opened.page.$eval("#details", (el) => {
        const visible = [...el.querySelectorAll("section.detail")].filter((s) => !(s as HTMLElement).hidden);
        return visible.map((s) => (s as HTMLElement).innerText).join("\n");
    });
}

describe("baremetal map: the command and its page in a real browser", function () {
    this.timeout(600_000);
    let browser: TestBrowser;
    let dir: string;
    const seed = JSON.parse(fs.readFileSync(seedStateFixture, "utf8")) as ExportedState;

    before(async () => {
        requireTools(["pulumi", "pulumi-language-nodejs", "pulumi-resource-pulumi-nodejs", "consul"]);
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "bm-map-"));
        fs.mkdirSync(artifacts, { recursive: true });
        browser = await TestBrowser.launch();
    });

    after(async () => {
        await browser?.close();
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it("the seed's data center (116 resources): every resource a node, nothing fetched, nothing needs attention", async () => {
        const out = path.join(dir, "seed.html");
        const r = await baremetal(["map", "--state", seedStateFixture, "--out", out]);
        assert.strictEqual(r.code, 0, r.stderr);
        assert.match(r.stderr, /^baremetal map: 116 resources of stack e2e \(\d+ ms\) -> /);
        const opened = await browser.open(out);
        await assertSoundPage(opened, seed, out);
        assert.match(await opened.page.$eval("#attention", (el) => (el as HTMLElement).innerText), /^Nothing needs attention/);
        await opened.page.screenshot({ path: path.join(artifacts, "map-seed.png") });
        await opened.page.close();
    });

    it("with a degraded array, a stopped guest and a down OSD: listed at the top, drawn red, a click shows the details", async () => {
        const broken = withTrouble(seed);
        const stateFile = path.join(dir, "seed-trouble.json");
        fs.writeFileSync(stateFile, JSON.stringify(broken));
        const out = path.join(dir, "seed-trouble.html");
        const r = await baremetal(["map", "--state", stateFile, "--out", out]);
        assert.strictEqual(r.code, 0, r.stderr);
        assert.match(r.stderr, /116 resources of stack e2e, 4 need attention/);
        const opened = await browser.open(out);
        await assertSoundPage(opened, broken, out);
        const { page } = opened;
        const items = await page.$$eval("#attention li", (els) => els.map((e) => (e as HTMLElement).innerText));
        assert.deepStrictEqual(items.map((t) => t.replace(/ata-\S+/, "ata-…")), [
            "md1 raid1 on stor2: array degraded; failed: ata-…",
            "osd.10 on stor3: osd.10 is down",
            "nas1 on svc3: guest is shutdown",
            "osd.10 on stor3: osd.10 is out (holds no data)",
        ]);
        for (const name of Object.values(trouble)) {
            const stroke = await page.$$eval("g.node.attn", (els, n) => {
                const g = els.find((e) => (e.getAttribute("data-urns") ?? "").split(" ").some((u) => u.endsWith(`::${n}`)));
                return g ? getComputedStyle(g.querySelector("rect")!).stroke : "not marked";
            }, name);
            assert.strictEqual(stroke, "rgb(198, 40, 40)", `${name} does not stand out in red`);
        }
        // A click on the first item selects the array and shows its outputs.
        await page.click("#attention li:first-child");
        const selected = await page.$eval("g.node.selected", (g) => g.getAttribute("data-urns"));
        assert.match(selected ?? "", new RegExp(`::${trouble.array}$`));
        const details = await page.$eval("#details", (el) => [...el.querySelectorAll("section.detail")].filter((s) => !(s as HTMLElement).hidden).map((s) => (s as HTMLElement).innerText).join("\n"));
        assert.match(details, /failedMembers/);
        assert.match(details, /state\s+degraded/);
        assert.match(details, /connection\.privateKey\s+\[secret\]/);
        await page.keyboard.press("Escape");
        // Pointing at a guest shows its outputs; its key is [secret].
        const guest = await hoverDetails(opened, "guest-services1");
        assert.match(guest, /^services1/);
        assert.match(guest, /KvmGuest guest-services1/);
        assert.match(guest, /memoryMiB\s+4096/);
        assert.match(guest, /connection\.privateKey\s+\[secret\]/);
        await page.screenshot({ path: path.join(artifacts, "map-seed-trouble.png") });
        await page.close();
    });

    it("--format svg: a picture that lists what needs attention, with nothing to fetch", async () => {
        const stateFile = path.join(dir, "seed-trouble.json");
        const out = path.join(dir, "seed.svg");
        const r = await baremetal(["map", "--state", stateFile, "--format", "svg", "--out", out]);
        assert.strictEqual(r.code, 0, r.stderr);
        const opened = await browser.open(out);
        assert.deepStrictEqual(opened.requests, [`file://${out}`]);
        assert.deepStrictEqual(opened.errors, []);
        const texts = await opened.page.$$eval("svg > text", (els) => els.map((e) => e.textContent));
        assert.ok(texts.some((t) => /^! md1 raid1 on stor2: array degraded/.test(t ?? "")), texts.join("\n"));
        assert.strictEqual(await opened.page.$$eval("g.node[data-urns]", (els) => els.length), 116 - 9, "116 resources, 9 boot entries drawn with their guests");
        await opened.page.close();
    });

    it("bad arguments and a bad state file: a clear message, no file written", async () => {
        const out = path.join(dir, "never.html");
        const both = await baremetal(["map", "--stack", "x", "--state", "y", "--out", out]);
        assert.strictEqual(both.code, 2);
        assert.match(both.stderr, /^baremetal map: give exactly one of --stack NAME or --state FILE/);
        const notState = path.join(dir, "not-state.json");
        fs.writeFileSync(notState, '{"resources": 12}');
        const bad = await baremetal(["map", "--state", notState, "--out", out]);
        assert.strictEqual(bad.code, 1);
        assert.strictEqual(bad.stderr, `baremetal map: --state ${notState}: not the output of \`pulumi stack export\` (no deployment.resources list)\n`);
        assert.ok(!fs.existsSync(out));
    });

    describe("a stack brought up by the real Pulumi CLI, read with --stack", () => {
        let consul: DevConsul;
        let sshd: TestSshd;
        let checkout: Checkout;
        let stack: PulumiStack;
        const instance = "mapdemo";

        before(async () => {
            consul = await startConsul();
            sshd = await startSshd({ audit: "record", privateDirs: ["/etc/baremetal", "/srv/baremetal"] });
            const pool = new SshPool();
            try {
                // The PXE server's descriptor, as a PxeServer would have left it (inside the sshd's private dirs).
                await new Host(sshd.connection(), { pool }).apply([
                    step.writeFile(`/etc/baremetal/pxe/${instance}/server.json`, JSON.stringify({ instance, baseUrl: "http://198.51.100.10:8081", profiles: { default: "alpine" } })),
                ]);
            } finally {
                await pool.closeAll();
            }
            checkout = Checkout.create("one-resource");
            stack = await PulumiStack.init(checkout.programDir, "map");
            await stack.setConfig("kind", "Machine");
            await stack.setConfig("args", JSON.stringify({
                mac: "52:54:00:b0:00:77", hostname: "mapbox1", ip: "198.51.100.77", role: "storage", profile: "default", kernelArgs: [],
                pxeServers: [{ connection: { host: "127.0.0.1", port: sshd.port, hostKey: sshd.hostKey }, name: instance }],
                consul: { address: consul.address }, config: {},
                ipmi: { address: "127.0.0.1", port: await freePort(), user: "admin", password: "placeholder" },
                power: { onCreate: "none" },
            }));
            await stack.setConfig("secrets", JSON.stringify([[["pxeServers", "0", "connection", "privateKey"], "sshKey"], [["ipmi", "password"], "bmcPassword"]]));
            await stack.setConfig("sshKey", sshd.client.privateKey, true);
            await stack.setConfig("bmcPassword", "map-e2e-Bmc-pw-3141", true);
            await stack.up();
        });

        after(async () => {
            await stack?.run(["destroy", "--yes"]);
            await stack?.cleanup();
            checkout?.remove();
            await sshd?.stop();
            await consul?.stop();
        });

        it("exports the state without --show-secrets and draws the box with its BMC; secrets read [secret]", async () => {
            // A `pulumi` first on PATH that writes down its arguments, then runs the real one.
            const shim = path.join(dir, "shim");
            fs.mkdirSync(shim, { recursive: true });
            const log = path.join(dir, "pulumi-args.log");
            const real = (await new Promise<string>((res) => execFile("sh", ["-c", "command -v pulumi"], (_e, o) => res(o.trim()))));
            fs.writeFileSync(path.join(shim, "pulumi"), `#!/bin/sh\nprintf '%s\\n' "$*" >>'${log}'\nexec '${real}' "$@"\n`, { mode: 0o755 });
            const env: NodeJS.ProcessEnv = { ...stack.env, PATH: `${shim}:${process.env.PATH}` };
            delete env.PULUMI_CONFIG_PASSPHRASE; // exporting needs no passphrase: nothing is decrypted
            const out = path.join(dir, "stack.html");
            const r = await baremetal(["map", "--stack", stack.stack, "--out", out], env, checkout.programDir);
            assert.strictEqual(r.code, 0, r.stderr);
            assert.match(r.stderr, /1 resources of stack map/);
            assert.deepStrictEqual(fs.readFileSync(log, "utf8").trim().split("\n"), ["stack export --stack map --non-interactive"]);
            const state = JSON.parse(await stack.exportState()) as ExportedState;
            assert.ok(ciphertexts(state).length >= 2, "the state holds the secrets, encrypted");
            const opened = await browser.open(out);
            await assertSoundPage(opened, state, out);
            const html = await opened.page.content();
            assert.ok(!html.includes("map-e2e-Bmc-pw-3141") && !html.includes(sshd.client.privateKey.split("\n")[1]), "a secret's value is in the page");
            const box = await hoverDetails(opened, "subject");
            assert.match(box, /^mapbox1/);
            assert.match(box, /ipmi\.password\s+\[secret\]/);
            assert.match(box, /pxeServers\s+\[secret\]/);
            const title = await opened.page.$eval("g.node.k-box title", (t) => t.textContent ?? "");
            assert.match(title, /role storage · profile default/);
            assert.match(title, /BMC 127\.0\.0\.1:\d+/);
            await opened.page.close();
        });
    });

    describe("the lab data center after npm run demo", () => {
        it("draws every resource of the lab's state; the screenshot is docs/map.png", async () => {
            assert.ok(fs.existsSync(labStateFixture), `no ${labStateFixture}: export it after npm run demo (see test/unit/fixtures/map/README.md)`);
            const state = JSON.parse(fs.readFileSync(labStateFixture, "utf8")) as ExportedState;
            const out = path.join(dir, "lab.html");
            const r = await baremetal(["map", "--state", labStateFixture, "--out", out]);
            assert.strictEqual(r.code, 0, r.stderr);
            const opened = await browser.open(out, { width: 1500, height: 900 });
            await assertSoundPage(opened, state, out);
            const details = await hoverDetails(opened, "guest-labvm1");
            assert.match(details, /labvm1/);
            const png = path.join(artifacts, "map-lab.png");
            await opened.page.screenshot({ path: png, fullPage: true });
            if (process.env.BAREMETAL_UPDATE_DOCS === "1") fs.copyFileSync(png, path.join(repo, "docs", "map.png"));
            await opened.page.close();
        });
    });
});
