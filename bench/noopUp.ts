// Bench: `pulumi up` of N Machines against real hosts without the lab, then a
// second `up` with no changes, counted from the host trace (PULUMI_BAREMETAL_TRACE).
// The no-op up must run 0 host commands and open 0 SSH connections. Also prints,
// for the first up, SSH connections per host touched and the wall time against
// the sum of the commands' own durations.
//
// The hosts: the Machines' PXE server is this box, reached over a real OpenSSH
// sshd on loopback (a bench-only PXE instance under /etc/baremetal/pxe/<name>
// and /srv/baremetal/pxe/<name>, removed afterwards; no dnsmasq runs, so the
// "re-read leases" step finds no pid and does nothing), and the catalog is a real
// Consul dev agent on loopback. Prints figures; never fails on a time.
//
//   node dist/bench/noopUp.js            10 machines
//   BENCH_FULL=1 node dist/bench/noopUp.js   10 and 100
import * as fs from "fs";
import { startConsul } from "../test/helpers/consul";
import { startSshd } from "../test/helpers/sshd";
import { pxeLayout } from "../provider/pxe/shared";
import { formatSummary, summarise, TraceSummary } from "./lib/traceSummary";
import { benchProject, fullMode, timed } from "./lib/programs";

const sizes = fullMode ? [10, 100] : [10];

interface UpFigures {
    machines: number;
    upMs: number;
    first: TraceSummary;
    /** When the first up failed: what failed, and the second up that converged. */
    retry?: { failure: string; ms: number; trace: TraceSummary };
    noopUpMs: number;
    noop: TraceSummary;
    noopPreviewMs: number;
    noopPreview: TraceSummary;
    sshdConnections: { first: number; noop: number };
    sshdCommands: { first: number; noop: number };
    destroyMs: number;
}

/** "9 errored; first error: ..." from the CLI's output of a failed up. */
function failureOf(output: string): string {
    const errored = /(\d+) errored/.exec(output)?.[1] ?? "?";
    const errors = output.split("\n").filter((l) => /^\s*error: /.test(l)).map((l) => l.trim());
    const kinds = [...new Set(errors.map((e) => e.replace(/\d+/g, "N")))];
    return `${errored} resource(s) errored; distinct errors: ${kinds.slice(0, 3).join(" | ") || "(none printed)"}`;
}

/** A PXE instance as a PxeServer leaves it, minus the daemons: what a Machine needs on the box. */
function makePxeInstance(instance: string): () => void {
    const layout = pxeLayout(instance);
    fs.mkdirSync(layout.hostsDir, { recursive: true });
    fs.mkdirSync(layout.bootDir, { recursive: true });
    fs.writeFileSync(layout.descriptor, JSON.stringify({ instance, baseUrl: "http://198.51.100.10:80", profiles: { default: "alpine" } }));
    return () => {
        fs.rmSync(layout.configDir, { recursive: true, force: true });
        fs.rmSync(layout.dataDir, { recursive: true, force: true });
        // The parents too, when nothing else is in them (this box is no PXE server).
        for (const dir of ["/etc/baremetal/pxe", "/etc/baremetal", "/srv/baremetal/pxe", "/srv/baremetal"]) {
            try {
                fs.rmdirSync(dir);
            } catch {
                /* not empty or not there: leave it */
            }
        }
    };
}

/** Leftovers of an interrupted earlier run. */
function removeStaleInstances(): void {
    for (const root of ["/etc/baremetal/pxe", "/srv/baremetal/pxe"]) {
        if (!fs.existsSync(root)) continue;
        for (const d of fs.readdirSync(root)) if (d.startsWith("benchnoop")) fs.rmSync(`${root}/${d}`, { recursive: true, force: true });
    }
}

