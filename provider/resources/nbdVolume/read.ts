// NbdVolume, part read: the one read script of the box (LV, config, authfile,
// serving) and what it says; and the Consul lookup of a guest's exports.
import { checkConsulConnection, ConsulConnection, ConsulServiceCatalog } from "../../consul/client";
import { InputError } from "../../core/errors";
import { Validator } from "../../core/validate";
import { hostLocks, Remote, serviceStateShell } from "../../host";
import type { LockName, OsFamily } from "../../host";
import { lvFields, LvReport, parseLvs, reportOptions } from "../../parsers/lvm";
import { exportOf, NbdExportConfig, nbdUri, parseAuthfile } from "../../parsers/nbd";
import { parseSections } from "../../parsers/sections";
import { exportPaths } from "./render";
import { serviceNameRule } from "./spec";

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

/** What the box holds now (refresh, and the read back after a change). */
export async function readLive(host: Remote, vg: string, lv: string, family: OsFamily, lock?: LockName): Promise<LiveVolume> {
    const p = exportPaths(vg, lv, family);
    const out = await host.run(["sh", "-c", readScript, "baremetal-nbd-read", vg, lv, p.config, p.authfile, p.service], { what: `read ${vg}/${lv}`, lock });
    return parseLive(out.stdout);
}

/**
 * The read create, update and delete act on, under the LVM lock that their
 * lvcreate, lvextend and lvremove hold: after a cut connection, the command of
 * the cut run may still be running on the box (it keeps the lock until it
 * exits), and a re-run that read around it would see the LV as it was and issue
 * the command again (an lvextend to the size the LV has by then fails, as does
 * an lvremove of an LV that is gone).
 */
export function readBeforeChange(host: Remote, vg: string, lv: string, family: OsFamily): Promise<LiveVolume> {
    return readLive(host, vg, lv, family, hostLocks.lvm);
}

export async function vgExists(host: Remote, vg: string): Promise<boolean> {
    const r = await host.exec(["vgs", "--noheadings", "-o", "vg_name", "--", vg], { what: `look for volume group ${vg}` });
    return r.exitCode === 0;
}

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
