import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { parseSize } from "../../provider/core/validate";
import { AlpineAdapter, DebianAdapter, planResult, renderCommands, renderPlan } from "../../provider/host";
import { exportOf, parseAuthfile, parseNbdConfig, renderExportConfig } from "../../provider/parsers/nbd";
import {
    catalogEntry, check, diff, exportConfigOf, instanceKey, NbdVolumeInputs, NbdVolumeState, needsRestart, parseLive,
    planExportFiles, planGrow, planLvCreate, planServe, planUnexport,
} from "../../provider/resources/nbdVolume";

const fixture = (name: string) => fs.readFileSync(path.join(__dirname, "../../../test/unit/fixtures/nbd", name), "utf8");
const connection = { host: "198.51.100.11", hostKey: "SHA256:" + "A".repeat(43), password: "pw" };
const good = {
    connection, volumeGroup: "vg0", name: "web01-var", size: "256MiB", port: 10820, owner: "52:54:00:AB:00:01",
    allowedClients: ["198.18.1.12", "198.18.1.0/24"], exportAddress: "198.18.1.11", consul: { address: "198.51.100.10:8500" },
};
const unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

function failures(news: Record<string, unknown>, olds: Record<string, unknown> = {}): string[] {
    return check(olds, news).failures.map((f) => `${f.field}: ${f.reason}`);
}
const inputs = check({}, good).inputs as NbdVolumeInputs;

