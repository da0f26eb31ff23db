// `baremetal map`, the model: what the map makes of a stack's state. On the seed's
// data center (a state made from the real preview of examples/datacenter, see
// test/helpers/seedState.ts): every resource shown once and where it runs, the links
// between boxes, what needs attention, secrets never reaching the map.
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { renderMap } from "../../provider/cli/map";
import { allNodes, buildSiteMap, MapNode, SiteMap } from "../../provider/cli/map/model";
import { parseState, readStateFile, SECRET, StateError, exportStack } from "../../provider/cli/map/state";
import { ciphertexts, secretSignature, seedStateFixture, trouble, withTrouble } from "../helpers/seedState";

type Obj = Record<string, unknown>;
const seedText = fs.readFileSync(seedStateFixture, "utf8");
const seedJson = JSON.parse(seedText) as Obj;
const seedResources = (seedJson.deployment as { resources: { urn: string; type: string; outputs: Obj }[] }).resources;
const ourUrns = seedResources.filter((r) => r.type.includes("baremetal:")).map((r) => r.urn);

function siteOf(json: unknown): SiteMap {
    return buildSiteMap(parseState(JSON.stringify(json), "test"));
}

/** The node that shows the resource named `name` (the last part of its URN). */
function nodeFor(site: SiteMap, name: string): MapNode {
    const n = allNodes(site).find((x) => x.resources.some((r) => r.urn.endsWith(`::${name}`)));
    assert.ok(n, `no node shows ${name}`);
    return n;
}

function parentOf(site: SiteMap, child: MapNode): MapNode | undefined {
    return allNodes(site).find((n) => n.children.includes(child));
}

/** Mutates the outputs of one resource of a copy of the seed's state. */
function seedWith(changes: Record<string, Obj>): Obj {
    const copy = structuredClone(seedJson);
    for (const r of (copy.deployment as { resources: { urn: string; outputs: Obj }[] }).resources) {
        const name = r.urn.split("::").pop()!;
        if (changes[name]) Object.assign(r.outputs, changes[name]);
    }
    return copy;
}

describe("baremetal map: reading the state", () => {
    it("replaces every secret, at any depth, before anything else sees it", () => {
        const state = parseState(JSON.stringify({
            version: 3,
            deployment: {
                resources: [{
                    urn: "urn:pulumi:s::p::pulumi-nodejs:dynamic/baremetal:Machine::m", type: "pulumi-nodejs:dynamic/baremetal:Machine",
                    inputs: { __provider: "exports.handler = ...", ipmi: { address: "198.51.100.9", password: { [secretSignature.key]: secretSignature.value, ciphertext: "v1:abc:def" } } },
                    outputs: { pxeServers: { [secretSignature.key]: secretSignature.value, ciphertext: "v1:ghi:jkl" }, list: [{ k: { [secretSignature.key]: secretSignature.value, ciphertext: "v1:mno:pqr" } }] },
                }],
            },
        }), "test");
        const [r] = state.resources;
        assert.strictEqual(r.kind, "Machine");
        assert.deepStrictEqual(r.inputs.ipmi, { address: "198.51.100.9", password: SECRET });
        assert.strictEqual(r.outputs.pxeServers, SECRET);
        assert.strictEqual(JSON.stringify(r.outputs.list), '[{"k":"[secret]"}]');
        assert.ok(!("__provider" in r.inputs), "the serialised provider is not shown");
        assert.ok(!JSON.stringify(state).includes("v1:"), "a ciphertext survived the reader");
    });

    it("reads the stack and project from the URNs, and the native plugin's type tokens too", () => {
        const state = parseState(JSON.stringify({
            deployment: { manifest: { time: "2026-12-01T09:00:00Z" }, resources: [
                { urn: "urn:pulumi:prod::site::pulumi:pulumi:Stack::site-prod", type: "pulumi:pulumi:Stack" },
                { urn: "urn:pulumi:prod::site::baremetal:index:RaidArray::md0", type: "baremetal:index:RaidArray", outputs: { state: "clean" } },
            ] },
        }), "test");
        assert.deepStrictEqual([state.stack, state.project, state.time], ["prod", "site", "2026-12-01T09:00:00Z"]);
        assert.strictEqual(state.resources[1].kind, "RaidArray");
    });

    it("refuses what is not `pulumi stack export` output, naming where it came from", () => {
        assert.throws(() => parseState("{not json", "--state x.json"), (e: Error) => e instanceof StateError && /^--state x\.json: not JSON/.test(e.message));
        assert.throws(() => parseState('{"deployment": {"resources": 3}}', "--state y.json"), /--state y\.json: not the output of `pulumi stack export`/);
        assert.throws(() => parseState('{"deployment": {"resources": [{"type": "t"}]}}', "--state z.json"), /deployment\.resources\[0\] has no urn/);
        assert.throws(() => readStateFile("/nonexistent/state.json"), /--state \/nonexistent\/state\.json: cannot read it \(ENOENT\)/);
    });

    it("--stack without a Pulumi CLI says what to do", async () => {
        await assert.rejects(exportStack("lab", { pulumi: "/nonexistent/pulumi" }), (e: Error) =>
            e instanceof StateError && /pulumi stack export --stack lab failed: no `\/nonexistent\/pulumi` on PATH/.test(e.message) && /--state FILE/.test(e.message));
    });
});

