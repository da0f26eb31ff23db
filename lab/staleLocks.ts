// The demo's own stack keeps its state in a local file backend. A `pulumi up` that
// died (the workstation lost power, the terminal was killed) leaves its lock file
// behind, and every later run stops at "the stack is currently locked". A lock is
// stale when it was taken on this machine by a process that is gone; then the demo
// clears it with `pulumi cancel` and goes on. Any other lock is reported with the
// exact command to run, and nothing is cleared.
//
// Usage: node dist/lab/staleLocks.js <state dir> <stack>
//   exit 0: no lock, or only stale ones (cleared by the caller: it prints `clear`)
//   exit 3: a live or foreign lock (the message says what to do)
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

/** What the file backend writes for each lock (.pulumi/locks/<org>/<project>/<stack>/<uuid>.json). */
export interface LockFile {
    path: string;
    pid: number;
    hostname: string;
    username: string;
    timestamp: string;
}

export type LockVerdict = { lock: LockFile; stale: true; why: string } | { lock: LockFile; stale: false; why: string };

/** Every lock of one stack, whatever its organisation and project directories. */
export function locksOf(stateDir: string, stack: string): LockFile[] {
    const root = path.join(stateDir, ".pulumi", "locks");
    const found: LockFile[] = [];
    const walk = (dir: string, depth: number): void => {
        if (!fs.existsSync(dir)) return;
        for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
            const child = path.join(dir, entry.name);
            if (entry.isDirectory() && depth < 3) walk(child, depth + 1);
            else if (entry.isFile() && depth === 3 && path.basename(dir) === stack && entry.name.endsWith(".json")) {
                const body = JSON.parse(fs.readFileSync(child, "utf8")) as Omit<LockFile, "path">;
                found.push({ path: child, pid: body.pid, hostname: body.hostname, username: body.username, timestamp: body.timestamp });
            }
        }
    };
    walk(root, 0);
    return found;
}

/** The command line of a live process, or undefined when there is none with this pid. */
function commandLineOf(pid: number): string | undefined {
    try {
        return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
    } catch {
        return undefined;
    }
}

/** Stale: taken on this machine by a process that is gone (or whose pid now belongs to something that is not pulumi). */
export function judge(lock: LockFile, hostname = os.hostname(), commandLine = commandLineOf): LockVerdict {
    const holder = `pid ${lock.pid} on ${lock.hostname}, since ${lock.timestamp}`;
    if (lock.hostname !== hostname) return { lock, stale: false, why: `taken on another machine (${holder}): its pulumi may still be running` };
    const cmd = commandLine(lock.pid);
    if (cmd === undefined) return { lock, stale: true, why: `its pulumi (${holder}) is gone` };
    if (!/\bpulumi\b/.test(cmd)) return { lock, stale: true, why: `its pulumi (${holder}) is gone; the pid now runs: ${cmd.slice(0, 80)}` };
    return { lock, stale: false, why: `pulumi is still running (${holder}): wait for it, or stop it (kill ${lock.pid})` };
}

function main(argv: string[]): number {
    const [stateDir, stack] = argv;
    if (!stateDir || !stack) {
        process.stderr.write("usage: staleLocks <state dir> <stack>\n");
        return 2;
    }
    const verdicts = locksOf(stateDir, stack).map((l) => judge(l));
    for (const v of verdicts) process.stderr.write(`[demo] lock ${path.basename(v.lock.path)}: ${v.why}\n`);
    if (verdicts.every((v) => v.stale)) {
        if (verdicts.length > 0) process.stdout.write("clear\n");
        return 0;
    }
    process.stderr.write(
        `[demo] the stack "${stack}" is locked by a pulumi that may still run. When you are sure none runs, clear the lock with:\n` +
            `  . lab/env.sh; PULUMI_BACKEND_URL=file://${stateDir} pulumi cancel --stack ${stack} --yes\n` +
            `and run the demo again.\n`,
    );
    return 3;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
