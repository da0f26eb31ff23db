import * as assert from "assert";
import { planResult } from "../../provider/host/execute";
import { hostLocks } from "../../provider/host/locks";
import { AlpineAdapter, DebianAdapter, installUnitScript, renderCommands } from "../../provider/host/os";
import { renderPlan, step } from "../../provider/host/plan";
import {
    renderOpenrcScript,
    renderService,
    renderSystemdUnit,
    serviceFilePath,
    serviceNameOn,
    ServiceSpec,
} from "../../provider/host/service";

// A foreground program the init system does not supervise (restarted on failure
// by systemd only), with the hooks a KvmGuest uses.
const guestLike: ServiceSpec = {
    name: "baremetal-demo",
    description: "demo guest (pulumi-baremetal)",
    comments: ["pulumi-baremetal demo owner=x", "written by pulumi-baremetal"],
    command: ["/usr/bin/demo", "-name", "guest=demo", "$DEMO_EXTRA"],
    type: "simple",
    pidFile: "/run/demo.pid",
    environmentFile: { path: "/run/demo.env", optional: true },
    preStart: [{ argv: ["mkdir", "-p", "/run/demo"] }, { argv: ["ip", "link", "del", "tap0"], mayFail: true }],
    stop: { command: ["/usr/local/libexec/demo-stop", "60"], timeoutSeconds: 90 },
    postStop: [["ip", "link", "del", "tap0"]],
    restart: { when: "on-failure", delaySeconds: 5 },
    errorLog: "/var/log/demo.log",
    wants: ["ovs-vswitchd"],
};

// A daemon supervised on both init systems, with a reload signal and a secret environment file.
const daemon: ServiceSpec = {
    name: "baremetal-daemon",
    description: "demo daemon (pulumi-baremetal)",
    command: ["/usr/sbin/daemon", "--foreground"],
    user: "nobody",
    environmentFile: { path: "/etc/daemon.env", optional: false },
    reloadSignal: "HUP",
    restart: { when: "always", delaySeconds: 2 },
    after: ["lvm"],
    needs: ["udev"],
};

// One description, one service per instance.
const template: ServiceSpec = {
    name: "baremetal-export",
    instance: "vg0-data",
    description: "demo export %i",
    command: ["/usr/bin/server", "-C", "/etc/server/%i.conf", "-p", "/run/server.%i.pid"],
    type: "forking",
    pidFile: "/run/server.%i.pid",
    killMode: "control-group",
    restart: { when: "on-failure" },
};

