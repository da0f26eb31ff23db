// VolumeGroup: an LVM2 volume group on a machine (the seed's SAN VM puts one on
// /dev/md0 and carves NBD-exported logical volumes out of it).
//
// ID: the VG's UUID as LVM prints it (e.g. `IA28An-d0yf-G565-...`).
// Data safety: devices that carry anything (a mount, an md array, a file system,
// another VG's PV) are refused; delete is refused unless `allowDataLoss` is set,
// and even then while the VG still holds logical volumes.
import { RefusedError } from "../core/errors";
import { CheckOutcome, DiffOutcome, OperationContext, ResourceKind } from "../core/resource";
import { checkByTable, diffByTable, erase, KindSpec, t, valueAt } from "../core/fields";
import { applyDataLossAlias, dataLossFields, withCurrentOptIn } from "../core/dataLoss";
import { Validator } from "../core/validate";
import { connectionField, distributionOf, HostConnection, hostLocks, Plan, Remote, resolvePaths, step } from "../host";
import type { OsFamily } from "../host";
import { DeviceProbe, ownTag, parseDeviceProbe, parsePvs, parseVgs, PvReport, pvFields, reportOptions, VgReport, vgFields, vgNamePattern } from "../parsers/lvm";

export interface VolumeGroupInputs {
    connection: HostConnection;
    name: string;
    devices: string[];
    adopt: boolean;
    allowDataLoss: boolean;
    wipeOnDelete?: boolean;
}

export interface VolumeGroupState extends VolumeGroupInputs {
    uuid: string;
    sizeBytes: number;
    freeBytes: number;
    extentBytes: number;
    lvCount: number;
    physicalVolumes: string[];
}

export const spec: KindSpec<VolumeGroupInputs, VolumeGroupState> = {
    kind: "VolumeGroup",
    doc: "An LVM2 volume group on a machine (the seed's SAN VM puts one on its RAID array and carves NBD-exported volumes out of it). An existing VG with the same name and devices is adopted; one that pulumi-baremetal did not create needs adopt. Devices that carry anything (a mount, an md array, a file system, another VG's PV) are refused. Delete is refused unless allowDataLoss is set, and even then while the VG still holds logical volumes.",
    id: "the VG's UUID as LVM prints it (`vgs -o vg_uuid`), e.g. `IA28An-d0yf-G565-4Mfa-Xq3o-tbCs-6ZKd2H`.",
    example: `new VolumeGroup("san1-vg0", {
    connection,
    name: "vg0",
    devices: ["/dev/md0"],
});`,
    exampleHost: "198.51.100.11",
    deleteBeforeReplace: true,
    inputs: {
        connection: connectionField("The machine that holds the devices. A new host re-creates the VG, which needs allowDataLoss."),
        name: {
            type: t.string(),
            required: true,
            change: "replace",
            doc: "The VG name, e.g. `vg0`. A new name re-creates the VG, which needs allowDataLoss.",
            rule: { pattern: vgNamePattern, patternHint: "is not a VG name (letters, digits, _ . -; not starting with -)" },
        },
        devices: {
            type: t.array(t.string()),
            required: true,
            doc: "Block devices that become its physical volumes, e.g. `[raid.device]`. Devices that are mounted, md members, PVs of another VG or carry a file system are refused. Adding a device extends the VG in place; removing one reduces it (LVM refuses if it still holds data).",
            rule: { minItems: 1, maxItems: 64, unique: true },
            check: checkDevices,
        },
        adopt: { type: t.boolean, default: false, doc: "Take over an existing VG of this name and these devices that pulumi-baremetal did not create (nothing in it is changed)." },
        ...dataLossFields(
            "wipeOnDelete",
            "Allow this VG to destroy the data it holds: on delete (vgremove, pvremove) and on a change that re-creates it. Without it, either is refused and nothing changes; with it, delete is still refused while the VG holds logical volumes.",
        ),
    },
    outputs: {
        uuid: { type: t.string(), required: true, stable: true, doc: "The VG's UUID (the ID)." },
        sizeBytes: { type: t.integer, required: true, doc: "Size of the VG in bytes." },
        freeBytes: { type: t.integer, required: true, doc: "Bytes not yet given to logical volumes." },
        extentBytes: { type: t.integer, required: true, doc: "Size of one physical extent in bytes (LVs are sized in whole extents)." },
        lvCount: { type: t.integer, required: true, doc: "Logical volumes in the VG when last read." },
        physicalVolumes: { type: t.array(t.string()), required: true, doc: "The PVs as the kernel names them (`/dev/md0`); `devices` keeps the declared paths." },
    },
};

