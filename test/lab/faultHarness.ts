// The fault harness of the lab tier: runs a resource kind's create, update or
// delete in this process against a lab VM through a TCP proxy (test/helpers/
// tcpProxy.ts, a test double for a bad network), and cuts every connection to
// that VM while a chosen plan step is running, the moment the VM shows that
// step's command at work (signWatcher.ts). Then the same operation runs
// again, as the engine would on the next `pulumi up` (a failed create left
// nothing in the state, so it creates again; a failed update keeps the old
// state and updates again; a failed delete keeps the resource and deletes
// again), and the test looks at the VM directly (not through the proxy) for
// duplicates and lost data.
//
// Why in-process and not through the CLI: the cut must land inside one named
// step, and only this process sees the step labels as they start (the
// Reporter's `progress`, which the engine shows as transient status). The
// kind's code, the host layer, OpenSSH in the VM and the real tools are the
// same as under `pulumi up`.
import * as assert from "assert";
import * as fs from "fs";
import { HostConnection, sharedPool } from "../../provider/host";
import { productionContext } from "../../provider/context";
import type { OperationContext, Reporter } from "../../provider/core/resource";
import { TcpProxy } from "../helpers/tcpProxy";
import { Lab, LabShell, readLab, labJsonPath } from "./lab";
import { CutSign, describeSeen, describeSign, installShimScript, removeShimScript, SignWatcher } from "./signWatcher";

export { escapeRegExp, pausedRun, runs, script } from "./signWatcher";
export type { CutSign } from "./signWatcher";

/** What one interrupted operation did: the step it was cut in and the error it gave. */
export interface CutOutcome {
    /** The label of the last step started when the cut came (`[3/7] create array /dev/md20 …`). */
    step: string;
    /** What the VM showed when the cut came (the processes held, the file that appeared), or the delay asked for. */
    sign: string;
    error: Error;
    /** Connections dropped by the cut. */
    dropped: number;
    seconds: number;
}

export class FaultLab {
    readonly sh: LabShell;
    private readonly proxies = new Map<string, TcpProxy>();
    private readonly privateKey: string;

    private constructor(readonly lab: Lab) {
        this.sh = new LabShell(lab);
        this.privateKey = fs.readFileSync(lab.ssh.privateKeyPath, "utf8");
    }

    /** A proxy in front of each named VM's sshd. */
    static async open(vmNames: string[]): Promise<FaultLab> {
        if (!fs.existsSync(labJsonPath)) throw new Error(`the lab is not running (no ${labJsonPath}); start it with \`bash lab/lab.sh start\` or run \`npm test\``);
        const f = new FaultLab(readLab());
        for (const name of vmNames) {
            const vm = f.sh.vm(name);
            f.proxies.set(name, await new TcpProxy(vm.ssh.port, vm.ssh.host).start());
        }
        return f;
    }

    /** How the provider reaches the VM: through its proxy, with the VM's pinned host key. */
    connection(vmName: string): HostConnection {
        const vm = this.sh.vm(vmName);
        return { host: "127.0.0.1", port: this.proxy(vmName).port, user: vm.ssh.user, privateKey: this.privateKey, hostKey: vm.ssh.hostKey };
    }

    proxy(vmName: string): TcpProxy {
        const p = this.proxies.get(vmName);
        if (!p) throw new Error(`no proxy for ${vmName}; name it in FaultLab.open`);
        return p;
    }

