// A fault-injecting TCP proxy on loopback: forwards to a target port and can
// cut every live connection on demand, stall them silently, or swallow new
// connections without ever answering (a host whose sshd hangs), or reset the
// next few connections as their first bytes arrive (a server or middlebox that
// closed a kept-alive socket). A test double for a bad network, which cannot be
// produced on demand otherwise.
import * as net from "net";

export type ProxyMode = "forward" | "blackhole";

export class TcpProxy {
    port = 0;
    /** Connections accepted since start. */
    accepted = 0;
    mode: ProxyMode = "forward";
    /** The next this many client sends are answered with a TCP RST, on new or kept-alive connections. */
    resetNext = 0;
    /** Connections reset so far by `resetNext`. */
    resets = 0;
    private readonly live = new Set<net.Socket>();
    private readonly pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();
    private readonly server = net.createServer((client) => this.onClient(client));

    constructor(private readonly targetPort: number, private readonly targetHost = "127.0.0.1") {}

    async start(): Promise<this> {
        await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", () => r()));
        this.port = (this.server.address() as net.AddressInfo).port;
        return this;
    }

    /** Drops every open connection at once, both sides, like a pulled cable plus a reset. */
    cutAll(): number {
        const n = this.live.size;
        for (const s of this.live) s.destroy();
        this.live.clear();
        return n;
    }

    /**
     * Stops forwarding on every open connection but keeps the sockets open: a
     * path that silently died (a switch lost power), which only keepalives notice.
     */
    stallAll(): number {
        for (const { client, upstream } of this.pairs) {
            client.removeAllListeners("data");
            upstream.removeAllListeners("drain");
            upstream.unpipe(client);
            client.pause();
            upstream.pause();
        }
        return this.pairs.size;
    }

    async stop(): Promise<void> {
        this.cutAll();
        await new Promise<void>((r) => this.server.close(() => r()));
    }

    private onClient(client: net.Socket): void {
        this.accepted++;
        this.track(client);
        if (this.mode === "blackhole") return; // hold it open, say nothing
        const upstream = net.connect({ host: this.targetHost, port: this.targetPort });
        this.track(upstream);
        // By hand rather than pipe(): a request that is reset must not reach the server.
        client.on("data", (chunk: Buffer) => {
            if (this.resetNext > 0) {
                this.resetNext--;
                this.resets++;
                client.resetAndDestroy();
                return;
            }
            if (!upstream.write(chunk)) client.pause();
        });
        upstream.on("drain", () => client.resume());
        upstream.pipe(client);
        const pair = { client, upstream };
        this.pairs.add(pair);
        const both = (): void => {
            this.pairs.delete(pair);
            client.destroy();
            upstream.destroy();
        };
        client.on("close", both);
        upstream.on("close", both);
    }

    private track(s: net.Socket): void {
        this.live.add(s);
        s.on("error", () => undefined);
        s.on("close", () => this.live.delete(s));
    }
}
