// NbdVolume: an LVM logical volume on the SAN box, exported by nbd-server and
// registered in Consul with the KVM guest (eth0 MAC) that owns it.
//
// ID: `<host>/<vg>/<lv>`, e.g. `198.51.100.11/vg0/web01-var`.
//
// One nbd-server process per export (a systemd template instance on Debian, an
// OpenRC service on Alpine), each with its own config and port. Measured on
// nbd-server 3.24 (Debian 12): SIGHUP adds new exports but neither changes nor
// removes existing ones, and a restart drops every client of the process. With a
// process per export, adding or removing an export never touches another
// export's clients, and a change of read-only flag or port restarts only the
// export it belongs to. The allowed clients live in an authfile that nbd-server
// reads at each connection, so changing them restarts nothing.
//
// Data safety: shrinking is refused at check time; delete and every change that
// would re-create the LV are refused unless `allowDataLoss` (formerly `deleteData`) is set.
import { checkConsulConnection, ConsulConnection, consulConnectionType, ConsulServiceCatalog, ExternalService } from "../consul/client";
import { InputError, RefusedError } from "../core/errors";
import { CheckOutcome, DiffOutcome, OperationContext, ResourceKind } from "../core/resource";
import { checkByTable, checkField, diffByTable, erase, KindSpec, t, valueAt } from "../core/fields";
import { applyDataLossAlias, dataLossFields, withCurrentOptIn } from "../core/dataLoss";
import { formatBytes, isUnknown, parseSize, unknownValue, Validator } from "../core/validate";
import { connectionType, hostLocks, HostConnection, Plan, PlanResult, Remote, serviceNameOn, serviceStateShell, step } from "../host";
import type { OsFamily, ServiceSpec } from "../host";
import { exportOf, NbdExportConfig, nbdUri, parseAuthfile, renderAuthfile, renderExportConfig } from "../parsers/nbd";
import { lvFields, LvReport, ownTag, parseLvs, reportOptions, vgNamePattern } from "../parsers/lvm";
import { parseSections } from "../parsers/sections";

export interface NbdVolumeInputs {
    connection: HostConnection;
    volumeGroup: string;
    name: string;
    size: string;
    requestedBytes: number;
    exportName: string;
    port: number;
    readOnly: boolean;
    allowedClients: string[];
    owner: string;
    consul?: ConsulConnection;
    exportAddress: string;
    consulNode: string;
    serviceName: string;
    adopt: boolean;
    allowDataLoss: boolean;
    deleteData?: boolean;
}

export interface NbdVolumeState extends NbdVolumeInputs {
    sizeBytes: number;
    lvUuid: string;
    lvPath: string;
    serving: boolean;
    uri: string;
    serviceId?: string;
    registered: boolean;
}

const lvNamePattern = /^(?!-)(?!snapshot$|pvmove$)[A-Za-z0-9_.-]{1,63}$/;
const exportNamePattern = /^(?!generic$)[A-Za-z0-9_.-]{1,64}$/;
const nodePattern = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;
/** LVM's smallest extent is 4MiB; 256TiB is far past any SAN here and keeps byte counts exact. */
const sizeRule = { min: 4 * 2 ** 20, max: 256 * 2 ** 40, minName: "the smallest LV (4MiB)" };
const serviceNameRule = { pattern: /^[a-z0-9][a-z0-9-]{0,62}$/, patternHint: "is not a Consul service name (lower-case letters, digits, -)" };

