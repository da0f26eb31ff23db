import * as assert from "assert";
import { generateKeyPairSync } from "crypto";
import {
    checkHostConnection,
    describeTarget,
    fingerprintOf,
    hostKeyMatches,
    HostConnection,
    poolKey,
    publicKeyLineOf,
} from "../../provider/host/connection";
import { Validator } from "../../provider/core/validate";

// Keys made in-process for this run: an RSA PEM key (plain and encrypted) and an
// Ed25519 host key blob in SSH wire format.
const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
const privatePem = rsa.privateKey.export({ type: "pkcs1", format: "pem" }).toString();
const encryptedPem = rsa.privateKey.export({ type: "pkcs1", format: "pem", cipher: "aes-256-cbc", passphrase: "correct horse" }).toString();

function sshString(b: Buffer): Buffer {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    return Buffer.concat([len, b]);
}
function ed25519Blob(): Buffer {
    const raw = generateKeyPairSync("ed25519").publicKey.export({ format: "der", type: "spki" }).subarray(-32);
    return Buffer.concat([sshString(Buffer.from("ssh-ed25519")), sshString(raw)]);
}
const hostBlob = ed25519Blob();
const hostLine = publicKeyLineOf(hostBlob);

const good: HostConnection = { host: "10.0.0.5", privateKey: privatePem, hostKey: hostLine };

function check(value: unknown): { conn?: HostConnection; failures: string[] } {
    const v = new Validator();
    const conn = checkHostConnection(v, "connection", value);
    return { conn: v.ok ? conn : undefined, failures: v.failures.map((f) => `${f.field}: ${f.reason}`) };
}

