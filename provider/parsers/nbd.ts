// nbd-server configuration files: the one NbdVolume writes per export, and a
// parser of the INI dialect nbd-server reads (nbd-server(5)), used by `read` to
// show drift. Fixtures in test/unit/fixtures/nbd/ are captured from the lab.
// Also the one builder of the `nbd://` URI a client attaches an export by.

/** Where one export is served: all a client (qemu, nbdinfo) needs to attach it. */
export interface NbdExportAddress {
    /** Host name or IP address of the serving box (IPv6 without brackets). */
    host: string;
    port: number;
    /** The name clients ask for. */
    export: string;
}

/** `nbd://host:port/export` (an IPv6 host in brackets): what qemu's `-drive file=` takes. */
export function nbdUri(a: NbdExportAddress): string {
    const host = a.host.includes(":") ? `[${a.host}]` : a.host;
    return `nbd://${host}:${a.port}/${a.export}`;
}

export interface NbdExportConfig {
    /** TCP port of this export's own nbd-server process. */
    port: number;
    /** The name clients ask for (`nbd://host:port/<name>`). */
    exportName: string;
    /** The block device served. */
    path: string;
    readOnly: boolean;
    /** File listing the addresses/networks allowed to connect; none means everyone. */
    authfile?: string;
}

export const managedMarker = "# Managed by pulumi-baremetal (NbdVolume); changes made here are overwritten.";

/**
 * One export per nbd-server process. No `user`/`group`: the server runs as root,
 * because LV device nodes are root:disk and the nbd user differs across distros.
 * No `listenaddr`: access is controlled per client by the authfile.
 */
export function renderExportConfig(c: NbdExportConfig): string {
    const lines = [
        managedMarker,
        "[generic]",
        `\tport = ${c.port}`,
        // Lets `nbdinfo --list` show the export name, which is public in Consul anyway.
        "\tallowlist = true",
        `[${c.exportName}]`,
        `\texportname = ${c.path}`,
        `\treadonly = ${c.readOnly}`,
        // Honour the client's flush and FUA requests: a guest's fsync must reach the disks.
        "\tflush = true",
        "\tfua = true",
        ...(c.authfile ? [`\tauthfile = ${c.authfile}`] : []),
        "",
    ];
    return lines.join("\n");
}

/** Sections of an nbd-server config, each a map of its keys; `generic` included. */
export type NbdConfig = Record<string, Record<string, string>>;

export function parseNbdConfig(text: string): NbdConfig {
    const out: NbdConfig = {};
    let section: Record<string, string> | undefined;
    for (const raw of text.split("\n")) {
        const line = raw.trim();
        if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
        const header = /^\[(.+)\]$/.exec(line);
        if (header) {
            section = out[header[1]] ??= {};
            continue;
        }
        const kv = /^([A-Za-z_]+)\s*=\s*(.*)$/.exec(line);
        if (kv && section) section[kv[1]] = kv[2];
    }
    return out;
}

/** The single export of a config NbdVolume wrote, as it stands now. */
export function exportOf(text: string): NbdExportConfig | undefined {
    const cfg = parseNbdConfig(text);
    const names = Object.keys(cfg).filter((s) => s !== "generic");
    if (names.length !== 1) return undefined;
    const section = cfg[names[0]];
    const port = Number(cfg.generic?.port ?? "10809");
    const out: NbdExportConfig = { port, exportName: names[0], path: section.exportname ?? "", readOnly: isTrue(section.readonly) };
    if (section.authfile) out.authfile = section.authfile;
    return out;
}

function isTrue(v: string | undefined): boolean {
    return v !== undefined && /^(true|yes|1)$/i.test(v);
}

/** nbd-server's authfile: one address or CIDR network per line. */
export function renderAuthfile(clients: string[]): string {
    return clients.map((c) => `${c}\n`).join("");
}

export function parseAuthfile(text: string): string[] {
    return text
        .split("\n")
        .map((l) => l.trim())
        .filter((l) => l !== "" && !l.startsWith("#"));
}
