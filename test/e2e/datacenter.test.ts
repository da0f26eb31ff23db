// The seed's data center program (examples/datacenter) under the real pulumi CLI,
// with no host reachable: the preview declares every resource of the seed and
// opens no connection; a broken inventory stops it with the field and the line.
// The checkout holds the example exactly as a user has it (program/, inventory).
import * as assert from "assert";
import { execFileSync } from "child_process";
import * as dgram from "dgram";
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import { parse, stringify } from "yaml";
import type { Inventory } from "../../examples/datacenter/program/inventory";
import { Checkout } from "../helpers/checkout";
import { PreviewJson, PulumiStack } from "../helpers/pulumi";
import { requireTools } from "../helpers/tools";
import { openvpnStaticKey, staticKeyLines } from "../helpers/keys";

const bmcPassword = "e2e-Bmc-Pa55word";
const consulToken = "e2e-consul-token-5d1f0c";
const vpnKey = openvpnStaticKey();

/** Resources of each kind the seed declares (see examples/datacenter/inventory.yaml). */
const seedCounts: Record<string, number> = {
    PxeServer: 3, // the three Consul servers
    Machine: 19, // 10 boxes + 9 guests booting by PXE
    ConsulKeys: 4, // configuration of the 3 PXE boxes (their own agents register them) + the NAS's exports
    RaidArray: 9, // 3 storage boxes x 2 + 3 service boxes x 1
    CephOsd: 12, // 3 storage boxes x 4
    OvsBridge: 37, // 10 boxes x 3 switches + 7 inside the guests that run containers
    VolumeGroup: 3, // one per SAN VM
    NbdVolume: 7,
    KvmGuest: 9,
    LxcContainer: 13,
};

function kindCounts(preview: PreviewJson): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const s of preview.steps) {
        const m = /^pulumi-nodejs:dynamic\/baremetal:(\w+)$/.exec(s.newState?.type ?? "");
        if (m && s.op === "create") counts[m[1]] = (counts[m[1]] ?? 0) + 1;
    }
    return counts;
}

/**
 * Listeners on loopback addresses that only count: TCP connections (stand-ins for
 * the boxes' sshd and the Consul agent) and UDP datagrams (for the BMCs ipmitool
 * would talk to). Each host gets its own address, as in a real data center.
 */
class EndpointCounter {
    tcp = 0;
    udp = 0;
    private servers: net.Server[] = [];
    private sockets: dgram.Socket[] = [];

    async listen(address: string): Promise<number> {
        const srv = net.createServer((c) => {
            this.tcp++;
            c.destroy();
        });
        await new Promise<void>((r) => srv.listen(0, address, () => r()));
        this.servers.push(srv);
        return (srv.address() as net.AddressInfo).port;
    }

    async bind(address: string): Promise<number> {
        const s = dgram.createSocket("udp4");
        s.on("message", () => this.udp++);
        await new Promise<void>((r) => s.bind(0, address, () => r()));
        this.sockets.push(s);
        return s.address().port;
    }

    async close(): Promise<void> {
        for (const s of this.sockets) s.close();
        await Promise.all(this.servers.map((srv) => new Promise<void>((r) => srv.close(() => r()))));
    }
}

