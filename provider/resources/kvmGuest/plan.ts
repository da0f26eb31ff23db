// KvmGuest, part plan: install, incoming (live migration) and removal as
// steps (no I/O).
import { Plan, step } from "../../host";
import { distributionOf } from "../../host";
import type { OsFamily } from "../../host";
import { qmpScriptFile, qmpScriptPathOn } from "../../qmp/script";
import { guestService, pathsOf, serviceName } from "./render";
import type { KvmGuestInputs } from "./spec";

export function packagesFor(g: KvmGuestInputs, family: OsFamily): string[] {
    const ovs = g.nics.some((n) => n.bridgeType === "ovs");
    return distributionOf(family) === "alpine"
        ? ["qemu-system-x86_64", "python3", "iproute2", ...(ovs ? ["openvswitch"] : [])]
        : ["qemu-system-x86", "python3", "iproute2", ...(ovs ? ["openvswitch-switch"] : [])];
}

/** The steps create asks about: "guest-service" (the unit or script changed, so a running guest restarts). */
export type KvmGuestStep = "guest-service";

/** Installs qemu, the QMP helper and the service; enables it at boot when autostart is set. */
export function planInstall(g: KvmGuestInputs, family: OsFamily): Plan<KvmGuestStep> {
    return [
        step.ensurePackages(...packagesFor(g, family)),
        step.writeFile(qmpScriptPathOn(family), qmpScriptFile(), { mode: "0755" }),
        step.installService(guestService(g, family), { tag: "guest-service" }),
        step.service(g.autostart ? "enable" : "disable", serviceName(g.name)),
        step.persist(),
    ];
}

/** The guest's service stops (its stop is the graceful power-down), then leaves the box. */
export function planRemove(name: string): Plan {
    const p = pathsOf(name);
    return [
        step.uninstallService({ name: serviceName(name) }),
        step.removeFile(p.incoming),
        step.removeFile(p.stopOutcome),
        step.persist(),
    ];
}

/** The incoming side of a live migration: the same guest, told to wait for its state. */
export function planIncoming(g: KvmGuestInputs, family: OsFamily): Plan<KvmGuestStep> {
    return [
        ...planInstall(g, family).filter((s) => s.kind !== "persist"),
        step.writeFile(pathsOf(g.name).incoming, `QEMU_INCOMING="-incoming tcp:0.0.0.0:${g.migrationPort}"\n`),
        step.service("start", serviceName(g.name)),
    ];
}