export const spec: KindSpec<NbdVolumeInputs, NbdVolumeState> = {
    kind: "NbdVolume",
    doc: "An LVM logical volume on the SAN box, exported over NBD by an nbd-server process of its own and registered in Consul with the KVM guest (eth0 MAC) that owns it. It grows online and never shrinks; export settings change in place, restarting only this export's process when nbd-server must re-read them. An existing LV of the same name is adopted when pulumi-baremetal made it, or with adopt. Delete, and every change that re-creates the LV, are refused unless allowDataLoss is set.",
    id: "`<host>/<vg>/<lv>`, e.g. `198.51.100.11/vg0/web01-var`.",
    example: `import { NbdVolume } from "pulumi-baremetal";

new NbdVolume("web01-var", {
    connection: { host: "198.51.100.11", privateKey: key, hostKey: "ssh-ed25519 AAAA..." },
    volumeGroup: "vg0",
    name: "web01-var",
    size: "20GiB",
    port: 10809,
    owner: "52:54:00:12:34:56",
    consul: { address: "198.51.100.2:8500" },
});`,
    deleteBeforeReplace: true,
    inputs: {
        connection: {
            type: t.object(connectionType),
            required: true,
            replaceOn: ["host"],
            doc: "The SAN box or VM running LVM and nbd-server. A new host re-creates the volume, which needs allowDataLoss.",
        },
        volumeGroup: {
            type: t.string(),
            required: true,
            change: "replace",
            doc: "The volume group the LV lives in, e.g. `vg.name`. A new one re-creates the volume, which needs allowDataLoss.",
            rule: { pattern: vgNamePattern, patternHint: "is not a VG name (letters, digits, _ . -)" },
        },
        name: {
            type: t.string(),
            required: true,
            change: "replace",
            doc: "The logical volume's name. A new name re-creates the volume, which needs allowDataLoss.",
            rule: { pattern: lvNamePattern, patternHint: "is not an LV name (letters, digits, _ . -; not snapshot or pvmove)" },
        },
        size: {
            type: t.string(),
            required: true,
            doc: "Size with a binary unit: `256MiB`, `20GiB`, `1TiB` (`M`, `G`, `T` mean the same). Growing happens online, in place; shrinking is refused (make a new volume and copy instead).",
            check: (v, field, value) => v.size(field, value, sizeRule)?.text,
        },
        requestedBytes: { type: t.integer, derived: true, doc: "`size` in bytes, computed from it (the LV is created and grown to exactly this)." },
        exportName: {
            type: t.string(),
            defaultDoc: "the LV name",
            doc: "The name clients ask for.",
            rule: { pattern: exportNamePattern, patternHint: 'is not an export name (letters, digits, _ . -; not "generic")' },
        },
        port: { type: t.integer, required: true, doc: "TCP port of this export's own nbd-server process (one process per export).", rule: { min: 1024, max: 65535 } },
        readOnly: { type: t.boolean, default: false, doc: "Serve read-only. Changing it restarts this export's server only." },
        allowedClients: {
            type: t.array(t.string()),
            default: [],
            doc: "Addresses or networks (`198.18.1.12`, `198.18.1.0/24`) allowed to connect (nbd-server's authfile); everyone when empty. Changes restart nothing.",
            rule: { maxItems: 256 },
            check: (v, field, value) => v.list(field, value, (f, c) => v.ipOrNetwork(f, c), { max: 256 }),
        },
        owner: {
            type: t.string(),
            required: true,
            doc: "MAC address of eth0 of the KVM guest that owns the volume, e.g. `52:54:00:12:34:56`.",
            check: (v, field, value) => v.mac(field, value),
        },
        consul: {
            type: t.object(consulConnectionType),
            doc: "Register the export in Consul's catalog (service `nbd`, meta export/host/port/owner), where sanForGuest finds it; not registered when omitted.",
        },
        exportAddress: {
            type: t.string(),
            defaultDoc: "the connection's host",
            doc: "The address clients use to reach the export (e.g. the SAN's STORAGE address).",
            check: (v, field, value) => v.host(field, value),
        },
        consulNode: {
            type: t.string(),
            defaultDoc: "`<exportAddress>-nbd`, each run of other characters than letters and digits as `-`",
            doc: "The external Consul node that carries the SAN's exports.",
            rule: { pattern: nodePattern, patternHint: "is not a Consul node name (letters, digits, - _)" },
        },
        serviceName: { type: t.string(), default: "nbd", doc: "Consul service name.", rule: serviceNameRule },
        adopt: { type: t.boolean, default: false, doc: "Take over an existing LV of this name that pulumi-baremetal did not create (its data is kept)." },
        ...dataLossFields(
            "deleteData",
            "Allow this volume to destroy the data it holds: on delete (the LV, its export and its Consul entry are removed) and on a change that re-creates the LV. Without it, either is refused and all three stay.",
        ),
    },
    outputs: {
        sizeBytes: { type: t.integer, required: true, doc: "The LV's size as LVM reports it (extent-rounded; more than requested after a grow by hand)." },
        lvUuid: { type: t.string(), required: true, stable: true, doc: "The LV's UUID." },
        lvPath: { type: t.string(), required: true, stable: true, doc: "The LV's device path, `/dev/<vg>/<lv>`." },
        serving: { type: t.boolean, required: true, doc: "Is this export's nbd-server running (as last read)?" },
        uri: { type: t.string(), required: true, doc: "`nbd://<exportAddress>:<port>/<exportName>`, what qemu's `-drive file=` takes." },
        serviceId: { type: t.string(), doc: "The Consul service ID (on consulNode), when registered." },
        registered: { type: t.boolean, required: true, doc: "Is the Consul entry present (as last read)?" },
    },
};

