// Previews a reviewer can trust (issue 17), under the real pulumi CLI with every box
// unreachable (TEST-NET addresses; a preview dials nothing). The program is the
// issue's own: 17 resources written as a user would (test/e2e/fixtures/site17), with
// mistakes switched on by stack config. What is asserted is the text the CLI prints.
//   - every mistake of every resource in one preview, each once, no follow-on error;
//   - mistakes across resources (a profile, a MAC, a subnet, an export), naming both;
//   - a box move shows its host: `connection.host "a" => "b"`, a live migration says
//     from where to where; a stack written when the whole connection was a secret
//     upgrades with no diff;
//   - a mistake in an existing stack plans no delete.
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Checkout } from "../helpers/checkout";
import { PreviewJson, PulumiStack } from "../helpers/pulumi";
import { generateKeyPair } from "../helpers/sshd";
import { requireTools } from "../helpers/tools";

const hostKey = `SHA256:${"Q".repeat(43)}`;

/** The problem lines of the preview's Diagnostics: `Kind "name": field: reason`, one per problem. */
function problemLines(out: string): string[] {
    const diagnostics = out.slice(out.indexOf("Diagnostics:"));
    return diagnostics
        .split("\n")
        .map((l) => l.trim().replace(/^error: /, ""))
        .filter((l) => /^[A-Z][A-Za-z]+ "[^"]+": /.test(l));
}

/** `+ 13 to create` of the summary. */
function toCreate(out: string): number {
    return Number(/\+ (\d+) to create/.exec(out)?.[1] ?? 0);
}

