// Faults between here and a real sshd: a cut connection, a silently dead path,
// an unreachable or hanging host, and a jump host (a second real sshd).
import * as assert from "assert";
import { ConnectionLostError, DialError, Host, HostKeyError, SshPool } from "../../provider/host";
import { freePort } from "../helpers/net";
import { startSshd, TestSshd } from "../helpers/sshd";
import { TcpProxy } from "../helpers/tcpProxy";

describe("network faults against a real sshd", function () {
    let sshd: TestSshd;
    let proxy: TcpProxy;
    let pool: SshPool;

    before(async () => {
        sshd = await startSshd();
    });
    after(async () => {
        await sshd?.stop();
    });
    beforeEach(async () => {
        proxy = await new TcpProxy(sshd.port).start();
        pool = new SshPool({ backoffBaseMs: 20, keepaliveIntervalMs: 200, keepaliveCountMax: 2 });
    });
    afterEach(async () => {
        await pool.closeAll();
        await proxy.stop();
    });

    const viaProxy = (extra = {}) => sshd.connection({ port: proxy.port, ...extra });

    it("a connection cut mid-command gives a clear error, and the next operation reconnects", async () => {
        const host = new Host(viaProxy(), { pool });
        assert.strictEqual((await host.run(["echo", "before"])).stdout, "before\n");
        const running = host.run(["sh", "-c", "sleep 3; echo finished"]);
        await new Promise((r) => setTimeout(r, 500));
        assert.strictEqual(proxy.cutAll() > 0, true);
        await assert.rejects(running, (err: Error) => {
            assert.ok(err instanceof ConnectionLostError, String(err));
            assert.match(err.message, /^run `sh -c 'sleep 3; echo finished'` on root@127\.0\.0\.1:\d+ failed: the connection dropped after/);
            assert.match(err.message, /may or may not have completed on the host/);
            return true;
        });
        assert.strictEqual((await host.run(["echo", "after"])).stdout, "after\n");
        assert.strictEqual(proxy.accepted, 2);
        assert.strictEqual(pool.stats().connectionsOpened, 2);
    });

    it("a drop between two commands heals without the caller seeing an error", async () => {
        const host = new Host(viaProxy(), { pool });
        await host.run(["true"]);
        proxy.cutAll();
        assert.strictEqual((await host.run(["echo", "again"])).stdout, "again\n");
        assert.strictEqual(proxy.accepted, 2);
    });

    it("a path that dies silently is noticed by keepalives instead of hanging", async () => {
        const host = new Host(viaProxy(), { pool });
        await host.run(["true"]);
        // Far longer than mocha's timeout: only the keepalives can end it in time, so
        // the rejection itself is the proof (no wall-time assertion to break under load).
        const running = host.run(["sleep", "600"]);
        await new Promise((r) => setTimeout(r, 300));
        proxy.stallAll();
        await assert.rejects(running, ConnectionLostError);
    });

    it("retries a hanging host perDialTimeout by perDialTimeout, dialErrorLimit times, then says so", async () => {
        proxy.mode = "blackhole";
        const host = new Host(viaProxy({ dialErrorLimit: 2, perDialTimeout: 1 }), { pool });
        const started = Date.now();
        await assert.rejects(host.run(["true"]), (err: Error) => {
            assert.ok(err instanceof DialError, String(err));
            assert.match(err.message, /^connect on root@127\.0\.0\.1:\d+ failed: gave up after 2 attempts; the last one failed with: timed out waiting for the SSH handshake \(connection\.perDialTimeout\)/);
            assert.match(err.message, /next: check that the host is up/);
            return true;
        });
        assert.strictEqual(proxy.accepted, 2);
        assert.ok(Date.now() - started >= 2000);
    });

    it("reports a refused port after dialErrorLimit attempts", async () => {
        const port = await freePort();
        const host = new Host(sshd.connection({ port, dialErrorLimit: 3 }), { pool });
        await assert.rejects(host.run(["true"]), (err: Error) => {
            assert.ok(err instanceof DialError, String(err));
            assert.strictEqual(err.attempts, 3);
            assert.match(err.message, /gave up after 3 attempts; the last one failed with: connection refused \(nothing listens on that port\)/);
            return true;
        });
    });

    describe("through a jump host (a second sshd)", () => {
        let jump: TestSshd;
        let target: TestSshd;

        before(async () => {
            // DEBUG1 makes the jump host log each tunnel it opens.
            jump = await startSshd({ extraConfig: ["LogLevel DEBUG1"] });
            target = await startSshd({ client: jump.client });
        });
        after(async () => {
            await target?.stop();
            await jump?.stop();
        });

        it("runs commands on the target over a tunnel of the jump host's pooled connection", async () => {
            const [jumpBefore, targetBefore] = [jump.connections(), target.connections()];
            const host = new Host(target.connection({ proxy: jump.connection() }), { pool });
            const outs = await Promise.all(Array.from({ length: 20 }, (_, i) => host.run(["echo", `n${i}`])));
            assert.deepStrictEqual(outs.map((o) => o.stdout), Array.from({ length: 20 }, (_, i) => `n${i}\n`));
            assert.match(jump.log(), new RegExp(`server_request_direct_tcpip: .*target 127\\.0\\.0\\.1 port ${target.port}`));
            assert.strictEqual(jump.connections() - jumpBefore, 1);
            assert.strictEqual(target.connections() - targetBefore, 1);
            assert.strictEqual(pool.stats().connectionsOpened, 2);
            assert.strictEqual(jump.commandSessions(), 0, "nothing ran on the jump host itself");
        });

        it("verifies the target's host key end to end, not just the jump host's", async () => {
            const host = new Host(target.connection({ hostKey: jump.hostKey, proxy: jump.connection() }), { pool });
            await assert.rejects(host.run(["true"]), (err: Error) => {
                assert.ok(err instanceof HostKeyError, String(err));
                assert.match(err.message, new RegExp(`on root@127\\.0\\.0\\.1:${target.port} via root@127\\.0\\.0\\.1:${jump.port} failed`));
                return true;
            });
        });
    });
});
