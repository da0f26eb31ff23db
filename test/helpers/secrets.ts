// Proof that secret values stay secret: not in text (CLI output, logs, error
// messages), and encrypted in exported stack state. Shared by the e2e and host
// tests that make that claim.
import * as assert from "assert";
import type { PulumiStack } from "./pulumi";

/** The signature Pulumi writes for an encrypted (secret) value in exported state. */
export const secretSignature = "4dabf18193072939515e22adb298388d";

/**
 * Every secret value, plus each long line of a multi-line one (a tool may print
 * only the line of a private key it choked on) and its base64 form (a command
 * line or a dump may carry it so).
 */
export function secretFragments(values: string[]): string[] {
    const out = new Set<string>();
    for (const v of values) {
        if (v.length >= 6) {
            out.add(v);
            out.add(Buffer.from(v, "utf8").toString("base64"));
        }
        for (const line of v.split(/\r?\n/)) if (line.trim().length >= 16) out.add(line.trim());
    }
    return [...out];
}

/** Fails naming where a secret showed up (by its first characters only). */
export function assertNoSecretIn(text: string, fragments: string[], what: string): void {
    for (const f of fragments) {
        const at = text.indexOf(f);
        assert.ok(at < 0, `${what} repeats a secret (${JSON.stringify(f.slice(0, 10))}..., at offset ${at}):\n${text.slice(Math.max(0, at - 200), at).replace(f, "<secret>")}`);
    }
}

/**
 * `pulumi stack export` hides every secret (each is encrypted, with Pulumi's secret
 * signature) while `--show-secrets` shows them: so they were in the state, encrypted.
 * `mustBeInState` lists the secrets the stack's resources hold right now.
 */
export async function assertStateEncrypted(stack: PulumiStack, fragments: string[], mustBeInState: string[] = []): Promise<{ plain: string; shown: string }> {
    const plain = await stack.exportState();
    const shown = (await stack.ok(["stack", "export", "--show-secrets"])).stdout;
    assert.notStrictEqual(plain, shown, "stack export with and without --show-secrets are the same: nothing is encrypted");
    if (mustBeInState.length > 0) assert.ok(plain.includes(secretSignature), "the exported state has no encrypted value");
    for (const s of mustBeInState) {
        // The export shows a secret as JSON inside JSON (escaped twice): look for its longest line.
        const probe = s.split(/\r?\n/).sort((a, b) => b.length - a.length)[0];
        assert.ok(shown.includes(probe), `a secret that must be in the state is not, even with --show-secrets (${s.slice(0, 8)}...)`);
    }
    assertNoSecretIn(plain, fragments, "the exported state (without --show-secrets)");
    return { plain, shown };
}