export function check(olds: Record<string, unknown>, news: Record<string, unknown>): CheckOutcome<NbdVolumeInputs> {
    const v = new Validator();
    const inputs = checkByTable(v, erase(spec), news) as Partial<NbdVolumeInputs>;
    applyDataLossAlias(v, inputs, news, "deleteData");
    fillComputed(v, inputs, news);
    const { size, requestedBytes } = inputs;
    const oldBytes = typeof olds.requestedBytes === "number" ? olds.requestedBytes : undefined;
    if (oldBytes !== undefined && typeof requestedBytes === "number" && requestedBytes < oldBytes) {
        v.fail(
            "size",
            `shrinking ${String(olds.volumeGroup)}/${String(olds.name)} from ${formatBytes(oldBytes)} to ${size} is refused: it would cut off data. ` +
                "To get a smaller volume, declare a new NbdVolume of the smaller size, copy the data into it (e.g. nbdcopy between the exports), move the owner to it, then delete this one with allowDataLoss: true",
        );
    }
    // Only fields whose new value is valid, so a bad name is not also reported as a re-create.
    if (olds.name !== undefined && inputs.allowDataLoss === false) {
        for (const f of diffByTable(erase(spec), olds, inputs).replaces.filter((p) => valueAt(inputs, p) !== undefined)) {
            v.fail(f, `changing ${f} re-creates the logical volume and destroys its data; set allowDataLoss: true to allow it (nothing was changed)`);
        }
    }
    if (!v.ok) return { failures: v.failures };
    return { inputs: inputs as NbdVolumeInputs, failures: [] };
}

/**
 * What check computes from other inputs: `requestedBytes` always, the defaults
 * that follow other fields when left out (each checked by its own rule, so an LV
 * named `generic` is refused as an export name). Nothing is computed from an
 * input that failed, so one mistake gives one error.
 */
function fillComputed(v: Validator, inputs: Partial<NbdVolumeInputs>, news: Record<string, unknown>): void {
    const absent = (k: keyof NbdVolumeInputs) => news[k] === undefined || news[k] === null;
    const derive = <K extends "exportName" | "exportAddress" | "consulNode">(k: K, from: unknown) => {
        if (!absent(k) || from === undefined) return;
        const value = checkField(v, k, spec.inputs[k], from);
        if (value !== undefined) inputs[k] = value as NbdVolumeInputs[K];
    };
    if (inputs.size !== undefined) inputs.requestedBytes = isUnknown(inputs.size) ? (inputs.size as unknown as number) : parseSize(inputs.size);
    derive("exportName", inputs.name);
    const host = inputs.connection === undefined ? undefined : isUnknown(inputs.connection) ? unknownValue : inputs.connection.host;
    derive("exportAddress", host);
    const address = inputs.exportAddress;
    derive("consulNode", address === undefined || isUnknown(address) ? address : `${address.replace(/[^A-Za-z0-9]+/g, "-")}-nbd`);
}

