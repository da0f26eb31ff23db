// `baremetal discover` against scripted boxes that answer what the lab's
// hand-made site answered (test/unit/fixtures/discover: every command the survey
// sent to pxe1, storage1 and svc1, captured by test/lab/discover.test.ts with
// BM_CAPTURE_FIXTURES): the inventory it writes, that the data center program's
// own check accepts it, that it only read, that an unreachable box is reported
// while the others are still read, and that no secret reaches the file.
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { utils } from "ssh2";
import * as YAML from "yaml";
import { discover, DiscoverWorld } from "../../provider/cli/discover";
import { DiscoverOptions, parseOptions, UsageError } from "../../provider/cli/discover/options";
import { DialError } from "../../provider/host";
import { readOnlyRefusal } from "../../provider/host/readOnly";
import { parseInventory } from "../../examples/datacenter/program/inventory";
import { FakeConsul } from "../fakes/fakeConsul";
import { Matcher, ScriptedRemote } from "../fakes/scriptedRemote";

const fixtures = path.join(__dirname, "../../../test/unit/fixtures/discover");
const boxes = { pxe1: "198.51.100.10", storage1: "198.51.100.11", svc1: "198.51.100.12" } as const;
const hostKeys: Record<string, string> = {
    "198.51.100.10": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMvNvXpL/hnW5LiJ8NfB7+QOTu9fiNWZoIZStReEU2fn",
    "198.51.100.11": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPf2gFET3+/zjXQp/YEI0prG1T3zULPjaQINbAob8gl1",
    "198.51.100.12": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICzvvecTY/6Z3ueQiWM2RLJDarK7fu++0kAxSKmK/pNe",
};
// A key made for this run only (OpenSSH format, as a user's key file): it must not reach the inventory.
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "bm-discover-unit-"));
const privateKey = utils.generateKeyPairSync("ed25519").private;
const keyFile = path.join(scratch, "key");
fs.writeFileSync(keyFile, privateKey, { mode: 0o600 });

interface Captured {
    what: string;
    exitCode: number | null;
    stdout: string;
}

function whatIs(text: string): Matcher {
    return Object.assign((c: { what: string }) => c.what === text, { description: `what = ${text}` });
}

/** A scripted box answering each command as the lab's box did (by what the command is for). */
function capturedBox(name: keyof typeof boxes, edit: (c: Captured) => Captured = (c) => c): ScriptedRemote {
    const host = new ScriptedRemote(`root@${boxes[name]}:22`);
    const seen = JSON.parse(fs.readFileSync(path.join(fixtures, `${name}.json`), "utf8")) as Captured[];
    for (const c of seen.map(edit)) host.on(whatIs(c.what), { stdout: c.stdout, exitCode: c.exitCode ?? 255 });
    return host;
}

/** The world discover reaches: these scripted boxes (others fail to dial), a fake Consul agent. */
function world(hosts: Map<string, ScriptedRemote>, consul = new FakeConsul()): DiscoverWorld & { lines: string[] } {
    const lines: string[] = [];
    return {
        lines,
        host(conn) {
            const h = hosts.get(conn.host);
            if (h) return { remote: h, hostKey: () => hostKeys[conn.host] };
            const down = new ScriptedRemote(`root@${conn.host}:22`);
            down.facts = async () => {
                throw new DialError(`root@${conn.host}:22`, 2, "gave up after 2 attempts; the last one failed with: no route to the host", "check the address");
            };
            return { remote: down, hostKey: () => undefined };
        },
        consulKv: (conn) => {
            assert.strictEqual(conn.address, "198.51.100.10:8500");
            return consul.kv;
        },
        progress: (line) => lines.push(line),
        close: async () => undefined,
    };
}

function options(extra: string[] = [], addresses: string[] = Object.values(boxes)): DiscoverOptions {
    const known = path.join(scratch, "known_hosts");
    fs.writeFileSync(known, Object.entries(hostKeys).map(([a, k]) => `${a} ${k}`).join("\n") + "\n");
    const parsed = parseOptions(["--key", keyFile, "--known-hosts", known, "--network", "storage=198.18.1.0/24", "--network", "wan=198.18.2.0/24", "--datacenter", "hand", ...extra, ...addresses], {});
    assert.notStrictEqual(parsed, "help");
    return parsed as DiscoverOptions;
}

function site(): Map<string, ScriptedRemote> {
    return new Map(Object.entries(boxes).map(([name, address]) => [address, capturedBox(name as keyof typeof boxes)]));
}