function checkDevices(v: Validator, field: string, value: unknown): string[] | undefined {
    const rule = spec.inputs.devices.rule ?? {};
    const devices = v.list(field, value, (f, d) => v.devicePath(f, d), { min: rule.minItems, max: rule.maxItems });
    if (Array.isArray(devices) && new Set(devices).size !== devices.length) return v.fail(field, "lists the same device twice");
    return devices;
}

export function check(olds: Record<string, unknown>, news: Record<string, unknown>): CheckOutcome<VolumeGroupInputs> {
    const v = new Validator();
    const inputs = checkByTable(v, erase(spec), news) as Partial<VolumeGroupInputs>;
    applyDataLossAlias(v, inputs, news, "wipeOnDelete");
    // A new name or host means a new VG on those devices: the old one (and its LVs) goes.
    // Only fields whose new value is valid, so a bad name is not also reported as a re-create.
    if (olds.name !== undefined && inputs.allowDataLoss === false) {
        for (const f of diffByTable(erase(spec), olds, inputs).replaces.filter((p) => valueAt(inputs, p) !== undefined)) {
            v.fail(f, `changing ${f} re-creates the volume group and destroys its logical volumes; set allowDataLoss: true to allow it (nothing was changed)`);
        }
    }
    if (!v.ok) return { failures: v.failures };
    return { inputs: inputs as VolumeGroupInputs, failures: [] };
}

export function diff(_id: string, olds: VolumeGroupState, news: VolumeGroupInputs): DiffOutcome {
    const d = diffByTable(erase(spec), withCurrentOptIn(olds, "wipeOnDelete") as unknown as Record<string, unknown>, news as unknown as Record<string, unknown>);
    // The new VG wants the same devices: the old one must go first.
    return { changes: d.changed.length > 0, replaces: d.replaces, stables: d.stables, deleteBeforeReplace: true };
}

// ---- plans (data) ---------------------------------------------------------------

/** pvcreate where needed, vgcreate with our tag, and (Alpine) activation at boot. */
export function planCreate(inputs: VolumeGroupInputs, family: OsFamily, alreadyPvs: string[] = []): Plan {
    const fresh = inputs.devices.filter((d) => !alreadyPvs.includes(d));
    return [
        step.ensurePackages("lvm2"),
        ...(fresh.length > 0 ? [step.run(["pvcreate", "-q", ...fresh], { lock: hostLocks.lvm, what: `make ${fresh.join(", ")} LVM physical volumes` })] : []),
        step.run(["vgcreate", "-q", "--addtag", ownTag, inputs.name, ...inputs.devices], { lock: hostLocks.lvm, what: `create volume group ${inputs.name} on ${inputs.devices.join(", ")}` }),
        ...planBootActivation(family),
    ];
}

/**
 * Debian's udev rules activate VGs at boot by themselves (with or without
 * systemd); Alpine needs its `lvm` service, and a diskless box persists what
 * was made (`lbu commit`, or the /etc archive of "debian-openrc").
 */
export function planBootActivation(family: OsFamily): Plan {
    return distributionOf(family) === "alpine" ? [step.service("enable", "lvm"), step.persist()] : [step.persist()];
}

export function planAddDevices(name: string, devices: string[]): Plan {
    return devices.length === 0
        ? []
        : [
              step.run(["pvcreate", "-q", ...devices], { lock: hostLocks.lvm, what: `make ${devices.join(", ")} LVM physical volumes` }),
              step.run(["vgextend", "-q", name, ...devices], { lock: hostLocks.lvm, what: `add ${devices.join(", ")} to ${name}` }),
          ];
}

/** vgreduce refuses a PV that still holds extents: LVM's own safety net (pvmove first). */
export function planRemoveDevices(name: string, devices: string[]): Plan {
    return devices.length === 0
        ? []
        : [
              step.run(["vgreduce", "-q", name, ...devices], { lock: hostLocks.lvm, what: `remove ${devices.join(", ")} from ${name}` }),
              step.run(["pvremove", "-q", ...devices], { lock: hostLocks.lvm, what: `wipe the LVM labels of ${devices.join(", ")}` }),
          ];
}