export function diff(_id: string, olds: NbdVolumeState, news: NbdVolumeInputs): DiffOutcome {
    const d = diffByTable(erase(spec), withCurrentOptIn(olds, "deleteData") as unknown as Record<string, unknown>, news as unknown as Record<string, unknown>);
    // The bytes decide: `1GiB` re-spelt as `1024MiB` is no change.
    const changed = d.changed.filter((k) => k !== "size");
    // The new process would want the same port, the new LV possibly the same name.
    return { changes: changed.length > 0, replaces: d.replaces, stables: d.stables, deleteBeforeReplace: true };
}

// ---- names of things on the host ------------------------------------------------

/** Unique per LV: `-` doubled inside each name, as device-mapper does, then joined by `-`. */
export function instanceKey(vg: string, lv: string): string {
    return `${vg.replace(/-/g, "--")}-${lv.replace(/-/g, "--")}`;
}

export const configDir = "/etc/nbd-server/baremetal";
const serverBinary = "/usr/bin/nbd-server";

export function exportPaths(vg: string, lv: string, family: OsFamily) {
    const key = instanceKey(vg, lv);
    return {
        key,
        config: `${configDir}/${key}.conf`,
        authfile: `${configDir}/${key}.allow`,
        service: serviceNameOn({ name: exportServiceName, instance: key }, family),
    };
}

const exportServiceName = "baremetal-nbd";

/**
 * One nbd-server per export, as a service with the export's key as instance
 * (one systemd template unit for all exports; one OpenRC script each).
 */
export function exportService(key: string, family: OsFamily): ServiceSpec {
    return {
        name: exportServiceName,
        instance: key,
        description: "pulumi-baremetal NBD export %i",
        comments: ["Managed by pulumi-baremetal (NbdVolume): one nbd-server per export."],
        command: [serverBinary, "-C", `${configDir}/%i.conf`, "-p", "/run/baremetal-nbd.%i.pid"],
        type: "forking",
        pidFile: "/run/baremetal-nbd.%i.pid",
        // Stopping one export ends its own client sessions (children) only.
        killMode: "control-group",
        restart: { when: "on-failure" },
        after: [family === "alpine" ? "lvm" : "lvm2-monitor"],
    };
}

export function exportConfigOf(inputs: NbdVolumeInputs, family: OsFamily): NbdExportConfig {
    const p = exportPaths(inputs.volumeGroup, inputs.name, family);
    const c: NbdExportConfig = { port: inputs.port, exportName: inputs.exportName, path: lvPath(inputs), readOnly: inputs.readOnly };
    if (inputs.allowedClients.length > 0) c.authfile = p.authfile;
    return c;
}

function lvPath(i: Pick<NbdVolumeInputs, "volumeGroup" | "name">): string {
    return `/dev/${i.volumeGroup}/${i.name}`;
}

// ---- plans (data) ---------------------------------------------------------------

export function planLvCreate(inputs: NbdVolumeInputs): Plan {
    return [
        step.run(["lvcreate", "-q", "-y", "-L", `${inputs.requestedBytes}b`, "-n", inputs.name, "--addtag", ownTag, inputs.volumeGroup], {
            lock: hostLocks.lvm,
            what: `create logical volume ${inputs.volumeGroup}/${inputs.name} (${inputs.size})`,
        }),
    ];
}

