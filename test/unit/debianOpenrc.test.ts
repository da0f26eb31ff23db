// The "debian-openrc" family: Debian's packages and paths with OpenRC's services
// (the lab's orc1 box). Its plans, and the Alpine plans it must not disturb
// (apk and lbu stay tested as plans: they cannot run here).
import * as assert from "assert";
import { adapterFor, DebianOpenrcAdapter, persistMedia, renderCommands, step } from "../../provider/host";
import { hostLocks } from "../../provider/host/locks";
import { AlpineAdapter, debianInstallScript, persistEtcScript, unchangedMarker } from "../../provider/host/os";
import { exportService } from "../../provider/resources/nbdVolume";
import { guestService, KvmGuestInputs, check as checkGuest, packagesFor } from "../../provider/resources/kvmGuest";
import { tunnelServiceSpec } from "../../provider/resources/ovsBridge";
import { mdadmConf } from "../../provider/resources/raidArray";
import { planBootActivation } from "../../provider/resources/volumeGroup";

describe("debian-openrc: Debian packages, OpenRC services", () => {
    const diskless = new DebianOpenrcAdapter(true);

    it("is the adapter the probe's facts select", () => {
        assert.ok(adapterFor({ family: "debian-openrc", diskless: true }) instanceof DebianOpenrcAdapter);
        assert.ok(adapterFor({ family: "alpine", diskless: true }) instanceof AlpineAdapter);
    });

    it("installs packages with apt (only what is missing), under the packages lock", () => {
        const [c] = diskless.lower(step.ensurePackages("nbd-server"));
        assert.deepStrictEqual(c.argv, ["sh", "-c", debianInstallScript, "baremetal-install", "nbd-server"]);
        assert.strictEqual(c.lock, hostLocks.packages);
    });

    it("installs services as openrc-run scripts in /etc/init.d and enables them with rc-update", () => {
        const spec = exportService("vg0-web", "debian-openrc");
        const [c] = diskless.lower(step.installService(spec));
        assert.strictEqual(c.argv[4], "/etc/init.d/baremetal-nbd.vg0-web");
        assert.match(String(c.stdin), /^#!\/sbin\/openrc-run\n/);
        const lines = renderCommands([step.service("enable", "baremetal-nbd.vg0-web"), step.service("start", "baremetal-nbd.vg0-web")], diskless);
        assert.match(lines[1], /rc-update add "\$1" "\$2"' baremetal-enable baremetal-nbd\.vg0-web default$/);
        assert.match(lines[3], /^sh -c [\s\S]* baremetal-rc-service baremetal-nbd\.vg0-web start$/);
    });

    it("persists a diskless root as an /etc archive on the persist medium (the stand-in for lbu commit); on disk, nothing", () => {
        const [c] = diskless.lower(step.persist());
        assert.deepStrictEqual(c.argv, ["sh", "-c", persistEtcScript, "baremetal-persist", persistMedia]);
        assert.strictEqual(c.lock, hostLocks.persist);
        assert.deepStrictEqual(new DebianOpenrcAdapter(false).lower(step.persist()), []);
        assert.match(persistEtcScript, /mountpoint -q "\$media"/);
        assert.match(persistEtcScript, /gzip -n/);
        assert.match(persistEtcScript, new RegExp(unchangedMarker));
    });

    it("Alpine keeps apk and lbu (plans only: neither exists here)", () => {
        const alpine = new AlpineAdapter(true);
        assert.deepStrictEqual(alpine.lower(step.ensurePackages("nbd-server"))[0].argv, ["apk", "add", "--quiet", "--no-progress", "nbd-server"]);
        assert.deepStrictEqual(alpine.lower(step.persist())[0].argv, ["lbu", "commit"]);
    });

    it("boot scripts become an OpenRC service of their own (Debian's openrc has no `local` service)", () => {
        const lines = renderCommands([step.bootScript("bridges", "#!/bin/sh\nexit 0\n")], diskless);
        assert.ok(lines.some((l) => l.includes("/etc/baremetal/local.d/bridges.start")));
        assert.ok(lines.some((l) => l.includes("/etc/init.d/baremetal-local-bridges")));
        assert.match(lines[lines.length - 1], /baremetal-enable baremetal-local-bridges default$/);
    });

    it("the kinds name Debian's services and paths, and OpenRC's kind of dependency", () => {
        assert.deepStrictEqual(tunnelServiceSpec("br0", { name: "vpn0", key: "k", port: 1194 }, "debian-openrc").needs, ["openvswitch-switch"]);
        assert.strictEqual(tunnelServiceSpec("br0", { name: "vpn0", key: "k", port: 1194 }, "debian-openrc").command[0], "/usr/sbin/openvpn");
        const r = checkGuest({}, { connection: { host: "198.51.100.12", hostKey: "SHA256:" + "A".repeat(43), password: "pw" }, name: "g", memoryMiB: 64, nics: [{ bridge: "br0", mac: "52:54:00:ab:00:01" }] });
        const g = r.inputs as KvmGuestInputs;
        assert.deepStrictEqual(guestService(g, "debian-openrc").wants, ["openvswitch-switch"]);
        assert.strictEqual(guestService(g, "debian-openrc").command[0], "/usr/bin/qemu-system-x86_64");
        assert.deepStrictEqual(packagesFor(g, "debian-openrc"), ["qemu-system-x86", "python3", "iproute2", "openvswitch-switch"]);
        // Debian's lvm2 has no init script: udev activates volume groups, nothing to order after or enable.
        assert.strictEqual(exportService("vg0-x", "debian-openrc").after, undefined);
        assert.deepStrictEqual(planBootActivation("debian-openrc"), [step.persist()]);
        assert.deepStrictEqual(planBootActivation("alpine"), [step.service("enable", "lvm"), step.persist()]);
        assert.strictEqual(mdadmConf("debian-openrc"), "/etc/mdadm/mdadm.conf");
    });
});
