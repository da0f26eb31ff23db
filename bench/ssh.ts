// Bench: the same commands over one pooled SSH connection, and each on a new
// connection (the way @pulumi/command's remote.Command works: it dials for every
// command), side by side in one run against a real sshd on loopback. Prints
// figures; never passes or fails on a time.
//
//   node dist/bench/ssh.js              200 commands per mode
//   BENCH_SSH_COMMANDS=1000 node dist/bench/ssh.js
//   BENCH_SSH_USER=root node dist/bench/ssh.js   log in as root, with root's shell start-up files
//
// By default the commands run as a throw-away user whose shell is /bin/sh, made
// for the run and deleted after it: a bare host's root (Alpine's ash) starts in
// about a millisecond, while a developer's root may source a heavy ~/.bashrc
// (bash reads it for every SSH command) that would swamp what is measured here.
import { execFileSync, spawnSync } from "child_process";
import { Host, SshPool } from "../provider/host";
import { startSshd, TestSshd } from "../test/helpers/sshd";

const commands = Number(process.env.BENCH_SSH_COMMANDS ?? 200);
/** 1 shows per-command latency; 10 is what sshd's MaxSessions lets one connection run at once. */
const concurrencies = (process.env.BENCH_SSH_CONCURRENCY ?? "1,10").split(",").map(Number);
const argv = ["true"];
const benchUser = "baremetal-bench";
const user = process.env.BENCH_SSH_USER ?? benchUser;

interface Figure {
    mode: string;
    concurrency: number;
    seconds: number;
    connections: number;
}

async function runAll(concurrency: number, one: () => Promise<void>): Promise<number> {
    const started = process.hrtime.bigint();
    let next = 0;
    const worker = async (): Promise<void> => {
        while (next < commands) {
            next++;
            await one();
        }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    return Number(process.hrtime.bigint() - started) / 1e9;
}

async function pooled(sshd: TestSshd, concurrency: number): Promise<Figure> {
    const before = sshd.connections();
    const pool = new SshPool();
    const host = new Host(sshd.connection({ user }), { pool });
    const seconds = await runAll(concurrency, async () => void (await host.run(argv)));
    await pool.closeAll();
    return { mode: "pooled: one connection, channels multiplexed", concurrency, seconds, connections: sshd.connections() - before };
}

async function connectionPerCommand(sshd: TestSshd, concurrency: number): Promise<Figure> {
    const before = sshd.connections();
    const seconds = await runAll(concurrency, async () => {
        // A fresh pool is a fresh ssh2 connection: dial, key exchange, auth, one exec, close.
        const pool = new SshPool();
        await new Host(sshd.connection({ user }), { pool }).run(argv);
        await pool.closeAll();
    });
    return {
        mode: "new connection per command, the way @pulumi/command's remote.Command works",
        concurrency,
        seconds,
        connections: sshd.connections() - before,
    };
}

function row(f: Figure): string {
    return [
        f.mode.padEnd(76),
        String(f.concurrency).padStart(11),
        (commands / f.seconds).toFixed(1).padStart(11),
        ((f.seconds * 1000) / commands).toFixed(1).padStart(11),
        String(f.connections).padStart(12),
    ].join("  ");
}

/** The throw-away login (the test sshd's authorized_keys serves every user). */
function makeBenchUser(): () => void {
    if (user !== benchUser) return () => undefined;
    const exists = (): boolean => {
        try {
            execFileSync("id", [benchUser], { stdio: "ignore" });
            return true;
        } catch {
            return false;
        }
    };
    // Password "*": no password login, but not "locked" (sshd refuses locked accounts even for keys).
    if (!exists()) execFileSync("useradd", ["--no-create-home", "--home-dir", "/", "--shell", "/bin/sh", "--password", "*", benchUser]);
    return () => execFileSync("userdel", [benchUser]);
}

async function main(): Promise<void> {
    // Generous MaxStartups so that concurrent dials of the per-command mode are not dropped by sshd.
    const sshd = await startSshd({ extraConfig: ["MaxStartups 100:30:200"] });
    const removeUser = makeBenchUser();
    try {
        const version = spawnSync("/usr/sbin/sshd", ["-V"], { encoding: "utf8" }).stderr.split(",")[0].trim() || "OpenSSH";
        const shell = execFileSync("getent", ["passwd", user], { encoding: "utf8" }).trim().split(":").pop();
        console.log(`ssh bench: ${commands} commands (\`${argv.join(" ")}\`) per mode, as ${user} (shell ${shell}), against a real ${version} sshd on 127.0.0.1`);
        console.log(["mode".padEnd(76), "concurrency", "commands/s", "ms/command", "connections"].join("  "));
        const ratios: string[] = [];
        for (const c of concurrencies) {
            const p = await pooled(sshd, c);
            const n = await connectionPerCommand(sshd, c);
            console.log(row(p));
            console.log(row(n));
            ratios.push(`concurrency ${c}: pooled is ${(n.seconds / p.seconds).toFixed(2)}x the commands/s, with ${p.connections} connection(s) instead of ${n.connections}`);
        }
        for (const r of ratios) console.log(`ratio, ${r}`);
    } finally {
        await sshd.stop();
        removeUser();
    }
}

main().catch((err) => {
    console.error(err);
    process.exitCode = 1;
});