/** Online grow: the LV grows under a running export; new connections see the new size. */
export function planGrow(inputs: NbdVolumeInputs): Plan {
    return [
        step.run(["lvextend", "-q", "-L", `${inputs.requestedBytes}b`, `${inputs.volumeGroup}/${inputs.name}`], {
            lock: hostLocks.lvm,
            what: `grow ${inputs.volumeGroup}/${inputs.name} to ${inputs.size}`,
        }),
    ];
}

/**
 * The steps serve asks about: what nbd-server reads only at start, its service
 * definition ("export-service") and its config ("export-config"). The authfile
 * is read at every connection, so its change needs no restart.
 */
export type NbdExportStep = "export-service" | "export-config";

/** The files of one export: service definition, authfile, config. Idempotent (unchanged files are left alone). */
export function planExportFiles(inputs: NbdVolumeInputs, family: OsFamily): Plan<NbdExportStep> {
    const p = exportPaths(inputs.volumeGroup, inputs.name, family);
    return [
        step.ensurePackages("lvm2", "nbd-server"),
        step.installService(exportService(p.key, family), { tag: "export-service" }),
        inputs.allowedClients.length > 0 ? step.writeFile(p.authfile, renderAuthfile(inputs.allowedClients), { mode: "0644" }) : step.removeFile(p.authfile),
        step.writeFile(p.config, renderExportConfig(exportConfigOf(inputs, family)), { mode: "0644", tag: "export-config" }),
    ];
}

/** Start (or, after a config change, restart) this export's own process, and start it at boot. */
export function planServe(inputs: NbdVolumeInputs, family: OsFamily, restart: boolean): Plan {
    const p = exportPaths(inputs.volumeGroup, inputs.name, family);
    return [step.service("enable", p.service), step.service(restart ? "restart" : "start", p.service), step.persist()];
}

/** Stop serving and remove the export's files; the LV is removed only when `withData`. */
export function planUnexport(state: Pick<NbdVolumeInputs, "volumeGroup" | "name">, family: OsFamily, withData: boolean): Plan {
    const p = exportPaths(state.volumeGroup, state.name, family);
    return [
        // The export's own service goes; on systemd the template unit stays for the other exports.
        step.uninstallService({ name: exportServiceName, instance: p.key }),
        step.removeFile(p.config),
        step.removeFile(p.authfile),
        ...(withData
            ? [step.run(["lvremove", "-q", "-y", `${state.volumeGroup}/${state.name}`], { lock: hostLocks.lvm, what: `remove logical volume ${state.volumeGroup}/${state.name} and its data` })]
            : []),
        step.persist(),
    ];
}

// ---- reading the host -----------------------------------------------------------

/** One command reads everything: the LV report, the config, the authfile, whether it is served. */
export const readScript = [
    serviceStateShell,
    'vg=$1 lv=$2 conf=$3 auth=$4 svc=$5',
    `lvs ${reportOptions.join(" ")} -o ${lvFields} -- "$vg/$lv" 2>/dev/null`,
    'echo ==config==; cat "$conf" 2>/dev/null',
    'echo ==auth==; cat "$auth" 2>/dev/null',
    'echo ==serving==',
    'baremetal_service_state "$svc"',
    'exit 0',
].join("\n");

export interface LiveVolume {
    lv?: LvReport;
    config?: NbdExportConfig;
    allowedClients: string[];
    serving: boolean;
}

/** Parses the read script's output (exported for tests on captured output). */
export function parseLive(text: string): LiveVolume {
    const { preamble: lvsText, parts } = parseSections(text, ["config", "auth", "serving"] as const);
    const [configText, authText, servingText] = [parts.config ?? "", parts.auth ?? "", parts.serving ?? ""];
    const lv = lvsText.trim() === "" ? undefined : parseLvs(lvsText)[0];
    const config = configText.trim() === "" ? undefined : exportOf(configText);
    const out: LiveVolume = { allowedClients: parseAuthfile(authText), serving: servingText.trim() === "active" };
    if (lv) out.lv = lv;
    if (config) out.config = config;
    return out;
}