describe("services rendered by the OS adapter", () => {
    it("systemd: a unit with the hooks, the graceful stop and the restart policy", () => {
        assert.strictEqual(
            renderSystemdUnit(guestLike),
            [
                "# pulumi-baremetal demo owner=x",
                "# written by pulumi-baremetal",
                "[Unit]",
                "Description=demo guest (pulumi-baremetal)",
                "Wants=network-online.target ovs-vswitchd.service",
                "After=network-online.target ovs-vswitchd.service",
                "",
                "[Service]",
                "Type=simple",
                "EnvironmentFile=-/run/demo.env",
                "ExecStartPre=mkdir -p /run/demo",
                "ExecStartPre=-ip link del tap0",
                "ExecStart=/usr/bin/demo -name guest=demo $DEMO_EXTRA",
                "ExecStop=-/usr/local/libexec/demo-stop 60",
                "ExecStopPost=-ip link del tap0",
                "TimeoutStopSec=90",
                "Restart=on-failure",
                "RestartSec=5",
                "",
                "[Install]",
                "WantedBy=multi-user.target",
                "",
            ].join("\n"),
        );
    });

    it("OpenRC: the same service in the background with a pid file, start_pre, stop() and stop_post", () => {
        assert.strictEqual(
            renderOpenrcScript(guestLike),
            [
                "#!/sbin/openrc-run",
                "# pulumi-baremetal demo owner=x",
                "# written by pulumi-baremetal",
                'description="demo guest (pulumi-baremetal)"',
                "[ -f /run/demo.env ] && { set -a; . /run/demo.env; set +a; }",
                "command=/usr/bin/demo",
                'command_args="-name guest=demo $DEMO_EXTRA"',
                "command_background=true",
                "pidfile=/run/demo.pid",
                "error_log=/var/log/demo.log",
                "",
                "depend() {",
                "\tneed net",
                "\tuse ovs-vswitchd",
                "}",
                "",
                "start_pre() {",
                "\tmkdir -p /run/demo || return 1",
                "\tip link del tap0 2>/dev/null || true",
                "}",
                "",
                "stop() {",
                '\tebegin "Stopping demo guest (pulumi-baremetal)"',
                "\t/usr/local/libexec/demo-stop 60 2>/dev/null || true",
                '\tstart-stop-daemon --stop --quiet --pidfile "$pidfile" --retry TERM/10/KILL/5 || true',
                "\teend 0",
                "}",
                "",
                "stop_post() {",
                "\tip link del tap0 2>/dev/null || true",
                "}",
                "",
            ].join("\n"),
        );
    });

    it("systemd: a supervised daemon with a user, a required environment file, reload and hard dependencies", () => {
        assert.strictEqual(
            renderSystemdUnit(daemon),
            [
                "[Unit]",
                "Description=demo daemon (pulumi-baremetal)",
                "Wants=network-online.target",
                "Requires=udev.service",
                "After=network-online.target lvm.service udev.service",
                "",
                "[Service]",
                "User=nobody",
                "EnvironmentFile=/etc/daemon.env",
                "ExecStart=/usr/sbin/daemon --foreground",
                "ExecReload=/bin/kill -HUP $MAINPID",
                "Restart=always",
                "RestartSec=2",
                "",
                "[Install]",
                "WantedBy=multi-user.target",
                "",
            ].join("\n"),
        );
    });

    it("OpenRC: the daemon under supervise-daemon, respawned for ever, with a reload command", () => {
        assert.strictEqual(
            renderOpenrcScript(daemon),
            [
                "#!/sbin/openrc-run",
                'description="demo daemon (pulumi-baremetal)"',
                "[ -f /etc/daemon.env ] && { set -a; . /etc/daemon.env; set +a; }",
                "command=/usr/sbin/daemon",
                'command_args="--foreground"',
                "command_user=nobody",
                "supervisor=supervise-daemon",
                "respawn_delay=2",
                "respawn_max=0",
                'extra_started_commands="reload"',
                'description_reload="Re-reads the configuration (SIGHUP)"',
                "",
                "depend() {",
                "\tneed net udev",
                "\tafter lvm",
                "}",
                "",
                "reload() {",
                '\tebegin "Reloading demo daemon (pulumi-baremetal)"',
                '\tsupervise-daemon "$RC_SVCNAME" --signal HUP',
                "\teend $?",
                "}",
                "",
            ].join("\n"),
        );
    });

    it("an instance: one systemd template with %i, one OpenRC script per instance with the key filled in", () => {
        assert.strictEqual(
            renderSystemdUnit(template),
            [
                "[Unit]",
                "Description=demo export %i",
                "Wants=network-online.target",
                "After=network-online.target",
                "",
                "[Service]",
                "Type=forking",
                "PIDFile=/run/server.%i.pid",
                "ExecStart=/usr/bin/server -C /etc/server/%i.conf -p /run/server.%i.pid",
                "KillMode=control-group",
                "Restart=on-failure",
                "",
                "[Install]",
                "WantedBy=multi-user.target",
                "",
            ].join("\n"),
        );
        assert.strictEqual(
            renderOpenrcScript(template),
            [
                "#!/sbin/openrc-run",
                'description="demo export vg0-data"',
                "command=/usr/bin/server",
                'command_args="-C /etc/server/vg0-data.conf -p /run/server.vg0-data.pid"',
                "pidfile=/run/server.vg0-data.pid",
                "",
                "depend() {",
                "\tneed net",
                "}",
                "",
            ].join("\n"),
        );
        assert.strictEqual(serviceNameOn(template, "debian"), "baremetal-export@vg0-data");
        assert.strictEqual(serviceNameOn(template, "alpine"), "baremetal-export.vg0-data");
        assert.strictEqual(serviceFilePath(template, "debian"), "/etc/systemd/system/baremetal-export@.service");
        assert.strictEqual(serviceFilePath(template, "alpine"), "/etc/init.d/baremetal-export.vg0-data");
    });

    it("one rule for where a service lives", () => {
        assert.strictEqual(serviceFilePath({ name: "baremetal-guest-web01" }, "debian"), "/etc/systemd/system/baremetal-guest-web01.service");
        assert.strictEqual(serviceFilePath({ name: "baremetal-guest-web01" }, "alpine"), "/etc/init.d/baremetal-guest-web01");
        assert.strictEqual(serviceNameOn({ name: "baremetal-guest-web01" }, "alpine"), "baremetal-guest-web01");
    });

    it("a oneshot program is a systemd unit; OpenRC has boot scripts for that", () => {
        const oneshot: ServiceSpec = { name: "baremetal-local-x", description: "boot script x", type: "oneshot", command: ["/etc/baremetal/local.d/x.start"] };
        assert.match(renderService(oneshot, "debian"), /\n\[Service\]\nType=oneshot\nRemainAfterExit=yes\nExecStart=\/etc\/baremetal\/local\.d\/x\.start\n\n/);
        assert.throws(() => renderService(oneshot, "alpine"), /service baremetal-local-x: a oneshot service has no OpenRC form/);
    });

    const refused: [string, ServiceSpec, RegExp][] = [
        ["a word with a space", { ...daemon, command: ["/usr/sbin/daemon", "a b"] }, /command word "a b" must not be empty or hold whitespace/],
        ["a word with a quote", { ...daemon, command: ["/usr/sbin/daemon", 'x"y'] }, /command word/],
        ["a word that runs a command", { ...daemon, command: ["/usr/sbin/daemon", "$(reboot)"] }, /command word/],
        ["a shell operator in a hook", { ...guestLike, preStart: [{ argv: ["true", ";", "reboot"] }] }, /preStart word ";"/],
        ["a '%' without an instance", { ...daemon, command: ["/usr/sbin/daemon", "%h"] }, /may hold '%' only as %i/],
        ["another specifier in a template", { ...template, description: "export %n" }, /description "export %n" may hold '%' only as %i/],
        ["a quote in the description", { ...daemon, description: 'say "hi"' }, /description .* must be one line without quotes/],
        ["a newline in a comment", { ...daemon, comments: ["a\nb"] }, /comment "a\\nb" must be one line/],
        ["a relative pid file", { ...guestLike, pidFile: "demo.pid" }, /pidFile "demo.pid" must be an absolute path/],
        ["a forking program without a pid file", { ...template, pidFile: undefined }, /pidFile is needed for a forking program/],
        ["a bad user", { ...daemon, user: "root;x" }, /user "root;x" is not a user name/],
        ["a dependency that is no service name", { ...daemon, after: ["lvm.service x"] }, /after "lvm.service x" is not a service name/],
        ["a service name with a slash", { ...daemon, name: "../x" }, /name must be letters/],
    ];
    for (const [what, spec, expected] of refused) {
        it(`refuses ${what}, naming the service and the field`, () => {
            assert.throws(() => renderSystemdUnit(spec), expected);
            assert.throws(() => step.installService(spec), expected);
        });
    }

    const openrcRefused: [string, ServiceSpec, RegExp][] = [
        ["a program found on PATH", { ...daemon, command: ["daemon"] }, /OpenRC needs the program as an absolute path, not "daemon"/],
        ["a stop command for a supervised daemon", { ...daemon, stop: { command: ["/bin/true"], timeoutSeconds: 5 } }, /a stop command needs a pid file/],
        ["a forking supervised daemon", { ...template, restart: { when: "always" } }, /supervise-daemon \(restart: always\) needs a program that stays in the foreground/],
        ["an unsupervised program without a pid file", { ...guestLike, pidFile: undefined }, /OpenRC needs a pidFile for a program it does not supervise/],
    ];
    for (const [what, spec, expected] of openrcRefused) {
        it(`OpenRC refuses ${what}`, () => assert.throws(() => renderOpenrcScript(spec), expected));
    }
});

