// Regression tests for the validation gaps the hostile-input suite
// (test/host/hostileInput.test.ts) found, one per fix, at the unit level.
import * as assert from "assert";
import { adapt } from "../../provider/dynamic";
import { isHostAddress, Validator } from "../../provider/core/validate";
import { checkConsulConnection } from "../../provider/consul/client";
import { checkHostConnection } from "../../provider/host";
import { checkIpmiConnection } from "../../provider/ipmi/ipmitool";
import { cephOsd } from "../../provider/resources/cephOsd";
import { consulKeys } from "../../provider/resources/consulKeys";
import { kvmGuest } from "../../provider/resources/kvmGuest";
import { lxcContainer } from "../../provider/resources/lxcContainer";
import { machine } from "../../provider/resources/machine";
import { nbdVolume } from "../../provider/resources/nbdVolume";
import { ovsBridge } from "../../provider/resources/ovsBridge";
import { pxeServer } from "../../provider/resources/pxeServer";
import { openvpnStaticKey } from "../helpers/keys";

const connection = { host: "198.51.100.11", hostKey: "SHA256:" + "A".repeat(43), password: "pw" };

function messages(check: (o: Record<string, unknown>, n: Record<string, unknown>) => { failures: { field: string; reason: string }[] }, news: Record<string, unknown>): string[] {
    return check({}, news).failures.map((f) => `${f.field}: ${f.reason}`);
}

