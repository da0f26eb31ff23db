// `pulumi import` through the native provider: from an import ID (see
// importIds.ts) to the minimal inputs that name the object, read on the box or
// in Consul. The front door (server.ts) then runs the kind's own check and read
// on them, so the imported state is exactly what a refresh would read, and the
// inputs it hands back are what the printed program declares.
//
// Each importer only finds the object and what its ID does not say (a RAID
// array's device and level, a container's template); reading its live state is
// the kind's job. Identity comes from the ID, credentials from the provider's
// configuration (never into the printed code).
import type { ConsulConnection } from "../consul/client";
import { InputError } from "../core/errors";
import type { OperationContext } from "../core/resource";
import { Validator } from "../core/validate";
import type { HostConnection, Remote } from "../host";
import { vgNamePattern } from "../parsers/lvm";
import { configValues } from "../parsers/lxc";
import { parseDetailExport } from "../parsers/mdadm";
import { GuestDisk, GuestNic } from "../resources/kvmGuest";
import { containerReadScript, parseRead } from "../resources/lxcContainer";
import { exportPaths, parseLive, readScript as volumeReadScript } from "../resources/nbdVolume";
import { formatBytes } from "../core/validate";
import { importIds } from "./importIds";

/** How an importer reaches things: the operation context and connections completed from the configuration. */
export interface Reach {
    ctx: OperationContext;
    ssh(host: string): HostConnection;
    consul(address: string): ConsulConnection;
}

/** What names the object: the resource's ID and the inputs that find it (the kind's check fills in the rest). */
export interface Located {
    id: string;
    inputs: Record<string, unknown>;
}

export type Importer = (importId: string, reach: Reach) => Promise<Located | undefined>;

/** `a@b` split at the last `@` (a prefix or a name may not hold one; an address may not either). */
function splitAt(importId: string, kind: string): [string, string] {
    const i = importId.lastIndexOf("@");
    if (i <= 0 || i === importId.length - 1) throw importIdError(kind, "has no `@<host>` part");
    return [importId.slice(0, i), importId.slice(i + 1)];
}

function importIdError(kind: string, reason: string): InputError {
    return new InputError([{ field: "import ID", reason: `${reason}; a ${kind} is imported as ${importIds[kind] ?? "(not importable)"}` }]);
}

function checked<T>(kind: string, v: Validator, value: T | undefined): T {
    if (!v.ok || value === undefined) throw new InputError(v.failures.map((f) => ({ field: `import ID (${f.field})`, reason: `${f.reason}; a ${kind} is imported as ${importIds[kind]}` })));
    return value;
}

// ---- ConsulKeys ------------------------------------------------------------------------

async function consulKeys(importId: string, reach: Reach): Promise<Located | undefined> {
    // `#k1,k2` names the keys whose values are secrets (Consul cannot tell).
    const hash = importId.indexOf("#");
    const [location, secretList] = hash >= 0 ? [importId.slice(0, hash), importId.slice(hash + 1)] : [importId, ""];
    const [prefixText, addressText] = splitAt(location, "ConsulKeys");
    const v = new Validator();
    const prefix = v.kvPrefix("prefix", prefixText);
    const address = v.hostPort("address", addressText);
    const secretKeys = secretList === "" ? [] : secretList.split(",").map((k, i) => v.kvKey(`secret key ${i + 1}`, k));
    checked("ConsulKeys", v, prefix && address);
    const consul = reach.consul(address as string);
    const live = await reach.ctx.consul(consul).kv.tree(prefix as string);
    // Keys strictly under the prefix: the prefix's own key (a "folder" marker) is not a value of it.
    const values = [...live].filter(([k]) => k.length > (prefix as string).length).map(([k, x]): [string, string] => [k.slice((prefix as string).length), x]);
    if (values.length === 0) return undefined;
    const missing = secretKeys.filter((k) => !values.some(([key]) => key === k));
    if (missing.length > 0) throw importIdError("ConsulKeys", `names secret key(s) ${missing.join(", ")} that are not under ${prefix}`);
    const keys = Object.fromEntries(values.filter(([k]) => !secretKeys.includes(k)));
    const secrets = Object.fromEntries(values.filter(([k]) => secretKeys.includes(k)));
    return { id: prefix as string, inputs: { consul, prefix, keys, ...(secretKeys.length > 0 ? { secrets } : {}) } };
}