describe("service steps lowered per family", () => {
    it("Debian: the unit is written (and systemd reloaded when it must) in one command, which can tell whether the file changed", () => {
        const [cmd] = new DebianAdapter().lower(step.installService(guestLike));
        const unit = renderSystemdUnit(guestLike);
        assert.deepStrictEqual(cmd.argv, [
            "sh", "-c", installUnitScript, "baremetal-install-unit",
            "/etc/systemd/system/baremetal-demo.service", "0644", "root:root", "644", String(Buffer.byteLength(unit)), "baremetal-demo.service",
        ]);
        assert.strictEqual(cmd.stdin, unit);
        // What the script does (a reload only when systemd holds another version): test/unit/systemdUnitScripts.test.ts.
    });

    it("Alpine: the init script is written executable; nothing to reload", () => {
        const cmds = new AlpineAdapter(true).lower(step.installService(guestLike));
        assert.strictEqual(cmds.length, 1);
        assert.deepStrictEqual(cmds[0].argv.slice(3), ["baremetal-write", "/etc/init.d/baremetal-demo", "0755", "root:root", "755", String(Buffer.byteLength(renderOpenrcScript(guestLike)))]);
    });

    it("uninstall: stop if running (outside any lock), then links and file under the services lock", () => {
        const debian = new DebianAdapter().lower(step.uninstallService(guestLike));
        assert.deepStrictEqual(debian.map((c) => [c.argv.slice(3), c.lock]), [
            [["baremetal-stop-service", "baremetal-demo"], undefined],
            [["baremetal-remove-service", "baremetal-demo", "/etc/systemd/system/baremetal-demo.service"], hostLocks.services],
        ]);
        const alpine = new AlpineAdapter(true, "boot").lower(step.uninstallService(template));
        assert.deepStrictEqual(alpine.map((c) => [c.argv.slice(3), c.lock]), [
            [["baremetal-stop-service", "baremetal-export.vg0-data"], undefined],
            [["baremetal-remove-service", "baremetal-export.vg0-data", "/etc/init.d/baremetal-export.vg0-data", "boot"], hostLocks.services],
        ]);
        // The template unit stays for the other instances.
        assert.deepStrictEqual(new DebianAdapter().lower(step.uninstallService(template))[1].argv.slice(3), ["baremetal-remove-service", "baremetal-export@vg0-data", ""]);
    });

    it("keeps only the name and instance of a description it uninstalls", () => {
        assert.deepStrictEqual(step.uninstallService(template), { kind: "uninstallService", service: { name: "baremetal-export", instance: "vg0-data" } });
        assert.strictEqual(renderPlan([step.installService(template), step.uninstallService(guestLike)]), [
            "1. install service baremetal-export (instance vg0-data)",
            "2. stop, disable and remove service baremetal-demo (if present)",
        ].join("\n"));
    });

    it("a Debian boot script is a oneshot unit, installed like any service", () => {
        const lines = renderCommands([step.bootScript("bridges", "#!/bin/sh\ntrue\n")], new DebianAdapter());
        assert.match(lines[2], / baremetal-install-unit \/etc\/systemd\/system\/baremetal-local-bridges\.service 0644 root:root 644 \d+ baremetal-local-bridges\.service < \(content\)$/);
        assert.match(lines[3], / baremetal-enable baremetal-local-bridges$/);
    });
});

