// The SDK's native front door (sdk/provider.ts useNativeProvider): the same classes
// register as custom resources of the native plugin's types (baremetal:index:<Kind>)
// with the kind's own inputs (no serialised provider, no hidden URN), the same
// outputs, and stay instances of their class; and the seed program with `native`
// declares the same resources with the same inputs as through the dynamic provider.
// Pulumi's own mock monitor stands in for the engine, which cannot run in the unit tier.
import * as assert from "assert";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { Machine, PxeServer, RaidArray, useNativeProvider } from "../../sdk";
import { BaremetalResource, KindShape, registrationOf, typeToken } from "../../sdk/provider";
import { reveal } from "../../provider/native/secrets";
import type { Inventory } from "../../examples/datacenter/program/inventory";
import { loadInventory } from "../../examples/datacenter/program/inventory";
import { throwawayPrivateKey } from "../helpers/keys";

const repo = path.resolve(__dirname, "../../..");

interface Made { type: string; name: string; inputs: Record<string, unknown> }
let made: Made[] = [];

function value<T>(o: pulumi.Output<T>): Promise<T> {
    return new Promise((resolve) => o.apply((v) => resolve(v)));
}

/** Whether an Output is secret (Pulumi's own flag, resolved). */
function isSecret(o: unknown): Promise<boolean> {
    return (o as { isSecret: Promise<boolean> }).isSecret;
}

const conn = { host: "198.18.64.10", hostKey: "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", privateKey: "k" };

/** Lets every pending registration reach the mock monitor. */
async function settle(expected: number): Promise<void> {
    for (let i = 0; i < 200 && made.length < expected; i++) await new Promise((r) => setImmediate(r));
}

