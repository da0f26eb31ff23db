// Key material for tests and benches, made at run time: the repository holds no
// key, not even a fake one, so nothing in it can be mistaken for (or reused as) a
// credential, and a test that checks "this secret never leaks" checks a value no
// one could have pasted into a fixture.
import { generateKeyPairSync, randomBytes } from "crypto";

/**
 * A fresh OpenVPN static key in the format `openvpn --genkey secret` writes:
 * 2048 random bits as 16 lines of 32 hex digits between the BEGIN/END markers.
 */
export function openvpnStaticKey(): string {
    const hex = randomBytes(256).toString("hex");
    const lines = Array.from({ length: 16 }, (_, i) => hex.slice(i * 32, i * 32 + 32));
    return ["-----BEGIN OpenVPN Static key V1-----", ...lines, "-----END OpenVPN Static key V1-----", ""].join("\n");
}

/** The key lines of a static key: what must never appear in state, logs or errors. */
export function staticKeyLines(key: string): string[] {
    return key.split("\n").filter((l) => /^[0-9a-f]{32}$/.test(l));
}

/**
 * A fresh Ed25519 private key (PKCS#8 PEM) for code that only carries a key and
 * never dials with it (a real sshd's keys come from test/helpers/sshd.ts generateKeyPair).
 */
export function throwawayPrivateKey(): string {
    return generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString();
}
