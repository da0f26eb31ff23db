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
// would re-create the LV are refused unless `deleteData` is set.
import { checkConsulConnection, ConsulConnection, ConsulServiceCatalog, ExternalService } from "../consul/client";
import { InputError, RefusedError } from "../core/errors";
import { changedFields, CheckOutcome, DiffOutcome, OperationContext, ResourceKind } from "../core/resource";
import { isHostAddress, isIpv4Address, isUnknown, unknownValue, Validator } from "../core/validate";
import { checkHostConnection, HostConnection, Plan, PlanResult, Remote, step } from "../host";
import type { OsFamily } from "../host";
import { exportOf, NbdExportConfig, nbdUri, parseAuthfile, renderAuthfile, renderExportConfig } from "../parsers/nbd";
import { lvFields, LvReport, ownTag, parseLvs, reportOptions, vgNamePattern } from "../parsers/lvm";
import { parseSections } from "../parsers/sections";

export interface NbdVolumeInputs {
    /** The SAN box (or VM) that runs LVM and nbd-server. */
    connection: HostConnection;
    /** The volume group the LV lives in. */
    volumeGroup: string;
    /** The LV name. */
    name: string;
    /** Size with a binary unit: `256MiB`, `20GiB`, `1TiB` (M/G/T mean the same). Grows in place; never shrinks. */
    size: string;
    /** `size` in bytes (derived by check). */
    requestedBytes: number;
    /** The name clients ask for; the LV name when omitted. */
    exportName: string;
    /** TCP port of this export's nbd-server process (one process per export). */
    port: number;
    readOnly: boolean;
    /** Addresses or networks (`198.18.1.12`, `198.18.1.0/24`) allowed to connect; everyone when empty. */
    allowedClients: string[];
    /** MAC of eth0 of the KVM guest that owns the volume, e.g. `52:54:00:12:34:56`. */
    owner: string;
    /** Where to register the export; not registered when omitted. */
    consul?: ConsulConnection;
    /** The address clients use to reach the export (e.g. the STORAGE network); the connection host when omitted. */
    exportAddress: string;
    /** The external Consul node that carries the SAN's exports; `<exportAddress>-nbd` when omitted. */
    consulNode: string;
    /** Consul service name; `nbd` when omitted. */
    serviceName: string;
    /** Take over an existing LV of this name that pulumi-baremetal did not create (its data is kept). */
    adopt: boolean;
    /** Allow delete and re-creating changes to remove the LV and its data. */
    deleteData: boolean;
}

export interface NbdVolumeState extends NbdVolumeInputs {
    /** The LV's size as LVM reports it (extent-rounded; more than requested after a grow by hand). */
    sizeBytes: number;
    lvUuid: string;
    lvPath: string;
    /** Is this export's nbd-server process running? */
    serving: boolean;
    /** `nbd://<exportAddress>:<port>/<exportName>` */
    uri: string;
    /** Consul service ID (on consulNode), when registered. */
    serviceId?: string;
    /** Is the Consul entry present (as last read)? */
    registered: boolean;
}

const lvNamePattern = /^(?!-)(?!snapshot$|pvmove$)[A-Za-z0-9_.-]{1,63}$/;
const exportNamePattern = /^(?!generic$)[A-Za-z0-9_.-]{1,64}$/;
const macPattern = /^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$/;
const clientPattern = /^(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}(?:\/(?:[0-9]|[12][0-9]|3[0-2]))?|[0-9a-fA-F:]{2,39}(?:\/(?:[0-9]{1,2}|1[01][0-9]|12[0-8]))?)$/;

/** An allowed client: an address or a network whose address part is a real IPv4 or IPv6 address. */
function checkClient(v: Validator, field: string, value: unknown): string | undefined {
    const c = v.string(field, value, { pattern: clientPattern, patternHint: "is not an IP address or network like 198.18.1.12 or 198.18.1.0/24" });
    if (c === undefined || isUnknown(c)) return c;
    const address = c.split("/")[0];
    return (address.includes(":") ? isHostAddress(address) : isIpv4Address(address)) ? c : v.fail(field, `${JSON.stringify(c)} is not an IP address or network (octets go up to 255)`);
}
const nodePattern = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;
const units: Record<string, number> = { M: 2 ** 20, MiB: 2 ** 20, G: 2 ** 30, GiB: 2 ** 30, T: 2 ** 40, TiB: 2 ** 40 };
const minBytes = 4 * 2 ** 20;
const maxBytes = 256 * 2 ** 40;

