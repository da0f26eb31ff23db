// The demo's stack remembers each resource's connection, its pinned host key
// included. A lab build makes new VMs with new host keys (and `npm test` resets the
// lab's disks), so after a rebuild the stack describes objects on machines that no
// longer exist, and its refresh rightly refuses to talk to hosts whose keys are not
// the pinned ones. The demo then keeps the old state aside and starts the stack
// afresh, saying why, instead of failing on every resource.
//
// Usage: pulumi stack export | node dist/lab/staleStack.js <lab.json>
//   prints `current` (no resource, or every pinned key is one of the lab's), or
//   `stale <resources> <pinned keys the lab no longer has>`
import * as fs from "fs";

interface Exported {
    deployment?: { resources?: { type?: string; inputs?: Record<string, unknown> }[] };
}

interface LabJson {
    vms: Record<string, { ssh: { hostKey: string } }>;
}

/** Every `hostKey` string anywhere in a resource's inputs (connections, jump hosts, BMC boxes). */
function pinnedKeys(value: unknown, into: Set<string>): void {
    if (Array.isArray(value)) {
        for (const v of value) pinnedKeys(v, into);
    } else if (value !== null && typeof value === "object") {
        for (const [k, v] of Object.entries(value)) {
            if (k === "hostKey" && typeof v === "string") into.add(v.trim());
            else pinnedKeys(v, into);
        }
    }
}

export type StackVerdict = { stale: false } | { stale: true; resources: number; unknownKeys: string[] };

/** Whether the exported stack was made against VMs the lab no longer has (keys it does not present). */
export function judgeStack(exported: Exported, lab: LabJson): StackVerdict {
    const resources = (exported.deployment?.resources ?? []).filter((r) => r.type !== "pulumi:pulumi:Stack" && !r.type?.startsWith("pulumi:providers:"));
    const keys = new Set<string>();
    for (const r of resources) pinnedKeys(r.inputs, keys);
    const current = new Set(Object.values(lab.vms).map((vm) => vm.ssh.hostKey.trim()));
    const unknownKeys = [...keys].filter((k) => !current.has(k));
    return unknownKeys.length === 0 ? { stale: false } : { stale: true, resources: resources.length, unknownKeys };
}

if (require.main === module) {
    const [labJsonPath] = process.argv.slice(2);
    if (!labJsonPath) {
        console.error("usage: pulumi stack export | node dist/lab/staleStack.js <lab.json>");
        process.exit(2);
    }
    const verdict = judgeStack(JSON.parse(fs.readFileSync(0, "utf8") || "{}") as Exported, JSON.parse(fs.readFileSync(labJsonPath, "utf8")) as LabJson);
    console.log(verdict.stale ? `stale ${verdict.resources} ${verdict.unknownKeys.length}` : "current");
}
