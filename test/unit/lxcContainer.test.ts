import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { AlpineAdapter, DebianAdapter, renderCommands, renderPlan } from "../../provider/host";
import { remoteLockPath } from "../../provider/host/locks";
import { configValues, managedBegin, managedEnd, parseLxcInfo, parseManagedBlock } from "../../provider/parsers/lxc";
import {
    check,
    createdMarker,
    createLock,
    diff,
    LxcContainerInputs,
    LxcContainerState,
    madeByCreate,
    managedBlock,
    needsRestart,
    parseRead,
    planCreate,
    planDestroy,
    planProvision,
    rootfsConfig,
    stateOf,
} from "../../provider/resources/lxcContainer";

const fixture = (name: string) => fs.readFileSync(path.join(__dirname, "../../../test/unit/fixtures/lxc", name), "utf8");
const connection = { host: "198.51.100.12", hostKey: "SHA256:" + "A".repeat(43), password: "pw" };
const good = {
    connection,
    name: "web",
    template: "busybox",
    network: [{ bridge: "bmstor", hwaddr: "52:54:00:EE:00:01", ipv4: "198.18.1.50/24", gateway: "198.18.1.1" }],
    mounts: [{ source: "/srv/www", target: "/www" }],
    limits: { memoryMiB: 64, pids: 100 },
    files: [{ path: "/www/index.html", content: "hello\n" }],
    commands: [["/bin/busybox", "httpd", "-p", "80", "-h", "/www"]],
};

function failures(news: Record<string, unknown>): string[] {
    return check({}, news).failures.map((f) => `${f.field}: ${f.reason}`);
}

function inputs(extra: Record<string, unknown> = {}): LxcContainerInputs {
    const r = check({}, { ...good, ...extra });
    assert.deepStrictEqual(r.failures, []);
    return r.inputs as LxcContainerInputs;
}

function running(i: LxcContainerInputs): LxcContainerState {
    return { ...i, state: "RUNNING", addresses: [], configPath: "/var/lib/lxc/web/config" };
}

