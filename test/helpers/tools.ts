import { execFileSync } from "child_process";

/**
 * Fails (never skips) when a tool the tier needs is missing from PATH: the tier's
 * setup (test/run.sh, lab/setup.sh) is supposed to have provided it.
 */
export function requireTools(names: string[]): void {
    const missing = names.filter((n) => {
        try {
            execFileSync("sh", ["-c", 'command -v "$1"', "sh", n], { stdio: "ignore" });
            return false;
        } catch {
            return true;
        }
    });
    if (missing.length > 0) {
        throw new Error(`missing on PATH: ${missing.join(", ")} — run the tests with \`npm test\`, which builds the toolchain (lab/toolchain.sh)`);
    }
}
