// The fault harness's eyes on the VM: one long-lived watcher per cut, over its
// own direct SSH session (not through the proxy it is about to cut), that looks
// for the sign that a plan step's command is running there — a process whose
// command line matches, or a file that appears — and says so the moment it sees
// it. The harness then cuts. Where the cut lands is decided by what the host is
// doing, not by a delay that a fast or a loaded machine turns into another step.
//
// The watcher is a small Python program (every lab VM has python3: they share
// the machine's root). One process scanning /proc in a loop sees a command that
// lives a few tens of milliseconds (an `rm` of one file on a one-vCPU TCG VM);
// a `pgrep` per poll costs a fork and exec each time and misses those.
//
// A matched process is held (SIGSTOP) the moment it is seen and let go (SIGCONT)
// once the harness has cut: the command cannot finish and report back in the
// time the cut takes to travel, so the cut lands inside the step every time.
// The command then runs on exactly as it would after a real cut (its client is
// gone). The watcher never holds for more than 10 s, and lets go when its
// session ends, whatever happened to the harness.
import type { ChildProcess } from "child_process";
import { LabShell } from "./lab";

/** What the harness waits for on the host before it cuts. */
export type CutSign =
    /**
     * A process whose command line (its arguments joined by spaces) matches; it is
     * held until the cut is made. The pattern runs under Python's `re` on the VM:
     * keep to the syntax both share. Best written with `runs`, `script` or
     * `pausedRun` (which also sets `pause`).
     */
    | { process: RegExp; pause?: PauseShim }
    /** A path (a shell glob) that appears after the watcher started; nothing is held. */
    | { file: string }
    /**
     * The fallback: a fixed delay after the step starts. Only where no sign on
     * the host fits, with the reason in `why` (it is printed with the cut).
     */
    | { delayMs: number; why: string };

export type HostSign = Exclude<CutSign, { delayMs: number }>;

/**
 * A command too quick for any watcher to see (`mdadm /dev/md30 --remove` ends in
 * a few ms, and a loaded one-vCPU TCG VM scans /proc every few hundred): for the
 * one cut, a wrapper of that name goes first in root's PATH (/usr/local/sbin),
 * and a call whose arguments start with `leadingArgs` stops itself (SIGSTOP)
 * before it runs the real program. The watcher takes it once it has stopped (not
 * before: it would stop itself after being let go), the harness
 * cuts, the watcher lets it go and the real program runs, as after a real cut.
 * A test aid, not a double: the command that runs is the real one, only later.
 * If nobody lets it go, it goes on by itself after 30 s.
 */
export interface PauseShim {
    program: string;
    leadingArgs: string;
}

/** The sign that `program` runs with `leadingArgs` first, paused at its start by a wrapper (PauseShim). */
export function pausedRun(program: string, leadingArgs: string): HostSign {
    if (!/^[a-z0-9][a-z0-9._-]*$/.test(program)) throw new Error(`pausedRun: ${program} is not a plain program name`);
    if (!/^[A-Za-z0-9/._=:-]+( [A-Za-z0-9/._=:-]+)*$/.test(leadingArgs)) throw new Error(`pausedRun: "${leadingArgs}" must be plain words (letters, digits, / . _ = : -)`);
    return { process: new RegExp(`(^|/)${escapeRegExp(program)} ${escapeRegExp(leadingArgs)}( |$)`), pause: { program, leadingArgs } };
}

/** First in root's PATH on the lab's VMs (Debian's and Alpine's sshd alike), empty there otherwise. */
const shimDir = "/usr/local/sbin";
const shimMark = "pulumi-baremetal fault test pause shim";

/** The script that puts the wrapper in place (it refuses to replace a file that is not one of ours). */
export function installShimScript(shim: PauseShim, dir = shimDir): string {
    const path = `${dir}/${shim.program}`;
    const systemPath = "/usr/sbin:/usr/bin:/sbin:/bin"; // everything but the shim's own directory
    const body = [
        "#!/bin/sh",
        `# ${shimMark}: put here for one cut and removed after it (test/lab/signWatcher.ts).`,
        // The fallback waker keeps no descriptor of the caller's: flock(1)'s lock (fd 3) held by a
        // sleeping child would keep the re-run waiting 30 s for a lock nobody uses.
        `case "$*" in "${shim.leadingArgs}"|"${shim.leadingArgs} "*) (exec 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- </dev/null >/dev/null 2>&1; sleep 30; kill -CONT $$) & kill -STOP $$ ;; esac`,
        `PATH=${systemPath} exec ${shim.program} "$@"`,
        "",
    ].join("\n");
    return [
        `PATH=${systemPath} command -v ${shim.program} >/dev/null || { echo "${shim.program} is not installed" >&2; exit 3; }`,
        `if [ -e ${path} ] && ! grep -q '${shimMark}' ${path}; then echo "${path} exists and is not a pause shim" >&2; exit 3; fi`,
        `mkdir -p ${dir}`,
        `cat > ${path}.new <<'BAREMETAL_SHIM'\n${body}BAREMETAL_SHIM`,
        `chmod 755 ${path}.new && mv -f ${path}.new ${path}`,
    ].join("\n");
}

