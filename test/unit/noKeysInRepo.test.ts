// The repository holds no key material: tests and benches make their keys at run
// time (test/helpers/keys.ts, ssh-keygen in test/helpers/sshd.ts, openvpn --genkey
// in the lab tests). A key pasted into a fixture or a test, even a fake one, would
// be copied, reused and eventually trusted somewhere; this keeps it out.
import * as assert from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { openvpnStaticKey, throwawayPrivateKey } from "../helpers/keys";

const repo = path.resolve(__dirname, "../../..");
// A line break as a file has it, or as a string literal writes it.
const br = String.raw`(?:\r?\n|(?:\\r)?\\n)`;
const keyBlocks: { what: string; pattern: RegExp }[] = [
    { what: "a PEM/OpenSSH private key", pattern: new RegExp(`-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----\\s*${br}\\s*[A-Za-z0-9+/=]{16,}`) },
    { what: "an OpenVPN static key", pattern: new RegExp(`-----BEGIN OpenVPN Static key V1-----\\s*${br}(?:\\s*[0-9a-fA-F]{32}\\s*${br}){2}`) },
    { what: "a PuTTY private key", pattern: /PuTTY-User-Key-File-\d+:/ },
    { what: "a Ceph keyring secret", pattern: /\bkey\s*=\s*AQ[A-Za-z0-9+/]{30,}={0,2}/ },
];

function trackedFiles(): string[] {
    try {
        return execFileSync("git", ["ls-files", "-z"], { cwd: repo, encoding: "utf8" }).split("\0").filter(Boolean);
    } catch {
        // Not a git checkout (an unpacked archive): every file outside what builds make.
        const out: string[] = [];
        const walk = (dir: string): void => {
            for (const e of fs.readdirSync(path.join(repo, dir), { withFileTypes: true })) {
                const rel = path.join(dir, e.name);
                if (e.isDirectory()) {
                    if (!["node_modules", "dist", ".git"].includes(e.name)) walk(rel);
                } else if (e.isFile()) out.push(rel);
            }
        };
        walk("");
        return out;
    }
}

describe("the repository holds no key material", () => {
    it("no tracked file carries a private key, a static key or a keyring secret", () => {
        const found: string[] = [];
        for (const file of trackedFiles()) {
            const full = path.join(repo, file);
            if (!fs.existsSync(full) || fs.statSync(full).size > 4 << 20) continue;
            const text = fs.readFileSync(full, "utf8");
            for (const { what, pattern } of keyBlocks) if (pattern.test(text)) found.push(`${file}: ${what}`);
        }
        assert.deepStrictEqual(found, [], "make keys at run time (test/helpers/keys.ts) instead");
    });

    it("would notice one: the patterns match keys as made at run time, written raw or as string literals", () => {
        for (const key of [throwawayPrivateKey(), openvpnStaticKey()]) {
            assert.ok(keyBlocks.some(({ pattern }) => pattern.test(key)), "raw");
            assert.ok(keyBlocks.some(({ pattern }) => pattern.test(JSON.stringify(key))), "as a string literal");
        }
    });
});
