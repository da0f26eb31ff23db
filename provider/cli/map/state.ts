// Reading a stack's state for the map: the output of `pulumi stack export` (a file,
// or the Pulumi CLI run for `--stack`), turned into a list of resources whose secret
// values are already gone. Secrets are replaced here, once, by `SECRET`, before any
// other code sees the state: the ciphertext never reaches the model, the layout or a
// page, and nothing in this module asks the CLI to decrypt (`--show-secrets` is never
// passed).
import { execFile } from "child_process";
import * as fs from "fs";

/** The key Pulumi marks a secret value with in state (sig.Secret). */
export const secretSignatureKey = "4dabf18193072939515e22adb298388d";

/** A secret value of the state; shown as `[secret]` (also by JSON.stringify). */
export class Redacted {
    toJSON(): string {
        return "[secret]";
    }
    toString(): string {
        return "[secret]";
    }
}

/** The one stand-in for every secret value. */
export const SECRET: Redacted = Object.freeze(new Redacted());

/** A JSON value of the state after redaction. */
export type StateValue = string | number | boolean | null | Redacted | StateValue[] | { [key: string]: StateValue };
export type StateObject = { [key: string]: StateValue };

/** One resource of the state, as the map reads it. */
export interface StateResource {
    urn: string;
    type: string;
    /** The last part of the URN: the name the program gave it. */
    name: string;
    /** The pulumi-baremetal kind (`RaidArray`), for this package's resources. */
    kind?: string;
    id?: string;
    inputs: StateObject;
    outputs: StateObject;
    /** URNs this resource depends on. */
    dependencies: string[];
    parent?: string;
    /** Errors of a create or update that failed half-way (the resource exists, maybe incomplete). */
    initErrors: string[];
    /** An operation the engine started and never saw finish (`creating`, `deleting` ...). */
    pending?: string;
}

export interface StackState {
    /** The stack's name (from the Stack resource's URN). */
    stack: string;
    project: string;
    /** When the state was written (`manifest.time`), as the file says it. */
    time?: string;
    resources: StateResource[];
}

/** Bad input for the map: what is wrong, with the file or stack it came from. */
export class StateError extends Error {
    constructor(message: string) {
        super(message);
        this.name = "StateError";
    }
}

/** Types of pulumi-baremetal's resources: the dynamic SDK's and the native plugin's tokens. */
const kindPatterns = [/^pulumi-nodejs:dynamic\/baremetal:(\w+)$/, /^baremetal:index:(\w+)$/];

/** Keys the dynamic-provider machinery adds to every resource: nothing an operator reads. */
const machineryKeys = new Set(["__provider", "__urn"]);

/** Replaces every secret (at any depth) by SECRET, and drops the provider machinery keys. */
export function redact(value: unknown, depth = 0): StateValue {
    if (depth > 64) throw new StateError("state value nested more than 64 levels deep");
    if (value === null || typeof value === "string" || typeof value === "boolean") return value;
    if (typeof value === "number") return Number.isFinite(value) ? value : null;
    if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
    if (typeof value === "object") {
        const obj = value as Record<string, unknown>;
        if (secretSignatureKey in obj) return SECRET;
        const out: StateObject = {};
        for (const [k, v] of Object.entries(obj)) {
            if (machineryKeys.has(k)) continue;
            out[k] = redact(v, depth + 1);
        }
        return out;
    }
    return null;
}

function isObject(v: unknown): v is Record<string, unknown> {
    return typeof v === "object" && v !== null && !Array.isArray(v);
}

function asObject(v: StateValue): StateObject {
    return v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof Redacted) ? v : {};
}

function strings(v: unknown): string[] {
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
}

/**
 * Parses the text of `pulumi stack export` (`source` names where it came from, for
 * errors). Accepts the versioned form (`{version, deployment}`) and a bare deployment.
 */
