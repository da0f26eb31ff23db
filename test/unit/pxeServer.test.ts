import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { gunzipSync } from "zlib";
import { AlpineAdapter, DebianAdapter, planResult, renderCommands, renderPlan } from "../../provider/host";
import { parseDhcpHosts, parseDhcpLog, parseLeases, parseTftpSent } from "../../provider/parsers/dnsmasq";
import { buildApkovl } from "../../provider/pxe/apkovl";
import {
    check, diff, dnsmasqConf, expectedDigests, generatedFiles, parseServerRead, planDelete, planFiles, planServices, profileBootScript, PxeServerInputs, PxeServerState,
    restartsBetween, restartsFrom,
} from "../../provider/resources/pxeServer";
import { pxeLayout } from "../../provider/pxe/shared";

const fixture = (name: string) => fs.readFileSync(path.join(__dirname, "../../../test/unit/fixtures/dnsmasq", name), "utf8");
const unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
const connection = { host: "198.51.100.10", hostKey: "SHA256:" + "A".repeat(43), password: "pw-secret" };
const alpineProfile = {
    kernel: { url: "http://mirror.example/alpine/v3.20/releases/x86_64/netboot/vmlinuz-lts" },
    initramfs: { url: "http://mirror.example/alpine/v3.20/releases/x86_64/netboot/initramfs-lts", sha256: "a".repeat(64) },
    modloop: { url: "http://mirror.example/alpine/v3.20/releases/x86_64/netboot/modloop-lts" },
    repository: "http://mirror.example/alpine/v3.20/main",
    overlay: { "etc/hostname": "box\n", "etc/apk/world": "alpine-base\n", "etc/local.d/10-consul.start": "#!/bin/sh\nexit 0\n" },
    cmdline: ["console=ttyS0"],
};
const good = {
    connection,
    name: "pxe-a",
    address: "198.51.100.10",
    subnet: "198.51.100.0/24",
    gateway: "198.51.100.1",
    profiles: {
        pxeboot: alpineProfile,
        default: alpineProfile,
        "lxc-repo": alpineProfile,
        lab: { kind: "debian", kernel: { path: "/boot/vmlinuz" }, initramfs: { path: "/boot/initrd.img" }, cmdline: ["console=ttyS0"] },
    },
};
const inputs = (over: Record<string, unknown> = {}) => {
    const r = check({}, { ...good, ...over });
    assert.deepStrictEqual(r.failures, []);
    return r.inputs as PxeServerInputs;
};

function failures(news: Record<string, unknown>): string[] {
    return check({}, news).failures.map((f) => `${f.field}: ${f.reason}`);
}

