// RaidArray against a scripted host (test/fakes/scriptedRemote.ts): adopt, refuse,
// and the re-run after an interrupted create, with the read script's output as
// captured from mdadm in the lab (test/unit/fixtures/mdadm). The lab
// (test/lab/ceph1FaultsStorage.test.ts) proves the same branches on real disks.
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { RefusedError } from "../../provider/core/errors";
import { check, raidArray, RaidArrayInputs } from "../../provider/resources/raidArray";
import { argv, droppedAfter, exit, ok, script, unchanged } from "../fakes/scriptedRemote";
import { ScriptedSite } from "../fakes/scriptedSite";

const fixture = (name: string) => fs.readFileSync(path.join(__dirname, "../../../test/unit/fixtures/mdadm", name), "utf8");
const connection = { host: "198.51.100.11", hostKey: "SHA256:" + "A".repeat(43), password: "pw" };
const members = ["/dev/disk/by-id/virtio-bm-a", "/dev/disk/by-id/virtio-bm-b"];
// read-clean.txt: /dev/md9, RAID1 of /dev/loop10 and /dev/loop11, uuid 71df7593:…
const clean = fixture("read-clean.txt");
const uuid = "71df7593:c56926d4:d520530d:103b4c60";
const noSuperblock = exit(1, "mdadm: No md superblock detected on the device.");

function inputs(extra: Record<string, unknown> = {}): RaidArrayInputs {
    const r = check({}, { connection, device: "/dev/md9", members, ...extra });
    assert.deepStrictEqual(r.failures, []);
    return r.inputs as RaidArrayInputs;
}

/** A host where the declared members resolve to `kernel` and /dev/md9 reads as `md9()` (undefined: absent). */
function site(kernel: string[], md9: () => string | undefined, options: { family?: "alpine" | "debian"; diskless?: boolean } = {}) {
    const s = new ScriptedSite();
    const host = s
        .host(connection, options)
        .on(script("baremetal-resolve"), ok(kernel.join("\n") + "\n"))
        .on(script("baremetal-md-read"), () => {
            const text = md9();
            return text === undefined ? exit(3) : ok(text);
        });
    return { s, host };
}

const changing = (lines: string[]) => lines.filter((l) => /^mdadm (--create|--assemble|--stop|--zero-superblock|\/dev\/md)/.test(l));

