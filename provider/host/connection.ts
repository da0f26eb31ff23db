// How to reach a host over SSH. The field names are those of @pulumi/command's
// remote.ConnectionArgs, so one object can be handed to both; `sudo` and
// `trustOnFirstUse` are this layer's additions. Validation is pure (no I/O).
import { createHash } from "crypto";
import { utils } from "ssh2";
import { FieldSpec, ObjectType, t } from "../core/fields";
import { isUnknown, Validator } from "../core/validate";

/** How to reach a host over SSH; every field is documented once, in `connectionType` below. */
export interface HostConnection {
    host: string;
    port?: number;
    user?: string;
    password?: string;
    privateKey?: string;
    privateKeyPassword?: string;
    agentSocketPath?: string;
    dialErrorLimit?: number;
    perDialTimeout?: number;
    hostKey?: string;
    proxy?: HostConnection;
    sudo?: boolean;
    trustOnFirstUse?: boolean;
}

/**
 * The connection's field table (docs, secrets) for the SDK, the reference pages and
 * the schema. Checked as a whole by checkHostConnection (key parsing, jump limits).
 */
export const connectionType: ObjectType = {
    name: "Connection",
    doc: "How to reach a host over SSH. The field names are those of @pulumi/command's `remote.ConnectionArgs`, so the same object can be passed to both.",
    check: (v, field, value) => checkHostConnection(v, field, value),
    get fields() {
        return connectionFields;
    },
};

/**
 * The `connection` input of a kind that acts on one box: a new box is a new object
 * (replaces) unless `replaceOn` says otherwise (a KvmGuest migrates instead).
 */
export function connectionField(doc: string, replaceOn: readonly string[] = ["host"]): FieldSpec & { required: true } {
    return { type: t.object(connectionType), required: true, replaceOn, doc };
}

const connectionFields: Record<keyof HostConnection, FieldSpec> = {
    host: { type: t.string(), required: true, doc: "Address of the host: a DNS name, an IPv4 or an IPv6 address." },
    port: { type: t.integer, doc: "SSH port; 22 when omitted." },
    user: { type: t.string(), doc: "Login user; `root` when omitted." },
    password: { type: t.string(), secret: true, doc: "Password." },
    privateKey: { type: t.string(), secret: true, doc: "Private key in OpenSSH or PEM format." },
    privateKeyPassword: { type: t.string(), secret: true, doc: "Passphrase of an encrypted privateKey." },
    agentSocketPath: { type: t.string(), doc: "ssh-agent socket; `$SSH_AUTH_SOCK` is used when no credential is given." },
    dialErrorLimit: { type: t.integer, doc: "Dial attempts before giving up; 10 when omitted; -1 retries forever." },
    perDialTimeout: { type: t.integer, doc: "Seconds for one dial attempt (TCP + handshake + auth); 15 when omitted; 0 means no limit." },
    hostKey: {
        type: t.string(),
        doc: "The host's public key as an OpenSSH line (`ssh-ed25519 AAAA...`) or its fingerprint (`SHA256:...`, as `ssh-keygen -lf` prints it). Unlike @pulumi/command, an unpinned host is refused unless `trustOnFirstUse` is set.",
    },
    proxy: { type: t.object(connectionType), doc: "A jump host the connection is tunnelled through (like `ssh -J`)." },
    sudo: { type: t.boolean, doc: "Run every command through `sudo -n` (needs NOPASSWD sudo for the login user)." },
    trustOnFirstUse: { type: t.boolean, doc: "Accept an unpinned host's key and report it, so a resource can pin it as an output." },
};

export const connectionDefaults = {
    port: 22,
    user: "root",
    dialErrorLimit: 10,
    perDialTimeoutSeconds: 15,
} as const;

const fields = Object.keys(connectionFields);

const userPattern = /^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/;
const keyTypes = [
    "ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
];
const fingerprintPattern = /^SHA256:[A-Za-z0-9+/]{43}=?$/;
/** Jump chains longer than this are almost certainly a mistake (or a cycle built in code). */
const maxJumps = 4;

