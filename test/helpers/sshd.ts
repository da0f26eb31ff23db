// Starts a real OpenSSH sshd (Debian's /usr/sbin/sshd) on a free loopback port,
// with host and client keys generated for this run in a temp dir, and stops it
// with every process it forked. Needs root (sshd drops privileges per session).
import { ChildProcess, execFileSync, spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import type { HostConnection } from "../../provider/host";
import { freePort } from "./net";

export const sshdBinary = "/usr/sbin/sshd";

export interface KeyPair {
    privateKey: string;
    /** OpenSSH line: "ssh-ed25519 AAAA... comment". */
    publicKey: string;
}

export interface TestSshd {
    host: "127.0.0.1";
    port: number;
    dir: string;
    /** The server's host key line: what connection.hostKey pins. */
    hostKey: string;
    /** `SHA256:...` of the host key, as ssh-keygen -lf prints it. */
    hostKeyFingerprint: string;
    /** The key root may log in with. */
    client: KeyPair;
    logPath: string;
    log(): string;
    /** TCP connections sshd accepted (its "Connection from" lines). */
    connections(): number;
    /** Sessions that ran a command ("Starting session: command", or "forced-command" under audit). */
    commandSessions(): number;
    /**
     * Every command a client asked to exec, in order, as sent (only with
     * `audit`; sshd's own log names sessions, not their commands).
     */
    commands(): string[];
    /** A connection for root with the client key and the pinned host key. */
    connection(overrides?: Partial<HostConnection>): HostConnection;
    stop(): Promise<void>;
}

export interface SshdOptions {
    /** Extra sshd_config lines, e.g. "MaxStartups 64". */
    extraConfig?: string[];
    /** Reuse a client key (e.g. the same key on a jump host and a target). */
    client?: KeyPair;
    /**
     * Record every exec request through a ForceCommand wrapper (see commands()):
     * `record` then runs the command as usual; `block` runs nothing and exits 126,
     * a tripwire for tests that must prove no command reaches the host.
     */
    audit?: "record" | "block";
    /**
     * Directories that sshd and its sessions see as empty private tmpfs mounts (a
     * mount namespace of their own), so a resource can really write there as root
     * without touching this machine's copy. Created (empty) here when missing.
     */
    privateDirs?: string[];
}

/** Fails loudly (also outside CI): these tests claim a real sshd, so no sshd means no claim. */
export function requireSshd(): void {
    if (!fs.existsSync(sshdBinary)) {
        throw new Error(`${sshdBinary} is missing: install openssh-server (listed in lab/host-packages.txt); the host tests need a real sshd`);
    }
    if (process.getuid?.() !== 0) throw new Error("the host tests start sshd, which needs root");
}

export function generateKeyPair(dir: string, name: string): KeyPair {
    const file = path.join(dir, name);
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", name, "-f", file]);
    return { privateKey: fs.readFileSync(file, "utf8"), publicKey: fs.readFileSync(`${file}.pub`, "utf8").trim() };
}

export async function startSshd(options: SshdOptions = {}): Promise<TestSshd> {
    requireSshd();
    // sshd refuses to start without its privilege-separation directory.
    fs.mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sshd-test-"));
    const port = await freePort();
    const hostKeyFile = path.join(dir, "host_ed25519");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "test-host", "-f", hostKeyFile]);
    const hostKey = fs.readFileSync(`${hostKeyFile}.pub`, "utf8").trim();
    const hostKeyFingerprint = execFileSync("ssh-keygen", ["-l", "-E", "sha256", "-f", `${hostKeyFile}.pub`], { encoding: "utf8" }).split(" ")[1];
    const client = options.client ?? generateKeyPair(dir, "client_ed25519");
    // sshd reads authorized_keys as the logging-in user, who may not be root: the
    // public keys are world-readable, the directory only traversable (private keys stay 0600).
    fs.chmodSync(dir, 0o711);
    fs.writeFileSync(path.join(dir, "authorized_keys"), `${client.publicKey}\n`, { mode: 0o644 });
    const auditPath = path.join(dir, "audit.log");
    const auditConfig = options.audit ? [`ForceCommand ${writeAuditWrapper(dir, auditPath, options.audit)}`] : [];
    const config = path.join(dir, "sshd_config");
    fs.writeFileSync(
        config,
        [
            // sshd takes the first value of a keyword, so the test's lines go first.
            ...(options.extraConfig ?? []),
            `ListenAddress 127.0.0.1:${port}`,
            `HostKey ${hostKeyFile}`,
            `PidFile ${path.join(dir, "sshd.pid")}`,
            `AuthorizedKeysFile ${path.join(dir, "authorized_keys")}`,
            "PermitRootLogin yes",
            "PubkeyAuthentication yes",
            "PasswordAuthentication yes",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",
            "UseDNS no",
            "PrintMotd no",
            "AllowTcpForwarding yes",
            "MaxSessions 10",
            // bash sources the user's ~/.bashrc for a command whose stdin is a socket (as sshd gives it)
            // when it is a top-level shell: a workstation's or CI machine's own dotfiles, not what the
            // tests are about, ran before every command (this machine's root .bashrc runs `pyenv init`
            // twice: about 2 s of CPU per command, 48-107 s for the 60 parallel commands of exec.test.ts).
            // With SHLVL=1 from sshd, the login shell counts itself as nested and skips it.
            "SetEnv SHLVL=1",
            // VERBOSE logs every connection and every session start: what the tests count.
            "LogLevel VERBOSE",
            ...auditConfig,
            "",
        ].join("\n"),
    );
    const logPath = path.join(dir, "sshd.log");
    const logFd = fs.openSync(logPath, "a");
    const sshdArgv = [sshdBinary, "-D", "-e", "-f", config];
    // unshare and sh exec in turn, so the child's pid is sshd's own.
    const argv = options.privateDirs?.length
        ? ["unshare", "--mount", "--propagation", "private", "sh", "-c", privateMounts, "sh", ...options.privateDirs, "--", ...sshdArgv]
        : sshdArgv;
    const child: ChildProcess = spawn(argv[0], argv.slice(1), { stdio: ["ignore", logFd, logFd] });
    fs.closeSync(logFd);
    const log = (): string => fs.readFileSync(logPath, "utf8");
    const deadline = Date.now() + 10_000;
    while (!log().includes(`Server listening on 127.0.0.1 port ${port}`)) {
        if (child.exitCode !== null) throw new Error(`sshd exited with ${child.exitCode}:\n${log()}`);
        if (Date.now() > deadline) {
            await killTree(child.pid!);
            throw new Error(`sshd did not listen within 10 s:\n${log()}`);
        }
        await new Promise((r) => setTimeout(r, 20));
    }
    const count = (re: RegExp): number => log().split("\n").filter((l) => re.test(l)).length;
    return {
        host: "127.0.0.1",
        port,
        dir,
        hostKey,
        hostKeyFingerprint,
        client,
        logPath,
        log,
        connections: () => count(/Connection from 127\.0\.0\.1 port \d+ on 127\.0\.0\.1 port/),
        commandSessions: () => count(/Starting session: (command|forced-command)/),
        commands: () => {
            if (!options.audit) throw new Error("this sshd was started without audit: start it with { audit: \"record\" } to see commands");
            if (!fs.existsSync(auditPath)) return [];
            const lines = fs.readFileSync(auditPath, "utf8").split("\n").filter((l) => l !== "");
            return lines.map((l) => Buffer.from(l, "base64").toString("utf8"));
        },
        connection: (overrides = {}) => ({ host: "127.0.0.1", port, user: "root", privateKey: client.privateKey, hostKey, ...overrides }),
        async stop() {
            await killTree(child.pid!);
            fs.rmSync(dir, { recursive: true, force: true });
        },
    };
}

