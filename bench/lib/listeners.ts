// Listeners that only count: TCP connections accepted (then dropped at once) and
// UDP datagrams received, on many loopback addresses. A benchmark points every
// host of a generated inventory (SSH, BMC, Consul) at them, so any network I/O a
// preview does shows up here, whichever process or library does it.
import * as dgram from "dgram";
import * as net from "net";
import type { Endpoint } from "./inventoryGen";

export class CountingListeners {
    tcpConnections = 0;
    udpDatagrams = 0;
    /** Who was contacted, "host:port" → count. */
    readonly contacted = new Map<string, number>();
    private readonly servers: net.Server[] = [];
    private readonly sockets: dgram.Socket[] = [];

    /** Listens on every endpoint (duplicates once); rejects if one cannot be bound. */
    async start(tcp: Endpoint[], udp: Endpoint[] = []): Promise<this> {
        for (const e of unique(tcp)) {
            const server = net.createServer((s) => {
                this.tcpConnections++;
                this.note(e);
                s.destroy();
            });
            await new Promise<void>((resolve, reject) => {
                server.once("error", reject);
                server.listen(e.port, e.host, () => resolve());
            });
            this.servers.push(server);
        }
        for (const e of unique(udp)) {
            const socket = dgram.createSocket("udp4", () => {
                this.udpDatagrams++;
                this.note(e);
            });
            await new Promise<void>((resolve, reject) => {
                socket.once("error", reject);
                socket.bind(e.port, e.host, () => resolve());
            });
            this.sockets.push(socket);
        }
        return this;
    }

    get listening(): number {
        return this.servers.length + this.sockets.length;
    }

    async stop(): Promise<void> {
        await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
        await Promise.all(this.sockets.map((s) => new Promise<void>((r) => s.close(() => r()))));
    }

    private note(e: Endpoint): void {
        const k = `${e.host}:${e.port}`;
        this.contacted.set(k, (this.contacted.get(k) ?? 0) + 1);
    }
}

function unique(endpoints: Endpoint[]): Endpoint[] {
    const seen = new Map<string, Endpoint>();
    for (const e of endpoints) seen.set(`${e.host}:${e.port}`, e);
    return [...seen.values()];
}
