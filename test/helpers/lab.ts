// What resource tests need from the running lab (lab/lab.sh): its description and
// a ready HostConnection (pinned host key, the lab's client key) per VM. The types
// and the lab's own helpers live in test/lab/lab.ts.
import * as fs from "fs";
import type { HostConnection } from "../../provider/host";
import { Lab, labJsonPath, LabVm, readLab } from "../lab/lab";

export type LabDescription = Lab;
export type { LabVm };

/**
 * The running lab's description. Fails (never skips) when the lab is not up:
 * `npm test` starts it for the tiers that need it (`lab/lab.sh start`).
 */
export function lab(): Lab {
    if (!fs.existsSync(labJsonPath)) {
        throw new Error(`the lab is not running (no ${labJsonPath}); start it with \`bash lab/lab.sh start\` or run the tests with \`npm test\``);
    }
    return readLab();
}

export function vm(name: string): LabVm {
    const l = lab();
    const v = l.vms[name];
    if (!v) throw new Error(`the lab has no VM ${name}; it has ${Object.keys(l.vms).join(", ")}`);
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
