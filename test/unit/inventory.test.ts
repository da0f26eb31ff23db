// The data center inventory (examples/datacenter/program): the seed's file loads,
// and every kind of mistake is reported with its field path and its YAML line,
// all at once, before any resource is declared.
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { Inventory, InventoryError, parseInventory, validateInventory } from "../../examples/datacenter/program/inventory";
import { completeFromLab, derivedStaticKey, LabJson } from "../../examples/lab/lab";

const repo = path.resolve(__dirname, "../../..");
const seedText = fs.readFileSync(path.join(repo, "examples/datacenter/inventory.yaml"), "utf8");
const labText = fs.readFileSync(path.join(repo, "examples/lab/inventory.yaml"), "utf8");

/** The 1-based line of the first occurrence of `needle` in `text` (after line `after`). */
function lineOf(text: string, needle: string, after = 0): number {
    const lines = text.split("\n");
    const i = lines.findIndex((l, n) => n >= after && l.includes(needle));
    assert.ok(i >= 0, `${needle} is not in the text`);
    return i + 1;
}

/** Parses and returns the InventoryError (fails when the text is accepted). */
function problemsOf(text: string): InventoryError {
    try {
        parseInventory(text, "inventory.yaml");
    } catch (err) {
        if (err instanceof InventoryError) return err;
        throw err;
    }
    assert.fail("the broken inventory was accepted");
}

/** The seed text with one exact substring replaced (which must occur once). */
function broken(from: string, to: string, text = seedText): string {
    assert.strictEqual(text.split(from).length, 2, `${from} must occur exactly once`);
    return text.replace(from, to);
}

