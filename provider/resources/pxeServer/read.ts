// PxeServer, part read: the one script that reads the live server (descriptor,
// DHCP role, leases, digests of the generated files) and what its output means.
import { Remote, serviceStateShell } from "../../host";
import type { OsFamily } from "../../host";
import { DhcpLease, parseLeases } from "../../parsers/dnsmasq";
import { parseSections } from "../../parsers/sections";
import { parseDescriptor, PxeDescriptor, pxeLayout } from "../../pxe/shared";
import { expectedDigests } from "./render";
import { DhcpRole, PxeServerInputs } from "./spec";

// ---- reading the live server -------------------------------------------------------------

/** $1 pid file, $2 lease file, $3 dhcp service, $4 descriptor, then the files to digest. */
export const serverReadScript = [
    serviceStateShell,
    'pid=$1 leases=$2 svc=$3 desc=$4; shift 4',
    '[ -f "$desc" ] || exit 3',
    'echo "==descriptor=="; cat "$desc"',
    'echo "==role=="',
    'if [ -f "$pid" ] && kill -0 "$(cat "$pid")" 2>/dev/null; then echo active',
    'elif [ "$(baremetal_service_state "$svc")" = active ]; then echo standby',
    "else echo stopped; fi",
    'echo "==leases=="; cat "$leases" 2>/dev/null',
    'echo "==files=="',
    'for f; do if [ -f "$f" ]; then sha256sum "$f"; else echo "missing  $f"; fi; done',
    "exit 0",
].join("\n");

/**
 * Only the DHCP role: $1 pid file, $2 dhcp service; prints what the read script's role
 * section prints. What the wait for a (re)started DHCP to settle repeats: the whole read
 * digests every generated file, a fork per file (about a second a read on the lab's box).
 */
export const roleReadScript = [
    serviceStateShell,
    'if [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; then echo active',
    'elif [ "$(baremetal_service_state "$2")" = active ]; then echo standby',
    "else echo stopped; fi",
].join("\n");

/**
 * What the read script saw of DHCP: dnsmasq alive (its pid file names a live
 * process), only its service running (dnsmasq not started under it, or not yet),
 * or neither. The script says `active`, `standby` and `stopped` for these.
 */
export type DhcpSeen = "dnsmasq" | "service" | "none";

export interface LiveServer {
    descriptor?: PxeDescriptor;
    dhcp: DhcpSeen;
    leases: DhcpLease[];
    files: Record<string, string>;
}

/**
 * The DHCP role from what the box shows. Only a server in standby mode waits for
 * a lock: without one, a service running without dnsmasq is starting or failing,
 * and either way DHCP is not served.
 */
export function dhcpRoleOf(seen: DhcpSeen, standby: boolean): DhcpRole {
    if (seen === "dnsmasq") return "active";
    return seen === "service" && standby ? "standby" : "stopped";
}

/**
 * Whether a role read after this operation started DHCP may still change by
 * itself, so the read is worth repeating: dnsmasq needs a moment to write its pid
 * file, and in standby mode `consul lock` to take a free lock before it starts
 * dnsmasq (the only server of a group is active within a second or so; one read
 * at once said "standby"). A server still waiting after that is a standby.
 */
export function dhcpSettling(role: DhcpRole, started: boolean): boolean {
    return role === "stopped" || (started && role === "standby");
}

/** Parses the read script's output (exported for tests). */
export function parseServerRead(text: string): LiveServer {
    const { parts } = parseSections(text, ["descriptor", "role", "leases", "files"] as const);
    const section = (name: keyof typeof parts) => parts[name] ?? "";
    const seen = section("role").trim();
    const files: Record<string, string> = {};
    for (const line of section("files").split("\n")) {
        const m = /^([0-9a-f]{64}|missing)\s+(\S.*)$/.exec(line.trim());
        if (m) files[m[2]] = m[1];
    }
    return {
        descriptor: parseDescriptor(section("descriptor")),
        dhcp: dhcpSeenOf(seen),
        leases: parseLeases(section("leases")),
        files,
    };
}

/** The words the scripts print in their role section, as what they saw. */
function dhcpSeenOf(said: string): DhcpSeen {
    return said === "active" ? "dnsmasq" : said === "standby" ? "service" : "none";
}

/** What the box shows of DHCP now (roleReadScript): the settle loop's read. */
export async function readDhcpSeen(host: Remote, inputs: PxeServerInputs): Promise<DhcpSeen> {
    const layout = pxeLayout(inputs.name);
    const out = await host.run(["sh", "-c", roleReadScript, "baremetal-pxe-role", layout.pidFile, layout.dhcpService], {
        what: `read the DHCP role of PXE server ${inputs.name}`,
        timeoutMs: 60_000,
    });
    return dhcpSeenOf(out.stdout.trim());
}

export async function readLive(host: Remote, inputs: PxeServerInputs, family: OsFamily): Promise<LiveServer | undefined> {
    const layout = pxeLayout(inputs.name);
    const paths = Object.keys(expectedDigests(inputs, family));
    const out = await host.run(["sh", "-c", serverReadScript, "baremetal-pxe-read", layout.pidFile, layout.leaseFile, layout.dhcpService, layout.descriptor, ...paths], {
        okExitCodes: [0, 3],
        what: `read PXE server ${inputs.name}`,
    });
    return out.exitCode === 3 ? undefined : parseServerRead(out.stdout);
}