async function measure(machines: number): Promise<UpFigures> {
    const sshd = await startSshd();
    const consul = await startConsul();
    const instance = `benchnoop${process.pid}`;
    const removeInstance = makePxeInstance(instance);
    const project = await benchProject("machines-loopback");
    const { stack, traceFile } = project;
    const sinceLast = (): TraceSummary => {
        const s = summarise(traceFile);
        fs.rmSync(traceFile, { force: true });
        return s;
    };
    try {
        await stack.setConfig("count", String(machines));
        await stack.setConfig("sshPort", String(sshd.port));
        await stack.setConfig("hostKey", sshd.hostKey);
        // base64: the CLI would read a value starting with "-----BEGIN" as a flag.
        await stack.setConfig("privateKeyBase64", Buffer.from(sshd.client.privateKey).toString("base64"), true);
        await stack.setConfig("pxeInstance", instance);
        await stack.setConfig("consulAddress", consul.address);

        const c0 = [sshd.connections(), sshd.commandSessions()];
        const up = await timed(() => stack.run(["up", "--yes", "--skip-preview"]));
        const first = sinceLast();
        let retry: UpFigures["retry"];
        if (up.value.code !== 0) {
            // A figure too: which resources failed and why; then the re-run that must converge.
            const again = await timed(() => stack.up());
            retry = { failure: failureOf(up.value.stdout + up.value.stderr), ms: again.ms, trace: sinceLast() };
        }
        const c1 = [sshd.connections(), sshd.commandSessions()];
        const leases = fs.readdirSync(pxeLayout(instance).hostsDir).length;
        if (leases !== machines) throw new Error(`the first up left ${leases} lease files for ${machines} machines`);

        const noopUp = await timed(() => stack.up());
        const noop = sinceLast();
        const c2 = [sshd.connections(), sshd.commandSessions()];
        const noopPreview = await timed(() => stack.preview());
        const previewTrace = sinceLast();
        const destroy = await timed(() => stack.ok(["destroy", "--yes", "--skip-preview"]));
        return {
            machines,
            upMs: up.ms,
            first,
            retry,
            noopUpMs: noopUp.ms,
            noop,
            noopPreviewMs: noopPreview.ms,
            noopPreview: previewTrace,
            sshdConnections: { first: c1[0] - c0[0], noop: c2[0] - c1[0] },
            sshdCommands: { first: c1[1] - c0[1], noop: c2[1] - c1[1] },
            destroyMs: destroy.ms,
        };
    } finally {
        await project.cleanup();
        removeInstance();
        await consul.stop();
        await sshd.stop();
    }
}

/** Operations with the per-machine parts (MAC, host name, address) taken out, so that alike steps add up. */
function byKindOfStep(s: TraceSummary): { operation: string; commands: number; ms: number }[] {
    const kinds = new Map<string, { operation: string; commands: number; ms: number }>();
    for (const o of s.byOperation) {
        const operation = o.operation
            .replace(/[0-9a-f]{2}([-:][0-9a-f]{2}){5}/g, "<mac>")
            .replace(/bench-m\d+/g, "<host>")
            .replace(/198\.18\.\d+\.\d+/g, "<ip>")
            .replace(/benchnoop\d+/g, "<instance>")
            .replace(/\d+ bytes/g, "<n> bytes");
        const k = kinds.get(operation) ?? { operation, commands: 0, ms: 0 };
        k.commands += o.commands;
        k.ms += o.ms;
        kinds.set(operation, k);
    }
    return [...kinds.values()].sort((a, b) => b.ms - a.ms);
}

function print(f: UpFigures): void {
    console.log(`--- ${f.machines} Machines (one PXE server over a real sshd on loopback, real Consul dev agent)`);
    console.log(`first up: ${f.upMs} ms wall (whole CLI run), ${(f.upMs / f.machines).toFixed(1)} ms per machine`);
    for (const l of formatSummary(f.first, f.upMs)) console.log(`  ${l}`);
    console.log(`  sshd's own log: ${f.sshdConnections.first} connection(s), ${f.sshdCommands.first} command session(s)`);
    console.log(`  commands per machine: ${(f.first.commands / f.machines).toFixed(1)}; per step:`);
    for (const o of byKindOfStep(f.first)) console.log(`    ${String(o.commands).padStart(5)} commands, ${String(o.ms).padStart(6)} ms  ${o.operation}`);
    if (f.retry) {
        console.log(`  THE FIRST UP FAILED: ${f.retry.failure}`);
        console.log(`  second up (to converge): ${f.retry.ms} ms; ${f.retry.trace.commands} commands, ${f.retry.trace.connectionsOpened} SSH connection(s)`);
    }
    console.log(`no-op up (no changes): ${f.noopUpMs} ms; host commands run: ${f.noop.commands} (must be 0); SSH connections opened: ${f.noop.connectionsOpened} (must be 0); failed dials: ${f.noop.dialsFailed}`);
    console.log(`  sshd's own log during the no-op up: ${f.sshdConnections.noop} connection(s), ${f.sshdCommands.noop} command session(s)`);
    console.log(`no-op preview: ${f.noopPreviewMs} ms; host commands: ${f.noopPreview.commands}; SSH connections: ${f.noopPreview.connectionsOpened}`);
    console.log(`destroy: ${f.destroyMs} ms`);
}

async function main(): Promise<void> {
    removeStaleInstances();
    for (const n of sizes) print(await measure(n));
}

main().catch((err) => {
    console.error(err);
    process.exitCode = 1;
});
