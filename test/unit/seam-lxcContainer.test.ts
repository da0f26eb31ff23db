// LxcContainer against a scripted box: adopt, refuse, and the re-run after an
// interrupted create. The container's config lives in the scripted host's file
// table; lxc-create leaves exactly what the lab captured after a cut create
// (test/unit/fixtures/lxc/config-created-cut.txt), lxc-info answers as captured
// (info-running.txt, info-stopped.txt). The lab proves the same on real LXC
// (test/lab/faultsGuests.test.ts, test/lab/guests.test.ts).
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { RefusedError } from "../../provider/core/errors";
import { managedBegin, managedEnd } from "../../provider/parsers/lxc";
import { check, createLock, lxcContainer, LxcContainerInputs } from "../../provider/resources/lxcContainer";
import { argv, droppedAfter, exit, ok, script, ScriptedRemote, unchanged } from "../fakes/scriptedRemote";
import { ScriptedSite } from "../fakes/scriptedSite";

const fixture = (name: string) => fs.readFileSync(path.join(__dirname, "../../../test/unit/fixtures/lxc", name), "utf8");
const connection = { host: "198.51.100.12", hostKey: "SHA256:" + "A".repeat(43), password: "pw" };
const configOf = (name: string) => `/var/lib/lxc/${name}/config`;

/** The config without the managed block, as the box's awk in configScript leaves it. */
function withoutBlock(config: string): string {
    let skip = false;
    return config
        .split("\n")
        .filter((l) => {
            if (l === managedBegin) skip = true;
            const keep = !skip;
            if (l === managedEnd) skip = false;
            return keep;
        })
        .join("\n");
}

function inputs(name: string, extra: Record<string, unknown> = {}): LxcContainerInputs {
    const r = check({}, {
        connection,
        name,
        template: "busybox",
        network: [{ bridge: "bmstor", hwaddr: "52:54:00:7e:00:50", ipv4: "198.18.1.50/24" }],
        commands: [["/bin/busybox", "httpd", "-p", "80"]],
        ...extra,
    });
    assert.deepStrictEqual(r.failures, []);
    return r.inputs as LxcContainerInputs;
}

/** A Debian box with LXC: the read script answers lxc-info (as captured, renamed) and the config from the file table. */
function box(name: string, state: { running: boolean }, files: Record<string, string> = {}) {
    const s = new ScriptedSite();
    const host: ScriptedRemote = s.host(connection, { files });
    const info = () => fixture(state.running ? "info-running.txt" : "info-stopped.txt").replace(/guests-web/g, name);
    host.on(script("baremetal-install"), unchanged)
        .on(argv("modprobe", "-a", "veth", "bridge"), ok())
        .on(script("baremetal-lxc-read"), () => {
            const config = host.files.get(configOf(name));
            return config === undefined ? exit(3) : ok(`${info()}==config==\n${config}`);
        })
        .on(argv("lxc-create"), () => (host.putFile(configOf(name), fixture("config-created-cut.txt").replace(/bmfault-probe/g, name)), ok()))
        .on(script("baremetal-lxc-config"), (c) => {
            const was = host.files.get(c.argv[4]);
            if (was === undefined) return exit(3, `no container config ${c.argv[4]}`);
            const now = withoutBlock(was) + (c.stdin ?? "");
            if (now === was) return unchanged;
            host.putFile(c.argv[4], now);
            return ok();
        })
        .on(argv("lxc-start", "-n", name), () => ((state.running = true), ok()))
        .on(argv("lxc-wait", "-n", name), ok())
        .on(argv("lxc-stop", "-n", name), () => ((state.running = false), ok()))
        .on(argv("lxc-attach", "-n", name), ok());
    return { s, host };
}

const lifecycle = (h: ScriptedRemote) => h.commands.filter((c) => /^lxc-(create|start|stop|destroy|attach)$/.test(c.argv[0])).map((c) => c.argv.slice(0, 3).join(" "));
// read-running.txt: guests-web, made from the busybox template, with a managed block; without it, someone else's.
const foreignConfig = withoutBlock(fixture("read-running.txt").split("==config==\n")[1]);
// The same container configured by hand: the block's lines as plain lines of the config (no markers).
const handConfig = fixture("read-running.txt").split("==config==\n")[1].split("\n").filter((l) => l !== managedBegin && l !== managedEnd).join("\n");