describe("NbdVolume check", () => {
    it("normalises: bytes from the size, export name from the LV, lower-case MAC, a Consul node per SAN", () => {
        assert.strictEqual(inputs.requestedBytes, 256 * 2 ** 20);
        assert.strictEqual(inputs.exportName, "web01-var");
        assert.strictEqual(inputs.owner, "52:54:00:ab:00:01");
        assert.strictEqual(inputs.consulNode, "198-18-1-11-nbd");
        assert.strictEqual(inputs.serviceName, "nbd");
        assert.deepStrictEqual([inputs.readOnly, inputs.adopt, inputs.allowDataLoss], [false, false, false]);
    });
    it("takes sizes with binary units, and only those", () => {
        assert.deepStrictEqual(["64MiB", "1GiB", "2TiB", "100MiB"].map(parseSize), [64 * 2 ** 20, 2 ** 30, 2 * 2 ** 40, 100 * 2 ** 20]);
        assert.deepStrictEqual(["64M", "10G", "2T", "10GB"].map(parseSize), [undefined, undefined, undefined, undefined]);
    });
    const bad: [string, Record<string, unknown>, RegExp][] = [
        ["a size without unit", { ...good, size: "256" }, /^size: "256" is not a size like 256MiB/],
        ["a decimal size", { ...good, size: "1.5G" }, /^size: "1\.5G" is not a size/],
        ["a size in bytes", { ...good, size: "268435456b" }, /^size: /],
        ["a tiny size", { ...good, size: "1MiB" }, /^size: 1MiB is below the smallest LV/],
        ["a negative size", { ...good, size: "-1G" }, /^size: /],
        ["an LV name with a slash", { ...good, name: "a/b" }, /^name: "a\/b" is not an LV name/],
        ["the LV name snapshot", { ...good, name: "snapshot" }, /^name: /],
        ["a VG name with shell", { ...good, volumeGroup: "vg0;reboot" }, /^volumeGroup: /],
        ["the export name generic", { ...good, exportName: "generic" }, /^exportName: "generic" is not an export name/],
        ["a privileged port", { ...good, port: 80 }, /^port: must be at least 1024, got 80/],
        ["a port as text", { ...good, port: "10820" }, /^port: must be a whole number/],
        ["no port", { ...good, port: undefined }, /^port: is required/],
        ["a bad MAC", { ...good, owner: "52:54:00:ab:00" }, /^owner: "52:54:00:ab:00" is not a MAC address/],
        ["a host name as client", { ...good, allowedClients: ["svc1"] }, /^allowedClients\[0\]: "svc1" is not an IP address or network/],
        ["a bad prefix length", { ...good, allowedClients: ["198.18.1.0/33"] }, /^allowedClients\[0\]: /],
        ["a bad Consul address", { ...good, consul: { address: "consul" } }, /^consul\.address: "consul" is not host:port/],
        ["a bad Consul node", { ...good, consulNode: "san 1" }, /^consulNode: /],
        ["a non-boolean readOnly", { ...good, readOnly: "no" }, /^readOnly: must be true or false/],
    ];
    for (const [what, input, expected] of bad) {
        it(`rejects ${what}, naming the field`, () => {
            const f = failures(input);
            assert.ok(f.some((x) => expected.test(x)), `expected ${expected} in ${JSON.stringify(f)}`);
        });
    }
    it("refuses to shrink, saying how to replace instead", () => {
        const f = failures({ ...good, size: "128MiB" }, inputs as unknown as Record<string, unknown>);
        assert.strictEqual(f.length, 1, JSON.stringify(f));
        assert.match(f[0], /^size: shrinking vg0\/web01-var from 256MiB to 128MiB is refused: it would cut off data\. To get a smaller volume, declare a new NbdVolume .* copy the data .* allowDataLoss: true/);
        // Even with allowDataLoss: a shrink is never done in place.
        assert.strictEqual(failures({ ...good, size: "128MiB", allowDataLoss: true }, inputs as unknown as Record<string, unknown>).length, 1);
        assert.deepStrictEqual(failures({ ...good, size: "1GiB" }, inputs as unknown as Record<string, unknown>), []);
        assert.deepStrictEqual(failures({ ...good, size: "256MiB" }, inputs as unknown as Record<string, unknown>), []);
    });
    it("refuses a change that re-creates the LV unless allowDataLoss is set", () => {
        const olds = inputs as unknown as Record<string, unknown>;
        assert.ok(failures({ ...good, name: "web02-var" }, olds).some((f) => /^name: changing name re-creates the logical volume and destroys its data; set allowDataLoss: true/.test(f)));
        assert.ok(failures({ ...good, volumeGroup: "vg1" }, olds).some((f) => /^volumeGroup: /.test(f)));
        assert.deepStrictEqual(failures({ ...good, name: "web02-var", allowDataLoss: true }, olds), []);
    });
    it("lets values not known yet through (preview)", () => {
        assert.deepStrictEqual(failures({ ...good, volumeGroup: unknown, connection: unknown }), []);
        assert.deepStrictEqual(failures({ ...good, size: unknown, owner: unknown }), []);
        // Defaults that follow an unknown input are unknown too, not made up.
        const preview = check({}, { ...good, name: unknown, exportAddress: undefined, connection: unknown }).inputs as NbdVolumeInputs;
        assert.deepStrictEqual([preview.exportName, preview.exportAddress, preview.consulNode], [unknown, unknown, unknown]);
    });
    it("checks a default computed from another field by the default's own rule (an LV named generic is no export name)", () => {
        assert.deepStrictEqual(failures({ ...good, name: "generic" }), ['exportName: "generic" is not an export name (letters, digits, _ . -; not "generic")']);
        assert.deepStrictEqual(failures({ ...good, name: "generic", exportName: "generic-lv" }), []);
    });
    it("reports one mistake once: no follow-on errors for the defaults that would come from a bad field", () => {
        assert.deepStrictEqual(failures({ ...good, name: "a/b" }), ['name: "a/b" is not an LV name (letters, digits, _ . -; not snapshot or pvmove)']);
        assert.deepStrictEqual(failures({ ...good, name: "a/b" }, inputs as unknown as Record<string, unknown>).length, 1);
    });
    it("computes requestedBytes from size and ignores a value sent for it", () => {
        const out = check({}, { ...good, requestedBytes: 1 }).inputs as NbdVolumeInputs;
        assert.strictEqual(out.requestedBytes, 256 * 2 ** 20);
        assert.deepStrictEqual(check({}, out as unknown as Record<string, unknown>).inputs, out, "check's own output passes unchanged");
    });
});

describe("NbdVolume diff", () => {
    const olds: NbdVolumeState = { ...inputs, sizeBytes: inputs.requestedBytes, lvUuid: "u", lvPath: "/dev/vg0/web01-var", serving: true, uri: "nbd://198.18.1.11:10820/web01-var", registered: true };
    it("grows, changes export options and the owner in place", () => {
        for (const change of [{ requestedBytes: 2 ** 30, size: "1GiB" }, { readOnly: true }, { port: 10821 }, { allowedClients: [] }, { owner: "52:54:00:ab:00:02" }, { exportName: "x" }]) {
            const d = diff("id", olds, { ...inputs, ...change });
            assert.deepStrictEqual([d.changes, d.replaces], [true, []], JSON.stringify(change));
        }
    });
    it("replaces, old one first, on a new LV name, VG or host", () => {
        assert.deepStrictEqual(diff("id", olds, { ...inputs, name: "other" }).replaces, ["name"]);
        const d = diff("id", olds, { ...inputs, volumeGroup: "vg1", connection: { ...connection, host: "198.51.100.12" } });
        assert.deepStrictEqual([d.replaces, d.deleteBeforeReplace], [["connection.host", "volumeGroup"], true]);
    });
    it("sees no change when the same size is spelt another way (the bytes decide)", () => {
        const gib = check({}, { ...good, size: "1GiB" }).inputs as NbdVolumeInputs;
        const respelt = check({}, { ...good, size: "1024MiB" }).inputs as NbdVolumeInputs;
        assert.strictEqual(diff("id", { ...olds, ...gib } as NbdVolumeState, respelt).changes, false);
        // A state written when `256M` was still taken: `256MiB` now is the same size, no change.
        assert.strictEqual(diff("id", { ...olds, size: "256M" }, inputs).changes, false);
    });
    it("sees no change when only the live size differs (LVM rounds up to extents)", () => {
        assert.strictEqual(diff("id", { ...olds, sizeBytes: olds.sizeBytes + 4194304 }, inputs).changes, false);
    });
});

