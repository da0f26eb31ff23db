// Hostile input under the real pulumi CLI: representative bad values (the full
// table runs in test/host/hostileInput.test.ts) in a program whose connection
// points at a real sshd with a ForceCommand tripwire. `pulumi preview` and
// `pulumi up` must fail with text that names the field, repeat no secret, and
// leave sshd's log without a connection or a command.
import * as assert from "assert";
import { Checkout } from "../helpers/checkout";
import { ConnectionCounter } from "../helpers/net";
import { PulumiStack } from "../helpers/pulumi";
import { assertNoSecretIn, secretFragments } from "../helpers/secrets";
import { startSshd, TestSshd } from "../helpers/sshd";
import { requireTools } from "../helpers/tools";
import { openvpnStaticKey } from "../helpers/keys";

const canary = "CANARY-e2e-4c1d9b";
/** Written into the program as a plain value: the SDK makes the whole `secrets` map secret. */
const literalSecret = `literal-db-pw-${canary}`;
/** A static key made at run time with one line replaced by the canary: malformed, and it must not be echoed. */
const staticKeyWithCanary = openvpnStaticKey().replace(/^[0-9a-f]{32}$/m, canary);

interface CliCase {
    name: string;
    kind: string;
    args: (sshd: TestSshd, consul: string) => Record<string, unknown>;
    /** [input path, config key] of each secret the program puts into the inputs. */
    secrets: [string[], string][];
    /** What the CLI must print: the field and the reason. */
    expect: RegExp;
    up?: boolean;
}

const connection = (sshd: TestSshd) => ({ host: "127.0.0.1", port: sshd.port, hostKey: sshd.hostKey });

const cases: CliCase[] = [
    {
        name: "RaidArray: a shell command in a member, next to a private key",
        kind: "RaidArray",
        args: (sshd) => ({ connection: connection(sshd), device: "/dev/md0", members: ["/dev/vdb; rm -rf /", "/dev/vdc"] }),
        secrets: [[["connection", "privateKey"], "sshKey"]],
        expect: /members\[0\]: "\/dev\/vdb; rm -rf \/" is not a \/dev path/,
        up: true,
    },
    {
        name: "LxcContainer: a bad host in the connection that carries the key and password",
        kind: "LxcContainer",
        args: (sshd) => ({ connection: { ...connection(sshd), host: "127.0.0.1$(id)" }, name: "dns01", template: "busybox" }),
        secrets: [[["connection", "privateKey"], "sshKey"], [["connection", "password"], "sshPassword"]],
        expect: /connection\.host: "127\.0\.0\.1\$\(id\)" is not a host name or IP address/,
        up: true,
    },
    {
        name: "NbdVolume: a size in the wrong unit, with a Consul token",
        kind: "NbdVolume",
        args: (sshd, consul) => ({
            connection: connection(sshd), volumeGroup: "vg0", name: "web01-var", size: "10GB", port: 10810, owner: "52:54:00:12:34:56",
            consul: { address: consul },
        }),
        secrets: [[["connection", "privateKey"], "sshKey"], [["consul", "token"], "consulToken"]],
        expect: /size: "10GB" is not a size like 256MiB, 20GiB or 1TiB/,
    },
    {
        name: "OvsBridge: a malformed tunnel key (a secret) is refused without being repeated",
        kind: "OvsBridge",
        args: (sshd) => ({ connection: connection(sshd), name: "br-storage", tunnels: [{ name: "vpn-storage", port: 1194, key: "placeholder" }] }),
        secrets: [[["connection", "privateKey"], "sshKey"], [["tunnels", "0", "key"], "badStaticKey"]],
        expect: /tunnels\[0\]\.key: is not an OpenVPN static key/,
    },
    {
        name: "Machine: a shell command in the BMC user, next to the BMC password",
        kind: "Machine",
        args: (sshd) => ({
            mac: "52:54:00:b0:00:14", hostname: "web01", ip: "198.51.100.20", profile: "default",
            pxeServers: [{ connection: connection(sshd), name: "pxe" }],
            ipmi: { address: "127.0.0.1", user: "admin; reboot", password: "placeholder" }, power: { onCreate: "none" },
        }),
        secrets: [[["pxeServers", "0", "connection", "privateKey"], "sshKey"], [["ipmi", "password"], "bmcPassword"]],
        expect: /ipmi\.user: "admin; reboot" is not an IPMI user name/,
    },
    {
        name: "ConsulKeys: a traversing key among the secrets",
        kind: "ConsulKeys",
        args: (_sshd, consul) => ({ consul: { address: consul }, prefix: "config/web01/", keys: { listen: "198.51.100.80" }, secrets: { "../../acl": "placeholder" } }),
        secrets: [[["secrets", "../../acl"], "dbPassword"], [["consul", "token"], "consulToken"]],
        expect: /secrets\.\.\.\/\.\.\/acl: must not contain "\." or "\.\." segments/,
    },
    {
        // Before the adapter left `property` empty, the engine printed the whole secrets
        // map here, this value in plain text ("property secrets value {...}").
        name: "ConsulKeys: a bad key in a secrets map given as plain values (the SDK makes the map secret)",
        kind: "ConsulKeys",
        args: (_sshd, consul) => ({ consul: { address: consul }, prefix: "config/web01/", secrets: { "bad key!": literalSecret, "db/password": literalSecret } }),
        secrets: [],
        expect: /secrets key "bad key!": "bad key!" is not a relative key like "net\/gateway"/,
    },
    {
        name: "KvmGuest: memory with a unit where MiB are a number, and a multicast MAC",
        kind: "KvmGuest",
        args: (sshd) => ({ connection: connection(sshd), name: "web01", memoryMiB: "512MiB", nics: [{ bridge: "br-lan", mac: "01:00:5e:00:00:01" }] }),
        secrets: [[["connection", "privateKey"], "sshKey"]],
        expect: /memoryMiB: must be a whole number, got "512MiB"[\s\S]*nics\[0\]\.mac: 01:00:5e:00:00:01 is a multicast address/,
    },
];

