// Machine, part render: what a machine is on its PXE servers (the static lease, the
// per-MAC iPXE script) and in Consul's catalog (its meta). No I/O.
import { managedMarker, profileScriptUrl } from "../../pxe/shared";
import { MachineInputs, PxeServerRef } from "./spec";

// ---- what goes on the PXE servers --------------------------------------------------------

export function serverKey(s: PxeServerRef): string {
    return `${s.name}@${s.connection.host}`;
}

/** The dhcp-hostsdir file: the static lease. */
export function leaseLine(m: Pick<MachineInputs, "mac" | "ip" | "hostname">): string {
    return `# ${managedMarker}: machine ${m.hostname}\n${m.mac},${m.ip},${m.hostname}\n`;
}

/** The per-MAC iPXE script: the machine's arguments, then the profile's script. */
export function bootScript(m: Pick<MachineInputs, "mac" | "hostname" | "role" | "profile" | "kernelArgs">, baseUrl: string): string {
    const args = [`baremetal.hostname=${m.hostname}`, `baremetal.mac=${m.mac}`, ...m.kernelArgs];
    return [
        "#!ipxe",
        `# ${managedMarker}: machine ${m.hostname} (${m.mac}), role ${m.role}, profile ${m.profile}`,
        `set bm_args ${args.join(" ")}`,
        `chain --autofree ${profileScriptUrl(baseUrl, m.profile)}`,
        "",
    ].join("\n");
}

export function nodeMeta(m: Pick<MachineInputs, "mac" | "role" | "profile">): Record<string, string> {
    return { mac: m.mac, role: m.role, profile: m.profile, "external-node": "true", "managed-by": "pulumi-baremetal" };
}