describe("PxeServer check", () => {
    it("fills in defaults: interface eth0, HTTP on 80, an hour's lease, iPXE bootloaders, alpine profiles", () => {
        const i = inputs({ name: undefined });
        assert.deepStrictEqual([i.name, i.interface, i.httpPort, i.leaseSeconds, i.ipxeBootloaders, i.profiles.default.kind], ["pxe", "eth0", 80, 3600, true, "alpine"]);
        assert.strictEqual(i.standby, undefined);
    });
    it("fills in the standby defaults (local agent, /usr/bin/consul)", () => {
        assert.deepStrictEqual(inputs({ standby: {} }).standby, { consulAddress: "127.0.0.1:8500", lockKey: "baremetal/pxe/leader", consulBinary: "/usr/bin/consul" });
    });
    const bad: [string, Record<string, unknown>, RegExp][] = [
        ["an address that is no IP", { address: "198.51.100.300" }, /^address: "198\.51\.100\.300" is not an IPv4 address/],
        ["an address outside the subnet", { address: "198.51.101.10" }, /^address: 198\.51\.101\.10 is not in subnet 198\.51\.100\.0\/24/],
        ["a gateway outside the subnet", { gateway: "192.0.2.1" }, /^gateway: 192\.0\.2\.1 is not in subnet/],
        ["a subnet with host bits", { subnet: "198.51.100.7/24" }, /^subnet: 198\.51\.100\.7\/24 has host bits set; the network is 198\.51\.100\.0\/24/],
        ["a subnet that is no CIDR", { subnet: "198.51.100.0" }, /^subnet: .*is not an IPv4 network/],
        ["an instance name with a slash", { name: "../etc" }, /^name: /],
        ["no profiles", { profiles: {} }, /^profiles: declare at least one profile/],
        ["a profile name with upper case", { profiles: { Default: alpineProfile } }, /^profiles key "Default": /],
        ["a kernel URL with a space", { profiles: { default: { ...alpineProfile, kernel: { url: "http://x/a b" } } } }, /^profiles\.default\.kernel\.url: /],
        ["an ftp kernel URL", { profiles: { default: { ...alpineProfile, kernel: { url: "ftp://x/vmlinuz" } } } }, /^profiles\.default\.kernel\.url: .*must be an http:\/\/ or https:\/\/ URL/],
        ["a URL with credentials", { profiles: { default: { ...alpineProfile, repository: "http://u:p@x/main" } } }, /^profiles\.default\.repository: must not carry credentials/],
        ["a relative kernel path", { profiles: { default: { ...alpineProfile, kernel: { path: "boot/vmlinuz" } } } }, /^profiles\.default\.kernel\.path: /],
        ["both url and path", { profiles: { default: { ...alpineProfile, kernel: { path: "/a", url: "http://x/a" } } } }, /^profiles\.default\.kernel: needs exactly one of url and path/],
        ["a bad sha256", { profiles: { default: { ...alpineProfile, initramfs: { url: "http://x/i", sha256: "xyz" } } } }, /^profiles\.default\.initramfs\.sha256: /],
        ["an overlay path escaping the root", { profiles: { default: { ...alpineProfile, overlay: { "etc/../../root/x": "" } } } }, /^profiles\.default\.overlay\.etc\/\.\.\/\.\.\/root\/x: must not contain \. or \.\. segments/],
        ["an absolute overlay path", { profiles: { default: { ...alpineProfile, overlay: { "/etc/x": "" } } } }, /^profiles\.default\.overlay key "\/etc\/x": /],
        ["a kernel argument with a space", { profiles: { default: { ...alpineProfile, cmdline: ["a b"] } } }, /^profiles\.default\.cmdline\[0\]: /],
        ["a kernel argument iPXE would expand", { profiles: { default: { ...alpineProfile, cmdline: ["x=${ip}"] } } }, /^profiles\.default\.cmdline\[0\]: /],
        ["an overlay on a debian profile", { profiles: { lab: { kind: "debian", kernel: { path: "/a" }, initramfs: { path: "/b" }, overlay: { "etc/x": "" } } } }, /^profiles\.lab\.overlay: is an Alpine apkovl/],
        ["an unknown profile kind", { profiles: { lab: { kind: "ubuntu", kernel: { path: "/a" }, initramfs: { path: "/b" } } } }, /^profiles\.lab\.kind: .*must be alpine or debian/],
        ["a bad lock key", { standby: { lockKey: "/leader" } }, /^standby\.lockKey: /],
        ["a relative consul binary", { standby: { consulBinary: "consul" } }, /^standby\.consulBinary: /],
        ["a port out of range", { httpPort: 70000 }, /^httpPort: must be at most 65535/],
        ["no connection", { connection: undefined }, /^connection: /],
    ];
    for (const [what, over, expected] of bad) {
        it(`rejects ${what}, naming the field`, () => {
            const f = failures({ ...good, ...over });
            assert.ok(f.some((x) => expected.test(x)), `expected ${expected} in ${JSON.stringify(f)}`);
        });
    }
    it("lets values that are not known yet through (preview)", () => {
        assert.deepStrictEqual(failures({ ...good, connection: unknown, address: unknown, profiles: unknown }), []);
    });
});