export function planDelete(name: string, pvs: string[]): Plan {
    return [step.run(["vgremove", "-q", name], { lock: hostLocks.lvm, what: `remove volume group ${name}` }), ...planWipeLabels(pvs)];
}

/** pvremove of PVs that belong to no VG (any more); nothing when there are none. */
export function planWipeLabels(pvs: string[]): Plan {
    return pvs.length === 0 ? [] : [step.run(["pvremove", "-q", ...pvs], { lock: hostLocks.lvm, what: `wipe the LVM labels of ${pvs.join(", ")}` }), step.persist()];
}

/**
 * The PVs of a deleted VG that still carry their LVM label (a delete cut after
 * vgremove ran): only ours (listed in the state) and only those in no VG.
 */
export function orphanedPvs(pvs: PvReport[], ours: string[]): string[] {
    return pvs.filter((pv) => pv.vg === "" && ours.includes(pv.device)).map((pv) => pv.device).sort();
}

// ---- reading the host -----------------------------------------------------------

/**
 * Prints, per device, what would make it unsafe to turn into a PV. Devices
 * arrive as "$@"; nothing is spliced into the script.
 */
export const probeScript = [
    'for d in "$@"; do',
    '  r=$(readlink -f -- "$d")',
    '  printf "device=%s\\npath=%s\\n" "$d" "$r"',
    '  if [ ! -b "$r" ]; then printf "missing=1\\nend=1\\n"; continue; fi',
    '  printf "mounted=%s\\n" "$(awk -v d="$r" \'$1 == d { print $2; exit }\' /proc/mounts)"',
    '  printf "holders=%s\\n" "$(ls "/sys/class/block/$(basename "$r")/holders" 2>/dev/null | tr "\\n" " ")"',
    '  blkid -p -o export "$r" 2>/dev/null | sed -n "s/^TYPE=/fs_TYPE=/p"',
    '  printf "pv_vg=%s\\n" "$(pvs --noheadings -o vg_name -- "$r" 2>/dev/null | tr -d " ")"',
    '  echo end=1',
    'done',
].join("\n");

async function probe(host: Remote, devices: string[]): Promise<DeviceProbe[]> {
    // udev may still be settling after a RaidArray was just assembled.
    await host.exec(["udevadm", "settle", "--timeout=30"], { timeoutMs: 40_000 });
    const out = await host.run(["sh", "-c", probeScript, "baremetal-pv-probe", ...devices], { what: `inspect ${devices.join(", ")}` });
    return parseDeviceProbe(out.stdout);
}

/** Why a device must not become a PV of `vg`, or undefined when it may. */
export function refusalFor(p: DeviceProbe, vg: string): string | undefined {
    if (p.missing) return `${p.device} does not exist`;
    if (p.mountpoint) return `${p.device} (${p.path}) is mounted on ${p.mountpoint}`;
    if (p.pvVg && p.pvVg !== vg) return `${p.device} (${p.path}) is a physical volume of volume group ${p.pvVg}`;
    if (p.pvVg === vg) return undefined;
    if (p.holders.length > 0) return `${p.device} (${p.path}) is in use by ${p.holders.join(", ")} (an md array or device-mapper device)`;
    if (p.signature === "linux_raid_member") return `${p.device} (${p.path}) carries an md RAID superblock (a member of an array)`;
    // An orphan PV (LVM label, no VG) holds nothing: it may be reused.
    if (p.signature && p.signature !== "LVM2_member") return `${p.device} (${p.path}) carries a ${p.signature} signature (a file system or other data)`;
    return undefined;
}

async function readVg(host: Remote, name: string, lock?: typeof hostLocks.lvm): Promise<VgReport | undefined> {
    const out = await host.run(["vgs", ...reportOptions, "-o", vgFields, "--", name], { okExitCodes: [0, 5], what: `read volume group ${name}`, ...(lock ? { lock } : {}) });
    return parseVgs(out.stdout).find((vg) => vg.name === name);
}

