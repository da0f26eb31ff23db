// The native provider's front door, without an engine: type tokens, secrets on
// the wire, connections completed from the provider's settings, what an import
// hands back as the program's inputs, import IDs refused before anything is
// reached, and each importer finding its object on a scripted box (the lab
// proves the same on real ones: test/lab/import.test.ts).
import * as assert from "assert";
import { generateKeyPairSync } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { specialSecretSig, specialSigKey } from "@pulumi/pulumi/runtime/rpc";
import { erase } from "../../provider/core/fields";
import { InputError } from "../../provider/core/errors";
import { renderService } from "../../provider/host/service";
import { kinds } from "../../provider/index";
import { emptyConfig, NativeConfig, parseConfig, withConfigDefaults } from "../../provider/native/config";
import { findArray, importers, parseGuestService, Reach, sourceOf } from "../../provider/native/import";
import { reveal } from "../../provider/native/secrets";
import { importedInputs, kindOf, nativeProvider } from "../../provider/native/server";
import { guestService, KvmGuestInputs } from "../../provider/resources/kvmGuest";
import { ok, script } from "../fakes/scriptedRemote";
import { ScriptedSite } from "../fakes/scriptedSite";

const fixture = (dir: string, name: string) => fs.readFileSync(path.join(__dirname, "../../../test/unit/fixtures", dir, name), "utf8");
const urn = (kind: string, name = "r") => `urn:pulumi:dev::proj::baremetal:index:${kind}::${name}`;
const secret = (value: unknown) => ({ [specialSigKey]: specialSecretSig, value });
const isSecret = (x: unknown) => typeof x === "object" && x !== null && (x as Record<string, unknown>)[specialSigKey] === specialSecretSig;
const hostKey = "SHA256:" + "B".repeat(43);
/** A key made at run time (the repository holds none), in a format the connection's checker parses. */
const sshKey = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs1", format: "pem" }).toString();

function provider(config: NativeConfig = emptyConfig) {
    return nativeProvider({ version: "0.1.0", config: () => config });
}