export function parseState(text: string, source: string): StackState {
    let doc: unknown;
    try {
        doc = JSON.parse(text);
    } catch (err) {
        throw new StateError(`${source}: not JSON (${(err as Error).message}); give the output of \`pulumi stack export\``);
    }
    const deployment = isObject(doc) && isObject(doc.deployment) ? doc.deployment : doc;
    if (!isObject(deployment) || (deployment.resources !== undefined && !Array.isArray(deployment.resources))) {
        throw new StateError(`${source}: not the output of \`pulumi stack export\` (no deployment.resources list)`);
    }
    const pending = new Map<string, string>();
    for (const op of Array.isArray(deployment.pending_operations) ? deployment.pending_operations : []) {
        if (isObject(op) && isObject(op.resource) && typeof op.resource.urn === "string") pending.set(op.resource.urn, String(op.type ?? "pending"));
    }
    const raw = (deployment.resources ?? []) as unknown[];
    const resources = raw.map((r, i) => readResource(r, i, source, pending));
    const stackUrn = resources.find((r) => r.type === "pulumi:pulumi:Stack")?.urn ?? resources[0]?.urn ?? "";
    // urn:pulumi:<stack>::<project>::<type>::<name>
    const [, stack = "", project = ""] = /^urn:pulumi:([^:]*)::([^:]*)::/.exec(stackUrn) ?? [];
    const manifest = isObject(deployment.manifest) ? deployment.manifest : {};
    return { stack, project, time: typeof manifest.time === "string" ? manifest.time : undefined, resources };
}

function readResource(r: unknown, index: number, source: string, pending: Map<string, string>): StateResource {
    if (!isObject(r) || typeof r.urn !== "string" || typeof r.type !== "string") {
        throw new StateError(`${source}: deployment.resources[${index}] has no urn or type`);
    }
    const kind = kindPatterns.map((p) => p.exec(r.type as string)?.[1]).find((k) => k !== undefined);
    const res: StateResource = {
        urn: r.urn,
        type: r.type,
        name: r.urn.split("::").pop() ?? r.urn,
        inputs: asObject(redact(r.inputs ?? {})),
        outputs: asObject(redact(r.outputs ?? {})),
        dependencies: strings(r.dependencies),
        initErrors: strings(r.initErrors),
    };
    if (kind) res.kind = kind;
    if (typeof r.id === "string" && r.id !== "") res.id = r.id;
    if (typeof r.parent === "string") res.parent = r.parent;
    const op = pending.get(r.urn);
    if (op) res.pending = op;
    return res;
}

export function readStateFile(file: string): StackState {
    let text: string;
    try {
        text = fs.readFileSync(file, "utf8");
    } catch (err) {
        throw new StateError(`--state ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    return parseState(text, `--state ${file}`);
}

/**
 * The state of a stack, through the Pulumi CLI on PATH, with the backend and
 * passphrase settings of the environment (PULUMI_BACKEND_URL, ...). Secrets stay
 * encrypted: `--show-secrets` is never passed.
 */
export async function exportStack(stack: string, options: { cwd?: string; pulumi?: string } = {}): Promise<StackState> {
    const pulumi = options.pulumi ?? "pulumi";
    const args = ["stack", "export", "--stack", stack, "--non-interactive"];
    const text = await new Promise<string>((resolve, reject) => {
        execFile(pulumi, args, { cwd: options.cwd, maxBuffer: 256 << 20 }, (err, stdout, stderr) => {
            if (!err) return resolve(stdout);
            const missing = (err as NodeJS.ErrnoException).code === "ENOENT";
            const why = missing
                ? `no \`${pulumi}\` on PATH`
                : `exited ${(err as { code?: unknown }).code}: ${stderr.trim().split("\n").slice(-5).join("\n  ")}`;
            const next = missing
                ? "install the Pulumi CLI (in this repository: . lab/env.sh), or pass --state FILE"
                : "check the backend (PULUMI_BACKEND_URL or pulumi login) and the stack name (pulumi stack ls), or pass --state FILE";
            reject(new StateError(`pulumi stack export --stack ${stack} failed: ${why}\n  next: ${next}`));
        });
    });
    return parseState(text, `stack ${stack}`);
}
