// SSH cut mid-create, mid-update and mid-delete for the storage kinds (issue
// #10): RaidArray, VolumeGroup and NbdVolume on lab VM ceph1, through the fault
// harness (a TCP proxy in front of ceph1's sshd that drops every connection
// while a chosen plan step runs, the moment ceph1 shows that step's command
// running: mdadm, vgcreate, lvcreate ...). After each cut the same operation runs again,
// as the next `pulumi up` would, and the test looks at ceph1 directly for
// duplicates, the intended final state and (for the volume) the data written
// before.
//
// One chain is built and torn down, with a cut inside every operation:
//   RAID1 (create) → VG on it (create) → LV + NBD export + Consul entry (create)
//   → data written → grow the LV (update) → replace a RAID member (update)
//   → add a PV to the VG (update) → delete the LV (delete) → the VG (delete)
//   → the array (delete).
// ceph1 is shared: this file uses only its two 1 GiB disks (vde, vdf, by-id
// virtio-bm-ceph1-4/-5), partitioned into two small parts each so that a member
// replacement and a second PV exist without a third disk, and names everything
// `bmfault*`. Other helpers own vda-vdd, the Ceph cluster, guests, containers
// and bridges on ceph1: nothing here touches those.
import * as assert from "assert";
import { kinds } from "../../provider";
import type { OperationContext } from "../../provider/core/resource";
import type { NbdVolumeInputs, NbdVolumeState, RaidArrayInputs, RaidArrayState, VolumeGroupInputs, VolumeGroupState } from "../../provider";
import { CutSign, FaultLab, figure, pausedRun, reportCut, runs } from "./faultHarness";

const vm = "ceph1";
const diskE = "/dev/disk/by-id/virtio-bm-ceph1-4";
const diskF = "/dev/disk/by-id/virtio-bm-ceph1-5";
// Array members A and B, the replacement C (on the other disk than A, so the mirror still spans both), the VG's second PV.
const partA = `${diskE}-part1`;
const partB = `${diskF}-part1`;
const partC = `${diskF}-part2`;
const partPv2 = `${diskE}-part2`;
const mdDevice = "/dev/md30";
const arrayName = "bmfault";
const vgName = "bmfaultvg";
const lvName = "bmfaultlv";
const unit = `baremetal-nbd@${vgName}-${lvName}`;
const port = 10931;
const consulNode = "bmfault-ceph1";
const serviceName = "bmfault-nbd";
const owner = "52:54:00:bf:00:01";
const dataBytes = 8 << 20;

/** Removes what this file makes (and only that): a failed earlier run must not block the next. */
const cleanScript = [
    `systemctl stop '${unit}' 2>/dev/null; systemctl disable --quiet '${unit}' 2>/dev/null; systemctl reset-failed '${unit}' 2>/dev/null`,
    `rm -f /etc/nbd-server/baremetal/${vgName}-*`,
    "udevadm settle",
    `vgs ${vgName} >/dev/null 2>&1 && { lvremove -q -y ${vgName}; vgremove -q -y ${vgName}; }`,
    // Any array that holds a part of vde/vdf is ours (the disks are ours alone).
    "for md in /dev/md[0-9]*; do [ -b \"$md\" ] || continue; mdadm --detail \"$md\" 2>/dev/null | grep -q -E '/dev/vd[ef]' || continue; pvremove -q -y \"$md\" 2>/dev/null; mdadm --stop \"$md\"; done",
    "for d in /dev/vde?* /dev/vdf?*; do [ -b \"$d\" ] || continue; pvremove -q -y \"$d\" 2>/dev/null; mdadm --zero-superblock \"$d\" 2>/dev/null; wipefs -q -a \"$d\"; done",
    `[ -f /etc/mdadm/mdadm.conf ] && sed -i '/:${arrayName} /d' /etc/mdadm/mdadm.conf`,
    "wipefs -q -a /dev/vde /dev/vdf",
    "udevadm settle",
    "true",
].join("\n");

/** Two parts on each disk: A|PV2 on vde, B|C on vdf. */
const partitionScript = [
    "set -e",
    "for d in /dev/vde /dev/vdf; do parted -s \"$d\" mklabel gpt mkpart bmfault1 1MiB 161MiB mkpart bmfault2 161MiB 321MiB; done",
    "udevadm settle",
    `for p in ${partA} ${partB} ${partC} ${partPv2}; do [ -b "$p" ]; done`,
].join("\n");

/**
 * The operation's own log (what each step did: `done` or `already so`, and what
 * it adopted), kept beside the harness's reporter so the figures can say what
 * the cut left and what the re-run had to do.
 */