async function readLive(host: Remote, vg: string, lv: string, family: OsFamily): Promise<LiveVolume> {
    const p = exportPaths(vg, lv, family);
    const out = await host.run(["sh", "-c", readScript, "baremetal-nbd-read", vg, lv, p.config, p.authfile, p.service], { what: `read ${vg}/${lv}` });
    return parseLive(out.stdout);
}

async function vgExists(host: Remote, vg: string): Promise<boolean> {
    const r = await host.exec(["vgs", "--noheadings", "-o", "vg_name", "--", vg], { what: `look for volume group ${vg}` });
    return r.exitCode === 0;
}

// ---- Consul -----------------------------------------------------------------------

export function serviceIdOf(i: Pick<NbdVolumeInputs, "volumeGroup" | "name">): string {
    return `nbd-${instanceKey(i.volumeGroup, i.name)}`;
}

/** The catalog entry of an export: everything a guest's host needs to attach it. */
export function catalogEntry(i: NbdVolumeInputs): ExternalService {
    return {
        node: i.consulNode,
        address: i.exportAddress,
        serviceId: serviceIdOf(i),
        service: i.serviceName,
        port: i.port,
        meta: {
            export: i.exportName,
            host: i.exportAddress,
            port: String(i.port),
            owner: i.owner,
            volume_group: i.volumeGroup,
            volume: i.name,
            read_only: String(i.readOnly),
        },
        tags: [],
    };
}

async function register(i: NbdVolumeInputs, ctx: OperationContext): Promise<void> {
    if (!i.consul) return;
    await ctx.consul(i.consul).services.register(catalogEntry(i));
    ctx.log.info(`registered ${i.serviceName} ${serviceIdOf(i)} on Consul node ${i.consulNode} (owner ${i.owner})`);
}

async function deregister(s: NbdVolumeInputs, ctx: OperationContext): Promise<void> {
    if (!s.consul) return;
    const services = ctx.consul(s.consul).services;
    const was = await services.service(s.consulNode, serviceIdOf(s));
    // Deregistered even when absent: a cut after the service went may have left its empty node.
    await services.deregister(s.consulNode, serviceIdOf(s));
    ctx.log.info(was ? `removed ${serviceIdOf(s)} from Consul node ${s.consulNode}` : `${serviceIdOf(s)} is not registered on Consul node ${s.consulNode}: nothing to remove`);
}

async function registeredEntry(s: NbdVolumeInputs, ctx: OperationContext): Promise<ExternalService | undefined> {
    return s.consul ? ctx.consul(s.consul).services.service(s.consulNode, serviceIdOf(s)) : undefined;
}

// ---- operations -------------------------------------------------------------------

function hostFor(conn: HostConnection, ctx: OperationContext): Remote {
    return ctx.remote(conn);
}

function idOf(i: NbdVolumeInputs): string {
    return `${i.connection.host}/${i.volumeGroup}/${i.name}`;
}

function uriOf(i: NbdVolumeInputs): string {
    return nbdUri({ host: i.exportAddress, port: i.port, export: i.exportName });
}

/** Did a file that nbd-server reads only at start (its config, its service definition) change? */
export function needsRestart(result: PlanResult<NbdExportStep>): boolean {
    return result.stepChanged("export-service", "export-config");
}

/** Writes the export's files, then starts it, or restarts it when what it reads at start changed. */
async function serve(host: Remote, inputs: NbdVolumeInputs, family: OsFamily, wasServing: boolean, ctx: OperationContext): Promise<void> {
    const written = await host.apply(planExportFiles(inputs, family));
    const restart = wasServing && needsRestart(written);
    if (restart) ctx.log.warn(`restarting the nbd-server of ${inputs.exportName} to apply its new settings: its connected clients must reconnect (other exports are not touched)`);
    await host.apply(planServe(inputs, family, restart));
}