describe("RaidArray against a scripted host", () => {
    describe("adopt", () => {
        it("an array with exactly the declared members is taken over: recorded in mdadm.conf, never re-created or re-assembled", async () => {
            const { s, host } = site(["/dev/loop10", "/dev/loop11"], () => clean);
            host.on(script("baremetal-mdadm-conf"), ok());
            const { id, outs } = await raidArray.create(inputs(), s.context());
            assert.strictEqual(id, uuid);
            assert.deepStrictEqual(outs.members, members, "the state names the members as declared, not as the kernel does");
            assert.strictEqual(outs.state, "clean");
            assert.deepStrictEqual(changing(host.commands.map((c) => c.line)), [], "no mdadm --create / --assemble");
            assert.deepStrictEqual(host.stepsApplied(), ["record /dev/md9 in /etc/mdadm/mdadm.conf", "persist configuration across reboots"]);
            assert.ok(s.log.kept().some((l) => /already exists with the same members: adopting it \(uuid 71df7593/.test(l)));
            s.verify();
        });

        it("on diskless Alpine the adoption is written to /etc/mdadm.conf and committed (lbu commit), and only when the line was missing", async () => {
            const { s, host } = site(["/dev/loop10", "/dev/loop11"], () => clean, { family: "alpine", diskless: true });
            host.on(script("baremetal-mdadm-conf"), ok()).on(argv("lbu", "commit"), ok());
            await raidArray.create(inputs(), s.context());
            const conf = host.ran(script("baremetal-mdadm-conf"));
            assert.strictEqual(conf[0].argv[4], "/etc/mdadm.conf");
            assert.strictEqual(conf[0].lock, "mdadm");
            assert.strictEqual(host.ran(argv("lbu", "commit")).length, 1);

            // Again, with the ARRAY line already there: nothing to commit.
            host.on(script("baremetal-mdadm-conf"), unchanged);
            await raidArray.create(inputs(), s.context());
            assert.strictEqual(host.ran(argv("lbu", "commit")).length, 1, "no second lbu commit");
            s.verify();
        });
    });

    describe("adopt as it runs: a hand-made array with its own mdadm.conf line", () => {
        it("the operator's line is kept as written (the record step asks to keep it), nothing stopped, assembled or committed", async () => {
            const { s, host } = site(["/dev/loop10", "/dev/loop11"], () => clean, { family: "alpine", diskless: true });
            // The box's script: with "keep" and a line naming the array, it leaves the file alone.
            const handLine = `ARRAY /dev/md9 metadata=1.2 name=pxe1:fixture UUID=${uuid} # made by hand`;
            host.putFile("/etc/mdadm.conf", `${handLine}\n`);
            host.on(script("baremetal-mdadm-conf"), (c) => (c.argv[6] === "keep" && (host.files.get(c.argv[4]) ?? "").includes(`UUID=${uuid}`) ? unchanged : ok()));
            await raidArray.create(inputs(), s.context());
            const conf = host.ran(script("baremetal-mdadm-conf"));
            assert.deepStrictEqual(conf.map((c) => c.argv.slice(4)), [["/etc/mdadm.conf", "/dev/md9", "keep"]]);
            assert.strictEqual(host.files.get("/etc/mdadm.conf"), `${handLine}\n`);
            assert.deepStrictEqual(changing(host.commands.map((c) => c.line)), [], "no mdadm --stop / --assemble / --create");
            assert.deepStrictEqual(host.ran(argv("lbu", "commit")), [], "nothing changed, nothing to commit");
            s.verify();
        });
    });

    describe("refuse", () => {
        it("an array of the same name on other disks: refused naming the host and its members, nothing changed", async () => {
            const { s, host } = site(["/dev/loop12", "/dev/loop13"], () => clean);
            await assert.rejects(raidArray.create(inputs(), s.context()), (e: Error) => {
                assert.ok(e instanceof RefusedError, e.message);
                assert.match(e.message, /\/dev\/md9 on root@198\.51\.100\.11:22 already exists with other members \(\/dev\/loop10, \/dev\/loop11\)/);
                assert.match(e.message, /Nothing was changed\. Choose another device name, or stop that array first/);
                return true;
            });
            assert.deepStrictEqual(host.plans, [], "no plan was applied");
            s.verify();
        });

        it("a member that is mounted: refused naming the disk, the host and the mount, nothing changed", async () => {
            const { s, host } = site(["/dev/loop12", "/dev/loop13"], () => undefined);
            host.on(argv("mdadm", "--examine", "--export"), noSuperblock).on(script("baremetal-in-use"), (c) =>
                ok(c.argv[4] === "/dev/loop12" ? "/dev/loop12 /mnt/data ext4 rw,relatime 0 0\n" : ""),
            );
            await assert.rejects(raidArray.create(inputs(), s.context()), (e: Error) => {
                assert.ok(e instanceof RefusedError, e.message);
                assert.match(e.message, /\/dev\/disk\/by-id\/virtio-bm-a \(\/dev\/loop12\) on root@198\.51\.100\.11:22 is in use: \/dev\/loop12 \/mnt\/data ext4/);
                assert.match(e.message, /Unmount it or remove it from its volume group, or choose another disk/);
                return true;
            });
            assert.deepStrictEqual(host.plans, []);
            assert.deepStrictEqual(changing(host.commands.map((c) => c.line)), []);
            s.verify();
        });

        it("a member carrying another array's superblock: refused with that array's uuid and how to free it, nothing changed", async () => {
            const { s, host } = site(["/dev/loop12", "/dev/loop13"], () => undefined);
            host.on(argv("mdadm", "--examine", "--export"), (c) => (c.argv[3] === "/dev/loop12" ? ok(fixture("examine-member.txt")) : noSuperblock)).on(
                script("baremetal-in-use"),
                ok(),
            );
            await assert.rejects(raidArray.create(inputs(), s.context()), /some members on root@198\.51\.100\.11:22 already carry the superblock of another md array \(5344d97d:eb8f1687:3173beef:40a4c7e0\)\. Nothing was changed\. Stop that array and zero its superblocks/);
            assert.deepStrictEqual(host.plans, []);
            s.verify();
        });

        it("delete of an array that is now another one (other uuid): refused, nothing stopped", async () => {
            const { s, host } = site(["/dev/loop10", "/dev/loop11"], () => clean);
            host.on(script("baremetal-mdadm-conf"), ok());
            const { outs } = await raidArray.create(inputs(), s.context());
            const plansBefore = host.plans.length;
            await assert.rejects(raidArray.delete(uuid, { ...outs, uuid: "00000000:11111111:22222222:33333333" }, s.context()), /\/dev\/md9 on root@198\.51\.100\.11:22 is now a different array \(uuid 71df7593.*Nothing was changed\. Refresh the stack/);
            assert.strictEqual(host.plans.length, plansBefore, "no plan after the refusal");
            assert.deepStrictEqual(host.ran(argv("mdadm", "--stop")), []);
            s.verify();
        });
    });

    describe("re-run after an interrupted create", () => {
        it("cut while mdadm --create ran: the re-run finds the array it made and records it; mdadm --create ran once", async () => {
            let made = false;
            const { s, host } = site(["/dev/loop10", "/dev/loop11"], () => (made ? clean : undefined));
            host.on(argv("mdadm", "--examine", "--export"), noSuperblock)
                .on(script("baremetal-in-use"), ok())
                .on(script("baremetal-install"), unchanged)
                .on(argv("mdadm", "--create"), droppedAfter(() => (made = true)))
                .on(script("baremetal-mdadm-conf"), ok());
            await assert.rejects(raidArray.create(inputs(), s.context()), /connection dropped/);
            assert.deepStrictEqual(host.ran(script("baremetal-mdadm-conf")), [], "the cut came before mdadm.conf was written");

            const plansBefore = host.plans.length;
            const { id } = await raidArray.create(inputs(), s.context());
            assert.strictEqual(id, uuid);
            assert.strictEqual(host.ran(argv("mdadm", "--create")).length, 1, "no second array");
            assert.deepStrictEqual(host.plans.slice(plansBefore).flat().map((st) => st.kind), ["run", "persist"], "the re-run only records it");
            assert.strictEqual(host.ran(script("baremetal-mdadm-conf")).length, 1);
            s.verify();
        });

        it("cut, then the array stopped (a reboot): the members carry its superblock, so the re-run assembles it instead of creating a second one", async () => {
            let assembled = false;
            // examine-member.txt, with the uuid of the array read-clean.txt shows
            const examined = fixture("examine-member.txt").replace(/^MD_UUID=.*$/m, `MD_UUID=${uuid}`);
            const { s, host } = site(["/dev/loop10", "/dev/loop11"], () => (assembled ? clean : undefined));
            host.on(argv("mdadm", "--examine", "--export"), ok(examined))
                .on(script("baremetal-in-use"), ok())
                .on(argv("mdadm", "--assemble"), () => ((assembled = true), ok()))
                .on(script("baremetal-mdadm-conf"), ok());
            const { id } = await raidArray.create(inputs(), s.context());
            assert.strictEqual(id, uuid);
            assert.deepStrictEqual(changing(host.commands.map((c) => c.line)), [`mdadm --assemble /dev/md9 --uuid=${uuid} /dev/loop10 /dev/loop11`]);
            assert.ok(s.log.kept().some((l) => l.includes(`the members already form array ${uuid}: assembling it as /dev/md9`)));
            s.verify();
        });
    });
});

// A step of a run whose connection was cut may still be running on the host
// (ScriptedRemote.cutWhileRunning): it holds the mdadm lock until it ends, and a
// read beside it sees the array half made. The first look of every operation
// takes the mdadm lock, so it sees what that step did.
describe("RaidArray re-runs while a step of the cut run still runs on the host", () => {
    /** read-clean.txt after /dev/loop12 joined and the array grew to three members. */
    const grown = clean.replace("MD_DEVICES=2", "MD_DEVICES=3").replace("==sysfs==", "MD_DEVICE_dev_loop12_ROLE=2\nMD_DEVICE_dev_loop12_DEV=/dev/loop12\n==sysfs==") + "member_loop12=in_sync\n";
    const firstRead = (host: { ran: (m: ReturnType<typeof script>) => { lock?: string }[] }, from: number) => host.ran(script("baremetal-md-read"))[from];

    it("create: mdadm --create still writing superblocks (one member done): the re-run waits for it and adopts the array, not refuses its own members", async () => {
        let made = false;
        const written = new Set<string>();
        const { s, host } = site(["/dev/loop10", "/dev/loop11"], () => (made ? clean : undefined));
        const examined = fixture("examine-member.txt").replace(/^MD_UUID=.*$/m, `MD_UUID=${uuid}`);
        const runsOn = host.cutWhileRunning(() => ((made = true), written.add("/dev/loop11")));
        host.on(argv("mdadm", "--examine", "--export"), (c) => (written.has(c.argv[3]) ? ok(examined) : noSuperblock))
            .on(script("baremetal-in-use"), ok())
            .on(script("baremetal-install"), unchanged)
            .on(argv("mdadm", "--create"), (c) => (written.add("/dev/loop10"), runsOn(c)))
            .on(script("baremetal-mdadm-conf"), ok());
        await assert.rejects(raidArray.create(inputs(), s.context()), /connection dropped/);
        assert.deepStrictEqual([made, [...written]], [false, ["/dev/loop10"]], "the cut left mdadm --create half way");

        const reads = host.ran(script("baremetal-md-read")).length;
        const { id } = await raidArray.create(inputs(), s.context());
        assert.strictEqual(id, uuid);
        assert.strictEqual(firstRead(host, reads).lock, "mdadm", "create's first look waits for the mdadm step still running");
        assert.strictEqual(host.ran(argv("mdadm", "--create")).length, 1, "no second mdadm --create");
        assert.ok(s.log.kept().some((l) => /already exists with the same members: adopting it/.test(l)));
        s.verify();
    });

    it("update: mdadm --grow still running: the re-run sees three members and adds and grows nothing again; refresh reads under the lock too", async () => {
        let grew = false;
        const kernel: Record<string, string> = { [members[0]]: "/dev/loop10", [members[1]]: "/dev/loop11", "/dev/disk/by-id/virtio-bm-c": "/dev/loop12" };
        const { s, host } = site([], () => (grew ? grown : clean));
        host.on(script("baremetal-resolve"), (c) => ok(c.argv.slice(4).map((m) => kernel[String(m)]).join("\n") + "\n"))
            .on(script("baremetal-install"), unchanged)
            .on(script("baremetal-mdadm-conf"), ok());
        const { outs: olds } = await raidArray.create(inputs(), s.context());
        const news = inputs({ members: [...members, "/dev/disk/by-id/virtio-bm-c"] });
        // Once the grow has ended, mdadm refuses both again, as it does on a real array.
        host.on(argv("mdadm", "/dev/md9", "--add"), () => (grew ? exit(1, "mdadm: Cannot open /dev/loop12: Device or resource busy") : ok()))
            .on(argv("mdadm", "--grow"), host.cutWhileRunning(() => (grew = true)));
        await assert.rejects(raidArray.update(uuid, olds, news, s.context()), /connection dropped/);
        assert.strictEqual(grew, false);

        const reads = host.ran(script("baremetal-md-read")).length;
        const outs = await raidArray.update(uuid, olds, news, s.context());
        assert.strictEqual(firstRead(host, reads).lock, "mdadm", "update's first look waits for mdadm --grow");
        assert.deepStrictEqual(outs.activeMembers, news.members);
        assert.strictEqual(host.ran(argv("mdadm", "/dev/md9", "--add")).length, 1, "the member is added once");
        assert.strictEqual(host.ran(argv("mdadm", "--grow")).length, 1, "the array is grown once");

        const before = host.ran(script("baremetal-md-read")).length;
        await raidArray.read(uuid, outs, s.context());
        assert.strictEqual(firstRead(host, before).lock, "mdadm", "refresh does not record a half-grown array either");
        s.verify();
    });

    it("delete: mdadm --stop still running: the re-run finds the array stopped and finishes without a second --stop", async () => {
        let stopped = false;
        const { s, host } = site(["/dev/loop10", "/dev/loop11"], () => (stopped ? undefined : clean));
        host.on(script("baremetal-mdadm-conf"), ok());
        const { outs } = await raidArray.create(inputs(), s.context());
        host.on(argv("mdadm", "--stop"), host.cutWhileRunning(() => (stopped = true)));
        await assert.rejects(raidArray.delete(uuid, outs, s.context()), /connection dropped/);
        assert.strictEqual(stopped, false);
        host.on(argv("mdadm", "--stop"), exit(1, "mdadm: error opening /dev/md9: No such file or directory"));

        const reads = host.ran(script("baremetal-md-read")).length;
        await raidArray.delete(uuid, outs, s.context());
        assert.strictEqual(firstRead(host, reads).lock, "mdadm", "delete's first look waits for mdadm --stop");
        assert.strictEqual(host.ran(argv("mdadm", "--stop")).length, 1, "no second --stop");
        assert.deepStrictEqual(host.ran(script("baremetal-mdadm-conf")).slice(-1).map((c) => c.argv.slice(4)), [["/etc/mdadm/mdadm.conf", uuid, ""]], "its ARRAY line is removed");
        s.verify();
    });
});