class StepLog {
    readonly lines: string[] = [];
    tap(ctx: OperationContext): OperationContext {
        return {
            ...ctx,
            log: {
                info: (m) => {
                    this.lines.push(m.replace(/^\S+@127\.0\.0\.1:\d+: /, ""));
                    ctx.log.info(m);
                },
                warn: (m) => ctx.log.warn(m),
                progress: (m) => ctx.log.progress(m),
            },
        };
    }
}

/** Runs several shell commands over ONE ssh session (a new session costs seconds on a loaded TCG VM); output by name. */
function probeScript(sections: Record<string, string>): string {
    return Object.entries(sections)
        .map(([name, cmd]) => `echo '==${name}=='; { ${cmd}; } 2>&1`)
        .concat("true") // a section's status (grep finding nothing) is data, not a failure
        .join("\n");
}

function parseProbe(out: string): Record<string, string> {
    const r: Record<string, string> = {};
    let name: string | undefined;
    for (const line of out.split("\n")) {
        const m = /^==([A-Za-z0-9]+)==$/.exec(line);
        if (m) r[(name = m[1])] = "";
        else if (name !== undefined) r[name] += r[name] === "" ? line : `\n${line}`;
    }
    for (const k of Object.keys(r)) r[k] = r[k].trim();
    return r;
}

