// Helpers for the lab tier: read the lab description (lab.json written by
// lab/lab.sh), run commands in lab VMs over SSH with their pinned host keys, drive
// BMCs with ipmitool, and start/stop the lab itself.
import { ChildProcess, execFile, spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

export const repoRoot = path.resolve(__dirname, "..", "..", "..");
export const labScript = path.join(repoRoot, "lab", "lab.sh");
export const cacheDir = process.env.PULUMI_BAREMETAL_CACHE ?? path.join(os.homedir(), ".cache", "pulumi-baremetal");
export const labJsonPath = path.join(cacheDir, "lab", "run", "lab.json");

export interface LabNic { name: string; network: string; mac: string; address: string; prefixLength: number; bridge: string; tap: string }
export interface LabDisk { device: string; byId: string; sizeBytes: number; file: string }
export interface LabVm {
    name: string;
    role: string;
    boot: "direct" | "pxe";
    poweredOnAtStart: boolean;
    memoryMiB: number;
    mac: string;
    nics: LabNic[];
    addresses: Record<string, string>;
    disks: LabDisk[];
    /** image: the build's read-only root image on /dev/sda; 9p: the machine's own / (the PXE client) */
    root: "image" | "9p";
    ssh: { host: string; port: number; user: string; hostKey: string };
    bmc: { address: string; port: number; interface: string; user: string; password: string };
    consul: "server" | "client" | null;
    qmpSocket: string;
    consoleLog: string;
    kernelCmdline: string;
}
export interface Lab {
    version: number;
    file: string;
    namespace: string;
    access: { method: string; netns: string; hostInterface: string; hostAddress: string; gateway: string; routes: string[]; note: string };
    build: { dir: string; kernelPackage: string; kernelRelease: string; vmlinuz: string; initrd: string; rootImage: string; savedStates: string; consulBinary: string };
    networks: Record<string, { bridge: string; cidr: string; gateway: string; ipv6Cidr?: string }>;
    ssh: { user: string; privateKeyPath: string; publicKey: string; knownHostsPath: string };
    bmc: { interface: string; port: number; user: string; password: string };
    consul: { server: string; address: string; httpAddr: string; datacenter: string };
    pxe: { tftpRoot: string; bootFile: string; perMacScript: string; note: string };
    vms: Record<string, LabVm>;
}

export function readLab(file = labJsonPath): Lab {
    return JSON.parse(fs.readFileSync(file, "utf8")) as Lab;
}

export interface RunResult { code: number; stdout: string; stderr: string }

/** Runs a program; never throws for a non-zero exit (the caller looks at code). */
export function run(cmd: string, args: string[], timeoutMs: number, input?: string): Promise<RunResult> {
    return new Promise((resolve) => {
        const child = execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 64 << 20, killSignal: "SIGKILL" },
            (err, stdout, stderr) => {
                const code = err ? (typeof (err as NodeJS.ErrnoException).code === "number" ? (err as unknown as { code: number }).code : 255) : 0;
                resolve({ code, stdout: String(stdout), stderr: String(stderr) + (err && code === 255 ? `\n${err.message}` : "") });
            });
        if (input !== undefined) child.stdin?.end(input);
    });
}

/** A known_hosts file holding exactly one pinned key for the VM's address. */
export function pinnedKnownHosts(dir: string, vm: LabVm, hostKey = vm.ssh.hostKey): string {
    const file = path.join(dir, `known_hosts.${vm.name}.${hostKey.slice(-8).replace(/[^A-Za-z0-9]/g, "_")}`);
    fs.writeFileSync(file, `${vm.ssh.host} ${hostKey}\n`);
    return file;
}

/**
 * Sessions one shared connection may carry at once: sshd's MaxSessions is 10, and a
 * request past it is refused, not queued; beyond this a command gets its own connection.
 */
const sessionsPerMaster = 8;

/**
 * ssh into a lab VM with StrictHostKeyChecking=yes against only its pinned key.
 *
 * Commands share one SSH connection per VM (OpenSSH's ControlMaster): every new
 * connection costs the VM about 0.6 s of emulated CPU (key exchange, a forked sshd)
 * and the lab tier is CPU-bound, so a test's hundreds of short commands would cost
 * minutes. The master is made with the same pinned key; a command with another
 * expected key (the refusal test) and `spawn` (a session a test holds or kills) get
 * their own connection. A master whose VM went away (power cycle, lab stop) ends
 * after 15 s without an answer; until then and after, commands connect directly.
 */