describe("NbdVolume plans", () => {
    it("creates the LV with an exact byte size and the pulumi-baremetal tag, under the lvm lock", () => {
        const lines = renderCommands(planLvCreate(inputs), new DebianAdapter());
        assert.deepStrictEqual(lines, [
            "# 1. create logical volume vg0/web01-var (256MiB)",
            "sh -c 'mkdir -p /run/lock && exec flock \"$@\"' baremetal-lock /run/lock/baremetal-lvm.lock lvcreate -q -y -L 268435456b -n web01-var --addtag pulumi-baremetal vg0",
        ]);
    });
    it("grows online with lvextend", () => {
        const grown = check(inputs as unknown as Record<string, unknown>, { ...good, size: "1GiB" }).inputs as NbdVolumeInputs;
        assert.match(renderCommands(planGrow(grown), new DebianAdapter()).join("\n"), /lvextend -q -L 1073741824b vg0\/web01-var$/);
    });
    it("serves each export from its own systemd template instance on Debian", () => {
        assert.strictEqual(
            renderPlan([...planExportFiles(inputs, "debian"), ...planServe(inputs, "debian", false)]),
            [
                "1. install packages lvm2 nbd-server (if missing)",
                "2. install service baremetal-nbd (instance vg0-web01--var)",
                "3. write /etc/nbd-server/baremetal/vg0-web01--var.allow (mode 0644, owner root:root, 26 bytes)",
                "4. write /etc/nbd-server/baremetal/vg0-web01--var.conf (mode 0644, owner root:root, 268 bytes)",
                "5. enable service baremetal-nbd@vg0-web01--var",
                "6. start service baremetal-nbd@vg0-web01--var",
                "7. persist configuration across reboots",
            ].join("\n"),
        );
        // One template unit for every export, reloaded only when it changed; its instance is what systemd is asked about.
        const install = renderCommands(planExportFiles(inputs, "debian"), new DebianAdapter())[3];
        assert.ok(install.endsWith(" baremetal-install-unit /etc/systemd/system/baremetal-nbd@.service 0644 root:root 644 431 baremetal-nbd@vg0-web01--var.service < (content)"), install);
        const lines = renderCommands(planServe(inputs, "debian", true), new DebianAdapter());
        assert.ok(lines.includes("systemctl restart baremetal-nbd@vg0-web01--var"), lines.join("\n"));
    });
    it("serves each export from its own OpenRC service on Alpine, committed with lbu", () => {
        const plan = [...planExportFiles(inputs, "alpine"), ...planServe(inputs, "alpine", false)];
        const lines = renderCommands(plan, new AlpineAdapter(true));
        assert.ok(lines.some((l) => l.endsWith(" baremetal-write /etc/init.d/baremetal-nbd.vg0-web01--var 0755 root:root 755 391 < (content)")), lines.join("\n"));
        assert.ok(!lines.some((l) => /systemd/.test(l)), lines.join("\n"));
        assert.ok(lines.includes("apk add --quiet --no-progress lvm2 nbd-server") || lines.some((l) => l.endsWith("apk add --quiet --no-progress lvm2 nbd-server")), lines.join("\n"));
        assert.ok(lines.some((l) => l.endsWith("baremetal-rc-service baremetal-nbd.vg0-web01--var start")), lines.join("\n"));
        assert.ok(lines.some((l) => l.endsWith("lbu commit")), lines.join("\n"));
    });
    it("without allowed clients, removes the authfile and leaves it out of the config", () => {
        const open = { ...inputs, allowedClients: [] };
        assert.match(renderPlan(planExportFiles(open, "debian")), /3\. remove \/etc\/nbd-server\/baremetal\/vg0-web01--var\.allow/);
        assert.doesNotMatch(renderExportConfig(exportConfigOf(open, "debian")), /authfile/);
    });
    it("restarts the export only when a file nbd-server reads at start changed, not for the authfile", () => {
        const plan = planExportFiles(inputs, "debian");
        const rec = (changedIndex: number) =>
            planResult(plan, {
                target: "t",
                facts: { family: "debian", id: "debian", diskless: false },
                steps: plan.map((_s, i) => ({ index: i + 1, description: "", commands: [], changed: i + 1 === changedIndex, durationMs: 0 })),
            });
        assert.strictEqual(needsRestart(rec(1)), false, "packages");
        assert.strictEqual(needsRestart(rec(2)), true, "service definition");
        assert.strictEqual(needsRestart(rec(3)), false, "authfile");
        assert.strictEqual(needsRestart(rec(4)), true, "config");
    });
    it("unexports without touching the LV unless asked to remove the data", () => {
        const keep = renderPlan(planUnexport(inputs, "debian", false));
        assert.match(keep, /^1\. stop, disable and remove service baremetal-nbd \(instance vg0-web01--var\) \(if present\)\n2\. remove \/etc\/nbd-server\/baremetal\/vg0-web01--var\.conf\n3\. remove .*\.allow\n4\. persist/);
        // The template unit serves the other exports: only the instance goes on Debian; Alpine's script is the export's own.
        assert.match(renderCommands(planUnexport(inputs, "debian", false), new DebianAdapter()).join("\n"), /baremetal-remove-service baremetal-nbd@vg0-web01--var ''$/m);
        assert.match(renderCommands(planUnexport(inputs, "alpine", false), new AlpineAdapter(true)).join("\n"), /baremetal-remove-service baremetal-nbd\.vg0-web01--var \/etc\/init\.d\/baremetal-nbd\.vg0-web01--var default$/m);
        assert.doesNotMatch(keep, /lvremove|remove logical volume/);
        assert.match(renderPlan(planUnexport(inputs, "debian", true)), /remove logical volume vg0\/web01-var and its data/);
    });
    it("keys files and units uniquely, as device-mapper does", () => {
        assert.notStrictEqual(instanceKey("a-b", "c"), instanceKey("a", "b-c"));
        assert.strictEqual(instanceKey("vg0", "web01-var"), "vg0-web01--var");
    });
    it("registers an external Consul service with the owner in its meta", () => {
        assert.deepStrictEqual(catalogEntry(inputs), {
            node: "198-18-1-11-nbd", address: "198.18.1.11", serviceId: "nbd-vg0-web01--var", service: "nbd", port: 10820, tags: [],
            meta: { export: "web01-var", host: "198.18.1.11", port: "10820", owner: "52:54:00:ab:00:01", volume_group: "vg0", volume: "web01-var", read_only: "false" },
        });
    });
});