describe("PxeServer diff", () => {
    const state = (i: PxeServerInputs): PxeServerState => ({ ...i, family: "debian", baseUrl: "http://198.51.100.10", dhcpRole: "active", leases: [], files: expectedDigests(i, "debian") });
    const olds = state(inputs());
    it("finds nothing to do when inputs and files are as created", () => {
        assert.deepStrictEqual(diff("x", olds, inputs()), { changes: false, replaces: [], stables: ["name", "baseUrl"], deleteBeforeReplace: true });
    });
    it("replaces when the instance name or the box changes", () => {
        assert.deepStrictEqual(diff("x", olds, inputs({ name: "pxe-b" })).replaces, ["name"]);
        assert.deepStrictEqual(diff("x", olds, inputs({ connection: { ...connection, host: "198.51.100.11" }, address: "198.51.100.11" })).replaces, ["connection.host"]);
    });
    it("updates profiles and standby mode in place", () => {
        const d = diff("x", olds, inputs({ standby: {}, profiles: { ...good.profiles, extra: alpineProfile } }));
        assert.deepStrictEqual([d.changes, d.replaces], [true, []]);
    });
    it("sees a generated file edited by hand (read after refresh) as a change to put back", () => {
        const conf = pxeLayout("pxe-a").dnsmasqConf;
        assert.strictEqual(diff("x", { ...olds, files: { ...olds.files, [conf]: "0".repeat(64) } }, inputs()).changes, true);
        assert.strictEqual(diff("x", { ...olds, files: { ...olds.files, [conf]: "missing" } }, inputs()).changes, true);
    });
    it("sees a stopped DHCP service as a change to put back", () => {
        assert.strictEqual(diff("x", { ...olds, dhcpRole: "stopped" }, inputs()).changes, true);
    });
});

describe("PxeServer files", () => {
    it("dnsmasq: static leases only, a hostsdir per instance, iPXE over HTTP, bootloaders over TFTP, no DNS", () => {
        const conf = dnsmasqConf(inputs({ dnsServers: ["198.51.100.53"], domain: "lab.example" }), pxeLayout("pxe-a"));
        for (const line of [
            "port=0",
            "interface=eth0",
            "dhcp-range=198.51.100.0,static,255.255.255.0,3600",
            "dhcp-option=option:router,198.51.100.1",
            "dhcp-option=option:dns-server,198.51.100.53",
            "domain=lab.example",
            "dhcp-hostsdir=/etc/baremetal/pxe/pxe-a/hosts.d",
            "dhcp-boot=tag:ipxe,http://198.51.100.10/boot.ipxe",
            "dhcp-boot=tag:!ipxe,tag:!efi64,undionly.kpxe,,198.51.100.10",
            "dhcp-boot=tag:!ipxe,tag:efi64,ipxe.efi,,198.51.100.10",
            "tftp-root=/srv/baremetal/pxe/pxe-a/tftp",
            "pid-file=/run/baremetal-pxe-pxe-a.pid",
        ]) {
            assert.ok(conf.split("\n").includes(line), `missing ${line} in\n${conf}`);
        }
    });
    it("an Alpine profile boots with ip=dhcp, alpine_repo, modloop and its apkovl, then the machine's arguments", () => {
        const script = profileBootScript("default", inputs().profiles.default, "http://198.51.100.10:8081");
        assert.strictEqual(
            script.split("\n")[2],
            "kernel http://198.51.100.10:8081/profiles/default/vmlinuz initrd=initramfs ip=dhcp modules=loop,squashfs alpine_repo=http://mirror.example/alpine/v3.20/main " +
                "modloop=http://198.51.100.10:8081/profiles/default/modloop apkovl=http://198.51.100.10:8081/profiles/default/default.apkovl.tar.gz console=ttyS0 baremetal.profile=default ${bm_args}",
        );
        assert.strictEqual(script.split("\n")[3], "initrd http://198.51.100.10:8081/profiles/default/initramfs");
    });
    it("a debian profile has no Alpine arguments", () => {
        const line = profileBootScript("lab", inputs().profiles.lab, "http://198.51.100.10").split("\n")[2];
        assert.strictEqual(line, "kernel http://198.51.100.10/profiles/lab/vmlinuz initrd=initramfs console=ttyS0 baremetal.profile=lab ${bm_args}");
    });
    it("standby runs dnsmasq as the child of consul lock; the token goes to an 0600 environment file", () => {
        const i = inputs({ standby: { consulBinary: "/opt/consul/bin/consul", token: "tok-secret-123" } });
        const unit = generatedFiles(i, "debian").get("/etc/systemd/system/baremetal-pxe-pxe-a-dhcp.service") ?? "";
        assert.match(unit, /^ExecStart=\/opt\/consul\/bin\/consul lock -http-addr=http:\/\/127\.0\.0\.1:8500 -name=baremetal-pxe-pxe-a -shell=false baremetal\/pxe\/leader \/usr\/sbin\/dnsmasq --keep-in-foreground --conf-file=\/etc\/baremetal\/pxe\/pxe-a\/dnsmasq\.conf$/m);
        assert.match(unit, /^EnvironmentFile=\/etc\/baremetal\/pxe\/pxe-a\/consul\.env$/m);
        const text = renderPlan(planFiles(i, "debian"));
        assert.match(text, /write \/etc\/baremetal\/pxe\/pxe-a\/consul\.env \(mode 0600, owner root:root, secret content\)/);
        assert.ok(!text.includes("tok-secret-123") && !renderCommands(planFiles(i, "debian"), new DebianAdapter()).join("\n").includes("tok-secret-123"), "the token leaked into the plan");
    });
});

