// The `baremetal` command line (package.json `bin`): one entry, one module per subcommand.
// Each subcommand parses its own options and returns an exit status; this file only
// dispatches and prints the list of subcommands.

import type { Subcommand } from "./subcommand";

export type { Subcommand };

/**
 * The subcommands, loaded when called so that `baremetal map` does not load the SSH layer.
 * A subcommand's module exports `command: Subcommand`.
 */
const subcommands: Record<string, { summary: string; load: () => Promise<Subcommand> }> = {};

/** Adds a subcommand (called from this file's list below; one place names them all). */
function register(name: string, summary: string, load: () => Promise<Subcommand>): void {
    subcommands[name] = { summary, load };
}

function usage(): string {
    const width = Math.max(...Object.keys(subcommands).map((n) => n.length), 4);
    const rows = Object.entries(subcommands).map(([name, s]) => `  ${name.padEnd(width)}  ${s.summary}`);
    return ["usage: baremetal <command> [options]   (baremetal <command> --help for its options)", "", "commands:", ...rows].join("\n");
}

export async function main(argv: string[]): Promise<number> {
    const [name, ...rest] = argv;
    if (!name || name === "--help" || name === "-h" || name === "help") {
        process.stdout.write(usage() + "\n");
        return name ? 0 : 2;
    }
    const entry = subcommands[name];
    if (!entry) {
        process.stderr.write(`baremetal: unknown command "${name}"\n\n${usage()}\n`);
        return 2;
    }
    return (await entry.load()).run(rest);
}

// ---- the subcommands --------------------------------------------------------------------
// (discover: issue #18, map: issue #21; each adds its line here)
register("map", "draw a stack's data center as a self-contained HTML page (or SVG) from its state", async () => (await import("./map")).command);
register("discover", "read a running site into an inventory (only reads; everything found marked for adoption)", async () => (await import("./discover")).command);
