// Resolving paths on a host to their kernel names (/dev/disk/by-id/x -> /dev/vda),
// one path at a time: BusyBox's readlink (Alpine's userland) takes one FILE and
// no -e, where GNU's takes many (found on the lab's OpenRC box, whose PATH has
// BusyBox's applets: every RaidArray said its members did not exist).
import type { Remote } from "./execute";

/** Prints each argument's canonical path, or "-" when it does not exist; one line each. */
export const resolvePathsScript = 'for p in "$@"; do if [ -e "$p" ] && r=$(readlink -f "$p"); then echo "$r"; else echo -; fi; done';

/** The canonical path of each path on the host; undefined where it does not exist. */
export async function resolvePaths(host: Remote, paths: string[], what = "resolve devices"): Promise<Map<string, string | undefined>> {
    const out = await host.run(["sh", "-c", resolvePathsScript, "baremetal-resolve", ...paths], { what });
    const lines = out.stdout.split("\n").slice(0, paths.length);
    if (lines.length !== paths.length) throw new Error(`${what} on ${host.target}: expected ${paths.length} lines, got ${JSON.stringify(out.stdout)}`);
    return new Map(paths.map((p, i) => [p, lines[i] === "-" ? undefined : lines[i]]));
}
