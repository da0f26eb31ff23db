// Secrets under the real pulumi CLI, a real sshd and a real Consul agent: an SSH
// private key, a Consul token, a BMC password and an OpenVPN static key never show
// in anything the CLI prints (normal output and --debug), in error texts, or in
// `pulumi stack export` without --show-secrets; with it, they are there (so they
// were stored, encrypted).
//
// A Machine runs for real against a loopback sshd whose sessions see
// /etc/baremetal and /srv/baremetal as private tmpfs mounts (this machine's own
// directories stay untouched): up, refresh, a no-op up with --debug, a BMC that
// refuses, a connection with a key the host does not accept, destroy. An
// OvsBridge with a tunnel key fails against an sshd that refuses every command.
// ConsulKeys' own secrets are proven in consulKeys.test.ts (same helpers).
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { Host, SshPool, step } from "../../provider/host";
import { Checkout } from "../helpers/checkout";
import { DevConsul, startConsul } from "../helpers/consul";
import { freePort } from "../helpers/net";
import { PulumiStack } from "../helpers/pulumi";
import { assertNoSecretIn, assertStateEncrypted, secretFragments } from "../helpers/secrets";
import { generateKeyPair, startSshd, TestSshd } from "../helpers/sshd";
import { requireTools } from "../helpers/tools";
import { openvpnStaticKey } from "../helpers/keys";

const instance = "e2esecrets";
const mac = "52:54:00:b0:00:99";