describe("inventory", () => {
    describe("the seed's data center", () => {
        let inv: Inventory;
        before(() => {
            inv = parseInventory(seedText, "inventory.yaml");
        });

        it("loads: ten boxes, three PXE servers that are the Consul servers, guests, volumes, containers", () => {
            assert.strictEqual(inv.machines.length, 10);
            const pxe = inv.machines.filter((m) => m.pxeServer);
            assert.deepStrictEqual(pxe.map((m) => m.name), ["pxe1", "pxe2", "pxe3"]);
            assert.ok(pxe.every((m) => m.consulAgent), "the PXE servers run the Consul servers");
            assert.deepStrictEqual(Object.keys(inv.pxe!.profiles), ["pxeboot", "default", "lxc-repo"]);
            assert.deepStrictEqual(inv.guests?.map((g) => g.role).sort(), ["kvm-infra", "kvm-infra", "kvm-services", "kvm-services", "lxc-repo", "nas", "san", "san", "san"]);
        });

        it("storage boxes: eight disks, two RAID1 arrays, the other four disks as Ceph OSDs", () => {
            const storage = inv.machines.filter((m) => m.role === "storage");
            assert.strictEqual(storage.length, 3);
            for (const m of storage) {
                assert.strictEqual(m.disks?.length, 8, m.name);
                assert.deepStrictEqual(m.raid?.map((r) => [r.device, r.level ?? "raid1", r.members.length]), [["/dev/md0", "raid1", 2], ["/dev/md1", "raid1", 2]]);
                const used = [...(m.raid ?? []).flatMap((r) => r.members), ...(m.ceph?.osds ?? []).map((o) => o.device)];
                assert.deepStrictEqual([...used].sort(), [...(m.disks ?? [])].sort(), `${m.name}: every disk is in an array or an OSD`);
                assert.strictEqual(m.ceph?.osds.length, 4);
            }
            for (const m of inv.machines.filter((x) => x.role === "service")) assert.strictEqual(m.raid?.length, 1, m.name);
        });

        it("SAN VMs on the arrays, guests with NBD /var, a NAS exporting NFS to redundant web containers", () => {
            for (const san of inv.guests!.filter((g) => g.role === "san")) {
                assert.deepStrictEqual(san.disks, [{ device: "/dev/md0" }, { device: "/dev/md1" }]);
                assert.strictEqual(san.san?.volumeGroup, "vg0");
            }
            for (const g of inv.guests!.filter((x) => x.role.startsWith("kvm-"))) {
                const vol = inv.volumes!.find((v) => v.name === `${g.name}-var`);
                assert.strictEqual(vol?.owner, g.name);
            }
            const nas = inv.guests!.find((g) => g.role === "nas")!;
            assert.ok(nas.nfs && nas.nfs.exports.length > 0);
            const webs = inv.containers!.filter((c) => c.service === "lighttpd");
            assert.strictEqual(webs.length, 2);
            assert.notStrictEqual(webs[0].host, webs[1].host, "the web containers run on different guests");
            assert.ok(webs.every((c) => c.mounts?.some((m) => m.nfs?.server === nas.name)));
        });

        it("containers for every service of the seed, Alpine by default and Debian where the seed uses it", () => {
            const services = new Set(inv.containers!.map((c) => c.service));
            for (const s of ["dns", "squid", "web-frontend", "openldap", "lighttpd", "php-fpm", "postfix", "dovecot", "mariadb", "sftp"]) assert.ok(services.has(s), s);
            assert.strictEqual(inv.defaults?.containerOs, "alpine");
            assert.deepStrictEqual(inv.containers!.filter((c) => c.os === "debian").map((c) => c.service).sort(), ["dovecot", "mariadb", "postfix"]);
        });

        it("holds no secret: no password, private key or token field", () => {
            assert.doesNotMatch(seedText, /password|PRIVATE KEY|token|OpenVPN Static key/i);
        });
    });

    describe("errors name the field path and the YAML line", () => {
        it("a BMC address that is not IPv4", () => {
            const text = broken("bmc: { address: 198.18.67.22 }", "bmc: { address: 300.1.1.1 }");
            const err = problemsOf(text);
            const line = lineOf(text, "300.1.1.1");
            assert.strictEqual(err.problems.length, 1, err.message);
            assert.match(err.message, new RegExp(`^inventory\\.yaml:${line}: machines\\[5\\]\\.bmc\\.address: "300\\.1\\.1\\.1" is not an IPv4 address$`, "m"));
        });

        it("a misspelt field is not ignored", () => {
            const text = broken("    waitForSshSeconds: 900\n    disks: [/dev/disk/by-id/ata-Samsung_SSD_860_PRO_1TB_S42NNF0K200001", "    waitForSshSecond: 900\n    disks: [/dev/disk/by-id/ata-Samsung_SSD_860_PRO_1TB_S42NNF0K200001");
            const err = problemsOf(text);
            assert.match(err.message, new RegExp(`^inventory\\.yaml:${lineOf(text, "waitForSshSecond:")}: machines\\[8\\]\\.waitForSshSecond: is not a field here`, "m"));
        });

        it("a missing field points at its parent's line", () => {
            const from = "  - name: nas1\n    host: svc3\n    role: nas\n    memoryMiB: 1024\n";
            const text = broken(from, "  - name: nas1\n    host: svc3\n    role: nas\n");
            const err = problemsOf(text);
            assert.match(err.message, new RegExp(`^inventory\\.yaml:${lineOf(text, "- name: nas1")}: guests\\[8\\]\\.memoryMiB: is required$`, "m"));
        });

        it("a YAML number where a string belongs says to quote it", () => {
            const text = broken('releases: { alpine: "3.20", debian: bookworm }', "releases: { alpine: 3.20, debian: bookworm }");
            const err = problemsOf(text);
            assert.match(err.message, new RegExp(`inventory\\.yaml:${lineOf(text, "releases:")}: lxc\\.releases\\.alpine: must be a string, got 3\\.2 \\(number\\); quote it`));
        });

        it("references: an unknown host, a volume of another guest, a RAID member that is no disk", () => {
            let text = broken("  - { name: dns2, host: infra2,", "  - { name: dns2, host: infra9,");
            text = broken("    disks: [{ volume: infra2-var }]", "    disks: [{ volume: infra1-var }]", text);
            text = broken("      - { device: /dev/md1, members: [/dev/disk/by-id/ata-HGST_HUS726T4TALA6L4_V6K3A003,", "      - { device: /dev/md1, members: [/dev/disk/by-id/ata-HGST_HUS726T4TALA6L4_V6K3A099,", text);
            const err = problemsOf(text);
            const msg = err.message;
            assert.match(msg, new RegExp(`inventory\\.yaml:${lineOf(text, "host: infra9")}: containers\\[1\\]\\.host: "infra9" is not one of the machines or guests`));
            assert.match(msg, new RegExp(`inventory\\.yaml:${lineOf(text, "volume: infra1-var }]", lineOf(text, "- name: infra2"))}: guests\\[5\\]\\.disks\\[0\\]\\.volume: "infra1-var" is owned by infra1, not infra2`));
            assert.match(msg, new RegExp(`inventory\\.yaml:${lineOf(text, "V6K3A099")}: machines\\[6\\]\\.raid\\[1\\]\\.members\\[0\\]: "[^"]+V6K3A099" is not one of stor3's disks`));
        });

        it("duplicates and ranges: a MAC used twice, an address outside its network", () => {
            let text = broken('mac: "52:54:00:64:00:2a"', 'mac: "52:54:00:64:00:29"');
            text = broken("address: 198.18.65.71 }", "address: 198.18.66.71 }", text);
            const msg = problemsOf(text).message;
            assert.match(msg, new RegExp(`inventory\\.yaml:${lineOf(text, '52:54:00:64:00:29', lineOf(text, "- name: san2"))}: guests\\[1\\]\\.nics\\[0\\]\\.mac: "52:54:00:64:00:29" is also the MAC of guests\\[0\\]\\.nics\\[0\\]\\.mac`));
            assert.match(msg, new RegExp(`guests\\[8\\]\\.nics\\[1\\]\\.address: "198\\.18\\.66\\.71" is not a host address in storage \\(198\\.18\\.65\\.0/24\\)`));
        });

        it("hostile values are refused before anything is declared", () => {
            const text = broken("  - { name: dns1, host: infra1,", "  - { name: \"dns1; rm -rf /\", host: infra1,");
            const msg = problemsOf(text).message;
            assert.match(msg, /containers\[0\]\.name: "dns1; rm -rf \/" must be lower-case letters/);
            const traversal = problemsOf(broken("- /dev/disk/by-id/ata-HGST_HUS726T4TALA6L4_V6K1A008\n    raid", "- /dev/disk/by-id/../../etc/shadow\n    raid")).message;
            assert.match(traversal, /machines\[4\]\.disks\[7\]: "\/dev\/disk\/by-id\/\.\.\/\.\.\/etc\/shadow" must not contain \.\./);
        });

        it("YAML syntax errors give the line", () => {
            const text = broken("  ipmi:    { cidr: 198.18.67.0/24 }", "  ipmi:    { cidr: 198.18.67.0/24");
            const err = problemsOf(text);
            assert.match(err.message, /^inventory\.yaml:\d+: YAML: /m);
            assert.ok(err.problems[0].line !== undefined && err.problems[0].line >= lineOf(text, "ipmi:"), err.message);
        });

        it("reports every problem at once", () => {
            const text = broken("bmc: { address: 198.18.67.22 }", "bmc: { address: 300.1.1.1 }", broken("size: 1TiB", "size: 1TB"));
            const err = problemsOf(text);
            assert.strictEqual(err.problems.length, 2, err.message);
            assert.deepStrictEqual(err.problems.map((p) => p.field).sort(), ["machines[5].bmc.address", "volumes[5].size"]);
        });

        it("validateInventory works on a plain object (for generated inventories) with field paths", () => {
            // consul and pxe may be left out (a site that neither registers in Consul nor boots by PXE).
            const problems = validateInventory({ datacenter: "x" });
            assert.deepStrictEqual(problems.map((p) => `${p.field}: ${p.message}`).sort(), ["machines: is required", "networks: is required"]);
        });
    });

    describe("the lab inventory, completed from lab.json", () => {
        // lab.json as lab/lab.sh writes it, trimmed to what the program reads (made up here: no lab needed).
        const vm = (name: string, n: number, boot: "direct" | "pxe", nets: string[], disks: number) => ({
            name, boot,
            nics: nets.map((net, i) => ({ name: `eth${i}`, network: net, mac: `52:54:00:b0:0${["lan", "storage", "wan"].indexOf(net)}:${n.toString(16).padStart(2, "0")}`, address: net === "lan" ? `198.51.100.${n}` : `198.18.${["lan", "storage", "wan"].indexOf(net)}.${n}` })),
            disks: Array.from({ length: disks }, (_, i) => ({ byId: `/dev/disk/by-id/virtio-bm-${name}-${i}` })),
            ssh: { host: `198.51.100.${n}`, port: 22, user: "root", hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB058REIsLko8hz/FmnXe82RKY4S8R+JL/bfuHuIn7+H" },
            bmc: { address: `198.18.3.${n}`, port: 623, interface: "lanplus" as const, user: "admin", password: "not-used-here" },
            kernelCmdline: `console=ttyS0 bm.name=${name} bm.net=eth0:198.51.100.${n}/24 bm.gw=198.51.100.1`,
        });
        const lab: LabJson = {
            file: "/nowhere/lab.json",
            build: { vmlinuz: "/lab/vmlinuz", initrd: "/lab/initrd.img", consulBinary: "/lab/consul" },
            networks: { lan: { cidr: "198.51.100.0/24", gateway: "198.51.100.1" }, storage: { cidr: "198.18.1.0/24", gateway: "198.18.1.1" }, wan: { cidr: "198.18.2.0/24", gateway: "198.18.2.1" } },
            ssh: { privateKeyPath: "/nowhere/id_ed25519" },
            consul: { httpAddr: "198.51.100.10:8500", datacenter: "bmlab" },
            vms: {
                pxe1: vm("pxe1", 10, "direct", ["lan", "wan"], 1),
                storage1: vm("storage1", 11, "direct", ["lan", "storage"], 4),
                svc1: vm("svc1", 12, "direct", ["lan", "storage", "wan"], 1),
                ceph1: vm("ceph1", 13, "direct", ["lan", "storage"], 4),
                pxeclient1: vm("pxeclient1", 20, "pxe", ["lan"], 0),
            },
        };

        it("loads with the lab's addresses, keys and kernel files filled in", () => {
            const inv = parseInventory(labText, "lab.yaml", { complete: completeFromLab(lab) });
            assert.strictEqual(inv.networks.storage.cidr, "198.18.1.0/24");
            assert.deepStrictEqual(inv.consul, { address: "198.51.100.10:8500", datacenter: "bmlab" });
            const client = inv.machines.find((m) => m.name === "pxeclient1")!;
            assert.deepStrictEqual(client.kernelArgs, ["bm.name=pxeclient1", "bm.net=eth0:198.51.100.20/24", "bm.gw=198.51.100.1"]);
            assert.strictEqual(client.bmc?.address, "198.18.3.20");
            assert.deepStrictEqual(inv.pxe!.profiles.lab.kernel, { path: "/lab/vmlinuz" });
            assert.ok(!inv.machines.some((m) => m.name === "ceph1"), "ceph1 is only in when asked for");
            assert.strictEqual(JSON.stringify(inv).includes("not-used-here"), false, "the BMC password stays out of the inventory");
        });

        it("ceph is optional: withCeph adds ceph1 with an OSD", () => {
            const inv = parseInventory(labText, "lab.yaml", { complete: completeFromLab(lab, { withCeph: true }) });
            assert.deepStrictEqual(inv.machines.find((m) => m.name === "ceph1")?.ceph, { osds: [{ device: "/dev/disk/by-id/virtio-bm-ceph1-3" }] });
        });

        it("a machine that is not a lab VM is named", () => {
            assert.throws(() => parseInventory(labText.replace("  - name: svc1\n", "  - name: svc9\n"), "lab.yaml", { complete: completeFromLab(lab) }),
                /machine svc9 of the lab inventory is not a lab VM/);
        });

        it("the derived OpenVPN key has the static key format, differs per network, and is stable", () => {
            const a = derivedStaticKey("secret", "storage");
            assert.match(a, /^-----BEGIN OpenVPN Static key V1-----\n([0-9a-f]{32}\n){16}-----END OpenVPN Static key V1-----\n$/);
            assert.strictEqual(derivedStaticKey("secret", "storage"), a);
            assert.notStrictEqual(derivedStaticKey("secret", "wan"), a);
        });
    });
});