function stateFrom(inputs: NbdVolumeInputs, live: LiveVolume, entry: ExternalService | undefined): NbdVolumeState {
    const lv = live.lv as LvReport;
    const state: NbdVolumeState = {
        ...inputs,
        sizeBytes: lv.sizeBytes,
        lvUuid: lv.uuid,
        lvPath: lv.path,
        serving: live.serving,
        uri: uriOf(inputs),
        registered: entry !== undefined,
    };
    if (inputs.consul) state.serviceId = serviceIdOf(inputs);
    return state;
}

async function create(inputs: NbdVolumeInputs, ctx: OperationContext): Promise<{ id: string; outs: NbdVolumeState }> {
    const host = hostFor(inputs.connection, ctx);
    const family = (await host.facts()).family;
    await host.apply([step.ensurePackages("lvm2", "nbd-server")]);
    if (!(await vgExists(host, inputs.volumeGroup))) {
        throw new RefusedError(`volume group ${inputs.volumeGroup} does not exist on ${host.target}`, "Create it first (a VolumeGroup resource this NbdVolume depends on).");
    }
    const before = await readLive(host, inputs.volumeGroup, inputs.name, family);
    if (before.lv) {
        adoptExisting(host, inputs, before.lv, ctx);
        if (before.lv.sizeBytes < inputs.requestedBytes) await host.apply(planGrow(inputs));
    } else {
        await host.apply(planLvCreate(inputs));
    }
    await serve(host, inputs, family, before.serving, ctx);
    await register(inputs, ctx);
    const live = await readLive(host, inputs.volumeGroup, inputs.name, family);
    if (!live.lv) throw new Error(`${inputs.volumeGroup}/${inputs.name} was created on ${host.target} but cannot be read back`);
    return { id: idOf(inputs), outs: stateFrom(inputs, live, await registeredEntry(inputs, ctx)) };
}

/** An LV of ours (tagged) left by an interrupted run is taken back; anyone else's needs adopt. */
function adoptExisting(host: Remote, inputs: NbdVolumeInputs, lv: LvReport, ctx: OperationContext): void {
    if (!lv.tags.includes(ownTag) && !inputs.adopt) {
        throw new RefusedError(
            `logical volume ${inputs.volumeGroup}/${inputs.name} already exists on ${host.target} (${formatBytes(lv.sizeBytes)}) and was not created by pulumi-baremetal`,
            "Set adopt: true to export and manage it (its data is kept), or choose another name.",
        );
    }
    ctx.log.info(`logical volume ${inputs.volumeGroup}/${inputs.name} already exists (${formatBytes(lv.sizeBytes)}): adopting it`);
}

async function read(_id: string, stored: NbdVolumeState, ctx: OperationContext): Promise<NbdVolumeState | undefined> {
    // The state read becomes the new one: an old stack's opt-in moves to its current name here.
    const props = withCurrentOptIn(stored, "deleteData");
    const host = hostFor(props.connection, ctx);
    const family = (await host.facts()).family;
    const live = await readLive(host, props.volumeGroup, props.name, family);
    if (!live.lv) return undefined;
    // What the host really serves, so that refresh shows a config edited by hand.
    const drifted: NbdVolumeInputs = { ...props };
    if (live.config) {
        drifted.port = live.config.port;
        drifted.exportName = live.config.exportName;
        drifted.readOnly = live.config.readOnly;
    }
    drifted.allowedClients = live.allowedClients;
    const entry = await registeredEntry(props, ctx);
    if (entry?.meta.owner) drifted.owner = entry.meta.owner;
    return stateFrom(drifted, live, entry);
}

