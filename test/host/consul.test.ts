// The Consul layer against the real Consul agent.
import * as assert from "assert";
import { ConsulKv } from "../../provider/consul/client";
import { RemoteError } from "../../provider/core/errors";
import { DevConsul, startConsul } from "../helpers/consul";
import { freePort } from "../helpers/net";
import { TcpProxy } from "../helpers/tcpProxy";
import { requireTools } from "../helpers/tools";

describe("Consul layer (real agent)", function () {
    this.timeout(60_000);
    let consul: DevConsul;

    before(async () => {
        requireTools(["consul"]);
        consul = await startConsul();
    });
    after(async () => consul?.stop());

    it("reads an absent subtree as empty", async () => {
        assert.strictEqual((await new ConsulKv({ address: consul.address }).tree("nothing/here/")).size, 0);
    });

    it("writes more keys than one transaction allows, in batches", async () => {
        const kv = new ConsulKv({ address: consul.address });
        const ops = Array.from({ length: 150 }, (_, i) => ({ verb: "set" as const, key: `many/k${i}`, value: `v${i}` }));
        await kv.apply(ops);
        const tree = await kv.tree("many/");
        assert.strictEqual(tree.size, 150);
        assert.strictEqual(tree.get("many/k149"), "v149");
        await kv.apply(ops.map((o) => ({ verb: "delete" as const, key: o.key })));
        assert.strictEqual((await kv.tree("many/")).size, 0);
    });

    it("round-trips values byte for byte: newlines, quotes, unicode, empty", async () => {
        const kv = new ConsulKv({ address: consul.address });
        const values = { a: "line1\nline2\n", b: `'"$(id)\`;`, c: "zoné ☃ 日本", d: "" };
        await kv.apply(Object.entries(values).map(([k, value]) => ({ verb: "set" as const, key: `rt/${k}`, value })));
        const tree = await kv.tree("rt/");
        for (const [k, v] of Object.entries(values)) assert.strictEqual(tree.get(`rt/${k}`), v);
        assert.strictEqual(await consul.get("rt/c"), values.c);
    });

    it("retries a request whose connection is reset, and the write lands once", async () => {
        const proxy = await new TcpProxy(Number(consul.address.split(":")[1])).start();
        try {
            const kv = new ConsulKv({ address: `127.0.0.1:${proxy.port}` });
            proxy.resetNext = 2;
            await kv.apply([{ verb: "set", key: "reset/k", value: "once" }]);
            assert.strictEqual(proxy.resets, 2);
            assert.strictEqual(await consul.get("reset/k"), "once");
            proxy.resetNext = 1;
            assert.strictEqual((await kv.tree("reset/")).get("reset/k"), "once");
            assert.strictEqual(proxy.resets, 3);
        } finally {
            await proxy.stop();
        }
    });

    it("gives up after three resets in a row with an error naming the agent, never the token", async () => {
        const token = "5b1e9c7d-dddd-eeee-ffff-0123456789ab";
        const proxy = await new TcpProxy(Number(consul.address.split(":")[1])).start();
        try {
            const kv = new ConsulKv({ address: `127.0.0.1:${proxy.port}`, token });
            proxy.resetNext = 3;
            await assert.rejects(kv.tree("reset/"), (err: Error) => {
                assert.ok(err instanceof RemoteError, String(err));
                assert.match(err.message, /read K\/V under "reset\/" on Consul at http:\/\/127\.0\.0\.1:\d+ failed: ECONNRESET/);
                assert.ok(!err.message.includes(token));
                return true;
            });
            assert.strictEqual(proxy.resets, 3);
        } finally {
            await proxy.stop();
        }
    });

    it("explains an unreachable agent, names it, and never shows the token", async () => {
        const token = "0f3c2a7e-aaaa-bbbb-cccc-123456789abc";
        const kv = new ConsulKv({ address: `127.0.0.1:${await freePort()}`, token });
        await assert.rejects(kv.tree("x/"), (err: Error) => {
            assert.ok(err instanceof RemoteError, String(err));
            assert.match(err.message, /read K\/V under "x\/" on Consul at http:\/\/127\.0\.0\.1:\d+ failed: ECONNREFUSED/);
            assert.match(err.message, /next: check that the Consul agent runs/);
            assert.ok(!err.message.includes(token));
            return true;
        });
    });
});
