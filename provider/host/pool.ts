// The SSH connection pool: one ssh2 connection per host (and jump chain) per
// process, with commands multiplexed as channels on it. Dialling costs a TCP and
// key-exchange round trip plus an sshd fork; a data center's worth of resources
// touching ten hosts should pay that ten times, not once per command.
import { Client, ClientChannel, ConnectConfig, ServerHostKeyAlgorithm } from "ssh2";
import { Duplex } from "stream";
import {
    connectionDefaults,
    connectionSecrets,
    describeTarget,
    fingerprintOf,
    HostConnection,
    hostKeyMatches,
    parsePublicKeyLine,
    poolKey,
    publicKeyLineOf,
} from "./connection";
import { RemoteError } from "../core/errors";
import { AuthError, CommandTimeoutError, ConnectionLostError, DialError, formatSeconds, HostKeyError } from "./errors";
import { Semaphore } from "./locks";
import { Redactor } from "./redact";
import { recordTrace, traceFile, traceTarget, TraceTarget } from "./trace";

export interface PoolOptions {
    /** Concurrent sessions per connection; sshd's MaxSessions defaults to 10. */
    maxSessionsPerHost?: number;
    /** SSH keepalive: a dead peer is noticed after interval × countMax. */
    keepaliveIntervalMs?: number;
    keepaliveCountMax?: number;
    /** Close a connection nobody used for this long (the timer never keeps the process alive). */
    idleCloseMs?: number;
    /** First pause between dial attempts; it doubles up to backoffMaxMs. */
    backoffBaseMs?: number;
    backoffMaxMs?: number;
}

/** Retries of a refused session (about 1.5 s in all), see execWithRedial. */
const sessionRetries = 6;

const defaults: Required<PoolOptions> = {
    maxSessionsPerHost: 10,
    keepaliveIntervalMs: 15_000,
    keepaliveCountMax: 3,
    idleCloseMs: 5 * 60_000,
    backoffBaseMs: 250,
    backoffMaxMs: 5_000,
};

export interface ExecRequest {
    /** The command line, already quoted (see quote.ts). */
    command: string;
    /** What errors call it: the command line with secrets replaced. */
    display: string;
    /** What the caller was doing, for errors ("step 2/5 (install packages mdadm)"); `run <display>` when omitted. */
    operation?: string;
    /** Secrets of the caller (besides the connection's) to scrub from error texts. */
    redactor?: Redactor;
    stdin?: Buffer | string;
    /**
     * Stop waiting after this long and close the channel; no limit when omitted.
     * Killing the remote process is the command line's job (see execute.ts).
     */
    timeoutMs?: number;
}

export interface ExecResult {
    /** null when the process was killed by a signal. */
    exitCode: number | null;
    signal?: string;
    stdout: Buffer;
    stderr: Buffer;
    durationMs: number;
}

export interface HostKeySeen {
    /** OpenSSH line, e.g. `ssh-ed25519 AAAA...`: what to put into connection.hostKey. */
    key: string;
    fingerprint: string;
}

export interface PoolStats {
    /** SSH connections dialled successfully since the pool was made. */
    connectionsOpened: number;
    /** Connections open now. */
    connectionsOpen: number;
    /** Commands run. */
    commands: number;
    /** Sessions sshd refused and that were retried (it frees slots a little late). */
    sessionsRefused: number;
}

export class SshPool {
    readonly options: Required<PoolOptions>;
    private readonly hosts = new Map<string, PooledHost>();
    /** Shared by every PooledHost so that stats add up across hosts. */
    readonly counters = { connectionsOpened: 0, commands: 0, sessionsRefused: 0 };

    constructor(options: PoolOptions = {}) {
        this.options = { ...defaults, ...options };
    }

    /** The pooled connection for this target, made (not dialled) on first use. */
    host(conn: HostConnection): PooledHost {
        const key = poolKey(conn);
        let h = this.hosts.get(key);
        if (!h) {
            h = new PooledHost(this, conn);
            this.hosts.set(key, h);
        }
        return h;
    }