describe("native provider: the front door", () => {
    it("finds the kind from the type token, a parent's type included, and names the tokens it has when there is none", () => {
        assert.strictEqual(kindOf(urn("RaidArray")).name, "RaidArray");
        assert.strictEqual(kindOf("urn:pulumi:dev::proj::my:index:Site$baremetal:index:KvmGuest::g").name, "KvmGuest");
        assert.throws(() => kindOf(urn("Nope")), /no resource type "baremetal:index:Nope"; its types are baremetal:index:ConsulKeys, .*baremetal:index:CephOsd/);
    });

    it("check unwraps secrets for the kind and hands them back wrapped, the rest plain", async () => {
        const r = await provider().check!(urn("ConsulKeys"), {}, { consul: { address: "127.0.0.1:8500" }, prefix: "config/a/", keys: { x: "1" }, secrets: secret({ pw: "hush" }) });
        assert.deepStrictEqual(r.failures ?? [], []);
        const inputs = r.inputs as Record<string, unknown>;
        assert.ok(isSecret(inputs.secrets), JSON.stringify(inputs));
        assert.deepStrictEqual(reveal(inputs.secrets).plain, { pw: "hush" });
        assert.deepStrictEqual(inputs.keys, { x: "1" });
    });

    it("check refuses bad input naming the field, without the secret's value", async () => {
        const r = await provider().check!(urn("ConsulKeys"), {}, { consul: { address: "127.0.0.1:8500" }, prefix: "/etc", keys: {}, secrets: secret({ "bad key!": "hush-hush" }) });
        const text = JSON.stringify(r.failures);
        assert.match(text, /prefix: .*must be a relative path/);
        assert.doesNotMatch(text, /hush-hush/);
    });

    it("completes every SSH connection from the settings (nested ones too); what the program says wins", async () => {
        const key = sshKey;
        const config = parseConfig(JSON.stringify({ privateKey: key, user: "admin", port: "2222", hostKeys: JSON.stringify({ "198.51.100.10": hostKey }) }));
        const p = provider(config);
        const lxc = await p.check!(urn("LxcContainer"), {}, { connection: { host: "198.51.100.10" }, name: "web", template: "busybox" });
        const conn = (lxc.inputs as Record<string, Record<string, unknown>>).connection;
        assert.strictEqual(conn.host, "198.51.100.10");
        assert.strictEqual(conn.user, "admin");
        assert.strictEqual(conn.port, 2222);
        assert.strictEqual(conn.hostKey, hostKey);
        assert.ok(isSecret(conn.privateKey), "the configured key stays a secret in the inputs");
        const own = await p.check!(urn("LxcContainer"), {}, { connection: { host: "198.51.100.10", user: "root" }, name: "web", template: "busybox" });
        assert.strictEqual((own.inputs as Record<string, Record<string, unknown>>).connection.user, "root");
        const machine = withConfigDefaults(erase(kinds.Machine.spec!).inputs, { pxeServers: [{ connection: { host: "198.51.100.10" } }] }, config);
        const nested = (machine.pxeServers as { connection: Record<string, unknown> }[])[0].connection;
        assert.strictEqual(nested.hostKey, hostKey);
        assert.strictEqual(nested.privateKey, key);
    });

    it("fills in the Consul token for a Consul connection that leaves it out", () => {
        const config = parseConfig(JSON.stringify({ consulToken: "b3a5e8c6-1f1d-4a0e-9c4b-0b1a2c3d4e5f" }));
        const out = withConfigDefaults(erase(kinds.ConsulKeys.spec!).inputs, { consul: { address: "127.0.0.1:8500" } }, config);
        assert.deepStrictEqual(out.consul, { token: "b3a5e8c6-1f1d-4a0e-9c4b-0b1a2c3d4e5f", address: "127.0.0.1:8500" });
    });

    it("refuses a bad setting by its name, never showing a secret's value, and an unknown one", () => {
        assert.throws(() => parseConfig(JSON.stringify({ privateKey: "not-a-key-SECRETVALUE" })), (e: InputError) => /baremetal:privateKey: is not a private key/.test(e.message) && !e.message.includes("SECRETVALUE"));
        assert.throws(() => parseConfig(JSON.stringify({ port: "twenty-two" })), /baremetal:port: must be a number/);
        assert.throws(() => parseConfig(JSON.stringify({ hostKey: hostKey })), /baremetal:hostKey: is not a setting of this provider \(settings: .*hostKeys/);
        assert.throws(() => parseConfig(JSON.stringify({ hostKeys: JSON.stringify({ "198.51.100.1": "ssh-rsa nope" }) })), /baremetal:hostKeys.198.51.100.1.hostKey/);
    });

    it("an import's inputs leave out what the table's defaults and the settings give: no credential in the printed code", () => {
        const key = sshKey;
        const config = parseConfig(JSON.stringify({ privateKey: key, hostKeys: JSON.stringify({ "198.51.100.12": hostKey }) }));
        const state = { connection: { host: "198.51.100.12", privateKey: key, hostKey }, device: "/dev/md9", level: "raid1", metadata: "1.2", members: ["/dev/vdb", "/dev/vdc"], allowDataLoss: false, waitForSync: false, syncTimeoutSeconds: 3600, uuid: "u", state: "clean" };
        const inputs = importedInputs(kindOf(urn("RaidArray")), state, config);
        assert.deepStrictEqual(inputs, { connection: { host: "198.51.100.12" }, device: "/dev/md9", members: ["/dev/vdb", "/dev/vdc"] });
        assert.doesNotMatch(JSON.stringify(inputs), /PRIVATE KEY/);
    });

    it("refuses an import ID that is not the kind's form before reaching anything, saying the form", async () => {
        const p = provider();
        await assert.rejects(p.read!("config/a/", urn("ConsulKeys"), {}), /import ID: has no `@<host>` part; a ConsulKeys is imported as `<prefix>@<address>`/);
        await assert.rejects(p.read!("3b1e@198.51.100.12", urn("RaidArray"), {}), /import ID \(uuid\): .*is not an md UUID/);
        await assert.rejects(p.read!("vg0/x@127.0.0.1:8500", urn("NbdVolume"), {}), /import ID \(lv\): is required; a NbdVolume is imported as `<host>\/<vg>\/<lv>@<consul address>`/);
        await assert.rejects(p.read!("x", urn("VolumeGroup"), {}), /VolumeGroup cannot be imported with `pulumi import`.*adopt: true/);
    });
});

describe("native provider: importers on a scripted box", () => {
    const conn = { host: "198.51.100.12", hostKey, password: "pw" };
    const reachOf = (site: ScriptedSite): Reach => ({ ctx: site.context(), ssh: (host) => ({ ...conn, host }), consul: (address) => ({ address }) });

    it("RaidArray: finds the md device by the UUID in the scan (mdadm output captured in the lab)", async () => {
        const detail = fixture("mdadm", "read-clean.txt").split("==sysfs==")[0];
        const scan = `==/dev/md0==\n==/dev/md9==\n${detail}`;
        assert.strictEqual(findArray(scan, "71df7593:c56926d4:d520530d:103b4c60")?.device, "/dev/md9");
        assert.strictEqual(findArray(scan, "00000000:00000000:00000000:00000000"), undefined);
        const site = new ScriptedSite();
        site.host(conn).on(script("baremetal-md-scan"), ok(scan));
        const found = await importers.RaidArray("71df7593:c56926d4:d520530d:103b4c60@198.51.100.12", reachOf(site));
        assert.deepStrictEqual(found, {
            id: "71df7593:c56926d4:d520530d:103b4c60",
            inputs: { connection: conn, device: "/dev/md9", level: "raid1", metadata: "1.2", members: ["/dev/loop10", "/dev/loop11"], name: "fixture" },
        });
        site.verify();
    });

    it("LxcContainer: its template from LXC's own header, a rootfs when it has one of its own", async () => {
        const config = fixture("lxc", "read-running.txt").split("==config==\n")[1];
        assert.deepStrictEqual(sourceOf("guests-web", config), { template: "busybox" });
        assert.deepStrictEqual(sourceOf("web", "lxc.rootfs.path = dir:/srv/rootfs/web\n"), { rootfs: "/srv/rootfs/web" });
        assert.strictEqual(sourceOf("web", "lxc.rootfs.path = dir:/var/lib/lxc/web/rootfs\n"), undefined);
        const site = new ScriptedSite();
        site.host(conn).on(script("baremetal-lxc-read"), ok(fixture("lxc", "read-running.txt")));
        const found = await importers.LxcContainer("guests-web@198.51.100.12", reachOf(site));
        assert.deepStrictEqual(found, { id: "guests-web@198.51.100.12", inputs: { connection: conn, name: "guests-web", template: "busybox" } });
    });

    it("KvmGuest: the hardware read back from the service file it wrote, systemd unit and OpenRC script alike", () => {
        const g = kinds.KvmGuest.check({}, {
            connection: conn,
            name: "web01",
            memoryMiB: 256,
            vcpus: 2,
            disks: [{ nbd: { host: "198.18.1.11", port: 10810, export: "guest0" } }, { device: "/dev/vg0/x", readOnly: true }],
            nics: [{ bridge: "br-lan", mac: "52:54:00:ab:00:01" }, { bridge: "br0", bridgeType: "linux", mac: "52:54:00:ab:00:02", model: "e1000" }],
            boot: "disk",
            shutdownTimeoutSeconds: 90,
        }).inputs as KvmGuestInputs;
        for (const family of ["debian", "alpine"] as const) {
            const hw = parseGuestService(renderService(guestService(g, family), family));
            assert.deepStrictEqual(hw, { name: g.name, machine: g.machine, memoryMiB: g.memoryMiB, vcpus: g.vcpus, disks: g.disks, nics: g.nics, boot: g.boot, shutdownTimeoutSeconds: 90 }, family);
        }
    });

    it("ConsulKeys: every key under the prefix, none from beside it; the keys the ID names as secret into secrets", async () => {
        const site = new ScriptedSite();
        const consul = site.consulAt({ address: "127.0.0.1:8500" });
        await consul.kv.apply([
            { verb: "set", key: "config/a/", value: "" },
            { verb: "set", key: "config/a/listen", value: "1" },
            { verb: "set", key: "config/a/sub/x", value: "2" },
            { verb: "set", key: "config/ab/other", value: "3" },
        ]);
        const found = await importers.ConsulKeys("config/a/@127.0.0.1:8500", reachOf(site));
        assert.deepStrictEqual(found, { id: "config/a/", inputs: { consul: { address: "127.0.0.1:8500" }, prefix: "config/a/", keys: { listen: "1", "sub/x": "2" } } });
        const withSecret = await importers.ConsulKeys("config/a/@127.0.0.1:8500#sub/x", reachOf(site));
        assert.deepStrictEqual(withSecret?.inputs, { consul: { address: "127.0.0.1:8500" }, prefix: "config/a/", keys: { listen: "1" }, secrets: { "sub/x": "2" } });
        await assert.rejects(importers.ConsulKeys("config/a/@127.0.0.1:8500#nope", reachOf(site)), /names secret key\(s\) nope that are not under config\/a\//);
        assert.strictEqual(await importers.ConsulKeys("config/none/@127.0.0.1:8500", reachOf(site)), undefined);
    });
});