describe("secrets stay secret under the real pulumi CLI, on success and on failure", function () {
    this.timeout(900_000);
    let consul: DevConsul;
    let sandbox: TestSshd;
    let tripwire: TestSshd;
    let checkout: Checkout;
    let machine: PulumiStack;
    let bridge: PulumiStack;
    let secrets: Record<string, string>;
    let bmcPort: number;

    const fragments = () => secretFragments(Object.values(secrets));
    const machineArgs = (kernelArgs: string[]) => ({
        mac, hostname: "sec01", ip: "198.51.100.99", profile: "default", kernelArgs,
        pxeServers: [{ connection: { host: "127.0.0.1", port: sandbox.port, hostKey: sandbox.hostKey }, name: instance }],
        consul: { address: consul.address },
        config: { "net/gateway": "198.51.100.1" },
        // Nothing answers on this UDP port: the BMC "refuses" every request.
        ipmi: { address: "127.0.0.1", port: bmcPort, user: "admin", password: "placeholder" },
        power: { onCreate: "none", cycleOnBootChange: true },
    });

    /** Runs the CLI and checks its output for secrets whatever the outcome. */
    async function cli(stack: PulumiStack, args: string[], expectOk: boolean): Promise<string> {
        const r = await stack.run(args);
        const text = r.stdout + r.stderr;
        assert.strictEqual(r.code === 0, expectOk, `pulumi ${args.join(" ")} exited ${r.code}:\n${text.slice(-3000)}`);
        assertNoSecretIn(text, fragments(), `pulumi ${args[0]} output`);
        return text;
    }

    before(async () => {
        requireTools(["pulumi", "pulumi-language-nodejs", "pulumi-resource-pulumi-nodejs", "consul", "ipmitool", "unshare"]);
        consul = await startConsul();
        sandbox = await startSshd({ audit: "record", privateDirs: ["/etc/baremetal", "/srv/baremetal"] });
        tripwire = await startSshd({ audit: "block" });
        bmcPort = await freePort();
        const stranger = generateKeyPair(sandbox.dir, "not_authorized");
        secrets = {
            sshKey: sandbox.client.privateKey,
            wrongKey: stranger.privateKey,
            consulToken: "e2e-consul-token-5f0c2a",
            bmcPassword: "bmc-e2e-Pw-81d3",
            staticKey: openvpnStaticKey(),
        };
        // The PXE server's descriptor, as a PxeServer would have left it (inside the sandbox).
        const pool = new SshPool();
        try {
            await new Host(sandbox.connection(), { pool }).apply([
                step.writeFile(`/etc/baremetal/pxe/${instance}/server.json`, JSON.stringify({ instance, baseUrl: "http://198.51.100.10:8081", profiles: { default: "alpine" } })),
            ]);
        } finally {
            await pool.closeAll();
        }
        checkout = Checkout.create("one-resource");
        machine = await PulumiStack.init(checkout.programDir, "machine");
        bridge = await PulumiStack.init(checkout.programDir, "bridge");
        await machine.setConfig("kind", "Machine");
        await machine.setConfig("args", JSON.stringify(machineArgs(["quiet"])));
        await machine.setConfig("secrets", JSON.stringify([
            [["pxeServers", "0", "connection", "privateKey"], "sshKey"],
            [["consul", "token"], "consulToken"],
            [["ipmi", "password"], "bmcPassword"],
        ]));
        await machine.setConfig("sshKey", secrets.sshKey, true);
        await machine.setConfig("consulToken", secrets.consulToken, true);
        await machine.setConfig("bmcPassword", secrets.bmcPassword, true);
    });

    after(async () => {
        await machine?.run(["destroy", "--yes"]);
        await machine?.cleanup();
        await bridge?.cleanup();
        checkout?.remove();
        await tripwire?.stop();
        await sandbox?.stop();
        await consul?.stop();
    });

    it("Machine: up writes its entries and Consul keys; the state holds the secrets encrypted", async () => {
        await cli(machine, ["up", "--yes", "--skip-preview"], true);
        assert.deepStrictEqual(await consul.keys("machines/sec01/"), ["machines/sec01/net/gateway"]);
        assert.ok(sandbox.commands().some((c) => c.includes(`/etc/baremetal/pxe/${instance}/hosts.d`)), "the entries were written through the sandboxed sshd");
        assert.ok(!fs.existsSync(path.join("/etc/baremetal/pxe", instance)), "the sandbox leaked onto this machine");
        await assertStateEncrypted(machine, fragments(), [secrets.sshKey, secrets.consulToken, secrets.bmcPassword]);
    });

    it("Machine: refresh and a no-op up with --debug", async () => {
        await cli(machine, ["refresh", "--yes"], true);
        await cli(machine, ["up", "--yes", "--skip-preview", "--expect-no-changes", "--debug"], true);
        await assertStateEncrypted(machine, fragments(), [secrets.sshKey, secrets.consulToken, secrets.bmcPassword]);
    });

    it("Machine: a BMC that refuses fails the update with an error that names the BMC, not its password", async () => {
        await machine.setConfig("args", JSON.stringify(machineArgs(["quiet", "debug"])));
        const text = await cli(machine, ["up", "--yes", "--skip-preview", "--debug"], false);
        assert.match(text, new RegExp(`read power state on BMC 127\\.0\\.0\\.1:${bmcPort} failed`));
        await assertStateEncrypted(machine, fragments(), [secrets.sshKey, secrets.bmcPassword]);
    });

    it("Machine: a private key the host does not accept fails without showing either key", async () => {
        await machine.setConfig("sshKey", secrets.wrongKey, true);
        const text = await cli(machine, ["up", "--yes", "--skip-preview", "--debug"], false);
        assert.match(text, /auth|permission denied|refused/i);
        assert.match(text, new RegExp(`127\\.0\\.0\\.1:${sandbox.port}`), "the error names the host");
        await assertStateEncrypted(machine, fragments(), [secrets.sshKey]);
    });

    it("Machine: destroy with the right key removes its entries and keys", async () => {
        await machine.setConfig("sshKey", secrets.sshKey, true);
        await machine.setConfig("args", JSON.stringify(machineArgs(["quiet"])));
        await cli(machine, ["destroy", "--yes", "--debug"], true);
        assert.deepStrictEqual(await consul.keys("machines/"), []);
        assertNoSecretIn(await machine.exportState(), fragments(), "the exported state after destroy");
    });

    it("OvsBridge: a create the host refuses shows neither the tunnel key nor the SSH key", async () => {
        await bridge.setConfig("kind", "OvsBridge");
        await bridge.setConfig("args", JSON.stringify({
            connection: { host: "127.0.0.1", port: tripwire.port, hostKey: tripwire.hostKey }, name: "br-storage",
            tunnels: [{ name: "vpn-storage", port: 1194, remote: "198.51.100.11", key: "placeholder" }],
        }));
        await bridge.setConfig("secrets", JSON.stringify([[["connection", "privateKey"], "sshKey"], [["tunnels", "0", "key"], "staticKey"]]));
        await bridge.setConfig("sshKey", tripwire.client.privateKey, true);
        await bridge.setConfig("staticKey", secrets.staticKey, true);
        secrets.tripwireKey = tripwire.client.privateKey;
        const text = await cli(bridge, ["up", "--yes", "--skip-preview", "--debug"], false);
        assert.match(text, /exit code 126/, "the refused command is reported");
        assert.ok(tripwire.commands().length > 0, "the provider did reach the host (and was refused)");
        assertNoSecretIn(await bridge.exportState(), fragments(), "the exported state");
    });

    it("nothing the CLI printed in the whole run, in any stack, repeats a secret", () => {
        assertNoSecretIn([...machine.transcript, ...bridge.transcript].join("\n"), fragments(), "the CLI transcript");
        assert.ok(machine.transcript.length >= 10, "the transcript is what the CLI printed");
    });
});
