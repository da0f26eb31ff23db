// One validator per concept (provider/core/validate.ts), one parser of `==section==`
// output (provider/parsers/sections.ts), one nbd:// builder (provider/parsers/nbd.ts):
// what each accepts, how it normalises, and what its message says.
import * as assert from "assert";
import { unknownValue, Validator } from "../../provider/core/validate";
import { nbdUri } from "../../provider/parsers/nbd";
import { parseSections, requirePart } from "../../provider/parsers/sections";

/** The value a validator method returns and the messages it left, for one input. */
function run<T>(call: (v: Validator) => T): { value: T; messages: string[] } {
    const v = new Validator();
    const value = call(v);
    return { value, messages: v.failures.map((f) => `${f.field}: ${f.reason}`) };
}

function accepts<T>(call: (v: Validator) => T, expected?: T): void {
    const r = run(call);
    assert.deepStrictEqual(r.messages, []);
    if (expected !== undefined) assert.deepStrictEqual(r.value, expected);
}

function refuses(call: (v: Validator) => unknown, message: RegExp): void {
    const r = run(call);
    assert.strictEqual(r.value, undefined);
    assert.strictEqual(r.messages.length, 1, JSON.stringify(r.messages));
    assert.match(r.messages[0], message);
}

describe("validators, one per concept", () => {
    it("mac: lower case with colons (dashes accepted); no multicast, no all-zero", () => {
        accepts((v) => v.mac("mac", "52:54:00:AB:00:01"), "52:54:00:ab:00:01");
        accepts((v) => v.mac("mac", "52-54-00-ab-00-01"), "52:54:00:ab:00:01");
        accepts((v) => v.mac("mac", undefined, { optional: true }), undefined);
        refuses((v) => v.mac("mac", "52:54:00:ab:00"), /^mac: "52:54:00:ab:00" is not a MAC address like 52:54:00:12:34:56$/);
        refuses((v) => v.mac("mac", "01:00:5e:00:00:01"), /^mac: 01:00:5e:00:00:01 is a multicast address; a NIC's MAC has the lowest bit of its first octet clear$/);
        refuses((v) => v.mac("mac", "00:00:00:00:00:00"), /is not a NIC's address/);
        refuses((v) => v.mac("mac", "5254.0012.3456"), /is not a MAC address/);
        assert.strictEqual(run((v) => v.mac("mac", unknownValue)).value, unknownValue);
    });

    it("ipv4, with a prefix, as a network, or any address or network", () => {
        accepts((v) => v.ipv4("ip", "198.51.100.20"));
        for (const bad of ["198.51.100.256", "198.051.100.1", "198.51.100", "198.51.100.1/24", "::1"]) refuses((v) => v.ipv4("ip", bad), /is not an IPv4 address like 198\.51\.100\.20$/);
        accepts((v) => v.ipv4WithPrefix("ipv4", "198.18.1.50/24"));
        for (const bad of ["198.18.1.50", "198.18.1.50/33", "198.18.1.50/024"]) refuses((v) => v.ipv4WithPrefix("ipv4", bad), /is not an IPv4 address with prefix length/);
        accepts((v) => v.ipv4Network("subnet", "198.51.100.0/24", { minPrefix: 8, maxPrefix: 30 }));
        refuses((v) => v.ipv4Network("subnet", "198.51.100.7/24"), /^subnet: 198\.51\.100\.7\/24 has host bits set; the network is 198\.51\.100\.0\/24$/);
        refuses((v) => v.ipv4Network("subnet", "198.51.100.0/31", { minPrefix: 8, maxPrefix: 30 }), /\(prefix \/8 to \/30\)$/);
        for (const ok of ["198.18.1.12", "198.18.1.0/24", "fd00::1", "fd00::/64"]) accepts((v) => v.ipOrNetwork("c", ok));
        for (const bad of ["svc1", "198.18.1.0/33", "fd00::/129", "999.1.1.1", "198.18.1.0/24/8"]) refuses((v) => v.ipOrNetwork("c", bad), /is not an IP address or network/);
    });

    it("hostname and domain: lower-case RFC 1123 names", () => {
        accepts((v) => v.hostname("hostname", "storage1.lab.example"));
        refuses((v) => v.hostname("hostname", "Web_01"), /^hostname: "Web_01" is not a host name \(.*like storage1\)$/);
        refuses((v) => v.hostname("domain", `${"a".repeat(64)}.example`, { domain: true }), /is not a domain name/);
    });

    it("hostPort: a host name or address and a port 1-65535, IPv6 in brackets", () => {
        accepts((v) => v.hostPort("address", "10.0.0.2:8500"));
        accepts((v) => v.hostPort("address", "[fd00::2]:8500"));
        refuses((v) => v.hostPort("address", "10.0.0.2"), /^address: "10\.0\.0\.2" is not host:port, e.g\. 10\.0\.0\.2:8500$/);
        refuses((v) => v.hostPort("address", "999.1.1.1:8500"), /"999\.1\.1\.1" is not a host name or IP address/);
        refuses((v) => v.hostPort("address", "a:70000"), /port 70000 is out of range/);
    });

    it("url: http(s), no credentials, nothing a kernel command line cannot carry", () => {
        accepts((v) => v.url("url", "http://198.51.100.1/alpine/v3.20/main"));
        refuses((v) => v.url("url", "file:///etc/shadow"), /must be an http:\/\/ or https:\/\/ URL/);
        refuses((v) => v.url("url", "http://u:p@198.51.100.1/"), /must not carry credentials/);
        refuses((v) => v.url("url", "http://198.51.100.1/${net0/mac}"), /cannot carry/);
    });

    it("absolutePath and devicePath: absolute, no traversal; device paths under /dev (or vg/lv when asked)", () => {
        accepts((v) => v.absolutePath("p", "/srv/lxc/dns01/rootfs"));
        refuses((v) => v.absolutePath("p", "srv/x", { where: "on the box" }), /^p: "srv\/x" is not an absolute path on the box$/);
        refuses((v) => v.absolutePath("p", "/srv/../etc"), /^p: must not contain \.\.$/);
        refuses((v) => v.absolutePath("p", "/"), /must not be \/ itself/);
        accepts((v) => v.absolutePath("p", "/", { allowRoot: true }));
        accepts((v) => v.devicePath("d", "/dev/disk/by-id/wwn-0x5000c500a1b2c3d4"));
        refuses((v) => v.devicePath("d", "/dev/disk/./sdb"), /^d: must not contain \. or \.\. path segments$/);
        refuses((v) => v.devicePath("d", "vg0/osd1"), /is not a \/dev path/);
        accepts((v) => v.devicePath("d", "vg0/osd1", { logicalVolume: true }));
    });

    it("interfaceName: at most 15 characters, no slash or space", () => {
        accepts((v) => v.interfaceName("bridge", "br-lan"));
        refuses((v) => v.interfaceName("bridge", "br-storage-network"), /is not an interface name like eth0/);
    });

    it("size: binary units only (MiB, GiB, TiB); a short or decimal unit is refused with the binary size meant", () => {
        const rule = { min: 4 * 2 ** 20, max: 256 * 2 ** 40, minName: "the smallest LV (4MiB)" };
        accepts((v) => v.size("size", "10GiB", rule), { text: "10GiB", bytes: 10 * 2 ** 30 });
        accepts((v) => v.size("size", "512MiB", rule), { text: "512MiB", bytes: 512 * 2 ** 20 });
        refuses((v) => v.size("size", "10G", rule), /^size: "10G" is not a size like 256MiB, 20GiB or 1TiB: G alone is ambiguous \(GiB to LVM, GB to many tools\); did you mean 10GiB\?$/);
        refuses((v) => v.size("size", "512m", rule), /did you mean 512MiB\?$/);
        refuses((v) => v.size("size", "10GB", rule), /^size: "10GB" is not a size like 256MiB, 20GiB or 1TiB: GB is a decimal unit; did you mean 10GiB\?$/);
        refuses((v) => v.size("size", "10 GiB", rule), /the unit follows the number directly, spelt MiB, GiB or TiB; did you mean 10GiB\?$/);
        refuses((v) => v.size("size", "1.5GiB", rule), /is not a size like 256MiB, 20GiB or 1TiB \(a whole number and a binary unit: MiB, GiB or TiB\)$/);
        refuses((v) => v.size("size", "1MiB", rule), /^size: 1MiB is below the smallest LV \(4MiB\)$/);
        refuses((v) => v.size("size", "300TiB", rule), /^size: 300TiB is above 256TiB$/);
    });

    it("Consul K/V: relative keys and prefixes without . or .. segments", () => {
        accepts((v) => v.kvPrefix("prefix", "config/dns01"), "config/dns01/");
        refuses((v) => v.kvPrefix("prefix", "/config/"), /no leading "\/"/);
        refuses((v) => v.kvPrefix("prefix", "config/../acl/"), /^prefix: must not contain "\." or "\.\." segments$/);
        accepts((v) => v.kvKey("lockKey", "baremetal/pxe/leader"));
        const r = run((v) => v.kvMap("config", { "net/gateway": "198.51.100.1", "a/../b": "x" }, { maxValueLength: 100 }));
        assert.deepStrictEqual(r.messages, ['config.a/../b: must not contain "." or ".." segments']);
    });
});

describe("==section== output", () => {
    it("splits at the headers in the order the script prints them; what comes first is the preamble", () => {
        const s = parseSections("real=/dev/vdb\n==list==\n{}\n==blkid==\nTYPE=ext4\n==use==\n", ["list", "blkid", "use"] as const);
        assert.deepStrictEqual(s, { preamble: "real=/dev/vdb\n", parts: { list: "{}\n", blkid: "TYPE=ext4\n", use: "" } });
    });

    it("a header missing from the output leaves its part absent, and the parts around it are still found", () => {
        const s = parseSections("==descriptor==\n{}\n==boot==\n#!ipxe\n", ["descriptor", "lease", "boot"] as const);
        assert.deepStrictEqual(s.parts, { descriptor: "{}\n", boot: "#!ipxe\n" });
        assert.throws(() => requirePart(s, "lease", "entries read"), /^Error: the entries read printed no lease section$/);
    });

    it("a header-like line inside a part ends nothing unless it is the next header (a file's content stays whole)", () => {
        const s = parseSections("==config==\n==auth==x\n==descriptor==\nkeep\n==auth==\n10.0.0.0/8\n", ["config", "auth"] as const);
        assert.deepStrictEqual(s.parts, { config: "==auth==x\n==descriptor==\nkeep\n", auth: "10.0.0.0/8\n" });
    });
});

describe("nbd:// URIs", () => {
    it("one builder: host, port and export; an IPv6 host in brackets", () => {
        assert.strictEqual(nbdUri({ host: "198.18.1.11", port: 10810, export: "web01-var" }), "nbd://198.18.1.11:10810/web01-var");
        assert.strictEqual(nbdUri({ host: "fd00::11", port: 10809, export: "x" }), "nbd://[fd00::11]:10809/x");
    });
});