    stats(): PoolStats {
        return {
            ...this.counters,
            connectionsOpen: [...this.hosts.values()].filter((h) => h.isConnected).length,
        };
    }

    /** Closes every connection; the pool stays usable and dials again on demand. */
    async closeAll(): Promise<void> {
        // Targets before jump hosts, so tunnels close from the inside out.
        const all = [...this.hosts.values()].sort((a, b) => b.depth - a.depth);
        for (const h of all) await h.close();
    }
}

/** One target's connection: dialled lazily, redialled after a drop. */
export class PooledHost {
    readonly target: string;
    readonly depth: number;
    private client?: Client;
    private dialing?: Promise<Client>;
    private readonly sessions: Semaphore;
    private readonly inFlight = new Set<(err: Error) => void>();
    private idleTimer?: NodeJS.Timeout;
    private seen?: HostKeySeen;
    private readonly redactor: Redactor;
    /** Address fields of this target's trace lines (no credentials). */
    private readonly traceAt: TraceTarget;
    /** Per-host facts that do not change while the process lives (e.g. the OS family), keyed by name. */
    readonly memo = new Map<string, Promise<unknown>>();

    constructor(
        private readonly pool: SshPool,
        readonly conn: HostConnection,
    ) {
        this.target = describeTarget(conn);
        this.depth = chainDepth(conn);
        this.sessions = new Semaphore(pool.options.maxSessionsPerHost);
        this.redactor = new Redactor().add(...connectionSecrets(conn));
        this.traceAt = traceTarget(conn);
    }

    get isConnected(): boolean {
        return this.client !== undefined;
    }

    /** The host key the server presented on the last dial (what TOFU accepted). */
    get hostKeySeen(): HostKeySeen | undefined {
        return this.seen;
    }

    /** Runs one command on a channel of the pooled connection. */
    async exec(req: ExecRequest): Promise<ExecResult> {
        const release = await this.sessions.acquire();
        this.pool.counters.commands++;
        this.cancelIdleClose();
        const started: CommandStart = {};
        try {
            const result = await this.execWithRedial(req, started);
            this.traceCommand(req, started, result);
            return result;
        } catch (err) {
            this.traceCommand(req, started, err as Error);
            throw err;
        } finally {
            release();
            this.scheduleIdleClose();
        }
    }

    /**
     * The trace line of one command (see trace.ts): its own duration on success,
     * the time from its start to the failure otherwise. A command whose channel
     * never opened ran nothing and gets no line (its failed dial has one).
     */
    private traceCommand(req: ExecRequest, started: CommandStart, outcome: ExecResult | Error): void {
        if (started.at === undefined || traceFile() === undefined) return;
        const redactor = req.redactor ? this.redactor.merge(req.redactor) : this.redactor;
        const common = { ...this.traceAt, event: "command" as const, operation: req.operation === undefined ? undefined : redactor.redact(req.operation), command: redactor.redact(req.display) };
        if (outcome instanceof Error) {
            recordTrace({ ...common, start: started.at, durationMs: Date.now() - started.at, exitCode: null, error: firstLine(redactor.redact(outcome.message)) });
        } else {
            recordTrace({ ...common, start: Date.now() - outcome.durationMs, durationMs: outcome.durationMs, exitCode: outcome.exitCode, signal: outcome.signal });
        }
    }

    /** The trace line of one dial attempt (see trace.ts). */
    private traceDial(started: number, failure?: Error): void {
        if (traceFile() === undefined) return;
        const common = { ...this.traceAt, event: "connect" as const, start: started, durationMs: Date.now() - started };
        recordTrace(failure ? { ...common, ok: false, error: firstLine(this.redactor.redact(failure.message)) } : { ...common, ok: true });
    }

