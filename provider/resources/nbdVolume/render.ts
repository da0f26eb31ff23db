// NbdVolume, part render: the names of an export's things on the box, its
// nbd-server service and config, and its Consul catalog entry (no I/O).
import type { ExternalService } from "../../consul/client";
import { serviceNameOn } from "../../host";
import { lvmServiceOf } from "../../host";
import type { OsFamily, ServiceSpec } from "../../host";
import type { NbdExportConfig } from "../../parsers/nbd";
import type { NbdVolumeInputs } from "./spec";

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

export const exportServiceName = "baremetal-nbd";

/**
 * One nbd-server per export, as a service with the export's key as instance
 * (one systemd template unit for all exports; one OpenRC script each).
 */
/** What every NBD export service provides on OpenRC, and what a guest starts after. */
export const nbdExportsProvide = "baremetal-nbd-exports";

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
        ...(lvmServiceOf(family) ? { after: [lvmServiceOf(family) as string] } : {}),
        // Guests on this box order their start after every export (OpenRC restarts no qemu that
        // found its disk missing; systemd ignores it).
        provides: [nbdExportsProvide],
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

// ---- the Consul catalog entry -------------------------------------------------------

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