export class LabShell {
    readonly tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bmlab-test-"));
    private readonly masters = new Map<string, { process: ChildProcess; socket: string }>();
    private readonly inFlight = new Map<string, number>();
    constructor(readonly lab: Lab) {
        // a master left running would hold the VM's sshd until the lab stops
        process.once("exit", () => this.stopMasters());
    }

    sshArgs(vm: LabVm, knownHosts: string, connectTimeoutSeconds = 10): string[] {
        return ["-i", this.lab.ssh.privateKeyPath, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=yes", "-o", `UserKnownHostsFile=${knownHosts}`,
            "-o", "GlobalKnownHostsFile=/dev/null", "-o", `ConnectTimeout=${connectTimeoutSeconds}`, "-o", "LogLevel=ERROR",
            "-p", String(vm.ssh.port), `${vm.ssh.user}@${vm.ssh.host}`];
    }

    /** Runs a shell command in the VM; resolves with its result, whatever the exit code. */
    async try(vmName: string, command: string, timeoutMs = 120_000, hostKey?: string): Promise<RunResult> {
        const vm = this.vm(vmName);
        const direct = hostKey !== undefined && hostKey !== vm.ssh.hostKey;
        const socket = direct ? undefined : this.sharedConnection(vm);
        const inFlight = this.inFlight.get(vm.name) ?? 0;
        const mux = socket !== undefined && inFlight < sessionsPerMaster
            // ControlMaster=no: use the master when its socket answers, else connect directly
            ? ["-o", "ControlMaster=no", "-o", `ControlPath=${socket}`]
            : ["-o", "ControlPath=none"];
        this.inFlight.set(vm.name, inFlight + 1);
        try {
            return await run("ssh", [...mux, ...this.sshArgs(vm, pinnedKnownHosts(this.tmp, vm, hostKey)), command], timeoutMs);
        } finally {
            this.inFlight.set(vm.name, (this.inFlight.get(vm.name) ?? 1) - 1);
        }
    }

    /**
     * Starts a long-lived shell command in the VM over its own SSH session (pinned
     * key, not through any proxy); the caller talks to its stdin and stdout.
     */
    spawn(vmName: string, command: string): ChildProcess {
        const vm = this.vm(vmName);
        return spawn("ssh", ["-o", "ControlPath=none", ...this.sshArgs(vm, pinnedKnownHosts(this.tmp, vm)), command], { stdio: ["pipe", "pipe", "pipe"] });
    }