/** Validates a HostConnection input, naming the field of every failure. No I/O. */
export function checkHostConnection(v: Validator, field: string, value: unknown, depth = 0): HostConnection | undefined {
    if (isUnknown(value)) return value as HostConnection;
    if (value === undefined || value === null || typeof value !== "object" || Array.isArray(value)) {
        return v.fail(field, 'is required: an object like { host: "10.0.0.5", privateKey: ... , hostKey: "ssh-ed25519 AAAA..." }');
    }
    const raw = value as Record<string, unknown>;
    for (const k of Object.keys(raw)) {
        if (!(fields as readonly string[]).includes(k)) v.fail(`${field}.${k}`, `is not a connection field (${fields.join(", ")})`);
    }
    const host = v.host(`${field}.host`, raw.host);
    const port = v.integer(`${field}.port`, raw.port, { optional: true, min: 1, max: 65535 });
    const user = v.string(`${field}.user`, raw.user, { optional: true, pattern: userPattern, patternHint: "is not a user name" });
    const password = checkSecretText(v, `${field}.password`, raw.password, 1024);
    const privateKey = checkSecretText(v, `${field}.privateKey`, raw.privateKey, 16384);
    const privateKeyPassword = checkSecretText(v, `${field}.privateKeyPassword`, raw.privateKeyPassword, 1024);
    // A key not known yet (preview: another resource's output, or the SDK's own check of a program's secrets) is checked later.
    if (privateKey !== undefined && !isUnknown(privateKey) && !isUnknown(privateKeyPassword)) checkPrivateKey(v, `${field}.privateKey`, privateKey, privateKeyPassword);
    if (privateKeyPassword !== undefined && privateKey === undefined) {
        v.fail(`${field}.privateKeyPassword`, "is set but privateKey is not");
    }
    const agentSocketPath = v.string(`${field}.agentSocketPath`, raw.agentSocketPath, {
        optional: true,
        pattern: /^\/[^\0]*$/,
        patternHint: "is not an absolute path",
    });
    const dialErrorLimit = v.integer(`${field}.dialErrorLimit`, raw.dialErrorLimit, { optional: true, min: -1, max: 1000 });
    if (dialErrorLimit === 0) v.fail(`${field}.dialErrorLimit`, "must be at least 1 (or -1 to retry forever), got 0");
    const perDialTimeout = v.integer(`${field}.perDialTimeout`, raw.perDialTimeout, { optional: true, min: 0, max: 3600 });
    const hostKey = checkHostKey(v, `${field}.hostKey`, raw.hostKey);
    const sudo = v.boolean(`${field}.sudo`, raw.sudo, false);
    const trustOnFirstUse = v.boolean(`${field}.trustOnFirstUse`, raw.trustOnFirstUse, false);
    let proxy: HostConnection | undefined;
    if (raw.proxy !== undefined && raw.proxy !== null) {
        if (depth + 1 >= maxJumps) v.fail(`${field}.proxy`, `jump chains are limited to ${maxJumps - 1} hops`);
        else proxy = checkHostConnection(v, `${field}.proxy`, raw.proxy, depth + 1);
    }
    if (!host) return undefined;
    return dropUndefined({
        host, port, user, password, privateKey, privateKeyPassword, agentSocketPath, dialErrorLimit, perDialTimeout, hostKey, proxy,
        sudo: sudo || undefined,
        trustOnFirstUse: trustOnFirstUse || undefined,
    });
}

/** A secret string: checked without ever echoing its value into a message. */
function checkSecretText(v: Validator, field: string, value: unknown, maxLength: number): string | undefined {
    if (value === undefined || value === null) return undefined;
    if (isUnknown(value)) return value as string;
    if (typeof value !== "string") return v.fail(field, `must be a string, got ${typeof value}`);
    if (value === "") return v.fail(field, "is empty; leave it out instead");
    if (value.length > maxLength) return v.fail(field, `is ${value.length} characters long; the limit is ${maxLength}`);
    return value;
}

function checkPrivateKey(v: Validator, field: string, key: string, passphrase: string | undefined): void {
    if (!/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(key)) {
        v.fail(field, "is not a private key (expected a block starting with -----BEGIN ... PRIVATE KEY-----)");
        return;
    }
    const parsed = utils.parseKey(key, passphrase);
    if (parsed instanceof Error) {
        const why = /passphrase|decrypt|bad decrypt/i.test(parsed.message)
            ? passphrase === undefined
                ? "is encrypted; set privateKeyPassword"
                : "could not be decrypted with privateKeyPassword"
            : "could not be parsed as an SSH private key (OpenSSH or PEM, RSA/ECDSA/Ed25519)";
        v.fail(field, why);
    }
}