async function update(_id: string, olds: NbdVolumeState, news: NbdVolumeInputs, ctx: OperationContext): Promise<NbdVolumeState> {
    const host = hostFor(news.connection, ctx);
    const family = (await host.facts()).family;
    const before = await readLive(host, news.volumeGroup, news.name, family);
    if (!before.lv) throw new Error(`${news.volumeGroup}/${news.name} no longer exists on ${host.target}; run \`pulumi refresh\` and then \`pulumi up\` to create it again`);
    if (before.lv.sizeBytes < news.requestedBytes) {
        await host.apply(planGrow(news));
        ctx.log.info(`${news.volumeGroup}/${news.name} grew to ${news.size}; new connections see the new size (a connected kernel nbd-client or qemu needs to reconnect or resize)`);
    }
    await serve(host, news, family, before.serving, ctx);
    const moved = olds.consul && (olds.consul.address !== news.consul?.address || olds.consulNode !== news.consulNode || olds.consul.datacenter !== news.consul?.datacenter);
    if (moved) await deregister(olds, ctx);
    await register(news, ctx);
    const live = await readLive(host, news.volumeGroup, news.name, family);
    if (!live.lv) throw new Error(`${news.volumeGroup}/${news.name} disappeared from ${host.target} during the update`);
    return stateFrom(news, live, await registeredEntry(news, ctx));
}

async function remove(_id: string, stored: NbdVolumeState, ctx: OperationContext): Promise<void> {
    const props = withCurrentOptIn(stored, "deleteData");
    const host = hostFor(props.connection, ctx);
    if (!props.allowDataLoss) {
        throw new RefusedError(
            `deleting NbdVolume ${props.volumeGroup}/${props.name} on ${host.target} would remove its data (${formatBytes(props.sizeBytes ?? props.requestedBytes)}), export ${props.exportName} and its Consul entry`,
            "To delete it, set allowDataLoss: true on this NbdVolume, run `pulumi up`, then delete again. To stop managing it but keep everything, run `pulumi state delete <urn>`.",
        );
    }
    const family = (await host.facts()).family;
    const live = await readLive(host, props.volumeGroup, props.name, family);
    if (live.lv && props.lvUuid && live.lv.uuid !== props.lvUuid) {
        throw new RefusedError(`${props.volumeGroup}/${props.name} on ${host.target} is now a different LV (uuid ${live.lv.uuid}, expected ${props.lvUuid})`, "Refresh the stack to see what happened.");
    }
    await host.apply(planUnexport(props, family, live.lv !== undefined));
    await deregister(props, ctx);
}

export const nbdVolume: ResourceKind<NbdVolumeInputs, NbdVolumeState> = { spec, check, diff, create, read, update, delete: remove };

// ---- lookup: which SAN serves a guest's volumes ------------------------------------

/** One export as Consul knows it. */
export interface NbdExportLocation {
    /** The Consul node of the SAN that serves it. */
    san: string;
    host: string;
    port: number;
    exportName: string;
    volumeGroup: string;
    volume: string;
    readOnly: boolean;
    /** `nbd://host:port/export`, what qemu's `-drive file=` takes. */
    uri: string;
}

/**
 * The exports owned by the guest with this eth0 MAC, from ONE catalog request
 * (a filter on the service meta `owner`). Empty when it owns none.
 */
export async function findGuestExports(consul: ConsulConnection, mac: string, serviceName = "nbd"): Promise<NbdExportLocation[]> {
    const v = new Validator();
    const conn = checkConsulConnection(v, "consul", consul);
    const owner = v.mac("mac", mac);
    const service = v.string("serviceName", serviceName, serviceNameRule);
    if (!v.ok || !conn || !owner || !service) throw new InputError(v.failures);
    const rows = await new ConsulServiceCatalog(conn).findByMeta(service, "owner", owner);
    return rows.map((r) => {
        const host = r.meta.host || r.address;
        const exportName = r.meta.export ?? "";
        return {
            san: r.node,
            host,
            port: r.port,
            exportName,
            volumeGroup: r.meta.volume_group ?? "",
            volume: r.meta.volume ?? "",
            readOnly: r.meta.read_only === "true",
            uri: nbdUri({ host, port: r.port, export: exportName }),
        };
    });
}