// ---- LxcContainer ----------------------------------------------------------------------

/** What the container was made from: its template (LXC's own header comment) or a rootfs of the box. */
export function sourceOf(name: string, config: string): { template: string } | { rootfs: string } | undefined {
    const rootfs = configValues(config, "lxc.rootfs.path")[0] ?? "";
    const dir = rootfs.replace(/^dir:/, "");
    if (dir !== "" && dir !== `/var/lib/lxc/${name}/rootfs`) return { rootfs: dir };
    const template = /^#.*\/lxc-([a-z][a-z0-9_-]{0,31})\s*$/m.exec(config);
    return template ? { template: template[1] } : undefined;
}

async function lxcContainer(importId: string, reach: Reach): Promise<Located | undefined> {
    const [nameText, hostText] = splitAt(importId, "LxcContainer");
    const v = new Validator();
    const name = v.string("name", nameText, { pattern: /^[a-z][a-z0-9-]{0,62}$/, patternHint: "is not a container name" });
    const host = v.host("host", hostText);
    checked("LxcContainer", v, name && host);
    const connection = reach.ssh(host as string);
    const out = await remote(reach, connection).run(["sh", "-c", containerReadScript, "baremetal-lxc-read", name as string], { okExitCodes: [0, 3], what: `read container ${name}` });
    if (out.exitCode !== 0) return undefined;
    const source = sourceOf(name as string, parseRead(out.stdout).config);
    if (!source) throw new Error(`container ${name} on ${host} names neither a template nor a rootfs in its LXC config; import cannot tell how it was made (declare it with adopt: true instead)`);
    return { id: `${name}@${host}`, inputs: { connection, name, ...source } };
}

function remote(reach: Reach, conn: HostConnection): Remote {
    return reach.ctx.remote(conn);
}

// ---- RaidArray ----------------------------------------------------------------------------

// Prints `mdadm --detail --export` of every md device, each after a `==<device>==` line.
const mdScanScript = ['for d in /dev/md[0-9]*; do [ -b "$d" ] || continue; echo "==$d=="; mdadm --detail --export "$d" 2>/dev/null; done', "exit 0"].join("\n");

/** The md device whose `mdadm --detail --export` carries this UUID, from the scan's output. */
export function findArray(scan: string, uuid: string): { device: string; detail: ReturnType<typeof parseDetailExport> } | undefined {
    for (const block of scan.split(/^(?===\/dev\/)/m)) {
        const m = /^==(\/dev\/md\d+)==\n([\s\S]*)$/.exec(block);
        if (!m || !/^MD_UUID=/m.test(m[2])) continue;
        const detail = parseDetailExport(m[2]);
        if (detail.uuid === uuid) return { device: m[1], detail };
    }
    return undefined;
}

async function raidArray(importId: string, reach: Reach): Promise<Located | undefined> {
    const [uuidText, hostText] = splitAt(importId, "RaidArray");
    const v = new Validator();
    const uuid = v.string("uuid", uuidText, { pattern: /^[0-9a-f]{8}(:[0-9a-f]{8}){3}$/, patternHint: "is not an md UUID like 3b1e4c2a:6f0d9e11:8a7c5b40:12de34f5" });
    const host = v.host("host", hostText);
    checked("RaidArray", v, uuid && host);
    const connection = reach.ssh(host as string);
    const scan = await remote(reach, connection).run(["sh", "-c", mdScanScript, "baremetal-md-scan"], { what: "list md arrays" });
    const found = findArray(scan.stdout, uuid as string);
    if (!found) return undefined;
    const { detail } = found;
    // mdadm stores `<homehost>:<name>`; the name is what --name was given.
    const name = detail.name?.includes(":") ? detail.name.slice(detail.name.indexOf(":") + 1) : detail.name;
    return {
        id: detail.uuid,
        inputs: { connection, device: found.device, level: detail.level, metadata: detail.metadata, members: detail.members.map((m) => m.device), ...(name ? { name } : {}) },
    };
}

