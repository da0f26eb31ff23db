import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { AlpineAdapter, DebianAdapter, renderCommands, renderPlan } from "../../provider/host";
import { ipmitoolArgv } from "../../provider/ipmi/ipmitool";
import { parseBootDevice, parsePowerStatus } from "../../provider/parsers/ipmitool";
import {
    bootScript, check, diff, leaseLine, MachineInputs, MachineState, nodeMeta, parseEntriesRead, parseFacts, planEntries, planRemoveEntries, serverKey,
} from "../../provider/resources/machine";

const fixture = (tool: string, name: string) => fs.readFileSync(path.join(__dirname, "../../../test/unit/fixtures", tool, name), "utf8");
const unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
const box = (host: string) => ({ host, hostKey: "SHA256:" + "A".repeat(43), password: "pw-secret" });
const bmcPassword = "bmc-Secret-77";
const good = {
    mac: "52:54:00:B0:00:14",
    hostname: "pxeclient1",
    ip: "198.51.100.20",
    role: "storage",
    profile: "default",
    kernelArgs: ["console=ttyS0"],
    pxeServers: [{ connection: box("198.51.100.10"), name: "pxe-a" }],
    consul: { address: "198.51.100.10:8500" },
    config: { "net/address": "198.51.100.20" },
    ipmi: { address: "198.18.3.20", user: "admin", password: bmcPassword },
};
const inputs = (over: Record<string, unknown> = {}) => {
    const r = check({}, { ...good, ...over });
    assert.deepStrictEqual(r.failures, []);
    return r.inputs as MachineInputs;
};
const failures = (news: Record<string, unknown>) => check({}, news).failures.map((f) => `${f.field}: ${f.reason}`);

describe("Machine check", () => {
    it("normalises the MAC and fills in defaults (K/V prefix by hostname, PXE boot on create with a BMC)", () => {
        const i = inputs({ mac: "52-54-00-B0-00-14" });
        assert.strictEqual(i.mac, "52:54:00:b0:00:14");
        assert.strictEqual(i.consulPrefix, "machines/pxeclient1/");
        assert.deepStrictEqual(i.power, { onCreate: "pxe", cycleOnBootChange: false, offOnDelete: false });
        assert.deepStrictEqual(inputs({ ipmi: undefined }).power.onCreate, "none");
    });
    const bad: [string, Record<string, unknown>, RegExp][] = [
        ["a MAC with a missing octet", { mac: "52:54:00:b0:00" }, /^mac: "52:54:00:b0:00" is not a MAC address like 52:54:00:12:34:56/],
        ["a multicast MAC", { mac: "01:00:5e:00:00:01" }, /^mac: 01:00:5e:00:00:01 is a multicast address/],
        ["an upper-case host name", { hostname: "PXE_Client" }, /^hostname: "PXE_Client" is not a host name/],
        ["an IP that is no IP", { ip: "198.51.100" }, /^ip: "198\.51\.100" is not an IPv4 address/],
        ["a profile with a slash", { profile: "../x" }, /^profile: /],
        ["a kernel argument with shell in it", { kernelArgs: ["a;reboot", "b c"] }, /^kernelArgs\[0\]: /],
        ["no PXE server", { pxeServers: [] }, /^pxeServers: needs at least 1 item/],
        ["the same PXE server twice", { pxeServers: [good.pxeServers[0], good.pxeServers[0]] }, /^pxeServers\[1\]: names PXE server pxe-a@198\.51\.100\.10 twice/],
        ["a PXE server without connection", { pxeServers: [{ name: "pxe" }] }, /^pxeServers\[0\]\.connection: /],
        ["config without consul", { consul: undefined }, /^config: needs consul/],
        ["a bad Consul address", { consul: { address: "consul" } }, /^consul\.address: /],
        ["a BMC password longer than IPMI allows", { ipmi: { ...good.ipmi, password: "x".repeat(21) } }, /^ipmi\.password: is 21 characters long/],
        ["a BMC without user", { ipmi: { address: "198.18.3.20", password: "p" } }, /^ipmi\.user: is required/],
        ["power on create without a BMC", { ipmi: undefined, power: { onCreate: "pxe" } }, /^power\.onCreate: is pxe but no ipmi is given/],
        ["an unknown power action", { power: { onCreate: "reboot" } }, /^power\.onCreate: .*must be none, on or pxe/],
        ["a tiny SSH timeout", { waitForSsh: { connection: box("198.51.100.20"), timeoutSeconds: 1 } }, /^waitForSsh\.timeoutSeconds: must be at least 10/],
    ];
    for (const [what, over, expected] of bad) {
        it(`rejects ${what}, naming the field`, () => {
            const f = failures({ ...good, ...over });
            assert.ok(f.some((x) => expected.test(x)), `expected ${expected} in ${JSON.stringify(f)}`);
        });
    }
    it("never echoes the BMC password in a failure", () => {
        const f = failures({ ...good, ipmi: { ...good.ipmi, password: bmcPassword + "x".repeat(20) } });
        assert.ok(f.length > 0 && !f.join("\n").includes(bmcPassword));
    });
    it("lets values that are not known yet through (preview: a PxeServer's outputs)", () => {
        assert.deepStrictEqual(failures({ ...good, pxeServers: [{ connection: unknown, name: unknown }], mac: unknown }), []);
        assert.deepStrictEqual(failures({ ...good, pxeServers: unknown }), []);
    });
});