    /** Opens a TCP tunnel from this host to another (for a connection that jumps through this one). */
    async forward(host: string, port: number): Promise<Duplex> {
        this.cancelIdleClose();
        const client = await this.connected();
        return new Promise<Duplex>((resolve, reject) => {
            client.forwardOut("127.0.0.1", 0, host, port, (err, stream) => {
                if (err) {
                    reject(new Error(`jump host ${this.target} could not open a tunnel to ${host}:${port}: ${err.message} (does its sshd allow TCP forwarding?)`));
                    return;
                }
                // The tunnel keeps this connection busy (no idle close) while it is open.
                const tunnel = (): void => undefined;
                this.inFlight.add(tunnel);
                stream.once("close", () => {
                    this.inFlight.delete(tunnel);
                    this.scheduleIdleClose();
                });
                resolve(stream);
            });
        });
    }

    async close(): Promise<void> {
        this.cancelIdleClose();
        const c = this.client;
        this.client = undefined;
        if (!c) return;
        await new Promise<void>((resolve) => {
            c.once("close", () => resolve());
            c.end();
            // A half-dead peer may never answer the disconnect.
            setTimeout(() => (c.destroy(), resolve()), 2000).unref();
        });
    }

    /**
     * A channel that could not be opened ran nothing, so trying again is safe:
     * - the connection had dropped (between two commands): redial and retry once;
     * - sshd refused the session although we stay within MaxSessions: it frees a
     *   slot only once it has reaped the previous command's process, which can
     *   lag behind the channel close we saw; wait a moment and retry.
     */
    private async execWithRedial(req: ExecRequest, started: CommandStart): Promise<ExecResult> {
        let redialled = false;
        for (let attempt = 0; ; attempt++) {
            const client = await this.connected();
            try {
                return await this.execOn(client, req, started);
            } catch (err) {
                if (!(err instanceof ChannelOpenError)) throw err;
                if (this.client !== client && !redialled) {
                    redialled = true;
                    continue;
                }
                if (this.client === client && attempt < sessionRetries) {
                    this.pool.counters.sessionsRefused++;
                    await sleep(25 * 2 ** attempt);
                    continue;
                }
                throw this.channelOpenFailure(err);
            }
        }
    }

    private channelOpenFailure(err: ChannelOpenError): Error {
        return new RemoteError(
            this.target,
            err.operation,
            `could not start the command: ${err.message}. Nothing was run`,
            `running again is safe; if sshd keeps refusing sessions, its MaxSessions is below this pool's ${this.pool.options.maxSessionsPerHost} (raise it in sshd_config)`,
        );
    }