describe("previews a reviewer can trust (issue 17): the real pulumi CLI, every box unreachable", function () {
    this.timeout(600_000);
    let checkout: Checkout;
    let stack: PulumiStack;
    let privateKey: string;

    before(async () => {
        requireTools(["pulumi", "pulumi-language-nodejs", "pulumi-resource-pulumi-nodejs", "ssh-keygen"]);
        checkout = Checkout.create("site17");
        stack = await PulumiStack.init(checkout.programDir);
        const keys = fs.mkdtempSync(path.join(os.tmpdir(), "bm-previews-"));
        privateKey = generateKeyPair(keys, "e2e").privateKey;
        fs.rmSync(keys, { recursive: true, force: true });
        await stack.setConfig("sshKey", privateKey, true);
        await stack.setConfig("hostKey", hostKey);
    });

    after(async () => {
        await stack?.cleanup();
        checkout?.remove();
    });

    async function configure(mistakes: string[], more: Record<string, string> = {}): Promise<void> {
        await stack.setConfig("mistakes", JSON.stringify(mistakes));
        for (const [k, v] of Object.entries(more)) await stack.setConfig(k, v);
    }

    it("the program with no mistake previews 17 creates", async () => {
        await configure([]);
        const r = await stack.ok(["preview"]);
        assert.strictEqual(toCreate(r.stdout), 18, r.stdout); // and the stack itself
        assert.deepStrictEqual(problemLines(r.stdout), []);
    });

    it("four mistakes in four resources: one preview names all four, each once, and previews the other 13", async () => {
        await configure(["member", "ipv4", "size", "mac"]);
        const r = await stack.run(["preview"]);
        const out = r.stdout + r.stderr;
        assert.notStrictEqual(r.code, 0, "the preview must fail");
        assert.deepStrictEqual(problemLines(out).sort(), [
            'LxcContainer "web": network[0].ipv4: "198.18.1.50" is not an IPv4 address with prefix length like 198.18.1.50/24',
            'Machine "svc1": mac: "52:54:00:b0:00" is not a MAC address like 52:54:00:12:34:56',
            'NbdVolume "web01-var": size: "10G" is not a size like 256MiB, 20GiB or 1TiB: G alone is ambiguous (GiB to LVM, GB to many tools); did you mean 10GiB?',
            'RaidArray "storage1-md0": members[0]: "sdb" is not a /dev path like /dev/vdb or /dev/disk/by-id/...',
        ], out);
        // No follow-on errors, and no resource with a mistake reached the engine's check (which stops a preview).
        assert.doesNotMatch(out, /needs at least 2 members|needs ipv4 as well|has a problem|is not an export the program declares/);
        assert.strictEqual(toCreate(out), 14, out);
        console.log(`      one preview: ${problemLines(out).length} problems in 4 resources, ${toCreate(out) - 1} resources planned`);
    });

    it("mistakes across resources: a profile, a MAC, a subnet and an export, each naming both resources", async () => {
        await configure(["profile", "dupMac", "subnet", "export"]);
        const r = await stack.run(["preview"]);
        const out = r.stdout + r.stderr;
        assert.notStrictEqual(r.code, 0, "the preview must fail");
        assert.deepStrictEqual(problemLines(out).sort(), [
            'KvmGuest "web01": disks[0].nbd.export: web01-vr is not an export the program declares on 198.51.100.12 (its NbdVolumes there export web01-var, db01-var)',
            'Machine "storage1": ip: 198.18.1.12 is not in 198.51.100.0/24, the subnet of PxeServer "pxe1" (pxe1@198.51.100.10), named in pxeServers[0]: it would get no lease',
            'Machine "storage1": ip: 198.18.1.12 is not in 198.51.100.0/24, the subnet of PxeServer "pxe2" (pxe2@198.51.100.11), named in pxeServers[1]: it would get no lease',
            'Machine "svc1": profile: "lxc-repo" is not a profile of PxeServer "pxe2" (pxe2@198.51.100.11), named in pxeServers[1]; it offers default',
            `Machine "svc2": mac: 52:54:00:b0:00:12 is already Machine "storage1"'s mac`,
        ], out);
    });

    describe("a box move, on a stack written when the whole connection was a secret", () => {
        const move = ["pxe1", "web01"];

        it("upgrades with no diff (the state is the old one: `connection` one secret)", async () => {
            await configure([], { only: JSON.stringify(move), pxeHost: "198.51.100.10", guestHost: "198.51.100.13" });
            const planned = await stack.preview();
            const state = oldStyleState(JSON.parse(await stack.exportState()), planned, privateKey);
            const file = path.join(checkout.root, "old-state.json");
            fs.writeFileSync(file, JSON.stringify(state));
            await stack.ok(["stack", "import", "--file", file]);
            fs.rmSync(file);
            const exported = await stack.exportState();
            assert.ok(!exported.includes("198.51.100.13"), "the old state holds the guest's box inside the secret");
            const after = await stack.preview();
            assert.deepStrictEqual(after.changeSummary, { same: 3 });
            // A `pulumi up` with nothing to do (no box is dialled) writes the state the new way.
            await stack.up();
            const now = JSON.parse(await stack.exportState()) as { deployment: { resources: { urn: string; inputs?: { connection?: Record<string, unknown> } }[] } };
            const guest = now.deployment.resources.find((x) => x.urn.endsWith("::web01"));
            assert.strictEqual(guest?.inputs?.connection?.host, "198.51.100.13", "after the up, the host is plain in the state");
        });

        it("shows the host change: `connection.host \"a\" => \"b\"`, the replacement of the PXE server, and the guest's live migration from and to", async () => {
            await configure([], { only: JSON.stringify(move), pxeHost: "198.51.100.20", guestHost: "198.51.100.14" });
            const plain = await stack.ok(["preview"]);
            assert.match(plain.stdout, /\+- pulumi-nodejs:dynamic\/baremetal:PxeServer pxe1 replace \[diff: ~connection\]/);
            assert.match(plain.stdout, /~  pulumi-nodejs:dynamic\/baremetal:KvmGuest web01 update \[diff: ~connection\]; web01 moves from 198\.51\.100\.13 to 198\.51\.100\.14 by live migration/);
            assert.match(plain.stdout, /pxe1 moves from 198\.51\.100\.10 to 198\.51\.100\.20: it is removed from 198\.51\.100\.10, then set up anew on 198\.51\.100\.20/);
            const diff = await stack.ok(["preview", "--diff"]);
            const block = (name: string) => diff.stdout.slice(diff.stdout.indexOf(`::${name}]`), diff.stdout.indexOf("}", diff.stdout.indexOf(`::${name}]`)));
            assert.match(block("pxe1"), /~ host\s*: "198\.51\.100\.10" => "198\.51\.100\.20"/, diff.stdout);
            assert.match(block("web01"), /~ host\s*: "198\.51\.100\.13" => "198\.51\.100\.14"/, diff.stdout);
            assert.match(diff.stdout, /privateKey: \[secret\]/);
            assert.ok(!diff.stdout.includes(privateKey.split("\n")[1]), "the key stays secret");
            console.log(`      ${diff.stdout.split("\n").filter((l) => /~ host|moves from/.test(l)).map((l) => l.trim()).join("\n      ")}`);
        });

        it("a mistake in a resource of an existing stack fails the preview and plans no delete", async () => {
            await configure(["memory"], { only: JSON.stringify(move), pxeHost: "198.51.100.10", guestHost: "198.51.100.13" });
            const r = await stack.run(["preview"]);
            const out = r.stdout + r.stderr;
            assert.notStrictEqual(r.code, 0);
            assert.deepStrictEqual(problemLines(out), ['KvmGuest "web01": memoryMiB: must be a whole number, got "1GiB"']);
            assert.doesNotMatch(out, /delete/);
        });
    });
});