describe("Machine diff", () => {
    const i = inputs();
    const base = "http://198.51.100.10:8081";
    const olds: MachineState = {
        ...i,
        entries: [{ server: "pxe-a@198.51.100.10", baseUrl: base, lease: leaseLine(i), bootScript: bootScript(i, base) }],
        consulNode: { address: i.ip, meta: nodeMeta(i) },
    };
    it("finds nothing to do when everything is as written", () => {
        assert.deepStrictEqual(diff(i.mac, olds, i), { changes: false, replaces: [], stables: ["mac"] });
    });
    it("replaces when the MAC (the identity) changes", () => {
        assert.deepStrictEqual(diff(i.mac, olds, inputs({ mac: "52:54:00:b0:00:15" })).replaces, ["mac"]);
    });
    it("updates in place: profile, IP, a PXE server added", () => {
        for (const over of [{ profile: "lxc-repo" }, { ip: "198.51.100.21" }, { pxeServers: [...good.pxeServers, { connection: box("198.51.100.13"), name: "pxe" }] }]) {
            const d = diff(i.mac, olds, inputs(over));
            assert.deepStrictEqual([d.changes, d.replaces], [true, []], JSON.stringify(over));
        }
    });
    it("sees a lease edited by hand and a missing boot entry (as read by refresh)", () => {
        const edited = { ...olds.entries[0], lease: "52:54:00:b0:00:14,198.51.100.99,pxeclient1\n" };
        assert.strictEqual(diff(i.mac, { ...olds, entries: [edited] }, i).changes, true);
        assert.strictEqual(diff(i.mac, { ...olds, entries: [{ ...olds.entries[0], bootScript: "" }] }, i).changes, true);
    });
    it("sees the catalog node gone or its meta changed", () => {
        const { consulNode: _gone, ...noNode } = olds;
        assert.strictEqual(diff(i.mac, noNode, i).changes, true);
        assert.strictEqual(diff(i.mac, { ...olds, consulNode: { address: i.ip, meta: { ...nodeMeta(i), profile: "x" } } }, i).changes, true);
    });
});