    private execOn(client: Client, req: ExecRequest, commandStart: CommandStart): Promise<ExecResult> {
        const redactor = req.redactor ? this.redactor.merge(req.redactor) : this.redactor;
        return new Promise<ExecResult>((resolve, reject) => {
            const started = Date.now();
            const stdout: Buffer[] = [];
            const stderr: Buffer[] = [];
            let exitCode: number | null | undefined;
            let signal: string | undefined;
            let channel: ClientChannel | undefined;
            let timer: NodeJS.Timeout | undefined;
            let settled = false;
            const settle = (err: Error | undefined, result?: ExecResult): void => {
                if (settled) return;
                settled = true;
                if (timer) clearTimeout(timer);
                this.inFlight.delete(onConnectionLost);
                if (err) reject(err);
                else resolve(result!);
            };
            const onConnectionLost = (cause: Error): void => {
                if (!channel) {
                    // sshd starts a command when it gets the exec request and answers at
                    // once; no answer yet means it (practically) never got it. Treated as
                    // "nothing ran", so the caller retries on a fresh connection.
                    settle(new ChannelOpenError(`the connection dropped before the command started (${redactor.redact(cause.message)})`, operationOf(req)));
                    return;
                }
                settle(new ConnectionLostError(this.target, operationOf(req), `the connection dropped after ${formatSeconds(Date.now() - started)} (${redactor.redact(cause.message)})`));
            };
            this.inFlight.add(onConnectionLost);

            client.exec(req.command, (err, stream) => {
                if (err) {
                    settle(new ChannelOpenError(redactor.redact(err.message), operationOf(req)));
                    return;
                }
                channel = stream;
                commandStart.at = started;
                stream.on("data", (d: Buffer) => stdout.push(d));
                stream.stderr.on("data", (d: Buffer) => stderr.push(d));
                stream.on("exit", (code: number | null, sig?: string) => {
                    exitCode = code;
                    signal = sig ?? undefined;
                });
                stream.on("error", () => undefined); // surfaced through close / the connection
                stream.on("close", () => {
                    if (exitCode === undefined) {
                        onConnectionLost(new Error("the channel closed without an exit status"));
                        return;
                    }
                    settle(undefined, {
                        exitCode,
                        signal,
                        stdout: Buffer.concat(stdout),
                        stderr: Buffer.concat(stderr),
                        durationMs: Date.now() - started,
                    });
                });
                if (req.timeoutMs !== undefined) {
                    timer = setTimeout(() => {
                        // The process itself is killed on the host by the `timeout` wrapper
                        // the executor adds (sshd ignores "signal" requests for root
                        // logins); closing the channel frees the session now.
                        channel?.close();
                        settle(new CommandTimeoutError(this.target, operationOf(req), req.timeoutMs!, redactor.redact(Buffer.concat(stderr).toString("utf8"))));
                    }, req.timeoutMs);
                }
                stream.end(req.stdin ?? undefined);
            });
        });
    }

    /** The live client, dialling (once, shared by concurrent callers) when there is none. */
    private async connected(): Promise<Client> {
        if (this.client) return this.client;
        if (!this.dialing) {
            this.dialing = this.dialWithRetries().finally(() => (this.dialing = undefined));
        }
        return this.dialing;
    }

    private async dialWithRetries(): Promise<Client> {
        const limit = this.conn.dialErrorLimit ?? connectionDefaults.dialErrorLimit;
        let lastError: Error | undefined;
        for (let attempt = 1; limit < 0 || attempt <= limit; attempt++) {
            const started = Date.now();
            try {
                const client = await this.dialOnce();
                this.adopt(client);
                this.traceDial(started);
                return client;
            } catch (err) {
                this.traceDial(started, err as Error);
                // Wrong host key or credentials will not get better by retrying.
                if (err instanceof HostKeyError || err instanceof AuthError || err instanceof DialError) throw err;
                lastError = err as Error;
                if (limit >= 0 && attempt >= limit) break;
                await sleep(Math.min(this.pool.options.backoffBaseMs * 2 ** (attempt - 1), this.pool.options.backoffMaxMs));
            }
        }
        const detail = this.redactor.redact(describeDialError(lastError));
        throw new DialError(
            this.target,
            limit,
            `gave up after ${limit} attempt${limit === 1 ? "" : "s"}; the last one failed with: ${detail}`,
            `check that the host is up, that sshd listens on port ${this.conn.port ?? connectionDefaults.port} and that nothing filters the path from here` +
                ` (connection.dialErrorLimit and connection.perDialTimeout control the retries)`,
        );
    }

    private adopt(client: Client): void {
        this.client = client;
        this.pool.counters.connectionsOpened++;
        const lost = (err?: Error): void => {
            if (this.client === client) this.client = undefined;
            for (const fail of [...this.inFlight]) fail(err ?? new Error("the server or the network closed the connection"));
        };
        client.on("error", (err) => lost(err));
        client.on("close", () => lost());
        this.scheduleIdleClose();
    }