/** Mounts a fresh tmpfs on each directory before `--`, then execs the rest. */
const privateMounts = 'while [ "$1" != -- ]; do mkdir -p "$1" && mount -t tmpfs baremetal-test "$1" || exit 1; shift; done; shift; exec "$@"';

/**
 * The ForceCommand wrapper: appends the client's command (base64, one line per
 * exec, so multi-line scripts stay one record) to the audit file, then runs it
 * with the login shell as sshd would have, or refuses it in `block` mode.
 */
function writeAuditWrapper(dir: string, auditPath: string, mode: "record" | "block"): string {
    const wrapper = path.join(dir, "audit.sh");
    fs.writeFileSync(auditPath, "", { mode: 0o666 });
    fs.chmodSync(auditPath, 0o666);
    fs.writeFileSync(
        wrapper,
        [
            "#!/bin/sh",
            // One write per record (O_APPEND): parallel sessions never interleave.
            `line=$(printf '%s' "\${SSH_ORIGINAL_COMMAND-<interactive shell>}" | base64 -w0)`,
            `printf '%s\\n' "$line" >>'${auditPath}'`,
            mode === "block"
                ? 'echo "test sshd tripwire: command refused" >&2; exit 126'
                : '[ -n "${SSH_ORIGINAL_COMMAND+x}" ] && exec "${SHELL:-/bin/sh}" -c "$SSH_ORIGINAL_COMMAND"; exec "${SHELL:-/bin/sh}" -l',
            "",
        ].join("\n"),
        { mode: 0o755 },
    );
    return wrapper;
}

/** Children of a process, from /proc (sshd forks one process per connection). */
function childrenOf(pid: number): number[] {
    const out: number[] = [];
    for (const entry of fs.readdirSync("/proc")) {
        if (!/^\d+$/.test(entry)) continue;
        try {
            const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
            // Field 4 (ppid) follows the parenthesised command name, which may hold spaces.
            const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
            if (ppid === pid) out.push(Number(entry));
        } catch {
            /* exited meanwhile */
        }
    }
    return out;
}

function descendantsOf(pid: number): number[] {
    const kids = childrenOf(pid);
    return kids.flatMap((k) => [k, ...descendantsOf(k)]);
}

function alive(pid: number): boolean {
    try {
        process.kill(pid, 0);
        return fs.existsSync(`/proc/${pid}`) && !fs.readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z ");
    } catch {
        return false;
    }
}

/** Stops a process and everything it started, by pid, leaving nothing behind. */
export async function killTree(pid: number): Promise<void> {
    const all = [pid, ...descendantsOf(pid)];
    for (const p of all) {
        try {
            process.kill(p, "SIGTERM");
        } catch {
            /* already gone */
        }
    }
    const deadline = Date.now() + 5_000;
    while (all.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const p of all.filter(alive)) {
        try {
            process.kill(p, "SIGKILL");
        } catch {
            /* already gone */
        }
    }
}