/** Bytes of a size like `256MiB`, or why it is not one. */
export function parseSize(size: string): number | string {
    const m = /^([1-9][0-9]{0,9})(MiB|GiB|TiB|M|G|T)$/.exec(size);
    if (!m) return `${JSON.stringify(size)} is not a size like 256MiB, 20GiB or 1TiB`;
    const bytes = Number(m[1]) * units[m[2]];
    if (bytes < minBytes) return `${size} is below the smallest LV (4MiB)`;
    if (bytes > maxBytes) return `${size} is above 256TiB`;
    return bytes;
}

export function formatBytes(n: number): string {
    for (const [u, f] of [["TiB", 2 ** 40], ["GiB", 2 ** 30], ["MiB", 2 ** 20]] as const) if (n >= f && n % f === 0) return `${n / f}${u}`;
    return `${n} bytes`;
}

export function check(olds: Record<string, unknown>, news: Record<string, unknown>): CheckOutcome<NbdVolumeInputs> {
    const v = new Validator();
    const connection = checkHostConnection(v, "connection", news.connection);
    const volumeGroup = v.string("volumeGroup", news.volumeGroup, { pattern: vgNamePattern, patternHint: "is not a VG name (letters, digits, _ . -)" });
    const name = v.string("name", news.name, { pattern: lvNamePattern, patternHint: "is not an LV name (letters, digits, _ . -; not snapshot or pvmove)" });
    const size = v.string("size", news.size);
    let requestedBytes: number | undefined;
    if (size !== undefined && !isUnknown(size)) {
        const parsed = parseSize(size);
        if (typeof parsed === "string") v.fail("size", parsed);
        else requestedBytes = parsed;
    }
    const exportName = v.string("exportName", news.exportName ?? name, { pattern: exportNamePattern, patternHint: "is not an export name (letters, digits, _ . -; not \"generic\")" });
    const port = v.integer("port", news.port, { min: 1024, max: 65535 });
    const readOnly = v.boolean("readOnly", news.readOnly, false);
    const allowedClients = v.list("allowedClients", news.allowedClients, (f, c) => checkClient(v, f, c), { optional: true, max: 256 }) ?? [];
    const owner = v.string("owner", news.owner, { pattern: macPattern, patternHint: "is not a MAC address like 52:54:00:12:34:56" });
    // The owner is a guest's eth0: a NIC's address is unicast and not all zero.
    if (owner && !isUnknown(owner) && parseInt(owner.slice(0, 2), 16) & 1) v.fail("owner", `${owner} is a multicast address; a NIC's MAC has the lowest bit of its first octet clear`);
    if (owner === "00:00:00:00:00:00") v.fail("owner", "00:00:00:00:00:00 is not a NIC's address");
    const consul = news.consul === undefined || news.consul === null ? undefined : checkConsulConnection(v, "consul", news.consul);
    const defaultAddress = isUnknown(connection) ? unknownValue : connection?.host;
    const exportAddress = v.host("exportAddress", news.exportAddress ?? defaultAddress);
    const consulNode = v.string("consulNode", news.consulNode ?? (exportAddress && !isUnknown(exportAddress) ? `${exportAddress.replace(/[^A-Za-z0-9]+/g, "-")}-nbd` : exportAddress), {
        pattern: nodePattern,
        patternHint: "is not a Consul node name (letters, digits, - _)",
    });
    const serviceName = v.string("serviceName", news.serviceName ?? "nbd", { pattern: /^[a-z0-9][a-z0-9-]{0,62}$/, patternHint: "is not a Consul service name (lower-case letters, digits, -)" });
    const adopt = v.boolean("adopt", news.adopt, false);
    const deleteData = v.boolean("deleteData", news.deleteData, false);

    const oldBytes = typeof olds.requestedBytes === "number" ? olds.requestedBytes : undefined;
    if (oldBytes !== undefined && requestedBytes !== undefined && requestedBytes < oldBytes) {
        v.fail(
            "size",
            `shrinking ${String(olds.volumeGroup)}/${String(olds.name)} from ${formatBytes(oldBytes)} to ${size} is refused: it would cut off data. ` +
                "To get a smaller volume, declare a new NbdVolume of the smaller size, copy the data into it (e.g. nbdcopy between the exports), move the owner to it, then delete this one with deleteData: true",
        );
    }
    if (olds.name !== undefined && !deleteData) {
        for (const f of recreatingFields(olds as Partial<NbdVolumeInputs>, { volumeGroup, name, connection } as Partial<NbdVolumeInputs>)) {
            v.fail(f, `changing ${f} re-creates the logical volume and destroys its data; set deleteData: true to allow it (nothing was changed)`);
        }
    }
    if (!v.ok || !connection || !volumeGroup || !name || !size || !exportName || port === undefined || !owner || !exportAddress || !consulNode || !serviceName) {
        return { failures: v.failures };
    }
    const inputs: NbdVolumeInputs = {
        connection, volumeGroup, name, size, requestedBytes: requestedBytes ?? (size as unknown as number), exportName, port, readOnly,
        allowedClients, owner: isUnknown(owner) ? owner : owner.toLowerCase(), exportAddress, consulNode, serviceName, adopt, deleteData,
    };
    if (consul) inputs.consul = consul;
    return { inputs, failures: [] };
}

