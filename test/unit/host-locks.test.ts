import * as assert from "assert";
import { hostLocks, LockName, NamedLocks, objectLock, Semaphore, remoteLockPath } from "../../provider/host/locks";

const tick = (ms = 5): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe("host locks", () => {
    it("a semaphore never lets more than its limit run at once, and serves everyone", async () => {
        const sem = new Semaphore(3);
        let running = 0;
        let peak = 0;
        const done: number[] = [];
        await Promise.all(
            Array.from({ length: 20 }, async (_, i) => {
                const release = await sem.acquire();
                running++;
                peak = Math.max(peak, running);
                await tick(2);
                running--;
                done.push(i);
                release();
            }),
        );
        assert.strictEqual(peak, 3);
        assert.strictEqual(done.length, 20);
        assert.strictEqual(sem.inUse, 0);
    });

    it("releasing twice does not free a second slot", async () => {
        const sem = new Semaphore(1);
        const r = await sem.acquire();
        r();
        r();
        await sem.acquire();
        assert.strictEqual(sem.inUse, 1);
    });

    it("serialises work under the same host and lock name, in order", async () => {
        const locks = new NamedLocks();
        const events: string[] = [];
        const job = (host: string, name: LockName, id: string) =>
            locks.with(host, name, async () => {
                events.push(`start ${id}`);
                await tick();
                events.push(`end ${id}`);
            });
        await Promise.all([job("h1", hostLocks.packages, "a"), job("h1", hostLocks.packages, "b")]);
        assert.deepStrictEqual(events, ["start a", "end a", "start b", "end b"]);
        assert.strictEqual(locks.size, 0, "idle locks are forgotten");
    });

    it("lets different hosts, or different locks on one host, run in parallel", async () => {
        const locks = new NamedLocks();
        let running = 0;
        let peak = 0;
        const job = (host: string, name: LockName) =>
            locks.with(host, name, async () => {
                running++;
                peak = Math.max(peak, running);
                await tick(10);
                running--;
            });
        await Promise.all([job("h1", hostLocks.packages), job("h2", hostLocks.packages), job("h1", hostLocks.lvm)]);
        assert.strictEqual(peak, 3);
    });

    it("releases the lock when the work fails", async () => {
        const locks = new NamedLocks();
        await assert.rejects(locks.with("h", hostLocks.mdadm, async () => Promise.reject(new Error("boom"))), /boom/);
        assert.strictEqual(await locks.with("h", hostLocks.mdadm, async () => "next ran"), "next ran");
    });

    it("names the lock file on the host and refuses names that could escape /run/lock", () => {
        assert.strictEqual(remoteLockPath(hostLocks.packages), "/run/lock/baremetal-packages.lock");
        // The type allows no such name; the check still stands where a plan arrives as data.
        assert.throws(() => remoteLockPath("../etc/passwd" as LockName), /lock name/);
    });

    it("does not compile a lock name outside the table (a typo cannot make a second lock)", () => {
        // @ts-expect-error "lmv" is not a lock name (tsc fails here if it were accepted)
        const typo: LockName = "lmv";
        assert.ok(!(Object.values(hostLocks) as string[]).includes(typo));
    });

    it("makes one lock per object of a kind, and refuses an object name that is not a lower-case name", () => {
        assert.strictEqual(objectLock("lxc-create", "web"), "lxc-create-web");
        assert.strictEqual(remoteLockPath(objectLock("lxc-create", "web")), "/run/lock/baremetal-lxc-create-web.lock");
        for (const bad of ["../x", "Web", "", "a b", "x".repeat(70)]) assert.throws(() => objectLock("lxc-create", bad), /cannot name a lxc-create lock/, bad);
    });
});
