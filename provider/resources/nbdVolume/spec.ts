// NbdVolume, part spec: the inputs and state, and the field table.
import { ConsulConnection, consulConnectionType } from "../../consul/client";
import { dataLossFields } from "../../core/dataLoss";
import { KindSpec, ObjectType, t } from "../../core/fields";
import { connectionField, HostConnection } from "../../host";
import { vgNamePattern } from "../../parsers/lvm";

/** An export served by the box's own nbd-server, kept as found: its service and the config file holding it. */
export interface VolumeAsFound {
    service?: string;
    config: string;
}

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
    asFound?: VolumeAsFound;
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
export const serviceNameRule = { pattern: /^[a-z0-9][a-z0-9-]{0,62}$/, patternHint: "is not a Consul service name (lower-case letters, digits, -)" };

const asFoundType: ObjectType = {
    name: "NbdVolumeAsFound",
    doc: "An export the box's own nbd-server already serves, kept as found: that server's service and the config file holding the export (what `baremetal discover` finds).",
    fields: {
        service: {
            type: t.string(),
            doc: "The service of the nbd-server that serves it (`nbd-server.service`).",
            rule: { pattern: /^[A-Za-z0-9][A-Za-z0-9@._-]{0,127}$/, patternHint: "is not a service name like nbd-server.service" },
        },
        config: { type: t.string(), required: true, doc: "The config file holding the export's section.", check: (v, f, x) => v.absolutePath(f, x, { where: "on the box" }) },
    },
};

export const spec: KindSpec<NbdVolumeInputs, NbdVolumeState> = {
    kind: "NbdVolume",
    doc: "An LVM logical volume on the SAN box, exported over NBD by an nbd-server process of its own and registered in Consul with the KVM guest (eth0 MAC) that owns it. It grows online and never shrinks; export settings change in place, restarting only this export's process when nbd-server must re-read them. An existing LV of the same name is adopted when pulumi-baremetal made it, or with adopt. Delete, and every change that re-creates the LV, are refused unless allowDataLoss is set.",
    id: "`<host>/<vg>/<lv>`, e.g. `198.51.100.11/vg0/web01-var`.",
    example: `new NbdVolume("web01-var", {
    connection,
    volumeGroup: "vg0",
    name: "web01-var",
    size: "20GiB",
    port: 10809,
    owner: "52:54:00:12:34:56",
    consul: { address: "198.51.100.2:8500" },
});`,
    exampleHost: "198.51.100.11",
    deleteBeforeReplace: true,
    inputs: {
        connection: connectionField("The SAN box or VM running LVM and nbd-server. A new host re-creates the volume, which needs allowDataLoss."),
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
            doc: "Size with a binary unit: `256MiB`, `20GiB`, `1TiB` (`20G` and `20GB` are refused: say `20GiB`). Growing happens online, in place; shrinking is refused (make a new volume and copy instead).",
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
        asFound: {
            type: t.object(asFoundType),
            doc: "Keep an adopted export served by the box's own nbd-server as it is: no export files or process of its own, nothing restarted; growing works, export setting changes are refused. Removing it (an update, shown by preview) moves the export to its own nbd-server process: its section leaves that config and that server is restarted (its clients reconnect) or, serving nothing else, stopped. Needs adopt.",
        },
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