function recreatingFields(olds: Partial<NbdVolumeInputs>, news: Partial<NbdVolumeInputs>): string[] {
    const out: string[] = [];
    for (const f of ["volumeGroup", "name"] as const) if (olds[f] !== news[f]) out.push(f);
    if (olds.connection?.host !== news.connection?.host) out.push("connection.host");
    return out;
}

export function diff(_id: string, olds: NbdVolumeState, news: NbdVolumeInputs): DiffOutcome {
    const replaces = recreatingFields(olds, news);
    const changed = changedFields(olds, news, [
        "connection", "requestedBytes", "exportName", "port", "readOnly", "allowedClients", "owner", "consul",
        "exportAddress", "consulNode", "serviceName", "adopt", "deleteData",
    ]);
    // The new process would want the same port, the new LV possibly the same name.
    return { changes: replaces.length + changed.length > 0, replaces, deleteBeforeReplace: true, stables: ["volumeGroup", "name"] };
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
        pidfile: `/run/baremetal-nbd.${key}.pid`,
        service: family === "alpine" ? `baremetal-nbd.${key}` : `baremetal-nbd@${key}`,
        initScript: `/etc/init.d/baremetal-nbd.${key}`,
    };
}

export const systemdUnitPath = "/etc/systemd/system/baremetal-nbd@.service";

/** One template for every export; %i is the instance key (letters, digits, _ . -). */
export function systemdUnit(): string {
    return [
        "# Managed by pulumi-baremetal (NbdVolume): one nbd-server per export.",
        "[Unit]",
        "Description=pulumi-baremetal NBD export %i",
        "Wants=network-online.target",
        "After=network-online.target lvm2-monitor.service",
        "",
        "[Service]",
        "Type=forking",
        "PIDFile=/run/baremetal-nbd.%i.pid",
        `ExecStart=${serverBinary} -C ${configDir}/%i.conf -p /run/baremetal-nbd.%i.pid`,
        // Stopping one export ends its own client sessions (children) only.
        "KillMode=control-group",
        "Restart=on-failure",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ].join("\n");
}

export function openrcScript(key: string): string {
    return [
        "#!/sbin/openrc-run",
        "# Managed by pulumi-baremetal (NbdVolume): one nbd-server per export.",
        `name="NBD export ${key}"`,
        `command=${serverBinary}`,
        `command_args="-C ${configDir}/${key}.conf -p /run/baremetal-nbd.${key}.pid"`,
        `pidfile=/run/baremetal-nbd.${key}.pid`,
        "depend() {",
        "\tneed net",
        "\tafter lvm",
        "}",
        "",
    ].join("\n");
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
            lock: "lvm",
            what: `create logical volume ${inputs.volumeGroup}/${inputs.name} (${inputs.size})`,
        }),
    ];
}

/** Online grow: the LV grows under a running export; new connections see the new size. */
export function planGrow(inputs: NbdVolumeInputs): Plan {
    return [
        step.run(["lvextend", "-q", "-L", `${inputs.requestedBytes}b`, `${inputs.volumeGroup}/${inputs.name}`], {
            lock: "lvm",
            what: `grow ${inputs.volumeGroup}/${inputs.name} to ${inputs.size}`,
        }),
    ];
}