describe("baremetal map: the seed's data center", () => {
    const site = siteOf(seedJson);

    it("shows every resource of the state exactly once", () => {
        assert.strictEqual(site.resourceCount, 116);
        const shown = allNodes(site).flatMap((n) => n.resources.map((r) => r.urn));
        assert.deepStrictEqual([...shown].sort(), [...ourUrns].sort());
        assert.deepStrictEqual(site.kindCounts, {
            PxeServer: 3, Machine: 19, ConsulKeys: 4, RaidArray: 9, CephOsd: 12, OvsBridge: 37, VolumeGroup: 3, NbdVolume: 7, KvmGuest: 9, LxcContainer: 13,
        });
    });

    it("puts each resource on the box or guest it runs on", () => {
        const box = (name: string) => nodeFor(site, `machine-${name}`);
        assert.strictEqual(box("stor1").kind, "box");
        assert.strictEqual(parentOf(site, nodeFor(site, "raid-stor1-md0")), box("stor1"));
        assert.strictEqual(parentOf(site, nodeFor(site, "osd-stor3-3")), box("stor3"));
        assert.strictEqual(parentOf(site, nodeFor(site, "pxe-pxe2")), box("pxe2"));
        const san1 = nodeFor(site, "guest-san1");
        assert.strictEqual(parentOf(site, san1), box("stor1"));
        assert.strictEqual(parentOf(site, nodeFor(site, "vg-san1-vg0")), san1, "the VG runs inside the SAN VM");
        assert.strictEqual(parentOf(site, nodeFor(site, "volume-services1-var")), san1);
        const services2 = nodeFor(site, "guest-services2");
        assert.strictEqual(parentOf(site, nodeFor(site, "container-lighttpd2")), services2);
        assert.strictEqual(parentOf(site, nodeFor(site, "bridge-services2-lan")), services2);
        // A guest's boot entry (a Machine with the guest's MAC) is part of the guest, not a box.
        assert.strictEqual(nodeFor(site, "machine-services2"), services2);
        assert.match(services2.lines.join("\n"), /4096 MiB/);
    });

    it("shows boxes with role, profile and BMC; guests with memory and state; containers with their address", () => {
        const stor1 = nodeFor(site, "machine-stor1");
        assert.match(stor1.lines.join("\n"), /role storage · profile default/);
        assert.match(stor1.lines.join("\n"), /BMC 198\.18\.67\.\d+/);
        assert.strictEqual(nodeFor(site, "guest-nas1").state, "running");
        assert.strictEqual(nodeFor(site, "raid-stor1-md0").state, "clean");
        assert.strictEqual(nodeFor(site, "osd-stor1-0").state, "up/in");
        assert.match(nodeFor(site, "container-mariadb1").lines.join(" "), /198\.18\.64\.121/);
        assert.deepStrictEqual(allNodes(site).filter((n) => n.kind === "pxe").map((n) => n.state).sort(), ["active", "standby", "standby"]);
        assert.deepStrictEqual(allNodes(site).filter((n) => n.kind === "switch").map((n) => n.title).sort(), ["IPMI", "LAN", "STORAGE", "WAN"]);
    });

    it("links OpenVPN tunnels hub to box, NBD exports to their owner guest, arrays to the SAN VM", () => {
        const has = (kind: string, from: string, to: string) =>
            site.links.some((l) => l.kind === kind && l.from === nodeFor(site, from).id && l.to === nodeFor(site, to).id);
        assert.ok(has("tunnel", "bridge-svc1-storage", "bridge-pxe1-storage"), "pxe1 reaches STORAGE through svc1");
        assert.ok(has("tunnel", "bridge-gw1-wan", "bridge-stor1-wan"));
        assert.ok(has("nbd", "volume-services1-var", "guest-services1"));
        assert.ok(has("disk", "raid-stor1-md0", "guest-san1"));
        assert.ok(has("lv", "vg-san1-vg0", "volume-infra1-var"));
        assert.strictEqual(site.links.filter((l) => l.kind === "nbd").length, 7, "every export has its owner");
        assert.match(nodeFor(site, "volume-services1-var").lines.join("\n"), /owner services1/);
    });

    it("still shows what it cannot place: a secret connection, a guest without a MAC, a kind it does not know", () => {
        const secret = { [secretSignature.key]: secretSignature.value, ciphertext: "v1:aaaa:bbbb" };
        const t = (k: string) => `pulumi-nodejs:dynamic/baremetal:${k}`;
        const urn = (k: string, n: string) => `urn:pulumi:s::p::${t(k)}::${n}`;
        const s = siteOf({ deployment: { resources: [
            { urn: urn("KvmGuest", "g1"), type: t("KvmGuest"), inputs: { connection: secret, nics: secret }, outputs: { name: "g1", running: true } },
            { urn: urn("KvmGuest", "g2"), type: t("KvmGuest"), inputs: { connection: { host: "198.51.100.7" }, nics: secret }, outputs: { name: "g2", running: false, status: "stopped" } },
            { urn: urn("RaidArray", "r1"), type: t("RaidArray"), inputs: { connection: { host: "198.51.100.7" } }, outputs: { device: "/dev/md3", state: "clean" } },
            { urn: urn("FutureKind", "f1"), type: t("FutureKind"), inputs: {}, outputs: {} },
        ] } });
        assert.strictEqual(s.resourceCount, 4);
        assert.deepStrictEqual(allNodes(s).flatMap((n) => n.resources.map((r) => r.name)).sort(), ["f1", "g1", "g2", "r1"]);
        assert.strictEqual(parentOf(s, nodeFor(s, "r1"))?.title, "host 198.51.100.7", "a host known only by its address");
        assert.strictEqual(parentOf(s, nodeFor(s, "g2")), parentOf(s, nodeFor(s, "r1")));
        assert.strictEqual(parentOf(s, nodeFor(s, "g1"))?.title, "no host");
        assert.deepStrictEqual([nodeFor(s, "f1").kind, nodeFor(s, "f1").health], ["other", "unknown"]);
        assert.deepStrictEqual(s.attention.map((a) => `${a.where}: ${a.text}`), ["g2 on host 198.51.100.7: guest is stopped"]);
    });

    it("a healthy site needs no attention", () => {
        assert.deepStrictEqual(site.attention, []);
    });
});

