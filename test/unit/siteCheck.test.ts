// The site check (sdk/siteCheck.ts): what a program declares, checked while it runs.
// Each resource's known inputs go through its kind's own check (the same words as
// the engine's), then against the resources declared before it; what is not known
// yet (secrets, other resources' outputs) is never judged. Driven here without an
// engine: Site is the site of one program run.
import * as assert from "assert";
import * as pulumi from "@pulumi/pulumi";
import { kinds } from "../../provider";
import { protectSecrets } from "../../sdk/provider";
import { missingExports, problemLine, Site } from "../../sdk/siteCheck";
import { baselines, connection, Json } from "./checkBaselines";

/** Every value under a secret's name made a Pulumi secret (an Output), as the SDK's classes pass them. */
function asProgramPasses(v: unknown, key = ""): unknown {
    if (["password", "privateKey", "privateKeyPassword", "token", "key", "secrets"].includes(key) && v !== undefined) return pulumi.secret(v);
    if (Array.isArray(v)) return v.map((x) => asProgramPasses(x));
    if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, asProgramPasses(x, k)]));
    return v;
}

/** Declares in order; returns every problem line. */
function declareAll(site: Site, ...decls: [string, string, Json][]): string[] {
    return decls.flatMap(([kind, name, inputs]) => site.declare(kind, name, inputs).problems.map(problemLine));
}

const box = (host: string) => ({ ...connection, host });
const profile = { kernel: { url: "http://198.51.100.1/vmlinuz" }, initramfs: { url: "http://198.51.100.1/initramfs" } };
const pxe = (name: string, host: string, profiles: Json = { default: profile }) => ({ connection: box(host), name, address: host, subnet: "198.51.100.0/24", profiles });
const machine = (name: string, mac: string, ip: string, refs: Json[], extra: Json = {}) => ({ mac, hostname: name, ip, profile: "default", pxeServers: refs, ...extra });
const guest = (name: string, host: string, macs: string[], disks: Json[] = []) => ({ connection: box(host), name, memoryMiB: 512, nics: macs.map((mac) => ({ bridge: "br-lan", mac })), disks });
const volume = (name: string, host: string, port: number, owner: string, extra: Json = {}) => ({ connection: box(host), volumeGroup: "vg0", name, size: "1GiB", port, owner, ...extra });
/** A PXE server the program does not declare (managed elsewhere): nothing to check against. */
const elsewhere = [{ connection: box("198.51.100.9"), name: "pxe" }];
const nbd = (host: string, port: number, exportName: string) => ({ nbd: { host, port, export: exportName } });

describe("site check: each resource alone", () => {
    for (const kind of Object.keys(kinds)) {
        it(`${kind}: valid inputs, secrets as Pulumi secrets (not known to the program), pass`, () => {
            for (const b of baselines(kind)) assert.deepStrictEqual(declareAll(new Site(), [kind, "subject", asProgramPasses(b) as Json]), []);
        });
    }

    it("reports every mistake of a resource with the kind's own words, prefixed by kind and name", () => {
        const news = { ...baselines("KvmGuest")[0], memoryMiB: "512MiB", boot: "floppy" };
        const engine = kinds.KvmGuest.check({}, news).failures.map((f) => `KvmGuest "web01": ${f.field}: ${f.reason}`);
        const lines = declareAll(new Site(), ["KvmGuest", "web01", news]);
        assert.strictEqual(lines.length, 2, lines.join("\n"));
        assert.deepStrictEqual(lines, engine);
    });

    it("leaves what is not known yet to the engine: an output of another resource passes in any field", () => {
        const later = pulumi.output("not known at preview");
        const lines = declareAll(new Site(), ["Machine", "m1", machine("m1", later as unknown as string, later as unknown as string, [{ connection: later, name: "pxe1" }])]);
        assert.deepStrictEqual(lines, []);
    });
});