describe("PxeServer plans (Debian and Alpine)", () => {
    const i = inputs({ ipxeBootloaders: true });
    it("Debian: apt packages incl. python3 for HTTP, systemd units (reloaded when changed), no lbu", () => {
        const text = renderPlan(planFiles(i, "debian"));
        assert.match(text, /^1\. install packages dnsmasq python3 ipxe \(if missing\)$/m);
        assert.match(text, /^\d+\. install service baremetal-pxe-pxe-a-dhcp\n\d+\. install service baremetal-pxe-pxe-a-http\n\d+\. remove \/etc\/baremetal\/pxe\/pxe-a\/consul\.env\n\d+\. persist/m);
        assert.match(text, /put iPXE's undionly\.kpxe in the TFTP root from \/usr\/lib\/ipxe\/undionly\.kpxe/);
        const cmds = renderCommands(planFiles(i, "debian"), new DebianAdapter()).join("\n");
        assert.match(cmds, /baremetal-install-unit \/etc\/systemd\/system\/baremetal-pxe-pxe-a-http\.service 0644 root:root 644 \d+ baremetal-pxe-pxe-a-http\.service < \(content\)/);
        assert.doesNotMatch(cmds, /lbu/);
        const unit = generatedFiles(i, "debian").get("/etc/systemd/system/baremetal-pxe-pxe-a-http.service") ?? "";
        assert.match(unit, /^ExecStart=\/usr\/bin\/python3 -m http\.server --bind 198\.51\.100\.10 --directory \/srv\/baremetal\/pxe\/pxe-a\/http 80$/m);
    });
    it("Alpine: apk, OpenRC scripts under supervise-daemon with busybox httpd, lbu commit on a diskless box", () => {
        const text = renderPlan(planFiles(i, "alpine"));
        assert.match(text, /^1\. install packages dnsmasq ipxe \(if missing\)$/m);
        assert.match(text, /install service baremetal-pxe-pxe-a-dhcp/);
        assert.match(text, /from \/usr\/share\/ipxe\/ipxe\.efi/);
        const cmds = renderCommands([...planFiles(i, "alpine"), ...planServices(i, { dhcp: true, http: false })], new AlpineAdapter(true)).join("\n");
        assert.match(cmds, / baremetal-write \/etc\/init\.d\/baremetal-pxe-pxe-a-dhcp 0755 root:root 755 \d+ < \(content\)$/m);
        assert.doesNotMatch(cmds, /systemd/);
        assert.match(cmds, / apk add --quiet --no-progress dnsmasq ipxe$/m);
        assert.match(cmds, / baremetal-rc-service baremetal-pxe-pxe-a-dhcp restart$/m);
        assert.match(cmds, / baremetal-rc-service baremetal-pxe-pxe-a-http start$/m);
        assert.match(cmds, /lbu commit/);
        const rc = generatedFiles(i, "alpine").get("/etc/init.d/baremetal-pxe-pxe-a-http") ?? "";
        assert.match(rc, /^command_args="httpd -f -v -p 198\.51\.100\.10:80 -h \/srv\/baremetal\/pxe\/pxe-a\/http"$/m);
        assert.match(rc, /^supervisor=supervise-daemon$/m);
    });
    it("restarts a daemon when a step it starts with changed in this run (asked by tag)", () => {
        const plan = planFiles(inputs({ standby: { token: "tok-secret-123" } }), "debian");
        const runWith = (changed: (s: (typeof plan)[number]) => boolean) =>
            restartsFrom(
                planResult(plan, {
                    target: "t",
                    facts: { family: "debian", id: "debian", diskless: false },
                    steps: plan.map((s, k) => ({ index: k + 1, description: "", commands: [], changed: changed(s), durationMs: 0 })),
                }),
            );
        const writes = (path: string) => (s: (typeof plan)[number]) => s.kind === "writeFile" && s.path === path;
        const installs = (name: string) => (s: (typeof plan)[number]) => s.kind === "installService" && s.service.name === name;
        assert.deepStrictEqual(runWith(writes("/etc/baremetal/pxe/pxe-a/dnsmasq.conf")), { dhcp: true, http: false });
        assert.deepStrictEqual(runWith(writes("/etc/baremetal/pxe/pxe-a/consul.env")), { dhcp: true, http: false });
        assert.deepStrictEqual(runWith(installs("baremetal-pxe-pxe-a-dhcp")), { dhcp: true, http: false });
        assert.deepStrictEqual(runWith(installs("baremetal-pxe-pxe-a-http")), { dhcp: false, http: true });
        // served as files: no daemon restarts
        assert.deepStrictEqual(runWith(writes("/etc/baremetal/pxe/pxe-a/server.json")), { dhcp: false, http: false });
    });
    it("services: enabled and started; restarted only when their files changed", () => {
        assert.strictEqual(renderPlan(planServices(i, { dhcp: false, http: false })), [
            "1. enable service baremetal-pxe-pxe-a-http", "2. start service baremetal-pxe-pxe-a-http",
            "3. enable service baremetal-pxe-pxe-a-dhcp", "4. start service baremetal-pxe-pxe-a-dhcp", "5. persist configuration across reboots",
        ].join("\n"));
        assert.match(renderPlan(planServices(i, { dhcp: true, http: false })), /4\. restart service baremetal-pxe-pxe-a-dhcp/);
    });
    it("an update restarts what the change touches even when the files are already so (re-run after a cut between write and restart)", () => {
        const base = inputs({ standby: {} });
        const none = { dhcp: false, http: false };
        assert.deepStrictEqual(restartsBetween(base, inputs({ standby: {} }), "debian"), none);
        // served over HTTP as files: no daemon restart
        assert.deepStrictEqual(restartsBetween(base, inputs({ standby: {}, profiles: { ...good.profiles, lab: { ...good.profiles.lab, cmdline: ["console=ttyS1"] } } }), "debian"), none);
        // dnsmasq reads its config only at start
        assert.deepStrictEqual(restartsBetween(base, inputs({ standby: {}, leaseSeconds: 7200 }), "debian"), { dhcp: true, http: false });
        assert.deepStrictEqual(restartsBetween(base, inputs({ standby: { lockKey: "other/leader" } }), "alpine"), { dhcp: true, http: false });
        assert.deepStrictEqual(restartsBetween(base, inputs({ standby: { token: "tok-secret-123" } }), "debian"), { dhcp: true, http: false });
        // the port is in the HTTP unit and in dnsmasq's boot URL
        assert.deepStrictEqual(restartsBetween(base, inputs({ standby: {}, httpPort: 8080 }), "debian"), { dhcp: true, http: true });
        // a state this version cannot render restarts both
        assert.deepStrictEqual(restartsBetween({ ...base, subnet: "" }, base, "debian"), { dhcp: true, http: true });
    });
    it("downloads go through the fetch script with the expected sha256; files on the box are copied", () => {
        const steps = planFiles(i, "debian").filter((s) => s.kind === "run" && s.argv[3] === "baremetal-fetch");
        const initrd = steps.find((s) => s.kind === "run" && s.argv[4] === "/srv/baremetal/pxe/pxe-a/http/profiles/default/initramfs");
        assert.deepStrictEqual(initrd?.kind === "run" && initrd.argv.slice(4), ["/srv/baremetal/pxe/pxe-a/http/profiles/default/initramfs", "url", alpineProfile.initramfs.url, "a".repeat(64)]);
        const lab = steps.find((s) => s.kind === "run" && s.argv[4] === "/srv/baremetal/pxe/pxe-a/http/profiles/lab/vmlinuz");
        assert.deepStrictEqual(lab?.kind === "run" && lab.argv.slice(5), ["path", "/boot/vmlinuz", ""]);
    });
    it("removes a profile dropped from the inputs", () => {
        assert.match(renderPlan(planFiles(i, "debian", ["old"])), /remove profile old/);
    });
    it("delete stops both services and removes the instance's files, on either family", () => {
        assert.match(renderPlan(planDelete(i)), /^1\. stop, disable and remove service baremetal-pxe-pxe-a-dhcp \(if present\)\n2\. stop, disable and remove service baremetal-pxe-pxe-a-http \(if present\)\n3\. remove the files of PXE server pxe-a/);
        assert.match(renderCommands(planDelete(i), new DebianAdapter()).join("\n"), /baremetal-remove-service baremetal-pxe-pxe-a-dhcp \/etc\/systemd\/system\/baremetal-pxe-pxe-a-dhcp\.service$/m);
        assert.match(renderCommands(planDelete(i), new AlpineAdapter(true)).join("\n"), /baremetal-remove-service baremetal-pxe-pxe-a-http \/etc\/init\.d\/baremetal-pxe-pxe-a-http default$/m);
    });
});

/** The entries of a ustar archive: name, type, mode, content. */
function untar(buf: Buffer): { name: string; type: string; mode: string; body: string }[] {
    const out = [];
    for (let off = 0; off + 512 <= buf.length; ) {
        const h = buf.subarray(off, off + 512);
        if (h.every((b) => b === 0)) break;
        const name = h.subarray(0, 100).toString("utf8").replace(/\0.*$/s, "");
        const size = parseInt(h.subarray(124, 136).toString("ascii").replace(/\0.*$/s, ""), 8);
        let sum = 0;
        for (let k = 0; k < 512; k++) sum += k >= 148 && k < 156 ? 32 : h[k];
        assert.strictEqual(parseInt(h.subarray(148, 156).toString("ascii"), 8), sum, `bad checksum for ${name}`);
        out.push({ name, type: h.toString("ascii", 156, 157), mode: h.subarray(100, 108).toString("ascii").replace(/\0.*$/s, ""), body: buf.subarray(off + 512, off + 512 + size).toString("utf8") });
        off += 512 + Math.ceil(size / 512) * 512;
    }
    return out;
}

describe("apkovl overlays", () => {
    const files = { "etc/hostname": "box\n", "etc/apk/world": "alpine-base\n", "etc/local.d/10-consul.start": "#!/bin/sh\nexit 0\n" };
    it("are a gzipped ustar of etc/... with parent directories, scripts executable", () => {
        const entries = untar(gunzipSync(buildApkovl(files)));
        assert.deepStrictEqual(entries.map((e) => `${e.type} ${e.mode} ${e.name}`), [
            "5 0000755 etc/", "5 0000755 etc/apk/", "5 0000755 etc/local.d/",
            "0 0000644 etc/apk/world", "0 0000644 etc/hostname", "0 0000755 etc/local.d/10-consul.start",
        ]);
        assert.strictEqual(entries.find((e) => e.name === "etc/hostname")?.body, "box\n");
    });
    it("are the same bytes for the same content, whatever the key order (a re-run changes nothing)", () => {
        const reordered = Object.fromEntries(Object.entries(files).reverse());
        assert.ok(buildApkovl(files).equals(buildApkovl(reordered)));
        assert.ok(!buildApkovl(files).equals(buildApkovl({ ...files, "etc/hostname": "other\n" })));
    });
});

describe("dnsmasq parsers (output captured in the lab)", () => {
    it("reads the lease file dnsmasq wrote for the PXE client", () => {
        assert.deepStrictEqual(parseLeases(fixture("dnsmasq.leases")), [{ expires: parseLeases(fixture("dnsmasq.leases"))[0].expires, mac: "52:54:00:b0:00:14", ip: "198.51.100.20", hostname: "pxeclient1" }]);
    });
    it("reads dhcp-hostsdir files, comments and all", () => {
        assert.deepStrictEqual(parseDhcpHosts(fixture("hosts.d-entry.conf")), [{ mac: "52:54:00:b0:00:14", ip: "198.51.100.20", hostname: "pxeclient1" }]);
        assert.deepStrictEqual(parseDhcpHosts("52-54-00-AA-BB-CC,set:lab,10.0.0.5,infinite\n"), [{ mac: "52:54:00:aa:bb:cc", ip: "10.0.0.5" }]);
    });
    it("picks the DHCP exchange of a PXE boot out of the log", () => {
        const events = parseDhcpLog(fixture("dnsmasq.log"));
        const ack = events.filter((e) => e.kind === "DHCPACK");
        assert.ok(ack.length >= 1, JSON.stringify(events));
        assert.deepStrictEqual({ ...ack[0], hostname: undefined }, { kind: "DHCPACK", interface: "eth0", ip: "198.51.100.20", mac: "52:54:00:b0:00:14", hostname: undefined });
        assert.ok(events.some((e) => e.kind === "DHCPDISCOVER"));
    });
    it("reads the PXE server's read-back (role, leases, file digests)", () => {
        const r = parseServerRead(fixture("server-read.txt"));
        assert.strictEqual(r.descriptor?.baseUrl, "http://198.51.100.10:8081");
        assert.strictEqual(r.dhcp, "dnsmasq", "the fixture was captured with dnsmasq serving");
        assert.ok(Object.values(r.files).every((d) => /^[0-9a-f]{64}$/.test(d)), JSON.stringify(r.files));
        assert.ok(Object.keys(r.files).includes("/etc/baremetal/pxe/pxe-a/dnsmasq.conf"));
    });
    it("TFTP transfers, when any", () => {
        assert.deepStrictEqual(parseTftpSent("Nov 25 14:00:00 dnsmasq-tftp[81]: sent /srv/t/undionly.kpxe to 198.51.100.20\n"), [{ file: "/srv/t/undionly.kpxe", to: "198.51.100.20" }]);
    });
});
