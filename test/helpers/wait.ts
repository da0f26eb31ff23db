// Waiting in tests: on a condition, never on a fixed delay. The timeout only
// catches a hang (generous, and it says what never came); it is no assertion on time.

/** Polls `cond` every `pollMs` until it holds; fails after `timeoutMs` naming `what`. */
export async function waitFor(what: string, cond: () => boolean, timeoutMs = 120_000, pollMs = 200): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!cond()) {
        if (Date.now() > until) throw new Error(`gave up waiting for ${what} (${timeoutMs / 1000} s)`);
        await new Promise((r) => setTimeout(r, pollMs));
    }
}