// ---- NbdVolume ------------------------------------------------------------------------------

async function nbdVolume(importId: string, reach: Reach): Promise<Located | undefined> {
    const at = importId.lastIndexOf("@");
    const [path, consulText] = at > 0 ? [importId.slice(0, at), importId.slice(at + 1)] : [importId, undefined];
    const [hostText, vgText, lvText, ...rest] = path.split("/");
    const v = new Validator();
    const host = v.host("host", hostText);
    const volumeGroup = v.string("vg", vgText, { pattern: vgNamePattern, patternHint: "is not a VG name" });
    const name = v.string("lv", lvText, { pattern: /^[A-Za-z0-9_.-]{1,63}$/, patternHint: "is not an LV name" });
    const address = consulText === undefined ? undefined : v.hostPort("consul address", consulText);
    if (rest.length > 0) v.fail("path", "has more than three parts");
    if (consulText === undefined) v.fail("consul address", "is missing: the volume's owner is recorded only in its Consul catalog entry");
    checked("NbdVolume", v, host && volumeGroup && name && address);
    const connection = reach.ssh(host as string);
    const box = remote(reach, connection);
    const p = exportPaths(volumeGroup as string, name as string, (await box.facts()).family);
    const out = await box.run(["sh", "-c", volumeReadScript, "baremetal-nbd-read", volumeGroup as string, name as string, p.config, p.authfile, p.service], { what: `read ${volumeGroup}/${name}` });
    const live = parseLive(out.stdout);
    if (!live.lv) return undefined;
    if (!live.config) {
        throw new Error(`${volumeGroup}/${name} on ${host} has no export in ${p.config}: only an exported volume can be imported (declare it with adopt: true to export it)`);
    }
    const consul = reach.consul(address as string);
    const entries = (await reach.ctx.consul(consul).services.findByMeta("nbd", "volume", name as string)).filter((e) => e.meta.volume_group === volumeGroup);
    if (entries.length !== 1) {
        throw new Error(`${volumeGroup}/${name} is registered ${entries.length} times in Consul at ${address} (service nbd, meta volume=${name}); import needs exactly one entry to read its owner from`);
    }
    const [entry] = entries;
    return {
        id: `${host}/${volumeGroup}/${name}`,
        inputs: {
            connection, volumeGroup, name,
            size: formatBytes(live.lv.sizeBytes),
            port: live.config.port, exportName: live.config.exportName, readOnly: live.config.readOnly, allowedClients: live.allowedClients,
            owner: entry.meta.owner, consul, consulNode: entry.node, exportAddress: entry.meta.host || entry.address, serviceName: entry.service,
        },
    };
}

// ---- KvmGuest -------------------------------------------------------------------------------

// Prints the service file whose owner line carries the MAC ($1), after `==<path>==`.
const guestFindScript = [
    'for f in /etc/systemd/system/baremetal-guest-*.service /etc/init.d/baremetal-guest-*; do',
    '  [ -f "$f" ] || continue',
    '  head -n 2 "$f" | grep -qx "# pulumi-baremetal guest mac=$1" || continue',
    '  echo "==$f=="; cat "$f"',
    'done',
    'exit 0',
].join("\n");

export interface GuestHardware {
    name: string;
    machine: string;
    memoryMiB: number;
    vcpus: number;
    disks: GuestDisk[];
    nics: GuestNic[];
    boot: "network" | "disk";
    shutdownTimeoutSeconds?: number;
}

/**
 * The guest's hardware from the service file this provider writes (a systemd unit
 * or an OpenRC script): qemu's argv, and the bridge each tap joins before qemu starts.
 */