describe("Machine entries on a PXE server", () => {
    const i = inputs({ kernelArgs: ["console=ttyS0", "bm.name=pxeclient1"] });
    it("the static lease is one dhcp-host line", () => {
        assert.strictEqual(leaseLine(i).split("\n")[1], "52:54:00:b0:00:14,198.51.100.20,pxeclient1");
    });
    it("the per-MAC script sets the machine's arguments and chains to its profile", () => {
        assert.deepStrictEqual(bootScript(i, "http://198.51.100.10:8081").split("\n").filter((l) => !l.startsWith("#")), [
            "set bm_args baremetal.hostname=pxeclient1 baremetal.mac=52:54:00:b0:00:14 console=ttyS0 bm.name=pxeclient1",
            "chain --autofree http://198.51.100.10:8081/profiles/default/boot.ipxe",
            "",
        ]);
    });
    it("Debian and Alpine: two files named by the MAC, a SIGHUP to dnsmasq, lbu commit on diskless Alpine", () => {
        const plan = planEntries(i, i.pxeServers[0], "http://198.51.100.10:8081");
        assert.strictEqual(renderPlan(plan), [
            `1. write /etc/baremetal/pxe/pxe-a/hosts.d/52-54-00-b0-00-14.conf (mode 0644, owner root:root, ${Buffer.byteLength(leaseLine(i))} bytes)`,
            `2. write /srv/baremetal/pxe/pxe-a/http/boot/52-54-00-b0-00-14.ipxe (mode 0644, owner root:root, ${Buffer.byteLength(bootScript(i, "http://198.51.100.10:8081"))} bytes)`,
            "3. tell dnsmasq of PXE server pxe-a to re-read its leases",
            "4. persist configuration across reboots",
        ].join("\n"));
        assert.doesNotMatch(renderCommands(plan, new DebianAdapter()).join("\n"), /lbu/);
        assert.match(renderCommands(plan, new AlpineAdapter(true)).join("\n"), /lbu commit/);
    });
    it("removal deletes both files and tells dnsmasq to forget the lease", () => {
        assert.match(renderPlan(planRemoveEntries(i.mac, i.pxeServers[0])), /remove \/etc\/baremetal\/pxe\/pxe-a\/hosts\.d\/52-54-00-b0-00-14\.conf\n2\. remove \/srv\/baremetal\/pxe\/pxe-a\/http\/boot\/52-54-00-b0-00-14\.ipxe\n3\. tell dnsmasq/);
    });
    it("registers in Consul as an external node with mac, role and profile", () => {
        assert.deepStrictEqual(nodeMeta(i), { mac: "52:54:00:b0:00:14", role: "storage", profile: "default", "external-node": "true", "managed-by": "pulumi-baremetal" });
        assert.strictEqual(serverKey(i.pxeServers[0]), "pxe-a@198.51.100.10");
    });
    it("reads what a server holds for the MAC, and another machine claiming the address", () => {
        const r = parseEntriesRead(fixture("dnsmasq", "machine-read.txt"));
        assert.strictEqual(r.descriptor?.profiles["lab-a"], "debian");
        assert.match(r.lease, /^52:54:00:b0:00:14,198\.51\.100\.20,pxeclient1$/m);
        assert.match(r.bootScript, /^chain --autofree http:\/\/198\.51\.100\.10:808[12]\/profiles\/lab-[ab]\/boot\.ipxe$/m);
        assert.deepStrictEqual(r.clashes, []);
    });
});

describe("IPMI (ipmitool run locally against the BMC)", () => {
    it("never puts the password in argv: -E reads it from IPMI_PASSWORD", () => {
        const argv = ipmitoolArgv({ address: "198.18.3.20", user: "admin", password: bmcPassword }, ["chassis", "power", "status"]);
        assert.deepStrictEqual(argv, ["-I", "lanplus", "-H", "198.18.3.20", "-p", "623", "-U", "admin", "-E", "-C", "3", "-N", "2", "-R", "3", "chassis", "power", "status"]);
        assert.ok(!argv.join(" ").includes(bmcPassword));
    });
    it("parses power state and boot device as the lab's BMC prints them", () => {
        assert.strictEqual(parsePowerStatus(fixture("ipmitool", "power-status-on.txt")), "on");
        assert.strictEqual(parsePowerStatus(fixture("ipmitool", "power-status-off.txt")), "off");
        // ipmi_sim's answer after `bootdev pxe` (selector "Force PXE", valid bit clear), as the lab smoke test sees it
        assert.strictEqual(parseBootDevice(" Boot Flags :\n   - Boot Flag Invalid\n   - Boot Device Selector : Force PXE\n"), "pxe");
        assert.strictEqual(parseBootDevice(fixture("ipmitool", "bootparam-none.txt")), "none", "an invalid boot flag is no override, whatever the selector says");
        assert.throws(() => parsePowerStatus("Error: Unable to establish IPMI v2 / RMCP+ session\n"), /printed no power state/);
    });
});

describe("Machine facts", () => {
    it("reads kernel, booted profile, disks, NICs and addresses; loopback and link-local addresses are left out", () => {
        // The shape of factsScript's output; the lab test checks the parse of a real PXE-booted VM's.
        const f = parseFacts([
            "==kernel==", "6.1.0-56-amd64",
            "==cmdline==", "initrd=initramfs console=ttyS0 baremetal.profile=lab-a baremetal.hostname=pxeclient1",
            "==disks==", "vda 4294967296",
            "==nics==", "eth0 52:54:00:b0:00:14",
            "==addresses==",
            "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever",
            "2: eth0    inet 198.51.100.20/24 scope global eth0\\       valid_lft forever preferred_lft forever",
            "2: eth0    inet6 fe80::5054:ff:feb0:14/64 scope link \\       valid_lft forever preferred_lft forever",
            "",
        ].join("\n"));
        assert.deepStrictEqual(f, {
            kernel: "6.1.0-56-amd64",
            bootedProfile: "lab-a",
            disks: [{ name: "vda", sizeBytes: 4294967296 }],
            nics: [{ name: "eth0", mac: "52:54:00:b0:00:14" }],
            addresses: ["198.51.100.20/24"],
        });
    });
});