describe("site check: across resources (each problem names both, and the field)", () => {
    it("a Machine's profile that its PXE server does not offer, found whichever is declared first", () => {
        const expected = ['Machine "svc3": profile: "lxc-repo" is not a profile of PxeServer "pxe2" (pxe2@198.51.100.11), named in pxeServers[0]; it offers default, pxeboot'];
        const refs = [{ connection: box("198.51.100.11"), name: "pxe2" }];
        const servers: [string, string, Json] = ["PxeServer", "pxe2", pxe("pxe2", "198.51.100.11", { default: profile, pxeboot: profile })];
        const svc3: [string, string, Json] = ["Machine", "svc3", machine("svc3", "52:54:00:b0:00:13", "198.51.100.13", refs, { profile: "lxc-repo" })];
        assert.deepStrictEqual(declareAll(new Site(), servers, svc3), expected);
        assert.deepStrictEqual(declareAll(new Site(), svc3, servers), expected);
        assert.deepStrictEqual(declareAll(new Site(), servers, ["Machine", "svc3", { ...svc3[2], profile: "pxeboot" }]), []);
    });

    it("follows a PxeServer passed as a resource (its outputs stand for its inputs)", () => {
        const site = new Site();
        const { entry } = site.declare("PxeServer", "pxe1", pxe("pxe1", "198.51.100.10"));
        // What the SDK's Machine passes for a PxeServer: that resource's own outputs.
        const made = { connection: pulumi.output({}), name: pulumi.output("pxe1") };
        site.made(entry, made);
        // ... with its secrets wrapped on the way in, as every SDK class does (a new Output around the PxeServer's).
        const ref = { connection: protectSecrets(made.connection, "Connection"), name: made.name };
        assert.notStrictEqual(ref.connection, made.connection);
        const lines = site.declare("Machine", "web01", machine("web01", "52:54:00:b0:00:20", "198.18.1.20", [ref])).problems.map(problemLine);
        assert.deepStrictEqual(lines, ['Machine "web01": ip: 198.18.1.20 is not in 198.51.100.0/24, the subnet of PxeServer "pxe1" (pxe1@198.51.100.10), named in pxeServers[0]: it would get no lease']);
    });

    it("MACs, addresses and host names unique among Machines; a guest's own Machine entry shares its MAC on purpose", () => {
        const refs = [{ connection: box("198.51.100.10"), name: "pxe1" }];
        const site = new Site();
        const lines = declareAll(
            site,
            ["Machine", "svc1", machine("svc1", "52:54:00:b0:00:13", "198.51.100.13", refs)],
            ["Machine", "svc2", machine("svc2", "52:54:00:B0:00:13", "198.51.100.14", refs)],
            ["Machine", "svc3", machine("svc1", "52:54:00:b0:00:15", "198.51.100.13", refs)],
            ["KvmGuest", "web01", guest("web01", "198.51.100.13", ["52:54:00:b0:00:13"])],
        );
        assert.deepStrictEqual(lines, [
            'Machine "svc2": mac: 52:54:00:b0:00:13 is already Machine "svc1"\'s mac',
            'Machine "svc3": ip: 198.51.100.13 is already Machine "svc1"\'s ip',
            'Machine "svc3": hostname: svc1 is already Machine "svc1"\'s hostname',
        ]);
    });

    it("a MAC twice among the guests' NICs, and a container's MAC that a Machine has", () => {
        const lines = declareAll(
            new Site(),
            ["KvmGuest", "web01", guest("web01", "198.51.100.13", ["52:54:00:ab:00:01", "52:54:00:ab:00:11"])],
            ["KvmGuest", "db01", guest("db01", "198.51.100.14", ["52:54:00:ab:00:02", "52:54:00:ab:00:11"])],
            ["Machine", "svc1", machine("svc1", "52:54:00:c0:00:01", "198.51.100.13", elsewhere)],
            ["LxcContainer", "dns", { connection: box("198.51.100.13"), name: "dns", template: "busybox", network: [{ bridge: "br-lan", hwaddr: "52:54:00:c0:00:01", ipv4: "198.51.100.13/24" }] }],
        );
        assert.deepStrictEqual(lines, [
            'KvmGuest "db01": nics[1].mac: 52:54:00:ab:00:11 is already KvmGuest "web01"\'s nics[1].mac',
            'LxcContainer "dns": network[0].hwaddr: 52:54:00:c0:00:01 is already Machine "svc1"\'s mac',
            'LxcContainer "dns": network[0].ipv4: 198.51.100.13 is already Machine "svc1"\'s ip',
        ]);
    });

    it("names, ports, export names and block devices unique per box, and only per box", () => {
        const lines = declareAll(
            new Site(),
            ["NbdVolume", "web01-var", volume("web01-var", "198.51.100.12", 10809, "52:54:00:ab:00:01")],
            ["NbdVolume", "web01-var-2", volume("web01-var2", "198.51.100.12", 10809, "52:54:00:ab:00:02", { exportName: "web01-var" })],
            ["NbdVolume", "web01-var-san2", volume("web01-var", "198.51.100.22", 10809, "52:54:00:ab:00:01")],
            ["RaidArray", "md0", { connection: box("198.51.100.12"), device: "/dev/md0", members: ["/dev/sdb", "/dev/sdc"] }],
            ["CephOsd", "osd-c", { connection: box("198.51.100.12"), device: "/dev/sdc" }],
            ["CephOsd", "osd-c-other-box", { connection: box("198.51.100.22"), device: "/dev/sdc" }],
            ["KvmGuest", "web01", guest("web01", "198.51.100.13", ["52:54:00:ab:00:01"])],
            ["KvmGuest", "web01-again", guest("web01", "198.51.100.13", ["52:54:00:ab:00:09"])],
        );
        assert.deepStrictEqual(lines, [
            'NbdVolume "web01-var-2": port: 10809 is already NbdVolume "web01-var"\'s port on 198.51.100.12',
            'NbdVolume "web01-var-2": exportName: web01-var is already NbdVolume "web01-var"\'s exportName on 198.51.100.12',
            'CephOsd "osd-c": device: /dev/sdc is already RaidArray "md0"\'s members[1] on 198.51.100.12',
            'KvmGuest "web01-again": name: web01 is already KvmGuest "web01"\'s name on 198.51.100.13',
        ]);
    });

    it("a box is its SSH endpoint: one address on two ports, or behind two jump hosts, is two boxes", () => {
        const at = (port: number, proxy?: string) => ({ ...box("127.0.0.1"), port, ...(proxy ? { proxy: { host: proxy } } : {}) });
        const bridge = (c: Json) => ({ connection: c, name: "brstor", network: "storage", uplink: "eth1" });
        const lines = declareAll(
            new Site(),
            ["OvsBridge", "a", bridge(at(2201))],
            ["OvsBridge", "b", bridge(at(2202))],
            ["OvsBridge", "c", bridge(at(22, "198.51.100.1"))],
            ["OvsBridge", "d", bridge(at(22, "198.51.100.2"))],
            ["OvsBridge", "a-again", bridge(at(2201))],
            ["OvsBridge", "c-again", bridge(at(22, "198.51.100.1"))],
        );
        assert.deepStrictEqual(lines, [
            'OvsBridge "a-again": name: brstor is already OvsBridge "a"\'s name on 127.0.0.1:2201',
            'OvsBridge "c-again": name: brstor is already OvsBridge "c"\'s name on 127.0.0.1 via 198.51.100.1',
        ]);
    });

    it("a guest's NBD disk against the NbdVolume serving that export: its port, and its owner (the guest's first NIC)", () => {
        const lines = declareAll(
            new Site(),
            ["NbdVolume", "web01-var", volume("web01-var", "198.51.100.12", 10809, "52:54:00:ab:00:01")],
            ["NbdVolume", "db01-var", volume("db01-var", "198.51.100.12", 10810, "52:54:00:ab:00:02")],
            ["KvmGuest", "web01", guest("web01", "198.51.100.13", ["52:54:00:ab:00:01"], [nbd("198.51.100.12", 10810, "web01-var")])],
            ["KvmGuest", "db01", guest("db01", "198.51.100.14", ["52:54:00:ab:00:09", "52:54:00:ab:00:02"], [nbd("198.51.100.12", 10810, "db01-var")])],
        );
        assert.deepStrictEqual(lines, [
            'KvmGuest "web01": disks[0].nbd.port: 10810, but NbdVolume "web01-var" serves export web01-var on 198.51.100.12:10809',
            'KvmGuest "db01": disks[0].nbd.export: db01-var belongs to 52:54:00:ab:00:02 (owner of NbdVolume "db01-var"), not to this guest\'s first NIC 52:54:00:ab:00:09',
        ]);
    });

    it("an NbdVolume owned by a guest's second NIC (a guest is known by its first), found whichever is declared first", () => {
        const vol: [string, string, Json] = ["NbdVolume", "db01-var", volume("db01-var", "198.51.100.12", 10810, "52:54:00:ab:00:12")];
        const db01: [string, string, Json] = ["KvmGuest", "db01", guest("db01", "198.51.100.14", ["52:54:00:ab:00:02", "52:54:00:ab:00:12"])];
        const expected = [`NbdVolume "db01-var": owner: 52:54:00:ab:00:12 is KvmGuest "db01"'s nics[1].mac; a volume's owner is its guest's first NIC (the guest's ID), here 52:54:00:ab:00:02`];
        assert.deepStrictEqual(declareAll(new Site(), vol, db01), expected);
        assert.deepStrictEqual(declareAll(new Site(), db01, vol), expected);
        assert.deepStrictEqual(declareAll(new Site(), db01, ["NbdVolume", "db01-var", volume("db01-var", "198.51.100.12", 10810, "52:54:00:ab:00:02")]), []);
    });

    it("at the end: a guest's export that no NbdVolume declares on a SAN the program manages (and only there)", () => {
        const site = new Site();
        declareAll(
            site,
            ["NbdVolume", "db01-var", volume("db01-var", "198.51.100.12", 10810, "52:54:00:ab:00:02")],
            ["KvmGuest", "web01", guest("web01", "198.51.100.13", ["52:54:00:ab:00:01"], [nbd("198.51.100.12", 10809, "web01-vr"), nbd("198.51.100.99", 10809, "elsewhere")])],
        );
        assert.deepStrictEqual(site.atEnd().map(problemLine), ['KvmGuest "web01": disks[0].nbd.export: web01-vr is not an export the program declares on 198.51.100.12 (its NbdVolumes there export db01-var)']);
        // A volume there that failed its own check may be the one meant: no second error about it.
        declareAll(site, ["NbdVolume", "web01-vr", volume("web01-vr", "198.51.100.12", 10809, "52:54:00:ab:00:01", { size: "10G" })]);
        assert.deepStrictEqual(missingExports([]), []);
        assert.deepStrictEqual(site.atEnd().map(problemLine), []);
    });

    it("a resource that failed its own check is not compared with others (no follow-on error)", () => {
        const lines = declareAll(
            new Site(),
            ["Machine", "svc1", machine("svc1", "52:54:00:b0:00", "198.51.100.13", elsewhere)],
            ["Machine", "svc2", machine("svc1", "52:54:00:b0:00:14", "198.51.100.13", elsewhere)],
            ["PxeServer", "pxe1", { ...pxe("pxe1", "198.51.100.10"), subnet: "198.51.100.0/33" }],
            ["Machine", "svc3", machine("svc3", "52:54:00:b0:00:15", "198.18.1.3", [{ connection: box("198.51.100.10"), name: "pxe1" }], { profile: "nope" })],
        );
        assert.deepStrictEqual(lines, [
            'Machine "svc1": mac: "52:54:00:b0:00" is not a MAC address like 52:54:00:12:34:56',
            'PxeServer "pxe1": subnet: "198.51.100.0/33" is not an IPv4 network like 198.51.100.0/24 (prefix /8 to /30)',
        ]);
    });
});
