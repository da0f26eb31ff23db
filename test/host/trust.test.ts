// Host keys and credentials against a real sshd: a wrong or unpinned key is
// refused before anything runs; refused credentials fail at once, clearly.
import * as assert from "assert";
import { execFileSync } from "child_process";
import { AuthError, CommandError, Host, HostKeyError, SshPool } from "../../provider/host";
import { generateKeyPair, startSshd, TestSshd } from "../helpers/sshd";

describe("host keys and credentials over a real sshd", function () {
    let sshd: TestSshd;
    let pool: SshPool;

    before(async () => {
        sshd = await startSshd();
    });
    after(async () => {
        await sshd?.stop();
    });
    beforeEach(() => {
        pool = new SshPool({ backoffBaseMs: 20 });
    });
    afterEach(async () => {
        await pool.closeAll();
    });

    /** What sshd logged after `mark`, to see what one test's connection did. */
    const logSince = (mark: number): string => sshd.log().slice(mark);

    it("refuses a host whose key is not the pinned one, before logging in or running anything", async () => {
        const other = generateKeyPair(sshd.dir, `other-${Date.now()}`);
        const mark = sshd.log().length;
        const host = new Host(sshd.connection({ hostKey: other.publicKey }), { pool });
        await assert.rejects(host.run(["touch", `${sshd.dir}/should-not-exist`]), (err: Error) => {
            assert.ok(err instanceof HostKeyError, String(err));
            assert.match(err.message, /^verify host key on root@127\.0\.0\.1:\d+ failed: the server presented SHA256:\S+ \(ssh-ed25519\), which is not the pinned connection\.hostKey SHA256:/);
            assert.match(err.message, /Nothing was run/);
            assert.strictEqual(err.offeredFingerprint, sshd.hostKeyFingerprint);
            return true;
        });
        const log = logSince(mark);
        assert.strictEqual((log.match(/Connection from/g) ?? []).length, 1, "one attempt, not retried");
        assert.doesNotMatch(log, /Accepted|Starting session|session/i, `sshd saw a login or session:\n${log}`);
        assert.strictEqual(pool.stats().connectionsOpened, 0);
    });

    it("refuses an unpinned host, telling the operator the exact key line to pin", async () => {
        const mark = sshd.log().length;
        const host = new Host(sshd.connection({ hostKey: undefined }), { pool });
        await assert.rejects(host.run(["true"]), (err: Error) => {
            assert.ok(err instanceof HostKeyError, String(err));
            assert.ok(err.message.includes(`set connection.hostKey to "${sshd.hostKey.split(" ").slice(0, 2).join(" ")}"`), err.message);
            assert.match(err.message, /trustOnFirstUse/);
            return true;
        });
        assert.doesNotMatch(logSince(mark), /Accepted|Starting session/);
    });

    it("with trustOnFirstUse, connects and reports the key it accepted, ready to pin", async () => {
        const host = new Host(sshd.connection({ hostKey: undefined, trustOnFirstUse: true }), { pool });
        const result = await host.apply([]);
        assert.deepStrictEqual(result.hostKey, { key: sshd.hostKey.split(" ").slice(0, 2).join(" "), fingerprint: sshd.hostKeyFingerprint });
        // The reported key, pinned, works on a fresh pool.
        const pinned = new Host(sshd.connection({ hostKey: result.hostKey!.key }), { pool: new SshPool() });
        assert.strictEqual((await pinned.run(["echo", "pinned"])).stdout, "pinned\n");
    });

    it("accepts a host pinned by its SHA256 fingerprint, as ssh-keygen -lf prints it", async () => {
        const host = new Host(sshd.connection({ hostKey: sshd.hostKeyFingerprint }), { pool });
        assert.strictEqual((await host.run(["echo", "ok"])).stdout, "ok\n");
    });

    it("fails at once with a clear error when the server refuses the key, without retrying", async () => {
        const stranger = generateKeyPair(sshd.dir, `stranger-${Date.now()}`);
        const mark = sshd.log().length;
        const host = new Host(sshd.connection({ privateKey: stranger.privateKey, dialErrorLimit: 5 }), { pool });
        await assert.rejects(host.run(["true"]), (err: Error) => {
            assert.ok(err instanceof AuthError, String(err));
            assert.match(err.message, /^log in on root@127\.0\.0\.1:\d+ failed: the server refused the credentials for user root/);
            assert.match(err.message, /next: check connection\.user and that the key/);
            assert.ok(!err.message.includes("PRIVATE KEY"));
            return true;
        });
        assert.strictEqual((logSince(mark).match(/Connection from/g) ?? []).length, 1, "auth failures are not retried");
    });

    describe("a non-root user with a password", () => {
        const user = `bmtest${process.pid % 100000}`;
        const password = `pw-${process.pid}-${Date.now()}-correct`;

        before(() => {
            execFileSync("useradd", ["--no-create-home", "--home-dir", "/tmp", "--shell", "/bin/sh", user]);
            execFileSync("chpasswd", [], { input: `${user}:${password}\n` });
        });
        after(() => {
            execFileSync("userdel", [user]);
        });

        it("logs in with password authentication", async () => {
            const host = new Host(sshd.connection({ user, privateKey: undefined, password }), { pool });
            assert.strictEqual((await host.run(["id", "-un"])).stdout, `${user}\n`);
        });

        it("reports a wrong password as an auth failure that does not contain the password", async () => {
            const wrong = `${password}-but-wrong`;
            const host = new Host(sshd.connection({ user, privateKey: undefined, password: wrong }), { pool });
            await assert.rejects(host.run(["true"]), (err: Error) => {
                assert.ok(err instanceof AuthError, String(err));
                assert.ok(!err.message.includes(wrong) && !JSON.stringify(err).includes(wrong));
                return true;
            });
        });

        it("with sudo but no NOPASSWD rule, fails saying how to grant it", async () => {
            const host = new Host(sshd.connection({ user, privateKey: undefined, password, sudo: true }), { pool });
            await assert.rejects(host.run(["id", "-u"]), (err: Error) => {
                assert.ok(err instanceof CommandError, String(err));
                assert.match(err.message, /sudo -n -- id -u/);
                assert.match(err.message, /next: connection\.sudo needs passwordless sudo \(NOPASSWD\)/);
                return true;
            });
        });
    });
});