describe("hostile input under the real pulumi CLI: the error names the field, nothing runs, no secret shows", function () {
    this.timeout(600_000);
    let sshd: TestSshd;
    let consul: ConnectionCounter;
    let checkout: Checkout;
    let stack: PulumiStack;
    let secretValues: Record<string, string>;

    before(async () => {
        requireTools(["pulumi", "pulumi-language-nodejs", "pulumi-resource-pulumi-nodejs"]);
        sshd = await startSshd({ audit: "block" });
        consul = await new ConnectionCounter().start();
        checkout = Checkout.create("one-resource");
        stack = await PulumiStack.init(checkout.programDir);
        secretValues = {
            sshKey: sshd.client.privateKey,
            sshPassword: `ssh-pw-${canary}`,
            consulToken: `token-${canary}`,
            badStaticKey: staticKeyWithCanary,
            bmcPassword: "bmc-pw-e2e-77",
            dbPassword: `db-pw-${canary}`,
        };
        const literal = { literalSecret };
        for (const [k, v] of Object.entries(secretValues)) await stack.setConfig(k, v, true);
        Object.assign(secretValues, literal);
    });

    after(async () => {
        await stack?.cleanup();
        checkout?.remove();
        await consul?.stop();
        await sshd?.stop();
    });

    for (const c of cases) {
        it(`${c.name}: preview${c.up ? " and up" : ""}`, async () => {
            await stack.setConfig("kind", c.kind);
            await stack.setConfig("args", JSON.stringify(c.args(sshd, `127.0.0.1:${consul.port}`)));
            await stack.setConfig("secrets", JSON.stringify(c.secrets));
            const runs = [["preview"], ...(c.up ? [["up", "--yes", "--skip-preview"]] : [])];
            for (const args of runs) {
                const r = await stack.run(args);
                const text = r.stdout + r.stderr;
                assert.notStrictEqual(r.code, 0, `pulumi ${args[0]} succeeded:\n${text}`);
                assert.match(text, c.expect, `pulumi ${args[0]} does not name the field:\n${text}`);
                // The engine prints a failing property's whole value unless the provider leaves `property` empty.
                assert.doesNotMatch(text, /property \S+ value \{/, "the engine printed an input's value beside the error");
                // Reported by the SDK's check while the program runs (`Kind "subject": field: ...`), or, for
                // what only the engine knows (secrets), by the provider's check in the engine.
                assert.match(text, new RegExp(`${c.kind} "subject": |has a problem: `));
                assertNoSecretIn(text, secretFragments(Object.values(secretValues)), `pulumi ${args[0]} output`);
            }
        });
    }

    it("sshd saw no connection and no command, and Consul no connection, in all those runs", () => {
        assert.strictEqual(sshd.connections(), 0, sshd.log());
        assert.strictEqual(sshd.commandSessions(), 0);
        assert.deepStrictEqual(sshd.commands(), []);
        assert.strictEqual(consul.count, 0);
    });

    it("nothing the CLI printed in the whole run repeats a secret", () => {
        assertNoSecretIn(stack.transcript.join("\n"), secretFragments(Object.values(secretValues)), "the CLI transcript");
    });
});