    private async dialOnce(): Promise<Client> {
        const c = this.conn;
        const port = c.port ?? connectionDefaults.port;
        // Through a jump host, the TCP stream is a channel of the jump host's pooled connection.
        const sock = c.proxy ? await this.pool.host(c.proxy).forward(c.host, port) : undefined;
        const timeoutS = c.perDialTimeout ?? connectionDefaults.perDialTimeoutSeconds;
        let refusal: HostKeyError | undefined;
        const pinnedAlgorithms = c.hostKey ? hostKeyAlgorithmsFor(c.hostKey) : undefined;
        const client = new Client();
        const config: ConnectConfig = {
            host: c.host,
            port,
            sock,
            username: c.user ?? connectionDefaults.user,
            password: c.password,
            privateKey: c.privateKey,
            passphrase: c.privateKeyPassword,
            agent: c.agentSocketPath ?? (c.password || c.privateKey ? undefined : process.env.SSH_AUTH_SOCK),
            tryKeyboard: c.password !== undefined,
            readyTimeout: timeoutS === 0 ? 2 ** 31 - 1 : timeoutS * 1000,
            keepaliveInterval: this.pool.options.keepaliveIntervalMs,
            keepaliveCountMax: this.pool.options.keepaliveCountMax,
            hostVerifier: (key: Buffer) => {
                refusal = this.verifyHostKey(key);
                return refusal === undefined;
            },
            algorithms: pinnedAlgorithms ? { serverHostKey: pinnedAlgorithms } : undefined,
        };
        if (!config.password && !config.privateKey && !config.agent) {
            throw new AuthError(this.target, "no credentials to log in with", "set connection.privateKey, connection.password or connection.agentSocketPath (SSH_AUTH_SOCK is not set either)");
        }
        return new Promise<Client>((resolve, reject) => {
            const fail = (err: Error): void => {
                client.removeAllListeners("ready");
                client.on("error", noop); // late errors of a discarded client
                client.destroy();
                sock?.destroy();
                reject(refusal ?? this.classifyDialError(err));
            };
            // The handshake and every command are small request/response exchanges:
            // Nagle's algorithm against the peer's delayed ACK adds ~40 ms to each.
            client.once("connect", () => client.setNoDelay(true));
            client.once("ready", () => {
                client.removeListener("error", fail);
                client.removeListener("close", onEarlyClose);
                resolve(client);
            });
            client.once("error", fail);
            const onEarlyClose = (): void => fail(new Error("the server closed the connection during the handshake"));
            client.once("close", onEarlyClose);
            keyboardPassword(client, c.password);
            client.connect(config);
        });
    }

    /** undefined when the key is acceptable; else the refusal to report. */
    private verifyHostKey(blob: Buffer): HostKeyError | undefined {
        const offered: HostKeySeen = { key: publicKeyLineOf(blob), fingerprint: fingerprintOf(blob) };
        const pin = this.conn.hostKey;
        if (pin !== undefined) {
            if (hostKeyMatches(pin, blob)) {
                this.seen = offered;
                return undefined;
            }
            return new HostKeyError(
                this.target,
                `the server presented ${offered.fingerprint} (${offered.key.split(" ")[0]}), which is not the pinned connection.hostKey ${pin.startsWith("SHA256:") ? pin : fingerprintOf(parsedBlob(pin))}`,
                "if the host was reinstalled, verify its new key on its console (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) and update connection.hostKey; otherwise something may be intercepting the connection",
                offered.key,
                offered.fingerprint,
            );
        }
        if (!this.conn.trustOnFirstUse) {
            return new HostKeyError(
                this.target,
                `connection.hostKey is not set, and the server presented ${offered.fingerprint}`,
                `pin the key: set connection.hostKey to "${offered.key}" after checking it on the host's console (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), or set connection.trustOnFirstUse: true to accept and record it`,
                offered.key,
                offered.fingerprint,
            );
        }
        // Trust on first use: the first key seen by this process is the one trusted.
        if (this.seen && this.seen.key !== offered.key) {
            return new HostKeyError(
                this.target,
                `the server presented ${offered.fingerprint}, but earlier in this run it presented ${this.seen.fingerprint}`,
                "a host key that changes between two connections of one run is suspicious; check the host, then pin connection.hostKey",
                offered.key,
                offered.fingerprint,
            );
        }
        this.seen = offered;
        return undefined;
    }

