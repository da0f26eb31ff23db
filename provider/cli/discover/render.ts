// discover, part render: the inventory as the YAML file an operator reads and
// edits: a header saying what was read and which stack config keys hold the
// secrets (never their values), the inventory, then every note as a commented
// block (what was found, why it is not in the inventory).
import { stringify } from "yaml";
import type { Discovered, Note } from "./inventory";

export interface RenderContext {
    /** The boxes that were asked for, as given. */
    boxes: string[];
    when: Date;
    /** The file the key came from (only its path is written), when one was given. */
    keyFile?: string;
}

/** The stack config keys the inventory's program needs for what was found (names only, never values). */
export function secretKeys(d: Discovered): { key: string; how: string }[] {
    const keys = [{ key: "sshPrivateKey", how: "the private key every box accepts for defaults.sshUser" }];
    if (d.inventory.machines.some((m) => m.bmc)) keys.push({ key: "bmcPassword", how: "the BMCs' password (or bmcPasswords, an object by machine name); used once a pxe section declares the Machines that power them" });
    if (d.inventory.consul) keys.push({ key: "consulToken", how: "a Consul ACL token, if the agent needs one" });
    return keys;
}

export function renderInventory(d: Discovered, ctx: RenderContext): string {
    const header = [
        `Inventory written by \`baremetal discover\` on ${ctx.when.toISOString()} from ${ctx.boxes.length} box(es): ${ctx.boxes.join(", ")}.`,
        "",
        "Everything found is marked `adopt: true`: `pulumi up` takes it over as it runs, restarting",
        "nothing and keeping all data. `asFound` keeps a guest under the service that runs it now, or",
        "an export under the box's own nbd-server: remove it to move that object under pulumi-baremetal",
        "(`pulumi preview` shows the change; the guest restarts, the export's clients reconnect).",
        "",
        "Secrets are not in this file. Set them as stack config (pulumi config set --secret KEY ...):",
        ...secretKeys(d).map((s) => `  ${s.key}: ${s.how}${s.key === "sshPrivateKey" && ctx.keyFile ? ` (e.g. < ${ctx.keyFile})` : ""}`),
    ];
    const body = stringify(d.inventory, { lineWidth: 0, indent: 2, aliasDuplicateObjects: false });
    const notes = d.notes.length === 0 ? [] : ["", ...noteBlock(d.notes)];
    return [...header.map(comment), "", body.trimEnd(), ...notes, ""].join("\n");
}

function comment(line: string): string {
    return line === "" ? "#" : `# ${line}`;
}

function noteBlock(notes: Note[]): string[] {
    const lines = [`---- found, but not in this inventory (${notes.length}) ----`, ""];
    for (const n of notes) {
        lines.push(`${n.where}: ${n.what}`, `  why: ${n.why}`);
        for (const d of n.detail ?? []) lines.push(`  found: ${d}`);
        lines.push("");
    }
    return lines.map(comment);
}