describe("host connection check", () => {
    it("accepts the field names of @pulumi/command's remote.ConnectionArgs and keeps what was written", () => {
        const input = {
            host: "storage1.dc.example", port: 2222, user: "admin", privateKey: encryptedPem, privateKeyPassword: "correct horse",
            agentSocketPath: "/run/ssh-agent.sock", dialErrorLimit: 3, perDialTimeout: 5, hostKey: hostLine,
            proxy: { host: "192.0.2.1", user: "jump", password: "pw-jump", hostKey: fingerprintOf(hostBlob) },
            sudo: true,
        };
        const { conn, failures } = check(input);
        assert.deepStrictEqual(failures, []);
        assert.deepStrictEqual(conn, input);
    });

    it("does not add defaults to the stored inputs (port, user come from the pool at dial time)", () => {
        assert.deepStrictEqual(check(good).conn, good);
    });

    const bad: [string, unknown, RegExp][] = [
        ["no connection", undefined, /^connection: is required/],
        ["missing host", { ...good, host: undefined }, /^connection\.host: is required/],
        ["shell in the host", { ...good, host: "$(reboot)" }, /^connection\.host: .*not a host name/],
        ["option-like host", { ...good, host: "-oProxyCommand=x" }, /^connection\.host: .*not a host name/],
        ["port 0", { ...good, port: 0 }, /^connection\.port: must be at least 1/],
        ["port too big", { ...good, port: 70000 }, /^connection\.port: must be at most 65535/],
        ["port as string", { ...good, port: "22" }, /^connection\.port: must be a whole number/],
        ["bad user", { ...good, user: "root;id" }, /^connection\.user: .*not a user name/],
        ["misspelt field", { ...good, hots: "x" }, /^connection\.hots: is not a connection field/],
        ["not a private key", { ...good, privateKey: "hello" }, /^connection\.privateKey: is not a private key/],
        ["encrypted key without passphrase", { ...good, privateKey: encryptedPem }, /^connection\.privateKey: is encrypted; set privateKeyPassword/],
        ["wrong passphrase", { ...good, privateKey: encryptedPem, privateKeyPassword: "wrong" }, /^connection\.privateKey: could not be decrypted/],
        ["passphrase without key", { host: "h", password: "pw", privateKeyPassword: "x" }, /^connection\.privateKeyPassword: is set but privateKey is not/],
        ["relative agent socket", { ...good, agentSocketPath: "agent.sock" }, /^connection\.agentSocketPath: .*absolute path/],
        ["dialErrorLimit 0", { ...good, dialErrorLimit: 0 }, /^connection\.dialErrorLimit: must be at least 1 \(or -1/],
        ["negative perDialTimeout", { ...good, perDialTimeout: -1 }, /^connection\.perDialTimeout: must be at least 0/],
        ["garbage host key", { ...good, hostKey: "not a key" }, /^connection\.hostKey: is neither an OpenSSH public key line/],
        ["host key type lies", { ...good, hostKey: `ssh-rsa ${hostBlob.toString("base64")}` }, /^connection\.hostKey: says ssh-rsa but the key data inside is ssh-ed25519/],
        ["short fingerprint", { ...good, hostKey: "SHA256:abc" }, /^connection\.hostKey: is not a SHA256 fingerprint/],
        ["sudo as string", { ...good, sudo: "yes" }, /^connection\.sudo: must be true or false/],
        ["trustOnFirstUse as string", { ...good, trustOnFirstUse: "yes" }, /^connection\.trustOnFirstUse: must be true or false/],
        ["bad jump host", { ...good, proxy: { host: "" } }, /^connection\.proxy\.host: is required/],
        ["jump chain too long", { ...good, proxy: { host: "a", proxy: { host: "b", proxy: { host: "c", proxy: { host: "d" } } } } }, /^connection\.proxy\.proxy\.proxy\.proxy: jump chains are limited to 3 hops/],
    ];
    for (const [name, input, expected] of bad) {
        it(`rejects ${name}, naming the field`, () => {
            const { conn, failures } = check(input);
            assert.ok(failures.some((f) => expected.test(f)), `expected ${expected} in ${JSON.stringify(failures)}`);
            assert.strictEqual(conn, undefined);
        });
    }

    it("never puts a password, key or passphrase into a failure message", () => {
        const { failures } = check({ host: "h;", password: "pw-SECRET-1".repeat(200), privateKey: "nope SECRET-2", privateKeyPassword: "SECRET-3" });
        assert.ok(failures.length >= 3, JSON.stringify(failures));
        assert.ok(!JSON.stringify(failures).includes("SECRET"), JSON.stringify(failures));
    });
});

describe("host key pinning", () => {
    it("matches a pinned key line or its fingerprint, and nothing else", () => {
        assert.ok(hostKeyMatches(hostLine, hostBlob));
        assert.ok(hostKeyMatches(`${hostLine} root@storage1`, hostBlob), "a trailing comment is fine");
        assert.ok(hostKeyMatches(fingerprintOf(hostBlob), hostBlob));
        const other = ed25519Blob();
        assert.ok(!hostKeyMatches(hostLine, other));
        assert.ok(!hostKeyMatches(fingerprintOf(hostBlob), other));
    });

    it("prints fingerprints the way ssh-keygen -lf does (no base64 padding)", () => {
        assert.match(fingerprintOf(hostBlob), /^SHA256:[A-Za-z0-9+/]{43}$/);
    });
});

describe("pooled connection identity", () => {
    it("names the target and its jump chain for errors", () => {
        assert.strictEqual(describeTarget({ host: "10.0.0.5" }), "root@10.0.0.5:22");
        assert.strictEqual(describeTarget({ host: "fd00::5", port: 2222, user: "admin", proxy: { host: "jump" } }), "admin@[fd00::5]:2222 via root@jump:22");
    });

    it("shares a connection only between identical credentials, and keeps credentials out of the key", () => {
        const a = poolKey({ host: "h", password: "one-password" });
        assert.strictEqual(a, poolKey({ host: "h", password: "one-password" }));
        assert.notStrictEqual(a, poolKey({ host: "h", password: "another-password" }));
        assert.notStrictEqual(a, poolKey({ host: "h", password: "one-password", proxy: { host: "j" } }));
        assert.ok(!a.includes("password"));
    });
});