describe("the seed's data center under the real pulumi CLI, no host reachable", function () {
    this.timeout(600_000);
    let checkout: Checkout;
    let stack: PulumiStack;

    before(async () => {
        requireTools(["pulumi", "pulumi-language-nodejs", "pulumi-resource-pulumi-nodejs", "ssh-keygen"]);
        checkout = Checkout.create("datacenter", "examples");
        stack = await PulumiStack.init(checkout.programDir);
        const keyFile = path.join(checkout.root, "id_ed25519");
        execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "", "-f", keyFile]);
        await stack.setConfig("sshPrivateKey", fs.readFileSync(keyFile, "utf8"), true);
        await stack.setConfig("bmcPassword", bmcPassword, true);
        await stack.setConfig("openvpnKey", vpnKey, true);
        await stack.setConfig("consulToken", consulToken, true);
    });

    after(async () => {
        await stack?.cleanup();
        checkout?.remove();
    });

    it("previews every resource of the seed, with readable types, from the inventory as shipped", async () => {
        const preview = await stack.preview();
        assert.deepStrictEqual(kindCounts(preview), seedCounts);
        const total = Object.values(seedCounts).reduce((a, b) => a + b, 0);
        assert.strictEqual(preview.changeSummary.create, total + 1, JSON.stringify(preview.changeSummary)); // + the stack
        const urns = preview.steps.map((s) => s.urn.split("::").pop());
        for (const name of ["pxe-pxe1", "machine-stor1", "raid-stor1-md1", "osd-stor3-3", "guest-san1", "vg-san1-vg0", "volume-nas1-data", "guest-nas1", "bridge-pxe1-storage", "container-lighttpd2"]) {
            assert.ok(urns.includes(name), `${name} is not in the preview`);
        }
    });

    it("opens no connection: every SSH, Consul and BMC endpoint points at a counting listener", async () => {
        const counter = new EndpointCounter();
        try {
            const inv = parse(fs.readFileSync(path.join(checkout.programDir, "inventory.yaml"), "utf8")) as Inventory;
            inv.consul!.address = `127.0.0.1:${await counter.listen("127.0.0.1")}`;
            for (const [i, h] of [...inv.machines, ...(inv.guests ?? [])].entries()) {
                const address = `127.0.2.${i + 1}`;
                if (h.ssh) h.ssh = { ...h.ssh, host: address, port: await counter.listen(address) };
            }
            for (const [i, m] of inv.machines.entries()) {
                if (!m.bmc) continue;
                const address = `127.0.3.${i + 1}`;
                m.bmc = { ...m.bmc, address, port: await counter.bind(address) };
            }
            const file = path.join(checkout.programDir, "inventory-loopback.yaml");
            fs.writeFileSync(file, stringify(inv));
            await stack.setConfig("inventory", file);
            const preview = await stack.preview();
            assert.deepStrictEqual(kindCounts(preview), seedCounts);
            assert.strictEqual(counter.tcp, 0, "preview opened TCP connections (SSH or Consul)");
            assert.strictEqual(counter.udp, 0, "preview sent datagrams to a BMC");
            // The listeners do count: one connection to the Consul stand-in shows up.
            await new Promise<void>((r) => net.connect(Number(inv.consul!.address.split(":")[1]), "127.0.0.1").on("close", () => r()).on("error", () => r()));
            assert.strictEqual(counter.tcp, 1);
        } finally {
            await stack.run(["config", "rm", "inventory"]);
            await counter.close();
        }
    });

    it("a broken inventory stops the preview before any resource, naming the field and the line", async () => {
        const text = fs.readFileSync(path.join(checkout.programDir, "inventory.yaml"), "utf8");
        const broken = text.replace("bmc: { address: 198.18.67.22 }", "bmc: { address: 300.1.1.1 }");
        const line = broken.split("\n").findIndex((l) => l.includes("300.1.1.1")) + 1;
        const file = path.join(checkout.programDir, "broken.yaml");
        fs.writeFileSync(file, broken);
        await stack.setConfig("inventory", file);
        try {
            const r = await stack.run(["preview"]);
            assert.notStrictEqual(r.code, 0);
            assert.match(r.stdout + r.stderr, new RegExp(`broken\\.yaml:${line}: machines\\[5\\]\\.bmc\\.address: "300\\.1\\.1\\.1" is not an IPv4 address`));
            assert.doesNotMatch(r.stdout, /baremetal:Machine/, "no resource may be declared from a broken inventory");
        } finally {
            await stack.run(["config", "rm", "inventory"]);
        }
    });

    it("keeps the secrets out of everything the CLI printed", () => {
        const printed = stack.transcript.join("\n");
        for (const secret of [bmcPassword, consulToken, "OPENSSH PRIVATE KEY", ...staticKeyLines(vpnKey)]) {
            assert.ok(!printed.includes(secret), `${secret.slice(0, 12)}... appeared in the CLI output`);
        }
    });
});