describe("LxcContainer against a scripted box", () => {
    describe("adopt", () => {
        it("a running container someone else configured as declared, with adopt: true: taken over as it runs; its config untouched, not restarted, nothing run inside", async () => {
            const state = { running: true };
            const { s, host } = box("guests-web", state, { [configOf("guests-web")]: handConfig });
            const { id, outs } = await lxcContainer.create(inputs("guests-web", { adopt: true, autostart: false, limits: { memoryMiB: 64 } }), s.context());
            assert.strictEqual(id, "guests-web@198.51.100.12");
            assert.deepStrictEqual(lifecycle(host), [], "no lxc-stop, lxc-start or lxc-attach");
            assert.deepStrictEqual(host.plans, [], "no plan: no config write, no package step");
            assert.strictEqual(host.files.get(configOf("guests-web")), handConfig);
            assert.deepStrictEqual([outs.state, outs.addresses, outs.network], ["RUNNING", ["198.18.1.50"], [{ bridge: "bmstor", hwaddr: "52:54:00:7e:00:50", ipv4: "198.18.1.50/24" }]]);
            assert.ok(s.log.kept().includes("guests-web: adopting the existing container on root@198.51.100.12:22 as it runs (RUNNING); its config is kept and nothing was restarted"));
            s.verify();
        });

        it("a running container whose config says otherwise than declared, with adopt: true: refused naming what differs; not stopped, config untouched", async () => {
            const state = { running: true };
            const { s, host } = box("guests-web", state, { [configOf("guests-web")]: handConfig.replace("lxc.net.0.link = bmstor", "lxc.net.0.link = brother") });
            await assert.rejects(lxcContainer.create(inputs("guests-web", { adopt: true, autostart: false, limits: { memoryMiB: 64 } }), s.context()), (e: Error) => {
                assert.ok(e instanceof RefusedError, e.message);
                assert.match(e.message, /container guests-web on root@198\.51\.100\.12:22 \(RUNNING\) runs with another network than declared \(network: \[\{"bridge":"brother"/);
                assert.match(e.message, /adopting it would rewrite its config and restart it\. Nothing was changed\. Declare it as it runs/);
                return true;
            });
            assert.deepStrictEqual(lifecycle(host), []);
            assert.deepStrictEqual(host.plans, []);
            assert.ok(state.running);
            s.verify();
        });

        it("a later change of the adopted container's config (a mount added): the block is written and the container restarts, as for any config change", async () => {
            const state = { running: true };
            const { s, host } = box("guests-web", state, { [configOf("guests-web")]: handConfig });
            const declared = inputs("guests-web", { adopt: true, autostart: false, limits: { memoryMiB: 64 } });
            const { outs } = await lxcContainer.create(declared, s.context());
            const withMount = inputs("guests-web", { adopt: true, autostart: false, limits: { memoryMiB: 64 }, mounts: [{ source: "/srv/www", target: "/var/www", type: "none" }] });
            await lxcContainer.update("guests-web@198.51.100.12", outs, withMount, s.context());
            assert.deepStrictEqual(lifecycle(host), ["lxc-stop -n guests-web", "lxc-start -n guests-web", "lxc-attach -n guests-web"]);
            const written = host.ran(script("baremetal-lxc-config"));
            assert.strictEqual(written.length, 1);
            assert.match(written[0].stdin ?? "", /lxc\.mount\.entry = \/srv\/www var\/www none bind,create=dir 0 0/);
            s.verify();
        });
    });

    describe("refuse", () => {
        it("a container someone else made, without adopt: refused naming the host and its state; its config untouched, not stopped", async () => {
            const state = { running: true };
            const { s, host } = box("guests-web", state, { [configOf("guests-web")]: foreignConfig });
            await assert.rejects(lxcContainer.create(inputs("guests-web"), s.context()), (e: Error) => {
                assert.ok(e instanceof RefusedError, e.message);
                assert.match(e.message, /container guests-web already exists on root@198\.51\.100\.12:22 \(RUNNING\)\. Nothing was changed\. Set adopt: true on this LxcContainer/);
                return true;
            });
            assert.deepStrictEqual(host.plans, []);
            assert.strictEqual(host.files.get(configOf("guests-web")), foreignConfig);
            assert.ok(state.running);
            s.verify();
        });
    });

    describe("re-run after an interrupted create", () => {
        it("cut during lxc-create (the config has our created marker, no block yet): the re-run carries on with its own container; lxc-create ran once", async () => {
            const state = { running: false };
            const { s, host } = box("bmfault-probe", state);
            host.on(argv("lxc-create"), droppedAfter(() => host.putFile(configOf("bmfault-probe"), fixture("config-created-cut.txt"))));
            await assert.rejects(lxcContainer.create(inputs("bmfault-probe"), s.context()), /connection dropped/);
            assert.strictEqual(host.files.get(configOf("bmfault-probe")), fixture("config-created-cut.txt"), "what the lab saw after such a cut");

            const { outs } = await lxcContainer.create(inputs("bmfault-probe"), s.context());
            assert.deepStrictEqual(lifecycle(host), ["lxc-create -q -n", "lxc-start -n bmfault-probe", "lxc-attach -n bmfault-probe"]);
            assert.ok(s.log.kept().includes("bmfault-probe: found the container an earlier run created on root@198.51.100.12:22"));
            assert.strictEqual(outs.state, "RUNNING");
            const reads = host.ran(script("baremetal-lxc-read"));
            assert.strictEqual(reads[reads.length - 2].lock, createLock("bmfault-probe"), "create's first look waits for an lxc-create still running on the box");
            assert.strictEqual(host.ran(argv("lxc-create"))[0].lock, createLock("bmfault-probe"), "under the same lock as lxc-create");
            s.verify();
        });

        it("cut after the start, before provisioning: the re-run does not restart the running container but provisions it", async () => {
            const state = { running: false };
            const { s, host } = box("bmfault-probe", state);
            host.on(argv("lxc-attach", "-n", "bmfault-probe"), droppedAfter());
            await assert.rejects(lxcContainer.create(inputs("bmfault-probe"), s.context()), /connection dropped/);
            assert.ok(state.running);
            host.on(argv("lxc-attach", "-n", "bmfault-probe"), ok());

            await lxcContainer.create(inputs("bmfault-probe"), s.context());
            assert.deepStrictEqual(lifecycle(host), ["lxc-create -q -n", "lxc-start -n bmfault-probe", "lxc-attach -n bmfault-probe", "lxc-attach -n bmfault-probe"]);
            s.verify();
        });
    });

    describe("re-run after an interrupted delete", () => {
        it("cut while lxc-destroy runs on: the re-run's look waits for it under the container's lock and finds the container gone; lxc-destroy ran once", async () => {
            const state = { running: false };
            const { s, host } = box("bmfault-probe", state);
            const { outs } = await lxcContainer.create(inputs("bmfault-probe"), s.context());
            host.on(argv("lxc-destroy", "-n", "bmfault-probe"), host.cutWhileRunning(() => host.putFile(configOf("bmfault-probe"), undefined)));
            await assert.rejects(lxcContainer.delete(outs.configPath, outs, s.context()), /connection dropped/);
            // LXC's own lock makes a second lxc-destroy wait for the first, which leaves it nothing to destroy.
            host.on(argv("lxc-destroy", "-n", "bmfault-probe"), exit(1, "lxc-destroy: bmfault-probe: tools/lxc_destroy.c: main: Container is not defined"));

            const from = host.commands.length;
            await lxcContainer.delete(outs.configPath, outs, s.context());
            const look = host.commands.slice(from).filter(script("baremetal-lxc-read"))[0];
            assert.strictEqual(look.lock, createLock("bmfault-probe"), "delete's look waits for an lxc-destroy still running on the box");
            assert.strictEqual(host.ran(argv("lxc-destroy"))[0].lock, createLock("bmfault-probe"), "lxc-destroy holds the container's lock");
            assert.deepStrictEqual(lifecycle(host).filter((l) => l.startsWith("lxc-destroy")), ["lxc-destroy -n bmfault-probe"], "one lxc-destroy: the orphaned one");
            assert.ok(s.log.kept().includes("bmfault-probe: already gone from root@198.51.100.12:22"));
            s.verify();
        });
    });
});