describe("the native front door of the SDK classes", function () {
    this.timeout(60_000);

    before(() => {
        pulumi.runtime.setMocks({
            newResource(args) {
                made.push({ type: args.type, name: args.name, inputs: args.inputs as Record<string, unknown> });
                const outputs = args.type.endsWith(":RaidArray") ? { state: "clean", uuid: "u-1" } : {};
                return { id: `${args.name}-id`, state: { ...args.inputs, ...outputs } };
            },
            call: (args) => args.inputs,
        }, "native", "front", false);
    });

    beforeEach(() => {
        made = [];
    });

    afterEach(() => {
        useNativeProvider(false);
    });

    describe("registrationOf (pure)", () => {
        const shape: KindShape = { outputs: ["state", "uuid"], defaulted: ["level"], secrets: { connection: "Connection", token: true } };

        it("native: the plugin's token and the kind's own inputs, shaped like the dynamic ones", () => {
            const r = registrationOf("native", "RaidArray", "md0", { connection: conn, device: "/dev/md0" }, shape, { protect: true });
            assert.strictEqual(r.type, "baremetal:index:RaidArray");
            assert.deepStrictEqual(Object.keys(r.props).sort(), ["connection", "device", "level", "state", "uuid"]);
            for (const k of ["level", "state", "uuid"]) assert.strictEqual(r.props[k], undefined, `${k} is passed as undefined so its output exists`);
            assert.ok(!("__urn" in r.props) && !("__provider" in r.props), "the native plugin gets no hidden inputs");
            assert.deepStrictEqual(r.opts, { protect: true, additionalSecretOutputs: ["token"] });
        });

        it("dynamic: the dynamic type and the hidden URN, the same inputs otherwise", async () => {
            const native = registrationOf("native", "RaidArray", "md0", { connection: conn, device: "/dev/md0" }, shape, undefined);
            const dynamic = registrationOf("dynamic", "RaidArray", "md0", { connection: conn, device: "/dev/md0" }, shape, undefined);
            assert.strictEqual(dynamic.type, "pulumi-nodejs:dynamic/baremetal:RaidArray");
            const { __urn: urn, ...rest } = dynamic.props;
            assert.match(await value(pulumi.output(urn as pulumi.Input<string>)), /::pulumi-nodejs:dynamic\/baremetal:RaidArray::md0$/);
            assert.deepStrictEqual(Object.keys(rest).sort(), Object.keys(native.props).sort());
        });

        it("secrets are wrapped alike through both doors", async () => {
            const r = registrationOf("native", "X", "x", { token: "t", plain: "p" }, { outputs: [], defaulted: [], secrets: { token: true } }, undefined);
            assert.ok(pulumi.Output.isInstance(r.props.token) && (await isSecret(r.props.token)), "a secret field is a secret output");
            assert.strictEqual(r.props.plain, "p");
        });

        it("typeToken names each door's type", () => {
            assert.strictEqual(typeToken("native", "LxcContainer"), "baremetal:index:LxcContainer");
            assert.strictEqual(typeToken("dynamic", "LxcContainer"), "pulumi-nodejs:dynamic/baremetal:LxcContainer");
        });
    });

    it("after useNativeProvider(), a class registers with the native type, no hidden inputs, and stays its class", async () => {
        assert.strictEqual(useNativeProvider(), false, "dynamic is the default");
        const md = new RaidArray("md0", { connection: conn, device: "/dev/md0", members: ["/dev/vda", "/dev/vdb"] });
        await settle(1);
        assert.strictEqual(made.length, 1);
        assert.strictEqual(made[0].type, "baremetal:index:RaidArray");
        assert.ok(!("__provider" in made[0].inputs) && !("__urn" in made[0].inputs), `hidden inputs sent: ${Object.keys(made[0].inputs).join(", ")}`);
        assert.strictEqual(made[0].inputs.device, "/dev/md0");
        assert.ok(md instanceof RaidArray && md instanceof BaremetalResource && pulumi.CustomResource.isInstance(md));
        // Outputs the provider returns reach the program, secrets stay secret.
        assert.strictEqual(await value(md.state), "clean");
        assert.strictEqual(await value(md.uuid), "u-1");
        assert.ok(await isSecret(md.connection), "the connection (it holds the private key) is secret");
        assert.match(await value(md.urn), /::baremetal:index:RaidArray::md0$/);
    });

    it("a subclass's own constructor still runs: a Machine names a PxeServer resource of the native front", async () => {
        useNativeProvider();
        const pxe = new PxeServer("pxe1", { connection: conn, name: "dc", address: "198.18.64.10", subnet: "198.18.64.0/24", profiles: {} });
        assert.ok(pxe instanceof PxeServer);
        new Machine("m1", { mac: "52:54:00:00:00:02", hostname: "m1", ip: "198.18.64.20", profile: "default", pxeServers: [pxe] });
        await settle(2);
        const m = made.find((x) => x.name === "m1");
        assert.ok(m, "the machine was not registered");
        assert.strictEqual(m.type, "baremetal:index:Machine");
        // The references hold the connection, a secret: what the engine gets is wrapped.
        const refs = reveal(m.inputs.pxeServers).plain as { connection: { host: string }; name: string }[];
        assert.deepStrictEqual(refs.map((r) => [r.connection.host, r.name]), [["198.18.64.10", "dc"]]);
    });

    it("useNativeProvider(false) goes back to the dynamic provider and returns the previous choice", async () => {
        useNativeProvider();
        assert.strictEqual(useNativeProvider(false), true);
        new RaidArray("md1", { connection: conn, device: "/dev/md1", members: ["/dev/vdc", "/dev/vdd"] });
        await settle(1);
        assert.strictEqual(made[0].type, "pulumi-nodejs:dynamic/baremetal:RaidArray");
        assert.strictEqual(typeof made[0].inputs.__provider, "string");
    });

    describe("the seed program with native: true", () => {
        type Declare = (inv: Inventory, secrets: unknown, options: { native?: boolean }) => { resourceCount: number; summary: pulumi.Output<unknown> };
        let declareDataCenter: Declare;
        let inv: Inventory;
        const secrets = {
            sshPrivateKey: throwawayPrivateKey(), // made at run time: no key is kept in the repository
            bmcPassword: () => "bmc",
            openvpnKey: () => "vpn",
        };

        before(() => {
            // The program imports the package by name (the build); loaded as `pulumi` loads it, through ts-node.
            (require("ts-node") as { register(o: object): void }).register({ transpileOnly: true, compilerOptions: { module: "commonjs" } });
            // eslint-disable-next-line @typescript-eslint/no-require-imports
            declareDataCenter = (require(path.join(repo, "examples/datacenter/program/datacenter.ts")) as { declareDataCenter: Declare }).declareDataCenter;
            inv = loadInventory(path.join(repo, "examples/datacenter/inventory.yaml"));
        });

        async function declared(native: boolean): Promise<Map<string, Made>> {
            made = [];
            const dc = declareDataCenter(inv, secrets, { native });
            await value(dc.summary);
            await settle(dc.resourceCount);
            assert.strictEqual(made.length, dc.resourceCount);
            return new Map(made.map((m) => [`${m.type.split(":").pop()}::${m.name}`, m]));
        }

        it("declares the same resources with the same inputs, every one of the native type", async () => {
            const dynamic = await declared(false);
            const native = await declared(true);
            assert.deepStrictEqual([...native.keys()].sort(), [...dynamic.keys()].sort());
            assert.ok(native.size > 100, `the seed declares ${native.size} resources`);
            for (const [key, n] of native) {
                const kind = key.split("::")[0];
                assert.strictEqual(n.type, `baremetal:index:${kind}`, key);
                const d = dynamic.get(key)!;
                assert.strictEqual(d.type, `pulumi-nodejs:dynamic/baremetal:${kind}`, key);
                const { __provider: _p, __urn: _u, ...dynamicInputs } = d.inputs;
                assert.deepStrictEqual(n.inputs, dynamicInputs, `${key}: the inputs differ`);
            }
        });

        it("leaves the program's own choice as it was", async () => {
            await declared(true);
            made = [];
            new RaidArray("after", { connection: conn, device: "/dev/md9", members: ["/dev/vde", "/dev/vdf"] });
            await settle(1);
            assert.strictEqual(made[0].type, "pulumi-nodejs:dynamic/baremetal:RaidArray");
        });
    });
});