interface Deployment {
    deployment: { resources?: Record<string, unknown>[]; [k: string]: unknown };
    [k: string]: unknown;
}

const secretSig = { "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270" };

/**
 * The state the package wrote before issue 17, for the resources a preview plans:
 * each created as planned (outputs = checked inputs), its whole `connection` one
 * secret. Secrets go in as plaintext; `pulumi stack import` encrypts them.
 */
function oldStyleState(empty: Deployment, planned: PreviewJson, privateKey: string): Deployment {
    const steps = planned.steps as unknown as { urn: string; newState: { type: string; inputs?: Record<string, unknown> } }[];
    const stackUrn = steps.find((s) => s.newState.type === "pulumi:pulumi:Stack")!.urn;
    const providerUrn = stackUrn.replace(/pulumi:pulumi:Stack::.*$/, "pulumi:providers:pulumi-nodejs::default");
    const providerId = "3f1c2b4a-0d5e-4f6a-8b7c-9d0e1f2a3b4c";
    const ids: Record<string, (i: Record<string, unknown>) => string> = {
        PxeServer: (i) => `${String(i.name)}@${String((i.connection as Record<string, unknown>).host)}`,
        KvmGuest: (i) => String((i.nics as Record<string, unknown>[])[0].mac),
    };
    const resources: Record<string, unknown>[] = [
        { urn: stackUrn, custom: false, type: "pulumi:pulumi:Stack" },
        { urn: providerUrn, custom: true, id: providerId, type: "pulumi:providers:pulumi-nodejs", inputs: {}, outputs: {} },
    ];
    for (const s of steps.filter((x) => x.newState.type.startsWith("pulumi-nodejs:dynamic/baremetal:"))) {
        const kind = s.newState.type.split(":").pop()!;
        const inputs = structuredClone(s.newState.inputs ?? {});
        const connection = { ...(inputs.connection as Record<string, unknown>), privateKey };
        const old = { ...inputs, connection: { ...secretSig, plaintext: JSON.stringify(connection) } };
        resources.push({ urn: s.urn, custom: true, id: ids[kind]({ ...inputs, connection }), type: s.newState.type, inputs: old, outputs: old, parent: stackUrn, provider: `${providerUrn}::${providerId}` });
    }
    return { ...empty, deployment: { ...empty.deployment, resources } };
}
