// A workstation that loses power, for tests: a process and everything under it die
// at once. The Pulumi CLI starts each plugin (language host, providers) in a process
// group of its own, so killing the CLI's group alone leaves its plugins running: the
// groups of all its descendants are killed together.
import * as fs from "fs";
import { waitFor } from "./wait";

/** Fields of /proc/<pid>/stat after the command name: [state, ppid, pgrp, ...]. */
function statOf(pid: number): string[] | undefined {
    try {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
        return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    } catch {
        return undefined; // ended meanwhile
    }
}

/** Every process below `pid` (children, their children ...). */
export function descendantsOf(pid: number): number[] {
    const parent = new Map<number, number>();
    for (const e of fs.readdirSync("/proc")) {
        if (!/^\d+$/.test(e)) continue;
        const f = statOf(Number(e));
        if (f) parent.set(Number(e), Number(f[1]));
    }
    const out: number[] = [];
    const walk = (p: number) => {
        for (const [c, pp] of parent) {
            if (pp === p) {
                out.push(c);
                walk(c);
            }
        }
    };
    walk(pid);
    return out;
}

function alive(group: number): boolean {
    try {
        process.kill(-group, 0);
        return true;
    } catch {
        return false;
    }
}

/**
 * SIGKILLs the process group of `pid` (a child spawned with `detached: true` leads one) and the
 * groups of all its descendants, then waits until none of those groups has a process left.
 */
export async function killTree(pid: number, timeoutMs = 60_000): Promise<void> {
    const groups = new Set<number>([pid]);
    for (const d of descendantsOf(pid)) {
        const g = statOf(d)?.[2];
        if (g !== undefined) groups.add(Number(g));
    }
    for (const g of groups) {
        try {
            process.kill(-g, "SIGKILL");
        } catch {
            // gone already
        }
    }
    await waitFor("every process of the killed tree to be gone", () => [...groups].every((g) => !alive(g)), timeoutMs);
}