describe("ceph1 storage faults: SSH cut mid-create, mid-update, mid-delete (RaidArray, VolumeGroup, NbdVolume)", function () {
    this.timeout(20 * 60_000);
    let f: FaultLab;
    let consulAddr: string;
    let raidState: RaidArrayState;
    let vgState: VolumeGroupState;
    let nbdState: NbdVolumeState;
    let dataSum: string;
    // Set when this file starts (the describe body runs when mocha loads every file).
    let t0 = 0;

    const on = (command: string) => f.sh.sh(vm, command, 300_000);
    const probe = async (sections: Record<string, string>) => parseProbe(await on(probeScript(sections)));
    const lines = (text: string) => text.split("\n").filter((l) => l.trim() !== "");

    async function consulEntries(): Promise<unknown[]> {
        const r = await fetch(`http://${consulAddr}/v1/catalog/service/${serviceName}`);
        return (await r.json()) as unknown[];
    }

    async function cleanLab(): Promise<void> {
        await on(cleanScript);
        await fetch(`http://${consulAddr}/v1/catalog/deregister`, { method: "PUT", body: JSON.stringify({ Node: consulNode }) });
    }

    function raidInputs(members: string[], olds: Record<string, unknown> = {}): RaidArrayInputs {
        const c = kinds.RaidArray.check(olds, { connection: f.connection(vm), device: mdDevice, members, name: arrayName, waitForSync: false });
        assert.deepStrictEqual(c.failures, []);
        return c.inputs as RaidArrayInputs;
    }

    function vgInputs(devices: string[], olds: Record<string, unknown> = {}): VolumeGroupInputs {
        const c = kinds.VolumeGroup.check(olds, { connection: f.connection(vm), name: vgName, devices, allowDataLoss: true });
        assert.deepStrictEqual(c.failures, []);
        return c.inputs as VolumeGroupInputs;
    }

    function nbdInputs(size: string, olds: Record<string, unknown> = {}): NbdVolumeInputs {
        const c = kinds.NbdVolume.check(olds, {
            connection: f.connection(vm), volumeGroup: vgName, name: lvName, size, port, owner,
            allowedClients: [f.lab.vms[vm].addresses.storage], exportAddress: f.lab.vms[vm].addresses.storage,
            consul: { address: consulAddr }, consulNode, serviceName,
        });
        assert.deepStrictEqual(c.failures, []);
        return c.inputs as NbdVolumeInputs;
    }

    /**
     * Cuts `op` when ceph1 shows `sign` during the step matching `step`, runs it
     * again, prints the figures: where the cut landed (did the step finish before
     * it?), the times, and what each step of the re-run did.
     */
    async function cutAndRerun<T>(what: string, step: RegExp, sign: CutSign, op: (ctx: OperationContext) => Promise<T>): Promise<T> {
        const first = new StepLog();
        const cut = await f.cutDuring(vm, step, sign, (ctx) => op(first.tap(ctx)));
        const second = new StepLog();
        const again = await f.rerun((ctx) => op(second.tap(ctx)));
        reportCut(what, cut, again.seconds);
        const cutStepDone = first.lines.some((l) => l.startsWith(`${cut.step}: `));
        figure(`${what}: the cut step`, cutStepDone ? "had finished (the cut landed in a later step)" : "had not reported back (the cut landed while its command was on the wire or running)");
        figure(`${what}: re-run ran`, again.steps.length === 0 ? "no step (nothing left to do)" : again.steps.join(" | "));
        if (second.lines.length > 0) figure(`${what}: re-run said`, second.lines.join(" | "));
        return again.result;
    }

    /** One md array on vde/vdf (ours alone), md30, listed once by mdadm and in mdadm.conf, with exactly these members. */
    function assertOneArray(p: Record<string, string>): void {
        const ours = lines(p.mdstat).filter((l) => /^md\d+ :/.test(l) && /\bvd[ef]\d/.test(l));
        assert.strictEqual(ours.length, 1, `one array on vde/vdf expected:\n${p.mdstat}`);
        assert.match(ours[0], /^md30 : active raid1 /);
        assert.strictEqual(lines(p.scan).length, 1, `mdadm --detail --scan must list the array once:\n${p.scan}`);
        assert.strictEqual(lines(p.conf).length, 1, `mdadm.conf must hold one ARRAY line:\n${p.conf}`);
        const inArray = [...ours[0].matchAll(/\b(vd[ef]\d)\[\d+\](\(F\))?/g)].filter((m) => !m[2]).map((m) => m[1]).sort();
        assert.deepStrictEqual(inArray, lines(p.members).map((l) => l.replace("/dev/", "")).sort(), `members of md30: ${ours[0]}`);
    }
    const arraySections = (members: string[]) => ({
        mdstat: "cat /proc/mdstat",
        scan: `mdadm --detail --scan | grep ':${arrayName} '`,
        conf: `grep ':${arrayName} ' /etc/mdadm/mdadm.conf`,
        members: `readlink -f ${members.join(" ")}`,
    });

    /** The data checks: the first dataBytes over NBD (from ceph1 itself) and on the LV must agree. */
    const dataSections = () => ({
        overNbd: `nbdcopy ${nbdState.uri} - | head -c ${dataBytes} | sha256sum`,
        onLv: `head -c ${dataBytes} /dev/${vgName}/${lvName} | sha256sum`,
    });
    function dataChecksum(p: Record<string, string>): string {
        const [overNbd, onLv] = [p.overNbd.split(" ")[0], p.onLv.split(" ")[0]];
        assert.match(onLv, /^[0-9a-f]{64}$/, p.onLv);
        assert.strictEqual(overNbd, onLv, "the export and the LV must hold the same bytes");
        return onLv;
    }

    const nbdSections = () => ({
        lvs: `lvs --noheadings -o lv_name ${vgName}`,
        units: `systemctl list-units --all --no-legend 'baremetal-nbd@${vgName}-*'`,
        active: `systemctl is-active ${unit}`,
        procs: `pgrep -f '[n]bd-server -C /etc/nbd-server/baremetal/${vgName}-'`,
        size: `nbdinfo --size ${nbdState.uri}`,
    });
    async function assertNbdServing(p: Record<string, string>, sizeBytes: number): Promise<void> {
        assert.strictEqual(lines(p.lvs).length, 1, `one LV in the VG:\n${p.lvs}`);
        assert.strictEqual(lines(p.units).length, 1, `one nbd unit:\n${p.units}`);
        assert.strictEqual(p.active, "active");
        assert.strictEqual(lines(p.procs).length, 1, `one nbd-server process:\n${p.procs}`);
        assert.strictEqual(p.size, String(sizeBytes));
        assert.strictEqual((await consulEntries()).length, 1, "one Consul entry");
    }

    before(async function () {
        t0 = Date.now();
        f = await FaultLab.open([vm]);
        consulAddr = f.lab.consul.httpAddr;
        const c0 = Date.now();
        await on("modprobe raid1; systemctl start systemd-udevd; true");
        await cleanLab();
        await on(partitionScript);
        figure("clean-up of earlier leftovers + partitioning", (Date.now() - c0) / 1000);
    });

    after(async function () {
        if (f) {
            await cleanLab().catch((e) => console.log(`      cleanup failed: ${String(e)}`));
            await f.close();
        }
        figure("whole file", (Date.now() - t0) / 1000);
    });

    it("RaidArray: cut during `mdadm --create`; the re-run adopts the array (one md30)", async () => {
        const inputs = raidInputs([partA, partB]);
        const r = await cutAndRerun("RaidArray create", /create raid1/, runs("mdadm", /--create \/dev\/md30 /), (ctx) => kinds.RaidArray.create(inputs, ctx));
        raidState = r.outs;
        assert.deepStrictEqual(raidState.activeMembers, [partA, partB]);
        assertOneArray(await probe(arraySections([partA, partB])));
    });

    it("VolumeGroup: cut during `vgcreate`; the re-run ends with one VG on md30", async () => {
        const inputs = vgInputs([mdDevice]);
        const r = await cutAndRerun("VolumeGroup create", /create volume group/, runs("vgcreate", /-q --addtag \S+ bmfaultvg /), (ctx) => kinds.VolumeGroup.create(inputs, ctx));
        vgState = r.outs;
        assert.deepStrictEqual(vgState.physicalVolumes, [mdDevice]);
        const p = await probe({ vgs: `vgs --noheadings -o vg_name | grep -w ${vgName}`, pvs: `pvs --noheadings -o pv_name,vg_name ${mdDevice}` });
        assert.strictEqual(lines(p.vgs).length, 1);
        assert.match(p.pvs, /\/dev\/md30\s+bmfaultvg/);
    });

    it("NbdVolume: cut during `lvcreate`; the re-run serves one export, registered once; data written", async () => {
        const inputs = nbdInputs("32MiB");
        nbdState = (await cutAndRerun("NbdVolume create", /create logical volume/, runs("lvcreate", /-q -y -L \d+b -n bmfaultlv /), (ctx) => kinds.NbdVolume.create(inputs, ctx))).outs;
        assert.strictEqual(nbdState.sizeBytes, 32 << 20);
        assert.strictEqual(nbdState.serving, true);
        assert.strictEqual(nbdState.registered, true);
        const p = await probe({
            ...nbdSections(),
            written: `head -c ${dataBytes} /dev/urandom >/tmp/bmfault-data && dd if=/tmp/bmfault-data of=/dev/${vgName}/${lvName} bs=1M oflag=direct status=none && sha256sum </tmp/bmfault-data; rm -f /tmp/bmfault-data`,
            ...dataSections(),
        });
        await assertNbdServing(p, 32 << 20);
        dataSum = dataChecksum(p);
        assert.strictEqual(dataSum, p.written.split(" ")[0]);
    });

    it("NbdVolume: cut during the online grow (`lvextend`); the re-run ends at 64 MiB, data unchanged", async () => {
        const olds = nbdState;
        const news = nbdInputs("64MiB", olds as unknown as Record<string, unknown>);
        assert.strictEqual(kinds.NbdVolume.diff(olds.uri, olds, news).replaces.length, 0, "a grow is an in-place update");
        nbdState = await cutAndRerun("NbdVolume update (grow 32 → 64 MiB)", /grow bmfaultvg\/bmfaultlv/, runs("lvextend", /-q -L \d+b bmfaultvg\/bmfaultlv$/), (ctx) => kinds.NbdVolume.update(olds.uri, olds, news, ctx));
        assert.strictEqual(nbdState.sizeBytes, 64 << 20);
        const p = await probe({ ...nbdSections(), ...dataSections() });
        await assertNbdServing(p, 64 << 20);
        assert.strictEqual(dataChecksum(p), dataSum, "the data written before the grow must be unchanged");
    });

    it("RaidArray: cut while replacing a member (`mdadm --remove`); the re-run finishes the swap, data unchanged", async () => {
        const olds = raidState;
        const news = raidInputs([partA, partC], olds as unknown as Record<string, unknown>);
        assert.strictEqual(kinds.RaidArray.diff(olds.uuid, olds, news).replaces.length, 0, "a member change is an in-place update");
        // `mdadm --remove` of a member already marked failed ends in a few ms: in two full CI runs the
        // watcher's /proc scan on a loaded ceph1 missed it. Paused at its start (pausedRun), it is seen every time.
        raidState = await cutAndRerun("RaidArray update (replace member B by C)", /remove .* from \/dev\/md30/, pausedRun("mdadm", "/dev/md30 --remove"), (ctx) => kinds.RaidArray.update(olds.uuid, olds, news, ctx));
        assert.deepStrictEqual(raidState.activeMembers, [partA, partC]);
        assert.deepStrictEqual(raidState.failedMembers, []);
        const p = await probe({ ...arraySections([partA, partC]), uuid: `mdadm --detail --export ${mdDevice} | sed -n 's/^MD_UUID=//p'`, ...dataSections() });
        assert.strictEqual(raidState.uuid, p.uuid, "the same array, not a new one");
        assertOneArray(p);
        assert.strictEqual(dataChecksum(p), dataSum, "the data must survive the member swap");
    });

    it("VolumeGroup: cut while adding a PV (`vgextend`); the re-run ends with one VG on two PVs", async () => {
        const olds = vgState;
        const news = vgInputs([mdDevice, partPv2], olds as unknown as Record<string, unknown>);
        assert.strictEqual(kinds.VolumeGroup.diff(olds.uuid, olds, news).replaces.length, 0, "adding a PV is an in-place update");
        vgState = await cutAndRerun("VolumeGroup update (add a PV)", /add .* to bmfaultvg/, runs("vgextend", /-q bmfaultvg /), (ctx) => kinds.VolumeGroup.update(olds.uuid, olds, news, ctx));
        const p = await probe({
            pv2: `readlink -f ${partPv2}`,
            uuid: `vgs --noheadings -o vg_uuid ${vgName}`,
            vgs: `vgs --noheadings -o vg_name | grep -w ${vgName}`,
            pvs: `pvs --noheadings -o pv_name -S vg_name=${vgName}`,
            ...dataSections(),
        });
        assert.deepStrictEqual(vgState.physicalVolumes, [mdDevice, p.pv2].sort());
        assert.strictEqual(vgState.uuid, p.uuid.trim(), "the same VG, not a new one");
        assert.strictEqual(lines(p.vgs).length, 1);
        assert.strictEqual(lines(p.pvs).length, 2);
        assert.strictEqual(dataChecksum(p), dataSum);
    });

    it("NbdVolume: cut during `lvremove` (allowDataLoss: true); the re-run leaves no LV, unit, process, file or Consul entry", async () => {
        // The opt-in as `pulumi up` would have stored it before the destroy.
        const state: NbdVolumeState = { ...nbdState, allowDataLoss: true };
        await cutAndRerun("NbdVolume delete", /remove logical volume/, runs("lvremove", /-q -y bmfaultvg\/bmfaultlv$/), (ctx) => kinds.NbdVolume.delete(state.uri, state, ctx));
        const p = await probe({ ...nbdSections(), files: `ls /etc/nbd-server/baremetal/ | grep '^${vgName}-'` });
        assert.deepStrictEqual([lines(p.lvs), lines(p.units), lines(p.procs), lines(p.files)], [[], [], [], []], JSON.stringify(p));
        assert.deepStrictEqual(await consulEntries(), []);
    });

    it("VolumeGroup: cut during `vgremove` (allowDataLoss: true); the re-run leaves no VG and no PV labels", async () => {
        const state = vgState;
        await cutAndRerun("VolumeGroup delete", /remove volume group/, runs("vgremove", /-q bmfaultvg$/), (ctx) => kinds.VolumeGroup.delete(state.uuid, state, ctx));
        const p = await probe({ vgs: `vgs --noheadings -o vg_name | grep -w ${vgName}`, pvs: `pvs --noheadings -o pv_name | grep -w -e ${state.physicalVolumes.join(" -e ")}` });
        assert.deepStrictEqual(lines(p.vgs), []);
        assert.deepStrictEqual(lines(p.pvs), [], "the PV labels must be wiped");
    });

    it("RaidArray: cut during `mdadm --stop` (allowDataLoss: true); the re-run leaves no array, no ARRAY line, no superblocks", async () => {
        const state: RaidArrayState = { ...raidState, allowDataLoss: true };
        // `mdadm --stop` of a small idle array can end between two of the watcher's /proc scans (CI, session
        // 19: "the step ended before ceph1 showed a process"); paused at its start (pausedRun), it is seen every time.
        await cutAndRerun("RaidArray delete", /stop \/dev\/md30/, pausedRun("mdadm", "--stop /dev/md30"), (ctx) => kinds.RaidArray.delete(state.uuid, state, ctx));
        const p = await probe({
            mdstat: "cat /proc/mdstat",
            scan: `mdadm --detail --scan | grep ':${arrayName} '`,
            conf: `grep -F '${state.uuid}' /etc/mdadm/mdadm.conf`,
            superblocks: `for p in ${partA} ${partC}; do mdadm --examine --export "$p" 2>/dev/null | grep '^MD_UUID='; done`,
        });
        assert.doesNotMatch(p.mdstat, /\bvd[ef]\d/);
        assert.deepStrictEqual(lines(p.scan), []);
        assert.deepStrictEqual(lines(p.conf), [], "mdadm.conf must not keep the ARRAY line");
        assert.deepStrictEqual(lines(p.superblocks), [], "the members' superblocks must be zeroed");
    });
});
