// Machine, part read: what each PXE server holds for the machine (and whether it may
// be taken), and the facts the booted machine tells about itself.
import { RefusedError } from "../../core/errors";
import { OperationContext } from "../../core/resource";
import { describeTarget, Remote } from "../../host";
import { parseSections } from "../../parsers/sections";
import { bootScriptOf, hostsFileOf, managedMarker, parseDescriptor, PxeDescriptor, pxeLayout } from "../../pxe/shared";
import { bootScript, leaseLine, serverKey } from "./render";
import { MachineFacts, MachineInputs, PxeServerRef } from "./spec";

// ---- reading a PXE server's view of the machine ------------------------------------------

/** $1 descriptor, $2 hosts file, $3 boot script, $4 hosts dir, $5 ip: what the server holds for this MAC. */
export const readEntriesScript = [
    'desc=$1 hosts=$2 boot=$3 dir=$4 ip=$5',
    '[ -f "$desc" ] || exit 3',
    'echo "==descriptor=="; cat "$desc"',
    'echo "==lease=="; cat "$hosts" 2>/dev/null',
    'echo "==boot=="; cat "$boot" 2>/dev/null',
    // another machine's entry claiming the same address
    'echo "==clash=="; for f in "$dir"/*; do [ -f "$f" ] && [ "$f" != "$hosts" ] && grep -q -F ",$ip," "$f" && echo "$f"; done',
    "exit 0",
].join("\n");

export interface ServerView {
    ref: PxeServerRef;
    host: Remote;
    descriptor: PxeDescriptor;
    lease: string;
    bootScript: string;
    clashes: string[];
}

export function parseEntriesRead(text: string): { descriptor?: PxeDescriptor; lease: string; bootScript: string; clashes: string[] } {
    const { parts } = parseSections(text, ["descriptor", "lease", "boot", "clash"] as const);
    const section = (name: keyof typeof parts) => parts[name] ?? "";
    return {
        descriptor: parseDescriptor(section("descriptor")),
        lease: section("lease"),
        bootScript: section("boot"),
        clashes: section("clash").split("\n").filter((l) => l.trim() !== ""),
    };
}

export async function viewOf(ref: PxeServerRef, m: Pick<MachineInputs, "mac" | "ip">, ctx: OperationContext): Promise<ServerView | undefined> {
    const host = ctx.remote(ref.connection);
    const layout = pxeLayout(ref.name);
    const out = await host.run(["sh", "-c", readEntriesScript, "baremetal-machine-read", layout.descriptor, hostsFileOf(layout, m.mac), bootScriptOf(layout, m.mac), layout.hostsDir, m.ip], {
        okExitCodes: [0, 3],
        what: `read the entries of ${m.mac} on PXE server ${ref.name}`,
    });
    if (out.exitCode === 3) return undefined;
    const r = parseEntriesRead(out.stdout);
    if (!r.descriptor) throw new Error(`PXE server ${serverKey(ref)}: ${layout.descriptor} is not a descriptor this package wrote; re-run \`pulumi up\` for the PxeServer`);
    return { ref, host, descriptor: r.descriptor, lease: r.lease, bootScript: r.bootScript, clashes: r.clashes };
}

export async function requireView(ref: PxeServerRef, m: MachineInputs, ctx: OperationContext): Promise<ServerView> {
    const view = await viewOf(ref, m, ctx);
    if (!view) {
        throw new RefusedError(`there is no PXE server ${ref.name} on ${describeTarget(ref.connection)}`, "Create the PxeServer first (pass its outputs to pxeServers) or fix the name.");
    }
    if (!(m.profile in view.descriptor.profiles)) {
        throw new RefusedError(
            `profile: PXE server ${serverKey(ref)} has no profile ${JSON.stringify(m.profile)} (it has ${Object.keys(view.descriptor.profiles).join(", ") || "none"})`,
            "Declare the profile on that PxeServer or choose one it has.",
        );
    }
    if (view.clashes.length > 0) {
        throw new RefusedError(`ip: ${m.ip} is already leased to another machine on PXE server ${serverKey(ref)} (${view.clashes.join(", ")})`, "Choose another address or remove that machine first.");
    }
    return view;
}

/** Refuses to overwrite entries someone else made for this MAC, unless adopting. */
export function assertTakeable(view: ServerView, m: MachineInputs): void {
    const foreign = (text: string, want: string) => text !== "" && text !== want && !text.includes(managedMarker);
    if (!m.adopt && (foreign(view.lease, leaseLine(m)) || foreign(view.bootScript, bootScript(m, view.descriptor.baseUrl)))) {
        throw new RefusedError(
            `PXE server ${serverKey(view.ref)} already has entries for ${m.mac} that pulumi-baremetal did not write`,
            "Set adopt: true on this Machine to take them over (they will be rewritten), or remove them by hand.",
        );
    }
}

export const factsScript = [
    'echo "==kernel=="; uname -r',
    'echo "==cmdline=="; cat /proc/cmdline',
    'echo "==disks=="',
    'for d in /sys/block/*; do n=${d##*/}; case $n in loop*|ram*|zram*|sr*|md*|dm-*|nbd*|fd*) continue;; esac; echo "$n $(( $(cat "$d/size") * 512 ))"; done',
    'echo "==nics=="',
    'for n in /sys/class/net/*; do i=${n##*/}; [ "$i" = lo ] && continue; echo "$i $(cat "$n/address")"; done',
    'echo "==addresses=="; ip -o addr show 2>/dev/null',
    "exit 0",
].join("\n");

/** Parses the facts script's output (exported for tests on captured output). */
export function parseFacts(text: string): MachineFacts {
    const { parts } = parseSections(text, ["kernel", "cmdline", "disks", "nics", "addresses"] as const);
    const section = (name: keyof typeof parts) => (parts[name] ?? "").split("\n").filter((l) => l.trim() !== "");
    const profile = /(?:^|\s)baremetal\.profile=(\S+)/.exec(section("cmdline").join(" "));
    const facts: MachineFacts = {
        kernel: section("kernel")[0]?.trim() ?? "",
        disks: section("disks").map((l) => l.trim().split(/\s+/)).map(([name, size]) => ({ name, sizeBytes: Number(size) })),
        nics: section("nics").map((l) => l.trim().split(/\s+/)).map(([name, mac]) => ({ name, mac })),
        addresses: section("addresses")
            .map((l) => /\s(inet6?)\s+(\S+)/.exec(l))
            .filter((x): x is RegExpExecArray => x !== null && !/^(127\.|::1\/|fe80:)/.test(x[2]))
            .map((x) => x[2]),
    };
    if (profile) facts.bootedProfile = profile[1];
    return facts;
}

export async function readFacts(m: MachineInputs, ctx: OperationContext): Promise<MachineFacts | undefined> {
    if (!m.waitForSsh) return undefined;
    const out = await ctx.remote(m.waitForSsh.connection).run(["sh", "-c", factsScript, "baremetal-facts"], { what: `read the facts of ${m.hostname}`, timeoutMs: 60_000 });
    return parseFacts(out.stdout);
}
