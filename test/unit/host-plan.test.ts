import * as assert from "assert";
import { briefCommand, hintFor, withRemoteTimeout } from "../../provider/host/execute";
import {
    AlpineAdapter,
    DebianAdapter,
    debianInstallScript,
    detectArgv,
    openrcServiceScript,
    parseOsFacts,
    removeFileScript,
    renderCommands,
    writeFileScript,
} from "../../provider/host/os";
import { hostLocks, objectLock } from "../../provider/host/locks";
import { describeStep, renderPlan, step } from "../../provider/host/plan";
import { Secret } from "../../provider/host/redact";

// A plan an NBD export resource would make on the SAN VM.
const nbdPlan = [
    step.ensurePackages("nbd", "lvm2"),
    step.run(["lvcreate", "-n", "guest-var", "-L", "20G", "vg0"], { lock: hostLocks.lvm, what: "create logical volume vg0/guest-var" }),
    step.writeFile("/etc/nbd-server/conf.d/guest-var.conf", "[guest-var]\nexportname = /dev/vg0/guest-var\n"),
    step.service("enable", "nbd-server"),
    step.service("reload", "nbd-server"),
    step.persist(),
];

describe("host plans as data", () => {
    it("renders a plan as numbered lines a reviewer can read", () => {
        assert.strictEqual(
            renderPlan(nbdPlan),
            [
                "1. install packages nbd lvm2 (if missing)",
                "2. create logical volume vg0/guest-var",
                "3. write /etc/nbd-server/conf.d/guest-var.conf (mode 0644, owner root:root, 44 bytes)",
                "4. enable service nbd-server",
                "5. reload service nbd-server",
                "6. persist configuration across reboots",
            ].join("\n"),
        );
    });

    it("Alpine (diskless): apk under the package lock, OpenRC services, lbu commit to persist", () => {
        const lines = renderCommands(nbdPlan, new AlpineAdapter(true));
        assert.deepStrictEqual(lines, [
            "# 1. install packages nbd lvm2 (if missing)",
            "sh -c 'mkdir -p /run/lock && exec flock \"$@\"' baremetal-lock /run/lock/baremetal-packages.lock apk add --quiet --no-progress nbd lvm2",
            "# 2. create logical volume vg0/guest-var",
            "sh -c 'mkdir -p /run/lock && exec flock \"$@\"' baremetal-lock /run/lock/baremetal-lvm.lock lvcreate -n guest-var -L 20G vg0",
            "# 3. write /etc/nbd-server/conf.d/guest-var.conf (mode 0644, owner root:root, 44 bytes)",
            lines[5], // the write script, checked on its own below
            "# 4. enable service nbd-server",
            `sh -c 'mkdir -p /run/lock && exec flock "$@"' baremetal-lock /run/lock/baremetal-services.lock sh -c '[ -L "/etc/runlevels/$2/$1" ] && echo =baremetal-unchanged= || rc-update add "$1" "$2"' baremetal-enable nbd-server default`,
            "# 5. reload service nbd-server",
            "rc-service nbd-server reload",
            "# 6. persist configuration across reboots",
            "sh -c 'mkdir -p /run/lock && exec flock \"$@\"' baremetal-lock /run/lock/baremetal-persist.lock lbu commit",
        ]);
        assert.ok(lines[5].endsWith(" baremetal-write /etc/nbd-server/conf.d/guest-var.conf 0644 root:root 644 44 < (content)"), lines[5]);
    });

    it("Alpine with its root on disk has nothing to persist", () => {
        assert.deepStrictEqual(new AlpineAdapter(false).lower(step.persist()), []);
        assert.deepStrictEqual(new AlpineAdapter(true).lower(step.persist()), [{ argv: ["lbu", "commit"], lock: "persist" }]);
    });

    it("Alpine services map to rc-service and rc-update in the default runlevel", () => {
        const a = new AlpineAdapter(true);
        // start, stop and restart wait while another rc-service holds the service's lock (openrcServiceScript)
        assert.deepStrictEqual(a.lower(step.service("start", "dnsmasq"))[0].argv, ["sh", "-c", openrcServiceScript, "baremetal-rc-service", "dnsmasq", "start"]);
        assert.deepStrictEqual(a.lower(step.service("stop", "dnsmasq"))[0].argv, ["sh", "-c", openrcServiceScript, "baremetal-rc-service", "dnsmasq", "stop"]);
        assert.deepStrictEqual(a.lower(step.service("restart", "dnsmasq"))[0].argv, ["sh", "-c", openrcServiceScript, "baremetal-rc-service", "dnsmasq", "restart"]);
        assert.deepStrictEqual(a.lower(step.service("disable", "dnsmasq"))[0].argv.slice(3), ["baremetal-disable", "dnsmasq", "default"]);
        assert.deepStrictEqual(new AlpineAdapter(true, "boot").lower(step.service("enable", "mdadm"))[0].argv.slice(3), ["baremetal-enable", "mdadm", "boot"]);
    });

    it("Alpine boot scripts go to /etc/local.d and enable the local service", () => {
        const cmds = new AlpineAdapter(true).lower(step.bootScript("ovs-bridges", "#!/bin/sh\novs-vsctl --may-exist add-br lan\n"));
        assert.deepStrictEqual(cmds[0].argv.slice(3), ["baremetal-write", "/etc/local.d/ovs-bridges.start", "0755", "root:root", "755", "43"]);
        assert.strictEqual(cmds[0].stdin, "#!/bin/sh\novs-vsctl --may-exist add-br lan\n");
        assert.deepStrictEqual(cmds[1].argv.slice(3), ["baremetal-enable", "local", "default"]);
    });

    it("Debian: apt-get only for missing packages, non-interactive, waiting for dpkg's lock", () => {
        const [cmd] = new DebianAdapter().lower(step.ensurePackages("nbd-server"));
        assert.deepStrictEqual(cmd.argv, ["sh", "-c", debianInstallScript, "baremetal-install", "nbd-server"]);
        assert.strictEqual(cmd.lock, "packages");
        assert.match(debianInstallScript, /export DEBIAN_FRONTEND=noninteractive/);
        assert.match(debianInstallScript, /dpkg-query -W/);
        assert.match(debianInstallScript, /DPkg::Lock::Timeout=300/);
        assert.deepStrictEqual(new DebianAdapter().withLock("packages", ["true"]), [
            "sh", "-c", 'mkdir -p /run/lock && exec flock "$@"', "baremetal-lock", "/run/lock/baremetal-packages.lock", "true",
        ]);
    });

    it("Debian: systemctl for services, a oneshot unit for boot scripts, nothing to persist", () => {
        const d = new DebianAdapter();
        // Enabled only when not enabled yet (`enable` of a SysV-backed unit runs update-rc.d), and with
        // no daemon-reload: linking into a target needs none (the reload took 3.5 s of 3.7 on the lab).
        const enable = d.lower(step.service("enable", "nbd-server"))[0].argv;
        assert.deepStrictEqual(enable.slice(-2), ["baremetal-enable", "nbd-server"]);
        assert.match(String(enable[2]), /systemctl is-enabled --quiet "\$1" 2>\/dev\/null \|\| systemctl --quiet --no-reload enable "\$1"/);
        assert.deepStrictEqual(d.lower(step.service("reload", "nbd-server"))[0].argv, ["systemctl", "reload", "nbd-server"]);
        assert.deepStrictEqual(d.lower(step.persist()), []);
        const boot = d.lower(step.bootScript("ovs-bridges", "#!/bin/sh\ntrue\n"));
        // The unit is installed like any service (reloaded only when it changed), then enabled once.
        assert.deepStrictEqual(boot.map((c) => c.argv.slice(3, 5).join(" ")), [
            "baremetal-write /etc/baremetal/local.d/ovs-bridges.start", "baremetal-install-unit /etc/systemd/system/baremetal-local-ovs-bridges.service", "baremetal-enable baremetal-local-ovs-bridges",
        ]);
        assert.match(String(boot[1].stdin), /\nType=oneshot\nRemainAfterExit=yes\nExecStart=\/etc\/baremetal\/local\.d\/ovs-bridges\.start\n/);
    });

    it("file steps pass every value as a positional parameter, never inside the script", () => {
        // A legal (if unkind) file name: quotes and ; are valid in paths.
        const hostile = "/etc/x'; reboot; echo '";
        const cmd = new AlpineAdapter(true).lower(step.writeFile(hostile, "y"))[0];
        assert.strictEqual(cmd.argv[2], writeFileScript);
        assert.strictEqual(cmd.argv[4], hostile);
        assert.ok(!writeFileScript.includes("/etc/"), "the script names no path of its own");
        assert.deepStrictEqual(new DebianAdapter().lower(step.removeFile("/etc/x.conf"))[0].argv, ["sh", "-c", removeFileScript, "baremetal-remove", "/etc/x.conf"]);
    });

    it("a secret file content travels as stdin, not as an argument", () => {
        const secret = new Secret("keyring-bytes");
        const [cmd] = new DebianAdapter().lower(step.writeFile("/etc/ceph/keyring", secret, { mode: "0600" }));
        assert.strictEqual(cmd.stdin, secret);
        assert.ok(!cmd.argv.some((a) => String(a).includes("keyring-bytes")));
    });

    const badSteps: [string, () => unknown, RegExp][] = [
        ["a relative path", () => step.writeFile("etc/x", ""), /absolute, normalised/],
        ["a path with ..", () => step.removeFile("/etc/../root/.ssh/authorized_keys"), /absolute, normalised/],
        ["a path with a newline", () => step.removeFile("/etc/a\nb"), /absolute, normalised/],
        ["a mode that is not octal", () => step.writeFile("/etc/x", "", { mode: "0968" }), /octal/],
        ["an owner without group", () => step.writeFile("/etc/x", "", { owner: "root" }), /user:group/],
        ["a package name with a space", () => step.ensurePackages("nbd server"), /not a package name/],
        ["a package option", () => step.ensurePackages("--allow-untrusted"), /not a package name/],
        ["a service name with ;", () => step.service("start", "a;b"), /not a service name/],
        ["a boot script without #!", () => step.bootScript("x", "echo hi"), /#!/],
        ["a secret program name", () => step.run([new Secret("x")]), /program name/],
        ["a lock for an object that is no name", () => step.run(["true"], { lock: objectLock("lxc-create", "../x") }), /cannot name a lxc-create lock/],
    ];
    for (const [name, make, expected] of badSteps) {
        it(`refuses to build a step with ${name}`, () => assert.throws(make, expected));
    }

    it("shows the constant scripts by name in logs and errors", () => {
        const [cmd] = new DebianAdapter().lower(step.writeFile("/etc/x", "y"));
        assert.strictEqual(briefCommand(cmd.argv), "sh -c <baremetal-write> /etc/x 0644 root:root 644 1");
        assert.strictEqual(describeStep(step.run(["echo", "a b"])), "run echo 'a b'");
    });

    it("wraps a timed command so the host kills it one second after the local deadline", () => {
        assert.deepStrictEqual(withRemoteTimeout(["sleep", "9"], 2500), ["timeout", "-s", "KILL", "4", "sleep", "9"]);
        assert.deepStrictEqual(withRemoteTimeout(["true"], undefined), ["true"]);
    });

    it("says what to do next for the common failures", () => {
        assert.match(hintFor(undefined, 1, "sudo: a password is required\n"), /NOPASSWD/);
        assert.match(hintFor(undefined, 127, "sh: mdadm: not found"), /program is missing/);
        assert.match(hintFor(step.ensurePackages("nbd"), 1, "ERROR: unable to select packages"), /package repositories/);
        assert.match(hintFor(step.service("start", "nbd-server"), 1, ""), /rc-service nbd-server status/);
    });
});

describe("host OS detection", () => {
    const mounts = (root: string): string => `proc /proc proc rw 0 0\n${root}\ndevtmpfs /dev devtmpfs rw 0 0\n`;
    // Captured from this repository's Debian 12 machine.
    const debian12 = [
        'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"', 'NAME="Debian GNU/Linux"', 'VERSION_ID="12"', 'VERSION="12 (bookworm)"',
        "VERSION_CODENAME=bookworm", "ID=debian", 'HOME_URL="https://www.debian.org/"',
    ].join("\n");
    // Transcribed from Alpine 3.20's /etc/os-release (alpine-release package).
    const alpine320 = [
        'NAME="Alpine Linux"', "ID=alpine", "VERSION_ID=3.20.3", 'PRETTY_NAME="Alpine Linux v3.20"', 'HOME_URL="https://alpinelinux.org/"',
    ].join("\n");
    const out = (osRelease: string, root: string): string => `${osRelease}\n=baremetal-unchanged=mounts\n${mounts(root)}`;

    it("recognises Debian", () => {
        assert.deepStrictEqual(parseOsFacts(out(debian12, "overlay / overlay rw 0 0")), {
            family: "debian", id: "debian", versionId: "12", prettyName: "Debian GNU/Linux 12 (bookworm)", diskless: false,
        });
    });

    it("recognises diskless Alpine by its tmpfs root, and Alpine on disk", () => {
        const diskless = parseOsFacts(out(alpine320, "tmpfs / tmpfs rw,relatime,mode=755 0 0"));
        assert.deepStrictEqual(diskless, { family: "alpine", id: "alpine", versionId: "3.20.3", prettyName: "Alpine Linux v3.20", diskless: true });
        const onDisk = parseOsFacts(out(alpine320, "/dev/sda3 / ext4 rw,relatime 0 0"));
        assert.strictEqual(typeof onDisk !== "string" && onDisk.diskless, false);
    });

    it("treats Debian derivatives (ID_LIKE=debian) as Debian", () => {
        const facts = parseOsFacts(out('ID=ubuntu\nID_LIKE=debian\nVERSION_ID="24.04"', "/dev/vda1 / ext4 rw 0 0"));
        assert.strictEqual(typeof facts !== "string" && facts.family, "debian");
    });

    const probed = (osRelease: string, init: string, root: string): string => `${osRelease}\n=baremetal-unchanged=init\n${init}\n=baremetal-unchanged=mounts\n${mounts(root)}`;

    it("tells Debian with OpenRC from Debian with systemd by the init system that runs, not by the name", () => {
        const orc = parseOsFacts(probed(debian12, "openrc", "tmpfs / tmpfs rw,relatime,mode=755 0 0"));
        assert.deepStrictEqual(orc, { family: "debian-openrc", id: "debian", versionId: "12", prettyName: "Debian GNU/Linux 12 (bookworm)", diskless: true });
        const onDisk = parseOsFacts(probed(debian12, "openrc", "/dev/vda1 / ext4 rw 0 0"));
        assert.deepStrictEqual(typeof onDisk !== "string" && [onDisk.family, onDisk.diskless], ["debian-openrc", false]);
        for (const init of ["systemd", ""]) {
            const sd = parseOsFacts(probed(debian12, init, "tmpfs / tmpfs rw 0 0"));
            assert.deepStrictEqual(typeof sd !== "string" && [sd.family, sd.diskless], ["debian", false], `init ${JSON.stringify(init)}`);
        }
        // Alpine is OpenRC whatever the probe says (a container without a booted OpenRC).
        const alpine = parseOsFacts(probed(alpine320, "", "tmpfs / tmpfs rw 0 0"));
        assert.deepStrictEqual(typeof alpine !== "string" && [alpine.family, alpine.diskless], ["alpine", true]);
    });

    it("the probe itself asks systemd's and OpenRC's run directories", () => {
        const script = detectArgv[2];
        assert.match(script, /\/run\/systemd\/system/);
        assert.match(script, /\/run\/openrc\/softlevel/);
    });

    it("refuses anything else, saying what it found", () => {
        assert.strictEqual(parseOsFacts(out('ID=fedora\nVERSION_ID=40', "/dev/vda1 / xfs rw 0 0")), '/etc/os-release says ID="fedora", which is neither Alpine nor Debian-like');
    });
});
