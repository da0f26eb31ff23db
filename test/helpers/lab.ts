// What tests need from the running lab (lab/lab.sh): its description file, and
// a ready HostConnection (pinned host key, generated client key) per VM.
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import type { HostConnection } from "../../provider/host";

export interface LabNic {
    name: string;
    network: string;
    mac: string;
    address: string;
    prefixLength: number;
    bridge: string;
}

export interface LabDisk {
    device: string;
    byId: string;
    sizeBytes: number;
}

export interface LabVm {
    name: string;
    role: string;
    boot: "direct" | "pxe";
    mac: string;
    nics: LabNic[];
    addresses: Record<string, string>;
    disks: LabDisk[];
    ssh: { host: string; port: number; user: string; hostKey: string };
    bmc: { address: string; port: number; interface: string; user: string; password: string };
    consul: string;
}

export interface LabDescription {
    file: string;
    namespace: string;
    ssh: { user: string; privateKeyPath: string };
    consul: { server: string; address: string; httpAddr: string; datacenter: string };
    networks: Record<string, { bridge: string; cidr: string; gateway: string }>;
    vms: Record<string, LabVm>;
}

const repo = path.resolve(__dirname, "../../..");

export function labFile(): string {
    const cache = process.env.PULUMI_BAREMETAL_CACHE ?? path.join(os.homedir(), ".cache/pulumi-baremetal");
    return path.join(cache, "lab/run/lab.json");
}

/**
 * The running lab's description. Fails (never skips) when the lab is not up:
 * `npm test` starts it for the tiers that need it (`lab/lab.sh start`).
 */
export function lab(): LabDescription {
    const file = labFile();
    if (!fs.existsSync(file)) {
        throw new Error(`the lab is not running (no ${file}); start it with \`bash lab/lab.sh start\` or run the tests with \`npm test\``);
    }
    return JSON.parse(fs.readFileSync(file, "utf8")) as LabDescription;
}

export function vm(name: string): LabVm {
    const v = lab().vms[name];
    if (!v) throw new Error(`the lab has no VM ${name}; it has ${Object.keys(lab().vms).join(", ")}`);
    return v;
}

/** An SSH connection to a lab VM: the lab's client key, the VM's pinned host key. */
export function connectionFor(name: string): HostConnection {
    const l = lab();
    const v = vm(name);
    return {
        host: v.ssh.host,
        port: v.ssh.port,
        user: v.ssh.user,
        privateKey: fs.readFileSync(l.ssh.privateKeyPath, "utf8"),
        hostKey: v.ssh.hostKey,
    };
}

/** Runs lab/lab.sh with the given arguments (e.g. "status"). */
export function labScript(...args: string[]): string {
    return execFileSync("bash", [path.join(repo, "lab/lab.sh"), ...args], { encoding: "utf8" });
}