/**
 * The first read of create, update, delete and refresh, under the LVM lock every
 * LVM step holds. A step of an earlier run whose connection was cut may still be
 * running on the host (pvcreate, vgcreate, vgextend, vgreduce, vgremove). LVM's
 * own locking only covers the moment that command writes metadata: read before
 * that, the VG looks as it was and the re-run would issue the command again
 * once the cut one is done (vgcreate of a VG that now exists, pvcreate of a PV
 * now in it, vgremove of a VG now gone) or record the half state. Under the
 * lock the read waits for the cut command to end, and every read after it sees
 * what it did.
 */
function readVgSettled(host: Remote, name: string): Promise<VgReport | undefined> {
    return readVg(host, name, hostLocks.lvm);
}

async function readPvs(host: Remote, name: string): Promise<string[]> {
    const out = await host.run(["pvs", ...reportOptions, "-o", pvFields, "-S", `vg_name=${name}`], { okExitCodes: [0, 5], what: `read the PVs of ${name}` });
    return parsePvs(out.stdout)
        .filter((pv) => pv.vg === name)
        .map((pv) => pv.device)
        .sort();
}

/** Kernel path of each declared device, so /dev/md/data compares with LVM's /dev/md127. */
async function resolve(host: Remote, devices: string[]): Promise<Map<string, string>> {
    const resolved = await resolvePaths(host, devices);
    return new Map(devices.map((d) => [d, resolved.get(d) ?? d]));
}

function stateFrom(inputs: VolumeGroupInputs, vg: VgReport, pvs: string[], resolved: Map<string, string>): VolumeGroupState {
    const declared = (kernel: string) => [...resolved].find(([, k]) => k === kernel)?.[0] ?? kernel;
    return {
        ...inputs,
        devices: pvs.map(declared),
        uuid: vg.uuid,
        sizeBytes: vg.sizeBytes,
        freeBytes: vg.freeBytes,
        extentBytes: vg.extentBytes,
        lvCount: vg.lvCount,
        physicalVolumes: pvs,
    };
}

function sameSet(a: string[], b: string[]): boolean {
    return a.length === b.length && [...a].sort().every((x, i) => x === [...b].sort()[i]);
}

function hostFor(conn: HostConnection, ctx: OperationContext): Remote {
    return ctx.remote(conn);
}

async function create(inputs: VolumeGroupInputs, ctx: OperationContext): Promise<{ id: string; outs: VolumeGroupState }> {
    const host = hostFor(inputs.connection, ctx);
    const family = (await host.facts()).family;
    await host.apply([step.ensurePackages("lvm2")]);
    const resolved = await resolve(host, inputs.devices);
    const existing = await readVgSettled(host, inputs.name);
    if (existing) {
        await adoptExisting(host, inputs, existing, resolved, ctx);
        await host.apply(planBootActivation(family));
    } else {
        const probes = await probe(host, inputs.devices);
        const refusals = probes.map((p) => refusalFor(p, inputs.name)).filter((r): r is string => r !== undefined);
        if (refusals.length > 0) {
            throw new RefusedError(`cannot make a volume group of these devices on ${host.target}: ${refusals.join("; ")}`, "Choose other devices, or free these (unmount, stop the array, wipefs) if their data is not needed.");
        }
        const alreadyPvs = probes.filter((p) => p.signature === "LVM2_member").map((p) => p.device);
        await host.apply(planCreate(inputs, family, alreadyPvs));
    }
    const vg = await readVg(host, inputs.name);
    if (!vg) throw new Error(`volume group ${inputs.name} was created on ${host.target} but cannot be read back`);
    return { id: vg.uuid, outs: stateFrom(inputs, vg, await readPvs(host, inputs.name), resolved) };
}

/** The same name on the same PVs is ours to keep; anything else is someone else's. */
async function adoptExisting(host: Remote, inputs: VolumeGroupInputs, vg: VgReport, resolved: Map<string, string>, ctx: OperationContext): Promise<void> {
    const pvs = await readPvs(host, inputs.name);
    if (!sameSet(pvs, [...resolved.values()])) {
        throw new RefusedError(
            `volume group ${inputs.name} already exists on ${host.target} on other devices (${pvs.join(", ")})`,
            "Choose another name, or declare exactly its devices to adopt it.",
        );
    }
    if (!vg.tags.includes(ownTag) && !inputs.adopt) {
        throw new RefusedError(
            `volume group ${inputs.name} already exists on ${host.target} (on ${pvs.join(", ")}, ${vg.lvCount} logical volume(s)) and was not created by pulumi-baremetal`,
            "Set adopt: true to manage it (nothing in it is changed), or choose another name.",
        );
    }
    ctx.log.info(`volume group ${inputs.name} already exists on ${pvs.join(", ")}: adopting it (uuid ${vg.uuid})`);
}