    /**
     * Runs `op` and cuts every connection to `vmName` while the first step whose
     * label matches `step` runs: once that step has started, a watcher on the VM
     * (its own direct SSH session) looks for `sign` and the cut comes the moment
     * it is seen (signWatcher.ts). If the step ends (its outcome is logged) or the
     * operation ends before the sign shows, nothing is cut and the test fails
     * saying which step and which sign: a cut never lands elsewhere unnoticed.
     * The operation must fail because of the cut; the error is returned.
     */
    async cutDuring(vmName: string, step: RegExp, sign: CutSign, op: (ctx: OperationContext) => Promise<unknown>): Promise<CutOutcome> {
        const proxy = this.proxy(vmName);
        const pause = "process" in sign ? sign.pause : undefined;
        if (pause) await this.sh.sh(vmName, installShimScript(pause));
        const watcher = "delayMs" in sign ? undefined : await SignWatcher.start(this.sh, vmName, sign);
        const seen: string[] = [];
        let awaited: string | undefined; // the label of the step the cut waits for, once it started
        let ended = false; // that step reported its outcome
        let late: string | undefined; // a sign that came after the step ended
        let cut: { step: string; sign: string; dropped: number } | undefined;
        let timer: NodeJS.Timeout | undefined;
        let early: string | undefined; // a sign seen before the step started (a pattern that matched another step)
        const cutNow = (what: string): void => {
            if (cut) return;
            if (awaited === undefined) {
                early = what;
                return;
            }
            if (ended) {
                late = what;
                return;
            }
            // The step running now, as the operation reported it.
            cut = { step: seen[seen.length - 1], sign: what, dropped: proxy.cutAll() };
        };
        if (watcher) {
            watcher.onSeen = (found) => {
                cutNow(describeSeen(found));
                watcher.release();
            };
        }
        const log = reporter({
            progress: (label) => {
                seen.push(label);
                if (awaited !== undefined || !step.test(label)) return;
                awaited = label;
                if (watcher && !("process" in sign)) watcher.arm();
                else if ("delayMs" in sign) timer = setTimeout(() => cutNow(describeSign(sign)), sign.delayMs);
            },
            info: (message) => {
                if (awaited === undefined || cut || ended || !message.startsWith(`${awaited}: `)) return;
                ended = true;
                if (timer) clearTimeout(timer);
                watcher?.release();
            },
        });
        // A process sign is looked for from the operation's start, not from the step's progress line: the
        // "arm" travels over another SSH session, and a loaded VM ran `mdadm … --remove` (tens of ms) to
        // its end before the watcher read it. The step's label is always logged before its command is
        // sent, so a process seen is inside the awaited step (or, matched too early, a failure below).
        if (watcher && "process" in sign) watcher.arm();
        const t0 = Date.now();
        let error: Error | undefined;
        try {
            await op(productionContext(log));
        } catch (e) {
            error = e as Error;
        } finally {
            if (timer) clearTimeout(timer);
            await watcher?.close();
            if (pause) await this.sh.sh(vmName, removeShimScript(pause));
        }
        const steps = seen.map((s) => `  ${s}`).join("\n");
        const outcome = error ? `error: ${error.message}` : "the operation succeeded";
        if (!cut) {
            const why =
                early !== undefined
                    ? `${vmName} showed ${describeSign(sign)} before a step matching ${step} started (${early}): the sign matches another step's command`
                    : awaited === undefined
                    ? `no step matching ${step} started`
                    : late !== undefined
                      ? `${vmName} showed ${describeSign(sign)} only after the step "${stripTarget(awaited)}" had ended (${late})`
                      : `the ${ended ? "step" : "operation"} ended before ${vmName} showed ${describeSign(sign)} during "${stripTarget(awaited)}"`;
            assert.fail(`${why}; nothing was cut.${watcher?.failure() ? ` ${watcher.failure()}.` : ""}\nSteps seen:\n${steps}\n${outcome}`);
        }
        assert.ok(error, `the operation succeeded although the connection was cut during ${stripTarget(cut.step)} (at ${cut.sign})`);
        assert.match(error.message, /dropped|connection lost|may or may not have completed/i, `the operation failed for another reason than the cut: ${error.message}`);
        return { step: stripTarget(cut.step), sign: cut.sign, error, dropped: cut.dropped, seconds: (Date.now() - t0) / 1000 };
    }

    /** Runs `op` again with nothing cut, as the next `pulumi up` would; prints its steps. */
    async rerun<T>(op: (ctx: OperationContext) => Promise<T>): Promise<{ result: T; seconds: number; steps: string[] }> {
        const steps: string[] = [];
        const t0 = Date.now();
        const result = await op(productionContext(reporter({ progress: (label) => steps.push(stripTarget(label)) })));
        return { result, seconds: (Date.now() - t0) / 1000, steps };
    }

    async close(): Promise<void> {
        await sharedPool().closeAll();
        for (const p of this.proxies.values()) await p.stop();
        this.sh.cleanup();
    }
}

/** A Reporter that hands each step label to `progress` as the step starts, and each logged line (a step's outcome) to `info`. */
function reporter(on: { progress: (label: string) => void; info?: (message: string) => void }): Reporter {
    return {
        info(message: string) {
            on.info?.(message);
        },
        warn(message: string) {
            console.log(`      warn: ${message}`);
        },
        progress: on.progress,
    };
}

function stripTarget(label: string): string {
    return label.replace(/^\S+@127\.0\.0\.1:\d+: /, "");
}

/** Prints a figure line the way every lab test does. */
export function figure(name: string, value: string | number): void {
    console.log(`      figure: ${name}: ${typeof value === "number" ? `${value.toFixed(1)} s` : value}`);
}

/** Prints what an interrupted operation did and how long the re-run took. */
export function reportCut(what: string, cut: CutOutcome, rerunSeconds: number): void {
    figure(`${what}: cut during`, cut.step);
    figure(`${what}: cut at`, cut.sign);
    figure(`${what}: failed after`, cut.seconds);
    figure(`${what}: re-run converged in`, rerunSeconds);
}
