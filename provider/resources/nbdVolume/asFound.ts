// NbdVolume, part asFound: an export the box's own nbd-server already serves
// (a hand-written /etc/nbd-server/config section), adopted as it runs. Nothing of
// the export is written or restarted while asFound stays; removing asFound moves
// the export to its own nbd-server process, the one change that disturbs its
// clients (and, when that server serves other exports, theirs).
import { RefusedError } from "../../core/errors";
import { OperationContext } from "../../core/resource";
import { Plan, Remote, step } from "../../host";
import { LvReport } from "../../parsers/lvm";
import { parseAuthfile, parseNbdConfig } from "../../parsers/nbd";
import { parseLive, readScript } from "./read";
import { NbdVolumeInputs, VolumeAsFound } from "./spec";

/** The export as the box's own nbd-server has it. */
export interface FoundExport {
    lv?: LvReport;
    /** Its section in the config; undefined when no section exports this LV. */
    section?: string;
    port: number;
    readOnly: boolean;
    allowedClients: string[];
    /** Other export sections the same config holds. */
    others: string[];
    serving: boolean;
}

/** Does an nbd-server `exportname` name this LV (`/dev/vg/lv` or its /dev/mapper path)? */
export function namesLv(exportname: string, vg: string, lv: string): boolean {
    const mapper = `/dev/mapper/${vg.replace(/-/g, "--")}-${lv.replace(/-/g, "--")}`;
    return exportname === `/dev/${vg}/${lv}` || exportname === mapper;
}

/** Reads the LV, the config holding its export, its authfile and the server's state. */
export async function readFound(host: Remote, i: Pick<NbdVolumeInputs, "volumeGroup" | "name"> & { asFound: VolumeAsFound }): Promise<FoundExport> {
    const out = await host.run(["sh", "-c", readScript, "baremetal-nbd-read", i.volumeGroup, i.name, i.asFound.config, "", i.asFound.service ?? ""], { what: `read ${i.volumeGroup}/${i.name} and ${i.asFound.config}` });
    const live = parseLive(out.stdout);
    const configText = /==config==\n([\s\S]*?)==auth==/.exec(out.stdout)?.[1] ?? "";
    const config = parseNbdConfig(configText);
    const exports = Object.keys(config).filter((s) => s !== "generic" && config[s].exportname);
    const section = exports.find((s) => namesLv(config[s].exportname, i.volumeGroup, i.name));
    let port = config.generic?.port;
    // An included file (conf.d) has no [generic]: the port is the main config's.
    if (port === undefined && i.asFound.config !== "/etc/nbd-server/config") port = parseNbdConfig((await host.readFile("/etc/nbd-server/config")) ?? "").generic?.port;
    const authfile = section ? config[section].authfile : undefined;
    const found: FoundExport = {
        port: Number(port ?? "10809"),
        readOnly: section !== undefined && /^(true|yes|1)$/i.test(config[section].readonly ?? ""),
        allowedClients: authfile ? parseAuthfile((await host.readFile(authfile)) ?? "") : [],
        others: exports.filter((s) => s !== section),
        serving: live.serving,
    };
    if (live.lv) found.lv = live.lv;
    if (section) found.section = section;
    return found;
}

/** Where the declaration differs from what the server serves. */
export function exportDifferences(i: NbdVolumeInputs, f: FoundExport): string[] {
    const out: string[] = [];
    if (f.section !== i.exportName) out.push(`export name ${f.section} (declared ${i.exportName})`);
    if (f.port !== i.port) out.push(`port ${f.port} (declared ${i.port})`);
    if (f.readOnly !== i.readOnly) out.push(`readOnly ${f.readOnly} (declared ${i.readOnly})`);
    const sorted = (l: string[]) => [...l].sort().join(", ");
    if (sorted(f.allowedClients) !== sorted(i.allowedClients)) out.push(`allowed clients ${sorted(f.allowedClients) || "everyone"} (declared ${sorted(i.allowedClients) || "everyone"})`);
    return out;
}