/** The files of one export: service definition, authfile, config. Idempotent (unchanged files are left alone). */
export function planExportFiles(inputs: NbdVolumeInputs, family: OsFamily): Plan {
    const p = exportPaths(inputs.volumeGroup, inputs.name, family);
    return [
        step.ensurePackages("lvm2", "nbd-server"),
        ...(family === "alpine"
            ? [step.writeFile(p.initScript, openrcScript(p.key), { mode: "0755" })]
            : [step.writeFile(systemdUnitPath, systemdUnit()), step.run(["systemctl", "daemon-reload"], { what: "reload systemd units" })]),
        inputs.allowedClients.length > 0 ? step.writeFile(p.authfile, renderAuthfile(inputs.allowedClients), { mode: "0644" }) : step.removeFile(p.authfile),
        step.writeFile(p.config, renderExportConfig(exportConfigOf(inputs, family)), { mode: "0644" }),
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
        step.run(family === "alpine" ? ["rc-service", p.service, "stop"] : ["systemctl", "stop", p.service], { okExitCodes: [0, 1, 3, 5], what: `stop serving ${p.key}` }),
        step.service("disable", p.service),
        step.removeFile(p.config),
        step.removeFile(p.authfile),
        ...(family === "alpine" ? [step.removeFile(p.initScript)] : []),
        ...(withData
            ? [step.run(["lvremove", "-q", "-y", `${state.volumeGroup}/${state.name}`], { lock: "lvm", what: `remove logical volume ${state.volumeGroup}/${state.name} and its data` })]
            : []),
        step.persist(),
    ];
}

// ---- reading the host -----------------------------------------------------------

/** One command reads everything: the LV report, the config, the authfile, whether it is served. */
export const readScript = [
    'vg=$1 lv=$2 conf=$3 auth=$4 svc=$5',
    `lvs ${reportOptions.join(" ")} -o ${lvFields} -- "$vg/$lv" 2>/dev/null`,
    'echo ==config==; cat "$conf" 2>/dev/null',
    'echo ==auth==; cat "$auth" 2>/dev/null',
    'echo ==serving==',
    'if command -v systemctl >/dev/null 2>&1; then systemctl is-active "$svc"; else rc-service "$svc" status >/dev/null 2>&1 && echo active || echo inactive; fi',
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
    await ctx.consul(s.consul).services.deregister(s.consulNode, serviceIdOf(s));
    ctx.log.info(`removed ${serviceIdOf(s)} from Consul node ${s.consulNode}`);
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

/**
 * Did a file that nbd-server reads only at start (its config, its service
 * definition) change? The authfile is read at every connection: no restart.
 */
export function needsRestart(plan: Plan, result: PlanResult): boolean {
    return result.steps.some((r) => {
        const s = plan[r.index - 1];
        return r.changed && s?.kind === "writeFile" && !s.path.endsWith(".allow");
    });
}

/** Writes the export's files, then starts it, or restarts it when what it reads at start changed. */
async function serve(host: Remote, inputs: NbdVolumeInputs, family: OsFamily, wasServing: boolean, ctx: OperationContext): Promise<void> {
    const plan = planExportFiles(inputs, family);
    const written = await host.apply(plan);
    const restart = wasServing && needsRestart(plan, written);
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

async function read(_id: string, props: NbdVolumeState, ctx: OperationContext): Promise<NbdVolumeState | undefined> {
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

async function remove(_id: string, props: NbdVolumeState, ctx: OperationContext): Promise<void> {
    const host = hostFor(props.connection, ctx);
    if (!props.deleteData) {
        throw new RefusedError(
            `deleting NbdVolume ${props.volumeGroup}/${props.name} on ${host.target} would remove its data (${formatBytes(props.sizeBytes ?? props.requestedBytes)}), export ${props.exportName} and its Consul entry`,
            "To delete it, set deleteData: true on this NbdVolume, run `pulumi up`, then delete again. To stop managing it but keep everything, run `pulumi state delete <urn>`.",
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

export const nbdVolume: ResourceKind<NbdVolumeInputs, NbdVolumeState> = { check, diff, create, read, update, delete: remove };

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
    const owner = v.string("mac", mac, { pattern: macPattern, patternHint: "is not a MAC address like 52:54:00:12:34:56" });
    const service = v.string("serviceName", serviceName, { pattern: /^[a-z0-9][a-z0-9-]{0,62}$/, patternHint: "is not a Consul service name" });
    if (!v.ok || !conn || !owner || !service) throw new InputError(v.failures);
    const rows = await new ConsulServiceCatalog(conn).findByMeta(service, "owner", owner.toLowerCase());
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