describe("baremetal map: what needs attention", () => {
    it("a degraded array, a stopped guest and a down OSD are listed, worst first, each on its node", () => {
        const site = siteOf(withTrouble(seedJson));
        const texts = site.attention.map((a) => `${a.severity} ${a.where}: ${a.text}`);
        assert.ok(texts.some((t) => /^bad md1 raid1 on stor2: array degraded; failed: ata-\S+/.test(t)), texts.join("\n"));
        assert.ok(texts.some((t) => t === "bad nas1 on svc3: guest is shutdown"), texts.join("\n"));
        assert.ok(texts.some((t) => /^bad osd\.\d+ on stor3: osd\.\d+ is down$/.test(t)), texts.join("\n"));
        assert.ok(texts.some((t) => /^warn osd\.\d+ on stor3: osd\.\d+ is out/.test(t)), texts.join("\n"));
        assert.deepStrictEqual(site.attention.map((a) => a.severity), ["bad", "bad", "bad", "warn"]);
        for (const name of Object.values(trouble)) {
            const n = nodeFor(site, name);
            assert.strictEqual(n.health, "bad", `${name} stands out`);
            assert.ok(site.attention.some((a) => a.nodeId === n.id));
        }
    });

    it("no active PXE server is a problem of the site, named first", () => {
        const site = siteOf(seedWith({ "pxe-pxe1": { dhcpRole: "standby" }, "pxe-pxe2": { dhcpRole: "standby" }, "pxe-pxe3": { dhcpRole: "standby" } }));
        assert.strictEqual(site.attention[0].severity, "bad");
        assert.match(site.attention[0].text, /^no active PXE server: none of 3 serves DHCP \(standby, standby, standby\)/);
    });

    it("a resync is amber and not listed; a stopped container, a failed tunnel, an export not served are listed", () => {
        const site = siteOf(seedWith({
            "raid-stor1-md0": { state: "resyncing", syncPercent: 42.5 },
            "container-php1": { state: "STOPPED" },
            "bridge-pxe1-storage": { tunnelStates: { vstorage: "failed" } },
            "volume-nas1-data": { serving: false },
            "pxe-pxe2": { dhcpRole: "stopped" },
        }));
        const md0 = nodeFor(site, "raid-stor1-md0");
        assert.deepStrictEqual([md0.health, md0.state], ["warn", "resyncing"]);
        assert.match(md0.lines[0], /42\.5%/);
        const texts = site.attention.map((a) => `${a.where}: ${a.text}`);
        assert.ok(!texts.some((t) => t.includes("md0")), texts.join("\n"));
        assert.ok(texts.includes("php1 on services1: container is stopped"), texts.join("\n"));
        assert.ok(texts.includes("brstorage on pxe1: OpenVPN tunnel vstorage is failed"), texts.join("\n"));
        assert.ok(texts.includes("NBD nas1-data on san3: nbd-server is not serving this export"), texts.join("\n"));
        assert.ok(texts.some((t) => /^PXE seed on pxe2: DHCP is not served/.test(t)), texts.join("\n"));
    });

    it("a resource whose last operation failed, or was cut, is listed with what to do", () => {
        const copy = structuredClone(seedJson) as { deployment: { resources: Obj[]; pending_operations?: unknown[] } };
        const find = (name: string) => copy.deployment.resources.find((r) => String(r.urn).endsWith(`::${name}`))!;
        find("container-dns1").initErrors = ["lxc-start on 198.18.64.51 failed: exit 1\nmore"];
        copy.deployment.pending_operations = [{ resource: { urn: find("guest-repo1").urn }, type: "updating" }];
        const texts = siteOf(copy).attention.map((a) => `${a.where}: ${a.text}`);
        assert.ok(texts.includes("dns1 on infra1: last operation failed: lxc-start on 198.18.64.51 failed: exit 1"), texts.join("\n"));
        assert.ok(texts.includes("repo1 on svc1: interrupted while updating: run pulumi refresh"), texts.join("\n"));
    });
});