describe("plan results asked by tag", () => {
    type Tag = "config" | "unit";
    const plan = [
        step.ensurePackages("demo"),
        step.writeFile<Tag>("/etc/demo.conf", "x\n", { tag: "config" }),
        step.installService<Tag>(guestLike, { tag: "unit" }),
        step.persist(),
    ];
    const facts = { family: "debian" as const, id: "debian", diskless: false };
    const run = (changed: number[]) =>
        planResult(plan, { target: "t", facts, steps: plan.map((_s, i) => ({ index: i + 1, description: "", commands: [], changed: changed.includes(i + 1), durationMs: 0 })) });

    it("answers whether a step with that tag changed, whatever the other steps did", () => {
        assert.deepStrictEqual([run([2]).stepChanged("config"), run([2]).stepChanged("unit")], [true, false]);
        assert.deepStrictEqual([run([1, 3]).stepChanged("config"), run([1, 3]).stepChanged("unit"), run([1, 3]).stepChanged("config", "unit")], [false, true, true]);
        assert.strictEqual(run([1]).stepChanged("config", "unit"), false);
        assert.strictEqual(run([1]).changed, true);
        assert.deepStrictEqual(run([]).steps.map((r) => r.tag), [undefined, "config", "unit", undefined]);
    });

    it("does not compile a question about a tag the plan does not name", () => {
        // @ts-expect-error "confg" is not one of the plan's tags (tsc fails here if it were accepted)
        assert.strictEqual(run([2]).stepChanged("confg"), false);
    });

    it("keeps steps without a tag free of a tag field (plans stay plain data)", () => {
        assert.deepStrictEqual(step.removeFile("/etc/x"), { kind: "removeFile", path: "/etc/x" });
        assert.deepStrictEqual(step.removeFile("/etc/x", { tag: "gone" }), { kind: "removeFile", path: "/etc/x", tag: "gone" });
    });
});