describe("validation fixes found by the hostile-input suite", () => {
    it("a host is a DNS name, a real IPv4 address or an IPv6 address", () => {
        for (const good of ["198.51.100.7", "storage1", "storage1.lab.example", "::1", "fe80::1", "0.0.0.0"]) assert.ok(isHostAddress(good), good);
        for (const bad of ["999.1.1.1", "198.51.100.256", "198.51.100", "1.2.3.4.5", "198.051.100.1", "a..b", "-a", "a-", ".a", "a b", "::g"]) assert.ok(!isHostAddress(bad), bad);
        const v = new Validator();
        checkHostConnection(v, "connection", { ...connection, host: "999.1.1.1" });
        checkConsulConnection(v, "consul", { address: "999.1.1.1:8500" });
        checkIpmiConnection(v, "ipmi", { address: "198.51.100", user: "admin", password: "pw" });
        assert.deepStrictEqual(v.failures.map((f) => f.field), ["connection.host", "consul.address", "ipmi.address"]);
    });

    it("the hosts of NbdVolume, KvmGuest and OvsBridge get the same rule", () => {
        const nbd = { connection, volumeGroup: "vg0", name: "v", size: "256MiB", port: 10820, owner: "52:54:00:ab:00:01" };
        assert.match(messages(nbdVolume.check, { ...nbd, exportAddress: "198.18.1.256" }).join("\n"), /^exportAddress: "198\.18\.1\.256" is not a host name or IP address/m);
        const guest = { connection, name: "g", memoryMiB: 64, nics: [{ bridge: "br0", mac: "52:54:00:00:00:01" }] };
        assert.match(messages(kvmGuest.check, { ...guest, disks: [{ nbd: { host: "999.1.1.1", export: "x" } }] }).join("\n"), /^disks\[0\]\.nbd\.host: /m);
        const key = openvpnStaticKey();
        assert.match(messages(ovsBridge.check, { connection, name: "br0", tunnels: [{ name: "t0", key, remote: "a..b" }] }).join("\n"), /^tunnels\[0\]\.remote: /m);
    });

    it("a bad Consul token is refused without repeating it", () => {
        const token = "s3cret-token;$(id)";
        const v = new Validator();
        checkConsulConnection(v, "consul", { address: "127.0.0.1:8500", token });
        assert.strictEqual(v.failures.length, 1);
        assert.strictEqual(v.failures[0].field, "consul.token");
        assert.ok(!v.failures[0].reason.includes("s3cret"), v.failures[0].reason);
    });

    it("PxeServer standby: the token is not repeated; address, lock key and binary are checked", () => {
        const base = {
            connection, address: "198.51.100.10", subnet: "198.51.100.0/24",
            profiles: { default: { kernel: { path: "/srv/k" }, initramfs: { path: "/srv/i" } } },
        };
        const out = messages(pxeServer.check, { ...base, standby: { token: "s3cret-token;$(id)", consulAddress: "127.0.0.1:70000", lockKey: "a/../../acl", consulBinary: "/usr/bin/../../tmp/consul" } });
        assert.ok(!out.join("\n").includes("s3cret"), out.join("\n"));
        assert.deepStrictEqual(out.map((m) => m.split(":")[0]), ["standby.consulAddress", "standby.lockKey", "standby.consulBinary", "standby.token"]);
        assert.match(messages(pxeServer.check, { ...base, standby: { consulAddress: "999.1.1.1:8500" } }).join("\n"), /standby\.consulAddress: "999\.1\.1\.1" is not a host name/);
    });

    it("an IPMI password that cannot pass through the environment is refused without repeating it", () => {
        for (const password of ["s3cret\u0000", "s3cret\n", "\u00e9".repeat(10) + "x"]) {
            const v = new Validator();
            checkIpmiConnection(v, "ipmi", { address: "127.0.0.1", user: "admin", password });
            assert.strictEqual(v.failures.length, 1, JSON.stringify(password));
            assert.strictEqual(v.failures[0].field, "ipmi.password");
            assert.ok(!v.failures[0].reason.includes("s3cret"));
        }
        const v = new Validator();
        assert.ok(checkIpmiConnection(v, "ipmi", { address: "127.0.0.1", user: "admin", password: "x".repeat(20) }));
        assert.deepStrictEqual(v.failures, []);
    });

    it("ConsulKeys names the map a bad key is in (secrets, not keys)", () => {
        const out = messages(consulKeys.check, { consul: { address: "127.0.0.1:8500" }, prefix: "config/a/", keys: { a: "1" }, secrets: { "../x": "pw" } });
        assert.deepStrictEqual(out, ['secrets.../x: must not contain "." or ".." segments']);
    });

    it("NbdVolume: allowed clients are real addresses; the owner is a unicast, non-zero MAC", () => {
        const nbd = { connection, volumeGroup: "vg0", name: "v", size: "256MiB", port: 10820, owner: "52:54:00:ab:00:01" };
        assert.deepStrictEqual(messages(nbdVolume.check, { ...nbd, allowedClients: ["999.1.1.1", "198.18.1.256/24", "198.18.1.0/24", "fd00::1"] }).map((m) => m.split(":")[0]), ["allowedClients[0]", "allowedClients[1]"]);
        for (const owner of ["01:00:5e:00:00:01", "ff:ff:ff:ff:ff:ff", "00:00:00:00:00:00"]) assert.match(messages(nbdVolume.check, { ...nbd, owner }).join("\n"), /^owner: /m, owner);
    });

    it("KvmGuest and LxcContainer refuse the all-zero MAC", () => {
        assert.match(messages(kvmGuest.check, { connection, name: "g", memoryMiB: 64, nics: [{ bridge: "br0", mac: "00:00:00:00:00:00" }] }).join("\n"), /^nics\[0\]\.mac: 00:00:00:00:00:00 is not a NIC's address/m);
        assert.match(messages(lxcContainer.check, { connection, name: "c", template: "busybox", network: [{ bridge: "br0", hwaddr: "00:00:00:00:00:00" }] }).join("\n"), /^network\[0\]\.hwaddr: /m);
    });

    it("Machine: K/V paths without . or .., and no unknown fields in pxeServers or waitForSsh", () => {
        const m = { mac: "52:54:00:b0:00:14", hostname: "web01", ip: "198.51.100.20", profile: "default", pxeServers: [{ connection }], consul: { address: "127.0.0.1:8500" } };
        assert.match(messages(machine.check, { ...m, consulPrefix: "machines/../acl/" }).join("\n"), /^consulPrefix: must not contain/m);
        assert.match(messages(machine.check, { ...m, config: { "a/../../acl": "x" } }).join("\n"), /^config\.a\/\.\.\/\.\.\/acl: must not contain/m);
        assert.match(messages(machine.check, { ...m, pxeServers: [{ connection, name: "pxe", nmae: "typo" }] }).join("\n"), /^pxeServers\[0\]\.nmae: is not a field here \(fields: connection, name\)/m);
        assert.match(messages(machine.check, { ...m, waitForSsh: { connection, timeout: 60 } }).join("\n"), /^waitForSsh\.timeout: is not a field here \(fields: connection, timeoutSeconds\)/m);
    });

    it("CephOsd refuses an empty CRUSH bucket name", () => {
        assert.match(messages(cephOsd.check, { connection, device: "/dev/vdb", crushLocation: { root: "" } }).join("\n"), /^crushLocation\.root: is empty/m);
    });

    it("the adapter leaves `property` empty, so the engine does not print the input's value beside the reason", async () => {
        const out = await adapt(consulKeys).check!({}, { consul: { address: "127.0.0.1:8500" }, prefix: "/etc", keys: { a: "1" } });
        assert.ok((out.failures ?? []).length > 0);
        for (const f of out.failures ?? []) assert.strictEqual(f.property, "");
        assert.match(String(out.failures?.[0].reason), /^prefix: /);
    });
});