export function parseGuestService(text: string): GuestHardware | undefined {
    const line = text.split("\n").find((l) => /(^|[\s"=])-name guest=/.test(l));
    if (!line) return undefined;
    const argv = line.replace(/^(ExecStart=|command_args=")/, "").replace(/"$/, "").split(/\s+/);
    const opt = (flag: string) => argv.filter((_, i) => argv[i - 1] === flag);
    const name = /^guest=(.+)$/.exec(opt("-name")[0] ?? "")?.[1];
    if (!name) return undefined;
    const disks: GuestDisk[] = opt("-drive").map((d) => {
        const file = /(?:^|,)file=([^,]+)/.exec(d)?.[1] ?? "";
        const readOnly = /(?:^|,)readonly=on(?:,|$)/.test(d);
        const nbd = /^nbd:\/\/([^/:]+|\[[^\]]+\]):(\d+)\/(.+)$/.exec(file);
        return nbd ? { nbd: { host: nbd[1].replace(/^\[|\]$/g, ""), port: Number(nbd[2]), export: nbd[3] }, readOnly } : { device: file, readOnly };
    });
    const bridges = new Map<string, { bridge: string; bridgeType: "ovs" | "linux" }>();
    for (const m of text.matchAll(/ovs-vsctl --may-exist add-port (\S+) (vm[0-9a-f]{12})/g)) bridges.set(m[2], { bridge: m[1], bridgeType: "ovs" });
    for (const m of text.matchAll(/ip link set (vm[0-9a-f]{12}) master (\S+?)(?: \|\||$)/gm)) bridges.set(m[1], { bridge: m[2], bridgeType: "linux" });
    const nics: GuestNic[] = opt("-device")
        .filter((d) => /(?:^|,)netdev=/.test(d))
        .map((d) => {
            const model = d.split(",")[0] as GuestNic["model"];
            const mac = /(?:^|,)mac=([0-9a-f:]{17})/.exec(d)?.[1] ?? "";
            const tap = `vm${mac.replace(/:/g, "")}`;
            return { ...(bridges.get(tap) ?? { bridge: "", bridgeType: "ovs" }), mac, model };
        });
    const timeout = /powerdown \S+ (\d+) /.exec(text)?.[1];
    return {
        name,
        machine: (opt("-machine")[0] ?? "pc").split(",")[0],
        memoryMiB: Number(opt("-m")[0]),
        vcpus: Number(opt("-smp")[0] ?? "1"),
        disks,
        nics,
        boot: opt("-boot")[0] === "order=cn" ? "disk" : "network",
        ...(timeout ? { shutdownTimeoutSeconds: Number(timeout) } : {}),
    };
}

async function kvmGuest(importId: string, reach: Reach): Promise<Located | undefined> {
    const [macText, hostText] = splitAt(importId, "KvmGuest");
    const v = new Validator();
    const mac = v.mac("mac", macText);
    const host = v.host("host", hostText);
    checked("KvmGuest", v, mac && host);
    const connection = reach.ssh(host as string);
    const out = await remote(reach, connection).run(["sh", "-c", guestFindScript, "baremetal-guest-find", mac as string], { what: `look for the guest with MAC ${mac}` });
    const files = out.stdout.split(/^==(?:\/\S+)==$/m).filter((t) => t.trim() !== "");
    if (files.length === 0) return undefined;
    if (files.length > 1) throw new Error(`${files.length} guest services on ${host} carry MAC ${mac}; remove the stale one first`);
    const hw = parseGuestService(files[0]);
    if (!hw) throw new Error(`the service of the guest with MAC ${mac} on ${host} has no qemu command line this provider wrote; it cannot be imported`);
    return { id: mac as string, inputs: { connection, ...hw } };
}

/** Every kind `pulumi import` can adopt, by kind name. */
export const importers: Readonly<Record<string, Importer>> = {
    ConsulKeys: consulKeys,
    RaidArray: raidArray,
    NbdVolume: nbdVolume,
    KvmGuest: kvmGuest,
    LxcContainer: lxcContainer,
};