function checkHostKey(v: Validator, field: string, value: unknown): string | undefined {
    const key = v.string(field, value, { optional: true, maxLength: 8192 });
    if (key === undefined || isUnknown(key)) return key;
    if (key.startsWith("SHA256:")) {
        if (!fingerprintPattern.test(key)) return v.fail(field, "is not a SHA256 fingerprint like SHA256:+4mE... (43 base64 characters)");
        return key;
    }
    const parsed = parsePublicKeyLine(key);
    if (typeof parsed === "string") return v.fail(field, parsed);
    return key;
}

/** The key type and blob of an OpenSSH public key line, or why it is not one. */
export function parsePublicKeyLine(line: string): { type: string; blob: Buffer } | string {
    const [type, b64] = line.trim().split(/\s+/);
    if (!keyTypes.includes(type) || !b64 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) {
        return `is neither an OpenSSH public key line ("ssh-ed25519 AAAA...") nor a fingerprint ("SHA256:..."); get it with ssh-keyscan or ssh-keygen -lf`;
    }
    const blob = Buffer.from(b64, "base64");
    if (blobKeyType(blob) !== type) return `says ${type} but the key data inside is ${blobKeyType(blob) ?? "not an SSH key"}`;
    return { type, blob };
}

/** The key type written at the start of an SSH public key blob. */
export function blobKeyType(blob: Buffer): string | undefined {
    if (blob.length < 4) return undefined;
    const n = blob.readUInt32BE(0);
    if (n > 64 || blob.length < 4 + n) return undefined;
    return blob.subarray(4, 4 + n).toString("latin1");
}

/** `SHA256:...` the way OpenSSH prints a key fingerprint. */
export function fingerprintOf(blob: Buffer): string {
    return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

/** The OpenSSH line of a key blob, e.g. for a TOFU output. */
export function publicKeyLineOf(blob: Buffer): string {
    return `${blobKeyType(blob) ?? "unknown"} ${blob.toString("base64")}`;
}

/** Does the key the server showed match the pin (a key line or a fingerprint)? */
export function hostKeyMatches(pin: string, blob: Buffer): boolean {
    if (pin.startsWith("SHA256:")) return pin.replace(/=$/, "") === fingerprintOf(blob);
    const parsed = parsePublicKeyLine(pin);
    return typeof parsed !== "string" && parsed.blob.equals(blob);
}

/** `user@host:port`, with ` via ...` for each jump: how errors and logs name a host. */
export function describeTarget(c: HostConnection): string {
    const self = `${c.user ?? connectionDefaults.user}@${c.host.includes(":") ? `[${c.host}]` : c.host}:${c.port ?? connectionDefaults.port}`;
    return c.proxy ? `${self} via ${describeTarget(c.proxy)}` : self;
}

/**
 * Identity of a pooled connection: the target chain plus a digest of what
 * authenticates it, so two resources reaching one host with different
 * credentials never share a session. The digest keeps credentials out of the key.
 */
export function poolKey(c: HostConnection): string {
    const auth = createHash("sha256")
        .update(JSON.stringify([c.password, c.privateKey, c.privateKeyPassword, c.agentSocketPath, c.hostKey, c.trustOnFirstUse]))
        .digest("hex")
        .slice(0, 16);
    const self = `${describeTarget({ ...c, proxy: undefined })}#${auth}`;
    return c.proxy ? `${self} via ${poolKey(c.proxy)}` : self;
}

/** Host identity for locks: the machine, whoever logs into it. */
export function lockScope(c: HostConnection): string {
    return `${c.host}:${c.port ?? connectionDefaults.port}${c.proxy ? ` via ${lockScope(c.proxy)}` : ""}`;
}

/** Every credential of a connection chain, for the redactor. */
export function connectionSecrets(c: HostConnection): string[] {
    const own = [c.password, c.privateKey, c.privateKeyPassword].filter((s): s is string => s !== undefined);
    return c.proxy ? [...own, ...connectionSecrets(c.proxy)] : own;
}

function dropUndefined<T extends object>(o: T): T {
    return Object.fromEntries(Object.entries(o).filter(([, x]) => x !== undefined)) as T;
}
