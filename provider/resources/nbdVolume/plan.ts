// NbdVolume, part plan: the LV's and the export's steps as data (no I/O).
import { hostLocks, Plan, PlanResult, step } from "../../host";
import type { OsFamily } from "../../host";
import { ownTag } from "../../parsers/lvm";
import { renderAuthfile, renderExportConfig } from "../../parsers/nbd";
import { exportConfigOf, exportPaths, exportService, exportServiceName } from "./render";
import type { NbdVolumeInputs } from "./spec";

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

/** Did a file that nbd-server reads only at start (its config, its service definition) change? */
export function needsRestart(result: PlanResult<NbdExportStep>): boolean {
    return result.stepChanged("export-service", "export-config");
}