    /** Runs a shell command in the VM and returns its stdout; throws with stderr on failure. */
    async sh(vmName: string, command: string, timeoutMs = 120_000): Promise<string> {
        const r = await this.try(vmName, command, timeoutMs);
        if (r.code !== 0) throw new Error(`${vmName}: \`${command}\` exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
        return r.stdout;
    }

    /**
     * Whether the VM answers SSH now, over a new connection (not the shared one, which
     * would hang on a VM that went away until its keep-alives give up: 15 s and more).
     */
    async answersSsh(vmName: string, connectTimeoutSeconds = 5): Promise<boolean> {
        const vm = this.vm(vmName);
        const r = await run("ssh", ["-o", "ControlPath=none", ...this.sshArgs(vm, pinnedKnownHosts(this.tmp, vm), connectTimeoutSeconds), "true"], (connectTimeoutSeconds + 30) * 1000);
        return r.code === 0;
    }

    /** Waits until the VM answers SSH (with its pinned key); returns the seconds it took. */
    async waitSsh(vmName: string, timeoutMs: number): Promise<number> {
        const t0 = Date.now();
        let last = "";
        while (Date.now() - t0 < timeoutMs) {
            const r = await this.try(vmName, "true", 20_000);
            if (r.code === 0) return (Date.now() - t0) / 1000;
            last = r.stderr.trim();
            await sleep(2000);
        }
        throw new Error(`${vmName} did not answer SSH within ${timeoutMs / 1000}s: ${last}`);
    }

    /**
     * The control socket of the VM's shared connection, starting a master when there is
     * none running (it is used from the next command on, once its socket exists).
     */
    private sharedConnection(vm: LabVm): string {
        const known = this.masters.get(vm.name);
        if (known && known.process.exitCode === null && known.process.signalCode === null) return known.socket;
        const socket = path.join(this.tmp, `cm-${vm.name}`);
        fs.rmSync(socket, { force: true });
        const master = spawn("ssh", ["-M", "-N", "-o", `ControlPath=${socket}`, "-o", "ControlPersist=no",
            "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3",
            ...this.sshArgs(vm, pinnedKnownHosts(this.tmp, vm))], { stdio: "ignore" });
        master.on("error", () => undefined);
        // never keeps the test process alive
        master.unref();
        this.masters.set(vm.name, { process: master, socket });
        return socket;
    }

    private stopMasters(): void {
        for (const m of this.masters.values()) {
            if (m.process.exitCode === null && m.process.signalCode === null) m.process.kill("SIGTERM");
        }
        this.masters.clear();
    }

    vm(name: string): LabVm {
        const vm = this.lab.vms[name];
        if (!vm) throw new Error(`no VM ${name} in ${this.lab.file}`);
        return vm;
    }

    /** ipmitool -I lanplus against a VM's BMC. */
    async ipmi(vmName: string, ...args: string[]): Promise<string> {
        const b = this.vm(vmName).bmc;
        const r = await run("ipmitool", ["-I", b.interface, "-C", "3", "-H", b.address, "-p", String(b.port),
            "-U", b.user, "-P", b.password, ...args], 30_000);
        if (r.code !== 0) throw new Error(`ipmitool ${args.join(" ")} on ${vmName}'s BMC exited ${r.code}: ${r.stderr.trim()}`);
        return r.stdout;
    }

    cleanup(): void {
        this.stopMasters();
        fs.rmSync(this.tmp, { recursive: true, force: true });
    }
}

/** lab/lab.sh with a sub-command; throws with the script's output on failure. */
export async function labCommand(sub: string, timeoutMs: number): Promise<string> {
    const r = await run("bash", [labScript, sub], timeoutMs);
    if (r.code !== 0) throw new Error(`lab/lab.sh ${sub} exited ${r.code}:\n${r.stderr}${r.stdout}`);
    return r.stdout + r.stderr;
}

/**
 * A shell snippet that leaves a test's disks as a new lab's are: no md superblock and
 * nothing in their first 16 MiB. Zeroing superblocks alone is not enough: a member
 * taken out of an array (a replace) keeps a whole copy of the array's data, and a new
 * array on the same disk with the same layout shows its old PV label again — the next
 * file's VolumeGroup then refuses it ("… is a physical volume of volume group bmvg").
 * A disk still held (a running array, device-mapper) or mounted is left alone and
 * named on stderr: the test's own sweep must stop what it made first.
 */
export function blankDisksScript(disks: string[]): string {
    const list = disks.map((d) => `'${d.replace(/'/g, "")}'`).join(" ");
    return [
        `for d in ${list}; do r=$(readlink -f "$d"); [ -b "$r" ] || continue`,
        `if [ -n "$(ls "/sys/class/block/\${r##*/}/holders" 2>/dev/null)" ] || grep -q "^$r[0-9]* " /proc/mounts; then echo "not blanking $d: still in use" >&2; continue; fi`,
        'mdadm --zero-superblock "$r" 2>/dev/null; dd if=/dev/zero of="$r" bs=1M count=16 conv=fsync status=none; done; true',
    ].join("; ");
}

/** Why this machine cannot run the lab, or undefined when it can. */
export function labUnsupportedReason(): string | undefined {
    if (process.platform !== "linux") return "the lab needs Linux";
    if (typeof process.getuid === "function" && process.getuid() !== 0) return "the lab needs root (network namespace, taps)";
    if (!fs.existsSync("/dev/net/tun")) return "the lab needs /dev/net/tun";
    return undefined;
}

export function sleep(ms: number): Promise<void> {
    return new Promise((r) => setTimeout(r, ms));
}