describe("nbd-server configs (captured in the lab by test/lab/storage.test.ts)", () => {
    // The values test/lab/storage.test.ts deploys; its captures are these fixtures.
    const lab = check({}, { ...good, volumeGroup: "bmvg", name: "guest1-var", size: "64MiB", allowedClients: ["198.18.1.12"] }).inputs as NbdVolumeInputs;
    it("renders the config NbdVolume writes, byte for byte as found on the SAN", () => {
        assert.strictEqual(renderExportConfig(exportConfigOf(lab, "debian")), fixture("baremetal-export.conf"));
    });
    it("reads back the export of a config it wrote", () => {
        assert.deepStrictEqual(exportOf(fixture("baremetal-export.conf")), exportConfigOf(lab, "debian"));
    });
    it("parses Debian's packaged /etc/nbd-server/config (generic section, includedir)", () => {
        const cfg = parseNbdConfig(fixture("debian-default-config"));
        assert.deepStrictEqual(cfg, { generic: { user: "nbd", group: "nbd", includedir: "/etc/nbd-server/conf.d" } });
        assert.strictEqual(exportOf(fixture("debian-default-config")), undefined);
    });
    it("parses an authfile", () => {
        assert.deepStrictEqual(parseAuthfile(fixture("baremetal-export.allow")), ["198.18.1.12"]);
    });
    it("reads the live state from the read script's output", () => {
        const live = parseLive(fixture("read-serving.txt"));
        assert.deepStrictEqual(
            [live.serving, live.lv?.name, live.lv?.vg, live.lv?.sizeBytes, live.lv?.tags, live.config, live.allowedClients],
            [true, "guest1-var", "bmvg", 64 << 20, ["pulumi-baremetal"], exportConfigOf(lab, "debian"), ["198.18.1.12"]],
        );
        const gone = parseLive(fixture("read-missing.txt"));
        assert.deepStrictEqual([gone.lv, gone.config, gone.serving, gone.allowedClients], [undefined, undefined, false, []]);
    });
});
