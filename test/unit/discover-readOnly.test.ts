// The read-only host (provider/host/readOnly.ts) that `baremetal discover` reads
// through: commands that could change a box are refused before they are sent
// (the scripted host behind it never sees them), while the kinds' own reads pass.
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { ReadOnlyRemote, readOnlyRefusal, WriteRefusedError } from "../../provider/host/readOnly";
import { resolvePathsScript, step } from "../../provider/host";
import { serviceStateShell } from "../../provider/host/service";
import { qmpScript } from "../../provider/qmp/script";
import { guestQueries } from "../../provider/parsers/qmp";
import { raidArray, RaidArrayState } from "../../provider/resources/raidArray";
import { containerReadScript } from "../../provider/resources/lxcContainer";
import { readScript as nbdReadScript } from "../../provider/resources/nbdVolume";
import { readFileScript } from "../../provider/host/execute";
import { ok, script, ScriptedRemote } from "../fakes/scriptedRemote";
import { ScriptedSite } from "../fakes/scriptedSite";

const fixture = (name: string) => fs.readFileSync(path.join(__dirname, "../../../test/unit/fixtures", name), "utf8");

function refused(cmd: string[], stdin?: string): string {
    const why = readOnlyRefusal(cmd, stdin);
    assert.ok(why !== undefined, `${cmd.join(" ").slice(0, 80)} was let through`);
    return why;
}

const sh = (text: string) => ["sh", "-c", text, "baremetal-test"];

