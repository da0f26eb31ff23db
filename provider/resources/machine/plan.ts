// Machine, part plan: writing and removing its entries on one PXE server. No I/O.
import { Plan, step } from "../../host";
import { bootScriptOf, hostsFileOf, pxeLayout } from "../../pxe/shared";
import { bootScript, leaseLine } from "./render";
import { MachineInputs, PxeServerRef } from "./spec";

export function planEntries(m: MachineInputs, server: PxeServerRef, baseUrl: string): Plan {
    const layout = pxeLayout(server.name);
    return [
        step.writeFile(hostsFileOf(layout, m.mac), leaseLine(m)),
        step.writeFile(bootScriptOf(layout, m.mac), bootScript(m, baseUrl)),
        // dnsmasq reads new and changed hostsdir files by itself but forgets a changed
        // address only on SIGHUP; harmless when it is not running (a standby)
        step.run(["sh", "-c", hupScript, "baremetal-hup", layout.pidFile], { what: `tell dnsmasq of PXE server ${server.name} to re-read its leases`, changes: false }),
        step.persist(),
    ];
}

export function planRemoveEntries(mac: string, server: PxeServerRef): Plan {
    const layout = pxeLayout(server.name);
    return [
        step.removeFile(hostsFileOf(layout, mac)),
        step.removeFile(bootScriptOf(layout, mac)),
        step.run(["sh", "-c", hupScript, "baremetal-hup", layout.pidFile], { what: `tell dnsmasq of PXE server ${server.name} to forget the lease`, changes: false }),
        step.persist(),
    ];
}

const hupScript = 'if [ -f "$1" ]; then kill -HUP "$(cat "$1")" 2>/dev/null; fi; exit 0';