describe("baremetal discover on the lab's hand-made site (captured answers)", () => {
    after(() => fs.rmSync(scratch, { recursive: true, force: true }));

    it("writes an inventory the data center program accepts: every object found, all marked for adoption, guest and export kept as found", async () => {
        const consul = new FakeConsul();
        consul.kvData.set("site/hand/motd", "hello from the hand-made site");
        consul.kvData.set("site/hand/workers", "3");
        const hosts = site();
        const r = await discover(options(["--consul", "198.51.100.10:8500", "--kv-prefix", "site/hand/"]), world(hosts, consul), new Date("2026-12-03T00:00:00Z"));
        const inv = parseInventory(r.yaml, "discovered.yaml");
        assert.deepStrictEqual(inv.machines.map((m) => [m.name, m.nics.map((n) => `${n.name} ${n.network} ${n.address}`), m.bridges]), [
            ["pxe1", ["eth0 lan 198.51.100.10", "eth1 wan 198.18.2.10"], []],
            ["storage1", ["eth0 lan 198.51.100.11", "eth1 storage 198.18.1.11"], []],
            ["svc1", ["eth0 lan 198.51.100.12", "eth1 storage 198.18.1.12", "eth2 wan 198.18.2.12"], ["storage"]],
        ]);
        assert.ok(inv.machines.every((m) => m.adopt === true));
        assert.strictEqual(inv.networks.storage.bridge, "brhand", "the bridge made with ovs-vsctl replicates the STORAGE network");
        const storage1 = inv.machines[1];
        assert.deepStrictEqual(storage1.raid, [{ device: "/dev/md21", members: ["/dev/disk/by-id/virtio-bm-storage1-2", "/dev/disk/by-id/virtio-bm-storage1-3"], name: "handmd" }]);
        assert.deepStrictEqual(storage1.san, { volumeGroup: "handvg", devices: ["/dev/md21"], exportNetwork: "storage", adopt: true });
        assert.deepStrictEqual(inv.guests, [{
            name: "handvm", host: "svc1", role: "guest", adopt: true, memoryMiB: 64, vcpus: 1, boot: "disk",
            nics: [{ network: "storage", mac: "52:54:00:7e:18:01" }], disks: [{ volume: "vm1disk" }],
            asFound: { service: "handvm.service", qmpSocket: "/run/handvm.qmp" },
        }]);
        assert.deepStrictEqual(inv.volumes, [{
            name: "vm1disk", san: "storage1", size: "64MiB", port: 10830, owner: "handvm", exportName: "vm1disk",
            allowedClients: ["198.18.1.0/24"], adopt: true, asFound: { service: "nbd-server.service", config: "/etc/nbd-server/config" },
        }]);
        const ct = inv.containers?.[0];
        assert.deepStrictEqual([ct?.name, ct?.host, ct?.template, ct?.autostart, ct?.adopt, ct?.nics], ["handct", "svc1", "busybox", false, true, [{ network: "storage", address: "198.18.1.61", mac: "52:54:00:7e:18:50" }]]);
        assert.deepStrictEqual(inv.consulKeys, [{ prefix: "site/hand/", keys: { motd: "hello from the hand-made site", workers: "3" }, adopt: true }]);
        assert.deepStrictEqual(r.discovered.counts, { machines: 3, raid: 1, osds: 0, volumeGroups: 1, volumes: 1, guests: 1, containers: 1, bridges: 1, consulKeys: 2, notes: 1 });
    });

    it("what the inventory cannot hold goes in as a commented block saying what and why (the dnsmasq static host)", async () => {
        const r = await discover(options(), world(site()));
        assert.match(r.yaml, /\n# ---- found, but not in this inventory \(1\) ----\n#\n# pxe1: dnsmasq static hosts in \/etc\/dnsmasq\.d\/hand\.conf \(served by handdns\.service\)\n#   why: pulumi-baremetal's PxeServer runs its own dnsmasq instance; .*\n#   found: dhcp-host=52:54:00:b0:00:14,198\.51\.100\.20,pxeclient1\n/);
        assert.ok(!("pxe" in (YAML.parse(r.yaml) as object)), "no PXE section: the site does not boot from a PxeServer");
    });

    it("only reads: every command sent passes the read-only check, no plan is applied, no host lock taken", async () => {
        const hosts = site();
        await discover(options(), world(hosts));
        for (const h of hosts.values()) {
            assert.deepStrictEqual(h.plans, [], `${h.target} got a plan`);
            assert.ok(h.commands.length > 0);
            for (const c of h.commands) {
                assert.strictEqual(readOnlyRefusal(c.argv, c.stdin), undefined, c.line);
                assert.strictEqual(c.lock, undefined, `${c.line} took the host lock ${c.lock}`);
            }
            h.verify();
        }
    });

    it("an Open vSwitch that does not answer is a note naming the box and the call, never 'no bridges' taken as fact", async () => {
        // svc1's survey as it comes back when ovs-vsctl's --timeout kills list-br (exit 142, SIGALRM):
        // the section the survey script prints then (the script itself: test/unit/discoverSurveyOvs.test.ts).
        const frozen = (c: Captured): Captured => {
            if (c.what !== "list what the box holds") return c;
            const at = c.stdout.lastIndexOf("==ovs==\n");
            const rest = c.stdout.indexOf("==dnsmasq==", at);
            return { ...c, stdout: `${c.stdout.slice(0, at)}==ovs==\n--- error list-br exit 142\n${c.stdout.slice(rest)}` };
        };
        const hosts = site();
        hosts.set(boxes.svc1, capturedBox("svc1", frozen));
        const r = await discover(options(), world(hosts));
        assert.match(r.yaml, /\n# svc1: OVS bridges\n#   why: Open vSwitch did not answer `ovs-vsctl list-br` \(no answer in 30 s\), so no bridge of this box is in the inventory; run discover again once ovsdb-server answers/);
        const inv = parseInventory(r.yaml);
        assert.deepStrictEqual(inv.machines.find((m) => m.name === "svc1")?.bridges, [], "svc1 declares no bridge it could not list");
        assert.strictEqual(inv.networks.storage.bridge, undefined);
    });

    it("a box that cannot be reached is reported (stderr and a note), and the others are still read", async () => {
        const w = world(site());
        const r = await discover(options(["--host-key", `198.51.100.99=SHA256:${"A".repeat(43)}`], [...Object.values(boxes), "198.51.100.99"]), w);
        assert.deepStrictEqual(r.unreachable.map((u) => u.address), ["198.51.100.99"]);
        assert.ok(w.lines.some((l) => /^198\.51\.100\.99: NOT READ: connect on root@198\.51\.100\.99:22 failed: gave up after 2 attempts/.test(l)), w.lines.join("\n"));
        assert.ok(w.lines.some((l) => /^198\.51\.100\.11 \(storage1\): 2 NICs, 4 disks, 1 md array, 1 volume group, 1 NBD export, .* command\(s\)$/.test(l)), w.lines.join("\n"));
        assert.strictEqual(parseInventory(r.yaml).machines.length, 3);
        assert.match(r.yaml, /# 198\.51\.100\.99: a box that could not be read\n#   why: connect on root@198\.51\.100\.99:22 failed/);
    });

    it("writes no secret: not the SSH key, not the Consul token, not a K/V value whose name says secret; it names the stack config keys instead", async () => {
        const consul = new FakeConsul();
        consul.kvData.set("site/hand/api-token", "s3cr3t-hand-token");
        consul.kvData.set("site/hand/motd", "hello");
        const opts = parseOptions(["--key", keyFile, "--trust-on-first-use", "--consul", "198.51.100.10:8500", "--kv-prefix", "site/hand", ...Object.values(boxes)], { CONSUL_HTTP_TOKEN: "b5e1c0de-0000-4000-8000-00000000cafe" }) as DiscoverOptions;
        const r = await discover(opts, world(site(), consul));
        for (const secret of [privateKey.trim(), privateKey.split("\n")[1], "b5e1c0de-0000-4000-8000-00000000cafe", "s3cr3t-hand-token"]) {
            assert.ok(!r.yaml.includes(secret), `the inventory holds ${secret.slice(0, 20)}...`);
        }
        assert.match(r.yaml, /^#   sshPrivateKey: the private key every box accepts for defaults\.sshUser/m);
        assert.match(r.yaml, /^#   consulToken: a Consul ACL token/m);
        assert.match(r.yaml, /# consul: keys site\/hand\/api-token\n#   why: their names say they hold secrets, so their values are not written/);
        // With trust on first use, the key each box showed is what the inventory pins.
        assert.deepStrictEqual(parseInventory(r.yaml).machines.map((m) => m.ssh?.hostKey), Object.values(hostKeys));
    });

    it("refuses bad options before reading anything, naming the flag or field", () => {
        const fails = (args: string[], re: RegExp) => assert.throws(() => parseOptions(args, {}), (e: Error) => e instanceof UsageError && re.test(e.message));
        fails([], /name at least one box to read/);
        fails(["198.51.100.10"], /box 198\.51\.100\.10: no host key is pinned; pin it \(--host-key, --known-hosts, hostKey in --boxes\) or pass --trust-on-first-use/);
        fails(["--trust-on-first-use", "--network", "Storage=198.18.1.0/24", "198.51.100.10"], /--network Storage=198\.18\.1\.0\/24: a network name is lower-case letters and digits/);
        fails(["--trust-on-first-use", "--user", "bad user", "198.51.100.10"], /box 198\.51\.100\.10\.user: "bad user" is not a user name/);
        fails(["--trust-on-first-use", "--kv-prefix", "x/", "198.51.100.10"], /--kv-prefix needs --consul/);
        fails(["--frobnicate"], /unknown option --frobnicate/);
    });
});
