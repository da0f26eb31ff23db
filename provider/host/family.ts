// The OS families the host layer supports. A module of its own so that the
// service renderer (service.ts) and the OS adapters (os.ts) can both name them
// without importing each other.

export type OsFamily = "alpine" | "debian";

/** The init system that supervises services on a family: OpenRC on Alpine, systemd on Debian. */
export type InitSystem = "openrc" | "systemd";

export function initSystemOf(family: OsFamily): InitSystem {
    return family === "alpine" ? "openrc" : "systemd";
}