/** Refuses an adoption that would have to change the export; otherwise says what is kept. */
export function assertAdoptable(host: Remote, i: NbdVolumeInputs & { asFound: VolumeAsFound }, f: FoundExport, ctx: OperationContext): void {
    const where = `${i.asFound.config} on ${host.target}`;
    if (!f.section) {
        throw new RefusedError(`no section of ${where} exports ${i.volumeGroup}/${i.name}`, "Point asFound.config at the file that exports it, or remove asFound to give the volume an nbd-server of its own. Nothing was changed.");
    }
    const diffs = exportDifferences(i, f);
    if (diffs.length > 0) {
        throw new RefusedError(
            `the export of ${i.volumeGroup}/${i.name} in ${where} has ${diffs.join(", ")}; adopting it as it is cannot change that without restarting its server`,
            "Declare what is served (baremetal discover writes it), adopt it, then change it: the change shows in preview. Nothing was changed.",
        );
    }
    ctx.log.info(`${i.volumeGroup}/${i.name}: adopting the export [${f.section}] of ${where}${i.asFound.service ? ` (served by ${i.asFound.service})` : ""} as it is; nothing was restarted`);
}

/** Fields whose change needs the export's server to re-read its config. */
const exportFields = ["port", "exportName", "readOnly", "allowedClients"] as const;

/** Refuses export changes of an export kept as found (growing and Consul are fine). */
export function assertNoExportChange(host: Remote, olds: NbdVolumeInputs, news: NbdVolumeInputs & { asFound: VolumeAsFound }): void {
    const changed = exportFields.filter((k) => JSON.stringify(olds[k]) !== JSON.stringify(news[k]));
    if (changed.length === 0) return;
    throw new RefusedError(
        `the export of ${news.volumeGroup}/${news.name} is kept as found in ${news.asFound.config} on ${host.target}; changing ${changed.join(", ")} needs its server restarted`,
        "Remove asFound in the same change to move the export to its own nbd-server (its clients reconnect), or leave those as they are. Nothing was changed.",
    );
}

// Drops section [$2] from nbd-server config $1 (the rest of the file as it was).
const dropSectionScript = [
    "set -eu",
    "conf=$1 section=$2",
    'tmp=$(mktemp "$conf.XXXXXX")',
    `awk -v s="[$section]" '{ l = $0; gsub(/^[ \\t]+|[ \\t]+$/, "", l) } l ~ /^\\[/ { skip = (l == s) } !skip { print }' "$conf" >"$tmp"`,
    'if cmp -s "$tmp" "$conf"; then rm -f "$tmp"; echo =baremetal-unchanged=; else chmod "$(stat -c %a "$conf")" "$tmp"; mv -f "$tmp" "$conf"; fi',
].join("\n");

/**
 * The steps that take the export away from the box's own nbd-server: its section
 * leaves the config, then that server restarts (other exports stay with it) or,
 * serving nothing else, stops for good. The caller then starts the export's own.
 */
export function planRelease(found: VolumeAsFound, f: FoundExport): Plan {
    const drop = step.run(["sh", "-c", dropSectionScript, "baremetal-nbd-drop", found.config, f.section ?? ""], { what: `remove export [${f.section}] from ${found.config}` });
    const service = found.service as string;
    return f.others.length > 0 ? [drop, step.service("restart", service)] : [drop, step.service("stop", service), step.service("disable", service)];
}

/** Refuses a takeover that cannot be done cleanly; says what it will disturb. */
export function assertTakeOver(host: Remote, olds: NbdVolumeInputs & { asFound: VolumeAsFound }, news: NbdVolumeInputs, f: FoundExport, ctx: OperationContext): void {
    if (!olds.asFound.service) {
        throw new RefusedError(`the nbd-server serving ${news.volumeGroup}/${news.name} on ${host.target} runs without a service, so it cannot be restarted to let the export go`, "Stop it by hand (its clients disconnect), then run again. Nothing was changed.");
    }
    if (f.others.length > 0 && f.port === news.port) {
        throw new RefusedError(
            `${olds.asFound.service} keeps serving ${f.others.join(", ")} on port ${f.port} on ${host.target}, so the export's own nbd-server needs another port`,
            "Give this volume another port in the same change (its owner's disk follows the new port). Nothing was changed.",
        );
    }
    ctx.log.warn(
        `${news.volumeGroup}/${news.name}: moving the export from ${olds.asFound.service} to its own nbd-server on ${host.target}: ` +
            (f.others.length > 0 ? `${olds.asFound.service} is restarted (the clients of ${[f.section, ...f.others].join(", ")} reconnect)` : `${olds.asFound.service} is stopped and disabled (its clients reconnect to the new server)`),
    );
}