    private classifyDialError(err: Error): Error {
        const level = (err as { level?: string }).level;
        const message = this.redactor.redact(err.message);
        if (level === "client-authentication") {
            return new AuthError(
                this.target,
                `the server refused the credentials for user ${this.conn.user ?? connectionDefaults.user} (${message})`,
                "check connection.user and that the key (connection.privateKey) is in the user's authorized_keys, or the password; for a jump host check connection.proxy too",
            );
        }
        if (/encrypted|passphrase|Cannot parse privateKey/i.test(message)) {
            return new AuthError(this.target, `the private key cannot be used: ${message}`, "check connection.privateKey and connection.privateKeyPassword");
        }
        // Keep the errno code (ECONNREFUSED ...): the final DialError explains it.
        return Object.assign(new Error(message), { code: (err as { code?: string }).code });
    }

    private scheduleIdleClose(): void {
        if (!this.client || this.inFlight.size > 0 || this.sessions.inUse > 0) return;
        this.cancelIdleClose();
        this.idleTimer = setTimeout(() => void this.close(), this.pool.options.idleCloseMs);
        this.idleTimer.unref();
    }

    private cancelIdleClose(): void {
        if (this.idleTimer) clearTimeout(this.idleTimer);
        this.idleTimer = undefined;
    }
}

/** When the command's channel opened (it may have started running); unset while nothing ran. */
interface CommandStart {
    at?: number;
}

/** The channel could not be opened: nothing ran. */
class ChannelOpenError extends Error {
    constructor(
        message: string,
        readonly operation: string,
    ) {
        super(message);
    }
}

/** Answers keyboard-interactive prompts with the password (some sshd configs only offer that). */
function keyboardPassword(client: Client, password: string | undefined): void {
    if (password === undefined) return;
    client.on("keyboard-interactive", (_name, _instructions, _lang, prompts, finish) => finish(prompts.map(() => password)));
}

/** Offer only the pinned key's algorithms, so a host with several keys shows the pinned one. */
function hostKeyAlgorithmsFor(pin: string): ServerHostKeyAlgorithm[] | undefined {
    // A fingerprint does not say the key type: let the server pick.
    if (pin.startsWith("SHA256:")) return undefined;
    const type = pin.trim().split(/\s+/)[0];
    return (type === "ssh-rsa" ? ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] : [type]) as ServerHostKeyAlgorithm[];
}

function parsedBlob(pin: string): Buffer {
    const p = parsePublicKeyLine(pin);
    return typeof p === "string" ? Buffer.alloc(0) : p.blob;
}

function describeDialError(err: Error | undefined): string {
    if (!err) return "unknown error";
    const code = (err as { code?: string }).code;
    if (code === "ECONNREFUSED") return "connection refused (nothing listens on that port)";
    if (code === "EHOSTUNREACH" || code === "ENETUNREACH") return "no route to the host";
    if (code === "ENOTFOUND" || code === "EAI_AGAIN") return "the host name does not resolve";
    if (/Timed out while waiting for handshake/.test(err.message)) return "timed out waiting for the SSH handshake (connection.perDialTimeout)";
    return err.message;
}

function operationOf(req: ExecRequest): string {
    return req.operation ?? `run \`${req.display}\``;
}

function chainDepth(c: HostConnection): number {
    return c.proxy ? 1 + chainDepth(c.proxy) : 0;
}

/** The first line of a message, bounded: a trace line stays one short line. */
function firstLine(message: string): string {
    const line = message.split("\n")[0];
    return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}

function sleep(ms: number): Promise<void> {
    return new Promise((r) => setTimeout(r, ms));
}

function noop(): void {}
