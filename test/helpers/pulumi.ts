// Drives the real `pulumi` CLI (the pinned build on PATH) against a project
// directory, with passphrase secrets and a local file backend in a temp dir, or a
// backend the test names (the lab's S3 on its own Ceph: test/lab/rgw.ts).
import { execFile } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

export interface CliResult {
    code: number;
    stdout: string;
    stderr: string;
}

/** A state backend other than the default local file one. */
export interface StackBackend {
    /** What PULUMI_BACKEND_URL says, e.g. s3://bucket/prefix?endpoint=...&s3ForcePathStyle=true. */
    url: string;
    /** What else the CLI's environment needs for it (credentials, region). */
    env?: Record<string, string>;
}

export class PulumiStack {
    /** Everything the CLI printed, except where a test asked it to show secrets. */
    readonly transcript: string[] = [];
    readonly env: NodeJS.ProcessEnv;

    private constructor(
        public dir: string,
        readonly stack: string,
        readonly stateDir: string,
        backend?: StackBackend,
        /** False for a stack another working copy made: cleanup leaves it in the backend. */
        private readonly owned = true,
    ) {
        this.env = {
            ...process.env,
            PULUMI_BACKEND_URL: backend?.url ?? `file://${stateDir}`,
            ...(backend?.env ?? {}),
            PULUMI_CONFIG_PASSPHRASE: "e2e-passphrase",
            PULUMI_SKIP_UPDATE_CHECK: "true",
            PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
            PULUMI_HOME: path.join(stateDir, ".pulumi-home"),
            // TypeScript programs run transpile-only: ts-node's type check costs 3-4 s of CPU per
            // command here, and test/unit/programsTypecheck.test.ts type-checks every such program once.
            PULUMI_NODEJS_TRANSPILE_ONLY: "true",
        };
    }

    /** A new stack for the project in `dir`, its state in a fresh temp dir (or in `backend`). */
    static async init(dir: string, stack = "e2e", backend?: StackBackend): Promise<PulumiStack> {
        const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-state-"));
        const s = new PulumiStack(dir, stack, stateDir, backend);
        await s.ok(["stack", "init", stack]);
        return s;
    }

    /**
     * A stack that exists in `backend`, seen from another working copy of its project (`dir`, with
     * the stack's Pulumi.<stack>.yaml as a checkout of the team's repository has it) by another
     * operator: a fresh HOME and PULUMI_HOME of its own, nothing carried over from the first.
     */
    static open(dir: string, stack: string, backend: StackBackend): PulumiStack {
        const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-operator-"));
        const s = new PulumiStack(dir, stack, stateDir, backend, false);
        fs.mkdirSync(path.join(stateDir, "home"));
        s.env.HOME = path.join(stateDir, "home");
        s.env.TMPDIR = fs.mkdtempSync(path.join(stateDir, "tmp-"));
        return s;
    }

    async run(args: string[]): Promise<CliResult> {
        const full = [...args, "--non-interactive", "--color", "never"];
        if (!["stack", "config"].includes(args[0]) || args[1] !== "init") full.push("--stack", this.stack);
        return new Promise((resolve) => {
            execFile("pulumi", full, { cwd: this.dir, env: this.env, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
                if (!args.includes("--show-secrets")) this.transcript.push(stdout, stderr);
                const code = err ? ((err as { code?: number }).code ?? 1) : 0;
                resolve({ code: typeof code === "number" ? code : 1, stdout, stderr });
            });
        });
    }

    /** Runs and throws with the CLI's output when it fails (a secret config value is not shown). */
    async ok(args: string[]): Promise<CliResult> {
        const r = await this.run(args);
        if (r.code !== 0) {
            // A failing `config set-all --secret=k=v` may echo the value (e.g. as a bad flag): scrub it everywhere.
            const hidden = args.filter((a) => a.startsWith("--secret=")).map((a) => a.slice(a.indexOf("=", "--secret=".length) + 1));
            const scrub = (t: string) => hidden.reduce((out, h) => (h.length > 0 ? out.split(h).join("[secret]") : out), t);
            const shown = args.map((a) => (a.startsWith("--secret=") ? "--secret=[secret]" : a));
            throw new Error(`pulumi ${shown.join(" ")} exited ${r.code}\n${scrub(r.stdout)}\n${scrub(r.stderr)}`);
        }
        return r;
    }

    async setConfig(key: string, value: string, secret = false): Promise<void> {
        // `--flag=key=value` keeps a value that starts with "-" (a PEM key) from being read as a flag.
        await this.ok(["config", "set-all", `${secret ? "--secret" : "--plaintext"}=${key}=${value}`]);
    }

    /** `pulumi preview --json`: the planned steps and the change summary. */
    async preview(extra: string[] = []): Promise<PreviewJson> {
        const r = await this.ok(["preview", "--json", ...extra]);
        return JSON.parse(r.stdout) as PreviewJson;
    }

    async up(extra: string[] = []): Promise<CliResult> {
        return this.ok(["up", "--yes", "--skip-preview", ...extra]);
    }

    async outputs(): Promise<Record<string, unknown>> {
        return JSON.parse((await this.ok(["stack", "output", "--json", "--show-secrets"])).stdout) as Record<string, unknown>;
    }

    /** A resource's outputs as recorded in the state (secrets decrypted). */
    async resourceOutputs(name: string): Promise<Record<string, unknown>> {
        const state = JSON.parse((await this.ok(["stack", "export", "--show-secrets"])).stdout) as {
            deployment: { resources?: { urn: string; outputs?: Record<string, unknown> }[] };
        };
        const r = state.deployment.resources?.find((x) => x.urn.endsWith(`::${name}`));
        if (!r) throw new Error(`no resource named ${name} in the state`);
        return r.outputs ?? {};
    }

    async exportState(): Promise<string> {
        return (await this.ok(["stack", "export"])).stdout;
    }

    async cleanup(): Promise<void> {
        if (this.owned) await this.run(["stack", "rm", "--yes", "--force"]);
        fs.rmSync(this.stateDir, { recursive: true, force: true });
    }
}

export interface PreviewStep {
    op: string;
    urn: string;
    type?: string;
    diffReasons?: string[];
    replaceReasons?: string[];
    newState?: { type: string };
}

export interface PreviewJson {
    steps: PreviewStep[];
    changeSummary: Record<string, number>;
    diagnostics?: { message: string; severity: string }[];
}

/** Counts of non-"same" operations in a change summary. */
export function changes(summary: Record<string, number>): number {
    return Object.entries(summary)
        .filter(([op]) => op !== "same")
        .reduce((n, [, c]) => n + c, 0);
}