describe("LxcContainer check", () => {
    it("normalises: MAC lower-cased, bind mount defaults, autostart on, file mode 0644, 60 s timeout", () => {
        const i = inputs();
        assert.strictEqual(i.network[0].hwaddr, "52:54:00:ee:00:01");
        assert.deepStrictEqual(i.mounts[0], { source: "/srv/www", target: "/www", type: "none", options: "bind,create=dir" });
        assert.deepStrictEqual([i.autostart, i.files[0].mode, i.timeoutSeconds], [true, "0644", 60]);
    });
    const bad: [string, Record<string, unknown>, RegExp][] = [
        ["neither template nor rootfs", { ...good, template: undefined }, /^template: give exactly one of template or rootfs/],
        ["both template and rootfs", { ...good, rootfs: "/srv/rootfs/web" }, /^template: give exactly one/],
        ["the box's root as rootfs", { ...good, template: undefined, rootfs: "/" }, /^rootfs: must not be the box's own root/],
        ["traversal in rootfs", { ...good, template: undefined, rootfs: "/srv/../etc" }, /^rootfs: must not contain \.\./],
        ["a template name with a slash", { ...good, template: "../busybox" }, /^template:/],
        ["an upper-case name", { ...good, name: "Web" }, /^name:/],
        ["a CIDR without prefix", { ...good, network: [{ bridge: "br0", ipv4: "198.18.1.50" }] }, /^network\[0\]\.ipv4: .*is not an IPv4 address with prefix length/],
        ["an octet over 255", { ...good, network: [{ bridge: "br0", ipv4: "198.18.1.256/24" }] }, /^network\[0\]\.ipv4:/],
        ["a gateway without an address", { ...good, network: [{ bridge: "br0", gateway: "198.18.1.1" }] }, /^network\[0\]\.gateway: needs ipv4 as well/],
        ["a multicast hwaddr", { ...good, network: [{ bridge: "br0", hwaddr: "01:00:5e:00:00:01" }] }, /^network\[0\]\.hwaddr: .*multicast/],
        ["a mount target with a space (ends an LXC value)", { ...good, mounts: [{ source: "/srv", target: "/a b" }] }, /^mounts\[0\]\.target:/],
        ["a mount over the container's root", { ...good, mounts: [{ source: "/srv", target: "/" }] }, /^mounts\[0\]\.target: must not be the container's root/],
        ["a relative mount source", { ...good, mounts: [{ source: "srv", target: "/srv" }] }, /^mounts\[0\]\.source:/],
        ["mount options with a '#'", { ...good, mounts: [{ source: "/srv", target: "/srv", options: "bind#x" }] }, /^mounts\[0\]\.options:/],
        ["a memory limit of 1 MiB", { ...good, limits: { memoryMiB: 1 } }, /^limits\.memoryMiB: must be at least 4/],
        ["an unknown limit", { ...good, limits: { swap: 1 } }, /^limits\.swap: is not a field here \(fields: memoryMiB, cpuWeight, pids\)/],
        ["a relative file path", { ...good, files: [{ path: "www/index.html", content: "" }] }, /^files\[0\]\.path:/],
        ["a bad file mode", { ...good, files: [{ path: "/a", content: "", mode: "rwx" }] }, /^files\[0\]\.mode:/],
        ["an empty command", { ...good, commands: [[]] }, /^commands\[0\]: needs at least 1 item/],
        ["template args with a rootfs", { ...good, template: undefined, rootfs: "/srv/r", templateArgs: ["-a"] }, /^templateArgs: only go with a template/],
    ];
    for (const [what, input, expected] of bad) {
        it(`rejects ${what}, naming the field`, () => {
            const f = failures(input);
            assert.ok(f.some((x) => expected.test(x)), `expected ${expected} in ${JSON.stringify(f)}`);
        });
    }
    it("accepts an NFS mount", () => {
        assert.deepStrictEqual(inputs({ mounts: [{ source: "198.18.1.11:/export/www", target: "/www", type: "nfs", options: "nfsvers=4,ro" }] }).mounts[0].type, "nfs");
    });
});

describe("LxcContainer diff", () => {
    const olds = running(inputs());
    it("config changes are updates (the update restarts), provisioning changes too", () => {
        assert.deepStrictEqual(diff("c", olds, inputs({ limits: { memoryMiB: 128 } })).replaces, []);
        assert.strictEqual(diff("c", olds, inputs({ limits: { memoryMiB: 128 } })).changes, true);
        assert.strictEqual(diff("c", olds, inputs({ files: [{ path: "/www/index.html", content: "v2\n" }] })).changes, true);
    });
    it("a template, template args, rootfs, name or box change replaces, the old container first", () => {
        const d = diff("c", olds, inputs({ template: "alpine" }));
        assert.deepStrictEqual([d.replaces, d.deleteBeforeReplace], [["template"], true]);
        assert.deepStrictEqual(diff("c", olds, inputs({ template: undefined, rootfs: "/srv/rootfs/web" })).replaces, ["template", "rootfs"]);
        assert.deepStrictEqual(diff("c", olds, inputs({ templateArgs: ["--busybox-path", "/bin/busybox"] })).replaces, ["templateArgs"]);
        assert.deepStrictEqual(diff("c", olds, inputs({ connection: { ...connection, host: "198.51.100.10" } })).replaces, ["connection.host"]);
    });
    it("no change when nothing changed; a stopped container is a change to repair", () => {
        assert.strictEqual(diff("c", olds, inputs()).changes, false);
        assert.strictEqual(diff("c", { ...olds, state: "STOPPED" }, inputs()).changes, true);
    });
});

describe("LxcContainer plans", () => {
    it("the managed block: veth on the bridge, hwaddr, IPv4, gateway, mount relative to the root, autostart, cgroup2 limits", () => {
        assert.strictEqual(
            managedBlock(inputs()),
            [
                managedBegin,
                "lxc.net.0.type = veth",
                "lxc.net.0.link = bmstor",
                "lxc.net.0.flags = up",
                "lxc.net.0.name = eth0",
                "lxc.net.0.hwaddr = 52:54:00:ee:00:01",
                "lxc.net.0.ipv4.address = 198.18.1.50/24",
                "lxc.net.0.ipv4.gateway = 198.18.1.1",
                "lxc.mount.entry = /srv/www www none bind,create=dir 0 0",
                "lxc.start.auto = 1",
                "lxc.cgroup2.memory.max = 64M",
                "lxc.cgroup2.pids.max = 100",
                managedEnd,
                "",
            ].join("\n"),
        );
    });
    it("reads its own block back (drift detection) into the same values", () => {
        const i = inputs();
        const back = parseManagedBlock(`lxc.rootfs.path = dir:/x\n${managedBlock(i)}`);
        assert.deepStrictEqual(back, { network: i.network, mounts: i.mounts, autostart: i.autostart, limits: i.limits });
    });
    it("Debian, from a template: packages, modules, lxc-create with an empty config, the block", () => {
        const text = renderPlan(planCreate(inputs(), "debian"));
        assert.match(text, /^1\. install packages lxc lxc-templates \(if missing\)\n2\. load the veth and bridge modules\n3\. write \/run\/baremetal-lxc-web\.conf .*\n4\. create container web from template busybox\n5\. remove \/run\/baremetal-lxc-web\.conf\n6\. write web's network, mounts, autostart and limits\n7\. persist/);
        const cmds = renderCommands(planCreate(inputs(), "debian"), new DebianAdapter()).join("\n");
        assert.match(cmds, /lxc-create -q -n web -t busybox -f \/run\/baremetal-lxc-web\.conf/);
    });
    it("Alpine, from a rootfs on the box: its own config, no lxc-create, lbu commit", () => {
        const i = inputs({ template: undefined, rootfs: "/srv/rootfs/web" });
        const cmds = renderCommands(planCreate(i, "alpine"), new AlpineAdapter(true)).join("\n");
        assert.match(cmds, /apk add --quiet --no-progress lxc\n/);
        assert.match(cmds, /baremetal-write \/var\/lib\/lxc\/web\/config 0644/);
        assert.doesNotMatch(cmds, /lxc-create/);
        assert.match(cmds, / lbu commit$/);
        assert.match(rootfsConfig(i), /lxc\.rootfs\.path = dir:\/srv\/rootfs\/web\nlxc\.uts\.name = web\n/);
    });
    it("provisions files through lxc-attach with the content on stdin, then the commands", () => {
        const plan = planProvision(inputs());
        assert.deepStrictEqual(plan.map((s) => s.kind === "run" && s.argv.slice(0, 5)), [
            ["lxc-attach", "-n", "web", "--", "/bin/sh"],
            ["lxc-attach", "-n", "web", "--", "/bin/busybox"],
        ]);
        assert.strictEqual(plan[0].kind === "run" && plan[0].stdin, "hello\n");
    });
    it("destroys a template's container with lxc-destroy, but keeps a given rootfs", () => {
        assert.match(renderPlan(planDestroy(inputs())), /1\. stop web \(up to 60s, then kill\)\n2\. destroy web and its rootfs/);
        const text = renderPlan(planDestroy(inputs({ template: undefined, rootfs: "/srv/rootfs/web" })));
        assert.match(text, /2\. remove web's config \(its rootfs \/srv\/rootfs\/web stays\)/);
        assert.doesNotMatch(text, /lxc-destroy/);
    });
});

describe("LxcContainer read (output captured in the lab)", () => {
    it("parses lxc-info of a running container with its address", () => {
        const info = parseLxcInfo(fixture("info-running.txt"));
        assert.strictEqual(info.state, "RUNNING");
        assert.ok((info.pid ?? 0) > 1);
        assert.ok(info.ips.includes("198.18.1.50"), JSON.stringify(info));
    });
    it("parses lxc-info of a stopped container", () => {
        const info = parseLxcInfo(fixture("info-stopped.txt"));
        assert.deepStrictEqual([info.state, info.pid, info.ips], ["STOPPED", undefined, []]);
    });
    it("reads the whole read output into state: live values replace the declared ones", () => {
        const live = parseRead(fixture("read-running.txt"));
        assert.strictEqual(configValues(live.config, "lxc.rootfs.path")[0], "dir:/var/lib/lxc/guests-web/rootfs");
        const s = stateOf(inputs({ limits: { memoryMiB: 999 } }), live);
        assert.strictEqual(s.state, "RUNNING");
        assert.notStrictEqual(s.limits.memoryMiB, 999, "the configured limit must come from the box");
        assert.deepStrictEqual(s.addresses, ["198.18.1.50"]);
    });
});

// A create cut off (SSH dropped) between lxc-create and the managed block left a
// container the re-run refused as someone else's; a config cut off before the
// restart left the old limits live. See test/lab/ceph1FaultsGuests.test.ts.
describe("LxcContainer after a create or update cut off half way", () => {
    it("lxc-create runs under the container's create lock (flock on the box), its -f file carries the marker", () => {
        const plan = planCreate(inputs(), "debian");
        const cmds = renderCommands(plan, new DebianAdapter()).join("\n");
        assert.match(cmds, new RegExp(`flock .*${remoteLockPath(createLock("web"))}.* lxc-create -q -n web -t busybox`));
        const empty = plan.find((s) => s.kind === "writeFile" && s.path === "/run/baremetal-lxc-web.conf");
        assert.ok(empty && empty.kind === "writeFile" && String(empty.content).startsWith(`${createdMarker("web")}\n`));
        // One lock per container, also for the longest names (no truncation that could join two).
        assert.strictEqual(createLock("web"), "lxc-create-web");
        assert.notStrictEqual(createLock(`${"a".repeat(62)}b`), createLock(`${"a".repeat(62)}c`));
    });
    it("recognises the container lxc-create made from its -f file before the managed block was written (captured in the lab)", () => {
        const config = fixture("config-created-cut.txt");
        assert.strictEqual(parseManagedBlock(config), undefined);
        assert.strictEqual(madeByCreate(inputs({ name: "bmfault-probe" }), config), true);
        // Not someone else's container with the same name and no marker, nor one from another template.
        assert.strictEqual(madeByCreate(inputs({ name: "bmfault-probe" }), config.replace(createdMarker("bmfault-probe"), "# made by hand")), false);
        assert.strictEqual(madeByCreate(inputs({ name: "bmfault-probe", template: "alpine" }), config), false);
        // A container with the managed block (made before the marker existed) is still recognised.
        assert.strictEqual(madeByCreate(inputs({ name: "guests-web" }), parseRead(fixture("read-running.txt")).config), true);
    });
    it("a rootfs container's config carries the marker too", () => {
        const i = inputs({ template: undefined, rootfs: "/srv/rootfs/web" });
        assert.strictEqual(madeByCreate(i, rootfsConfig(i)), true);
    });
    it("an update restarts when the config differs from the last applied one, even if an earlier attempt already wrote it", () => {
        const olds = running(inputs({ limits: { memoryMiB: 32 } }));
        assert.strictEqual(needsRestart(olds, inputs({ limits: { memoryMiB: 48 } }), false), true);
        assert.strictEqual(needsRestart(olds, inputs({ limits: { memoryMiB: 32 } }), true), true);
        assert.strictEqual(needsRestart(olds, inputs({ limits: { memoryMiB: 32 } }), false), false);
        assert.strictEqual(needsRestart(olds, inputs({ limits: { memoryMiB: 32 }, files: [{ path: "/www/index.html", content: "v2\n" }] }), false), false);
    });
});