describe("discover: the read-only host", () => {
    it("refuses a plan, and sends none of its steps", async () => {
        const inner = new ScriptedRemote("root@198.51.100.11:22");
        const host = new ReadOnlyRemote(inner);
        await assert.rejects(host.apply([step.run(["mdadm", "--stop", "/dev/md0"])]), (e: Error) => {
            assert.ok(e instanceof WriteRefusedError);
            assert.match(e.message, /root@198\.51\.100\.11:22: refused to run `a plan of 1 step\(s\)` on a read-only host: plans change hosts\. Nothing was run/);
            return true;
        });
        assert.deepStrictEqual(inner.commands, []);
    });

    it("refuses commands that change a box, before sending them", async () => {
        const inner = new ScriptedRemote("root@198.51.100.11:22").on(Object.assign(() => true, { description: "anything" }), ok());
        const host = new ReadOnlyRemote(inner);
        const writers: string[][] = [
            ["rm", "-rf", "/etc/nbd-server"],
            ["mdadm", "--create", "/dev/md0", "--level=1"],
            ["mdadm", "--stop", "/dev/md0"],
            ["mdadm", "/dev/md0", "--fail", "/dev/vdb"],
            ["systemctl", "restart", "dnsmasq"],
            ["systemctl", "stop", "myvm.service"],
            ["lxc-stop", "-n", "web"],
            ["ovs-vsctl", "add-br", "br0"],
            ["ovs-vsctl", "list-br", "--", "del-br", "br0"],
            ["ip", "link", "set", "eth0", "down"],
            ["ip", "addr", "flush", "dev", "eth0"],
            ["lvcreate", "-L", "1G", "vg0"],
            ["blkid", "/dev/vda"],
            ["hostname", "other"],
            ["ceph", "osd", "out", "3"],
            ["ceph-volume", "lvm", "zap", "/dev/vdb"],
            ["python3", "-c", "import os; os.remove('/etc/hosts')"],
            ["/bin/sh", "-c", "true"],
        ];
        for (const cmd of writers) {
            await assert.rejects(host.run(cmd), WriteRefusedError, cmd.join(" "));
            await assert.rejects(host.exec(cmd), WriteRefusedError, cmd.join(" "));
        }
        assert.deepStrictEqual(inner.commands, [], "nothing reached the host");
    });

    it("refuses scripts that write, or that it cannot follow", () => {
        const cases: [string, RegExp][] = [
            ['echo x >/etc/motd', /writes into \/etc\/motd/],
            ['cat /proc/mdstat >>"$1"', /writes into \$1/],
            ['v=$(rm -f /etc/hosts)', /rm, which is not on the read-only list/],
            ['echo "$(mdadm --stop /dev/md0)"', /mdadm: only mdadm --detail/],
            ['x=${y:-$(systemctl restart ssh)}', /systemctl: restart is not one of its reading subcommands/],
            ['echo `reboot`', /backquoted/],
            ['eval "$1"', /runs eval/],
            ['"$1" /dev/md0', /command named by an expansion/],
            ['cmd=rm; $cmd -rf /', /command named by an expansion/],
            ['sed -i s/a/b/ /etc/fstab', /sed, which is not on the read-only list/],
            ['awk \'{print > "/tmp/x"}\' /etc/passwd', /awk, which is not on the read-only list/],
            ['cat /etc/passwd | tee /tmp/x', /tee, which is not on the read-only list/],
            ['cat <<EOF\nx\nEOF', /here-document/],
            ['(cd /tmp && rm x)', /subshell/],
            ['case $1 in a) rm x;; esac', /case/],
            ['sh -c "rm -rf /"', /runs sh/],
            ['exec rm /x', /rm, which is not on the read-only list/],
            ['sort -o /etc/passwd /etc/passwd', /-o writes a file/],
            ['f() { rm -f "$1"; }; f /x', /rm, which is not on the read-only list/],
        ];
        for (const [text, why] of cases) assert.match(refused(sh(text)), why, text);
    });

    it("lets QMP queries through, and refuses every other QMP command", () => {
        const call = ["python3", "-c", qmpScript, "call", "/run/myvm.qmp"];
        assert.strictEqual(readOnlyRefusal(call, JSON.stringify([{ execute: "query-status" }, { execute: "query-block" }])), undefined);
        assert.match(refused(call, JSON.stringify([{ execute: "query-status" }, { execute: "quit" }])), /QMP "quit" is not a query/);
        assert.match(refused(call, JSON.stringify([{ execute: "system_powerdown" }])), /not a query/);
        assert.strictEqual(readOnlyRefusal(call, JSON.stringify([...guestQueries])), undefined, "a guest's read (info network included)");
        assert.match(refused(call, JSON.stringify([{ execute: "human-monitor-command", arguments: { "command-line": "quit" } }])), /not a query/);
        assert.match(refused(call, JSON.stringify([{ execute: "human-monitor-command", arguments: { "command-line": "info network; quit" } }])), /not a query/);
        assert.match(refused(["python3", "-c", qmpScript, "powerdown", "/run/myvm.qmp", "5"]), /only the QMP script's call mode/);
        assert.match(refused(call, "not json"), /not JSON/);
    });

    it("lets the kinds' own read scripts and plain reads through", () => {
        for (const text of [containerReadScript, nbdReadScript, readFileScript, serviceStateShell]) {
            assert.strictEqual(readOnlyRefusal(sh(text)), undefined, text.slice(0, 60));
        }
        for (const cmd of [
            ["mdadm", "--detail", "--export", "/dev/md0"],
            ["mdadm", "--examine", "--export", "/dev/vdb"],
            ["lvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o", "lv_name,vg_name"],
            ["ovs-vsctl", "--format=json", "list", "Bridge"],
            ["ip", "-j", "addr", "show"],
            ["systemctl", "show", "-p", "MainPID", "myvm.service"],
            ["ceph-volume", "lvm", "list", "--format", "json"],
            ["lxc-info", "-n", "web"],
            ["readlink", "-f", "/dev/disk/by-id/virtio-a"],
            ["sh", "-c", resolvePathsScript, "baremetal-resolve", "/dev/disk/by-id/virtio-a", "/dev/md0"],
        ]) {
            assert.strictEqual(readOnlyRefusal(cmd), undefined, cmd.join(" "));
        }
    });

    it("a kind's read runs through it unchanged, without the host lock (taking one would write a lock file)", async () => {
        const site = new ScriptedSite();
        const connection = { host: "198.51.100.11", hostKey: "SHA256:" + "A".repeat(43) };
        const scripted = site.host(connection).on(script("baremetal-md-read"), ok(fixture("mdadm/read-clean.txt"))).on(script("baremetal-resolve"), ok("/dev/loop10\n/dev/loop11\n"));
        const ctx = { ...site.context(), remote: () => new ReadOnlyRemote(scripted) };
        const stored = { connection, device: "/dev/md9", members: ["/dev/loop10", "/dev/loop11"], activeMembers: [], failedMembers: [] } as unknown as RaidArrayState;
        const state = await raidArray.read("x", stored, ctx);
        assert.strictEqual(state?.uuid, "71df7593:c56926d4:d520530d:103b4c60");
        const mdRead = scripted.ran(script("baremetal-md-read"));
        assert.strictEqual(mdRead.length, 1);
        assert.strictEqual(mdRead[0].lock, undefined, "the read the kind makes under the mdadm lock ran without it");
        site.verify();
    });
});