/** The script that takes the wrapper away (only ours). */
export function removeShimScript(shim: PauseShim, dir = shimDir): string {
    const path = `${dir}/${shim.program}`;
    return `if grep -q '${shimMark}' ${path} 2>/dev/null; then rm -f ${path}; fi`;
}

/**
 * The sign that `program` itself runs with arguments matching `args` right after
 * its name: not a wrapper that will run it (timeout, flock), which may still be
 * waiting for a lock. `(^|/)`: an interpreted program (ceph, ceph-volume) shows
 * as `/usr/bin/python3 /usr/bin/ceph ...`.
 */
export function runs(program: string, args: RegExp): HostSign {
    return { process: new RegExp(`(^|/)${escapeRegExp(program)} ${args.source}`) };
}

/**
 * The sign that one of the host layer's constant scripts runs (`sh -c SCRIPT
 * NAME ARGS...`, provider/host/os.ts), by its name and the arguments after it.
 */
export function script(name: string, args: RegExp): HostSign {
    return { process: new RegExp(`^sh -c [\\s\\S]* ${escapeRegExp(name)} ${args.source}`) };
}

export function escapeRegExp(text: string): string {
    return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

/** How a sign reads in a report or an error. */
export function describeSign(sign: CutSign): string {
    if ("process" in sign) return `a process matching /${sign.process.source}/`;
    if ("file" in sign) return `a file ${sign.file}`;
    return `${sign.delayMs} ms after the step started (${sign.why})`;
}

/** What the watcher saw: the processes it held, or the files that appeared. */
export interface Seen {
    pid: number;
    what: string;
}

// Protocol, one line each way: the harness sends the sign as JSON, the watcher
// answers "ready"; "arm" starts the looking, a line or the end of input before
// the sign stops it; "seen [...]" is answered by "thaw" (or the end of input).
// No single quote in the program: it travels inside one on the command line.
const watcherProgram = String.raw`
import glob, json, os, re, select, signal, sys, time

me, parent = os.getpid(), os.getppid()
held = []
pending = b""

def say(text):
    sys.stdout.write(text + "\n")
    sys.stdout.flush()

def line(timeout):
    """The next line from the harness; "" at the end of input; None when none came in time."""
    global pending
    deadline = None if timeout is None else time.monotonic() + timeout
    while b"\n" not in pending:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not select.select([0], [], [], left)[0]:
            return None
        chunk = os.read(0, 4096)
        if not chunk:
            return ""
        pending += chunk
    text, _, pending = pending.partition(b"\n")
    return text.decode()

def command_line(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""

def state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return "Z"

def hold_matching(rx, stopped_only):
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in (me, parent):
            continue
        pid = int(entry)
        text = command_line(pid)
        # A paused command (PauseShim) counts once it has stopped itself: seen earlier, it would
        # stop itself after the harness let it go, and wait for its own 30 s fallback.
        if text and rx.search(text) and (state(pid) in "Tt" if stopped_only else state(pid) != "Z"):
            try:
                os.kill(pid, signal.SIGSTOP)
                held.append({"pid": pid, "what": text})
            except ProcessLookupError:
                pass
    return list(held)

def let_go():
    for p in held:
        try:
            os.kill(p["pid"], signal.SIGCONT)
        except ProcessLookupError:
            pass
    del held[:]

try:
    sign = json.loads(line(None) or "{}")
    if "process" in sign:
        rx = re.compile(sign["process"])
        look = lambda: hold_matching(rx, sign.get("stopped", False))
    else:
        before = set(glob.glob(sign["file"]))
        look = lambda: [{"pid": 0, "what": p} for p in sorted(set(glob.glob(sign["file"])) - before)]
    say("ready")
    if line(None) == "arm":
        while True:
            found = look()
            if found:
                say("seen " + json.dumps(found))
                line(10)
                break
            if line(0.02) is not None:
                break
finally:
    let_go()
`;

if (watcherProgram.includes("'")) throw new Error("the watcher program must not contain a single quote");

/** One watcher on one VM for one cut. */
export class SignWatcher {
    /** Called once, synchronously, when the sign is seen: cut here, then `release`. */
    onSeen: (seen: Seen[]) => void = () => {};
    private stdout = "";
    private stderr = "";
    /** The session ended before the harness let it go: ssh or python failed. */
    private endedEarly = false;
    private letGo = false;
    private readonly exit: Promise<void>;
    private ready?: () => void;

    private constructor(
        private readonly child: ChildProcess,
        readonly vmName: string,
    ) {
        this.exit = new Promise((resolve) => {
            child.on("close", () => {
                this.endedEarly = !this.letGo;
                resolve();
            });
        });
        child.stdout?.setEncoding("utf8");
        child.stdout?.on("data", (chunk: string) => this.onOutput(chunk));
        child.stderr?.setEncoding("utf8");
        child.stderr?.on("data", (chunk: string) => (this.stderr += chunk));
        // Writes after the session ended fail with EPIPE: the exit is what matters.
        child.stdin?.on("error", () => {});
    }

    /** Starts the watcher on the VM and waits until it is ready to look (a loaded TCG VM takes seconds to log in). */
    static async start(sh: LabShell, vmName: string, sign: HostSign, timeoutMs = 180_000): Promise<SignWatcher> {
        const w = new SignWatcher(sh.spawn(vmName, `exec python3 -u -c '${watcherProgram}'`), vmName);
        const spec = "process" in sign ? { process: sign.process.source, stopped: sign.pause !== undefined } : { file: sign.file };
        w.send(JSON.stringify(spec));
        let timer: NodeJS.Timeout | undefined;
        const outcome = await new Promise<"ready" | "ended" | "timeout">((resolve) => {
            w.ready = () => resolve("ready");
            timer = setTimeout(() => resolve("timeout"), timeoutMs);
            void w.exit.then(() => resolve("ended"));
        });
        clearTimeout(timer);
        if (outcome !== "ready") {
            await w.close();
            const how = outcome === "ended" ? "ended before it was ready" : `was not ready within ${timeoutMs / 1000} s`;
            throw new Error(`the sign watcher on ${vmName} ${how} (does the VM answer SSH, has it python3?): ${w.stderr.trim() || "no output"}`);
        }
        return w;
    }

    /** Starts looking: the step the cut waits for has started. */
    arm(): void {
        this.send("arm");
    }

    /** Stops looking (the step ended) or lets the held processes go (the cut is made). */
    release(): void {
        this.letGo = true;
        this.send("thaw");
        this.child.stdin?.end();
    }

    /** Why the watcher is gone, when it went before it saw anything. */
    failure(): string | undefined {
        return this.endedEarly ? `the sign watcher on ${this.vmName} ended early: ${this.stderr.trim() || "no output"}` : undefined;
    }

    /** Ends the watcher: whatever it held is let go. Bounded: a stuck session is killed. */
    async close(): Promise<void> {
        this.letGo = true;
        this.child.stdin?.end();
        const timer = setTimeout(() => this.child.kill("SIGKILL"), 20_000);
        await this.exit;
        clearTimeout(timer);
    }

    private send(line: string): void {
        if (this.child.stdin?.writable) this.child.stdin.write(`${line}\n`);
    }

    private onOutput(chunk: string): void {
        this.stdout += chunk;
        let nl: number;
        while ((nl = this.stdout.indexOf("\n")) >= 0) {
            const line = this.stdout.slice(0, nl);
            this.stdout = this.stdout.slice(nl + 1);
            if (line === "ready") this.ready?.();
            else if (line.startsWith("seen ")) this.onSeen(JSON.parse(line.slice(5)) as Seen[]);
        }
    }
}

/**
 * A held process as a report shows it: the host layer's constant scripts by name
 * (`sh -c <baremetal-write> /path ...`, as the provider's own logs show them),
 * long lines shortened.
 */
export function describeSeen(seen: Seen[]): string {
    return seen
        .map((s) => {
            const what = s.what.replace(/\bsh -c [\s\S]*? (baremetal-[a-z0-9-]+)(?= |$)/, "sh -c <$1>").replace(/\s+/g, " ");
            const brief = what.length > 160 ? `${what.slice(0, 157)}...` : what;
            return s.pid > 0 ? `pid ${s.pid}: ${brief}` : brief;
        })
        .join("; ");
}