describe("baremetal map: the page and the SVG", function () {
    this.timeout(60_000);

    it("never carry a ciphertext or the secret signature; secrets read [secret]", async () => {
        const state = readStateFile(seedStateFixture);
        const secrets = ciphertexts(seedJson);
        assert.ok(secrets.length > 100, "the fixture has secrets to hide");
        for (const format of ["html", "svg"] as const) {
            const { text } = await renderMap(state, format);
            assert.ok(!text.includes(secretSignature.key), `${format}: the secret signature is in the output`);
            const leaked = secrets.filter((c) => text.includes(c) || text.includes(c.split(":")[2]));
            assert.deepStrictEqual(leaked, [], `${format}: ciphertext in the output`);
        }
        const { text } = await renderMap(state, "html");
        assert.match(text, /<th>connection\.privateKey<\/th><td><pre>\[secret\]<\/pre>/, "the details show a secret as [secret]");
    });

    it("is one self-contained page: nothing to fetch, a policy that forbids fetching", async () => {
        const { text, site } = await renderMap(readStateFile(seedStateFixture), "html");
        assert.match(text, /<meta http-equiv="Content-Security-Policy" content="default-src 'none';/);
        assert.ok(!/\s(src|href)=/.test(text), "the page refers to another file");
        assert.ok(!/url\((?!#)/.test(text), "the page's style refers to another file");
        // Every node is drawn, and has its details.
        for (const n of allNodes(site)) {
            assert.ok(text.includes(`data-id="${n.id}"`), `node ${n.title} is not drawn`);
            assert.ok(text.includes(`data-for="${n.id}"`), `node ${n.title} has no details`);
        }
    });

    it("the SVG lists what needs attention above the map", async () => {
        const state = parseState(JSON.stringify(withTrouble(seedJson)), "test");
        const { text } = await renderMap(state, "svg");
        assert.match(text, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
        assert.match(text, /! md1 raid1 on stor2: array degraded/);
        assert.match(text, /! nas1 on svc3: guest is shutdown/);
    });

    it("the committed fixture is the seed as the preview declares it (regenerate: node dist/test/helpers/seedState.js)", () => {
        assert.strictEqual(path.basename(seedStateFixture), "seed-state.json");
        assert.strictEqual(ourUrns.length, 116);
    });
});