async function read(_id: string, stored: VolumeGroupState, ctx: OperationContext): Promise<VolumeGroupState | undefined> {
    // The state read becomes the new one: an old stack's opt-in moves to its current name here.
    const props = withCurrentOptIn(stored, "wipeOnDelete");
    const host = hostFor(props.connection, ctx);
    const vg = await readVgSettled(host, props.name);
    if (!vg) return undefined;
    const resolved = await resolve(host, props.devices).catch(() => new Map<string, string>());
    return stateFrom(props, vg, await readPvs(host, props.name), resolved);
}

async function update(_id: string, olds: VolumeGroupState, news: VolumeGroupInputs, ctx: OperationContext): Promise<VolumeGroupState> {
    const host = hostFor(news.connection, ctx);
    if (!(await readVgSettled(host, news.name))) {
        throw new Error(`volume group ${news.name} no longer exists on ${host.target}; run \`pulumi refresh\` and then \`pulumi up\` to create it again`);
    }
    const resolved = await resolve(host, news.devices);
    const current = await readPvs(host, news.name);
    const joining = news.devices.filter((d) => !current.includes(resolved.get(d) ?? d));
    const leaving = current.filter((pv) => ![...resolved.values()].includes(pv));
    if (joining.length > 0) {
        const refusals = (await probe(host, joining)).map((p) => refusalFor(p, news.name)).filter((r): r is string => r !== undefined);
        if (refusals.length > 0) throw new RefusedError(`cannot add these devices to ${news.name} on ${host.target}: ${refusals.join("; ")}`, "Choose other devices.");
    }
    const plan = [...planAddDevices(news.name, joining), ...planRemoveDevices(news.name, leaving)];
    if (plan.length > 0) await host.apply(plan);
    const vg = await readVg(host, news.name);
    if (!vg) throw new Error(`volume group ${news.name} disappeared from ${host.target} during the update`);
    return stateFrom(news, vg, await readPvs(host, news.name), resolved);
}

async function remove(_id: string, stored: VolumeGroupState, ctx: OperationContext): Promise<void> {
    const props = withCurrentOptIn(stored, "wipeOnDelete");
    const host = hostFor(props.connection, ctx);
    if (!props.allowDataLoss) {
        throw new RefusedError(
            `deleting volume group ${props.name} on ${host.target} would destroy it and the data of its logical volumes`,
            "To delete it, set allowDataLoss: true on this VolumeGroup, run `pulumi up`, then delete again. To stop managing it but keep it, run `pulumi state delete <urn>`.",
        );
    }
    const vg = await readVgSettled(host, props.name);
    if (!vg) {
        // Removed already (e.g. an earlier delete lost its connection after vgremove): its PVs keep their labels until wiped here.
        const out = await host.run(["pvs", ...reportOptions, "-o", pvFields], { okExitCodes: [0, 5], what: "read the physical volumes" });
        const left = orphanedPvs(parsePvs(out.stdout), props.physicalVolumes ?? []);
        if (left.length > 0) await host.apply(planWipeLabels(left));
        else ctx.log.info(`volume group ${props.name} is already gone from ${host.target}`);
        return;
    }
    if (vg.uuid !== props.uuid) {
        throw new RefusedError(`volume group ${props.name} on ${host.target} is now a different VG (uuid ${vg.uuid}, expected ${props.uuid})`, "Refresh the stack to see what happened.");
    }
    if (vg.lvCount > 0) {
        throw new RefusedError(
            `volume group ${props.name} on ${host.target} still holds ${vg.lvCount} logical volume(s)`,
            "Delete its volumes first (NbdVolume with allowDataLoss: true, or lvremove by hand if their data is not needed).",
        );
    }
    await host.apply(planDelete(props.name, await readPvs(host, props.name)));
}

export const volumeGroup: ResourceKind<VolumeGroupInputs, VolumeGroupState> = { spec, check, diff, create, read, update, delete: remove };
