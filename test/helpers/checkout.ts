// A throwaway "checkout" of this project that a user could have anywhere: the
// built package, its node_modules (hard links: fast, no copy), and one program.
// It can be moved, to prove that stack state does not depend on the path.
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

const repo = path.resolve(__dirname, "../../..");

export class Checkout {
    private constructor(public root: string, readonly program: string) {}

    /** Copies a program fixture (test/e2e/fixtures/<name>, or a path under the repo) into a fresh checkout. */
    static create(fixture: string, fixturesDir = "test/e2e/fixtures"): Checkout {
        const root = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "bm-checkout-")), "a");
        fs.mkdirSync(root);
        fs.copyFileSync(path.join(repo, "package.json"), path.join(root, "package.json"));
        execFileSync("cp", ["-a", path.join(repo, "dist"), path.join(root, "dist")]);
        execFileSync("cp", ["-al", path.join(repo, "node_modules"), path.join(root, "node_modules")]);
        const program = path.join("examples", path.basename(fixture));
        execFileSync("mkdir", ["-p", path.join(root, "examples")]);
        execFileSync("cp", ["-r", path.join(repo, fixturesDir, fixture), path.join(root, program)]);
        return new Checkout(root, program);
    }

    /** Copies one more directory beside the program (e.g. a library the program imports by relative path). */
    include(dir: string, fromDir = "test/e2e/fixtures"): void {
        execFileSync("cp", ["-r", path.join(repo, fromDir, dir), path.join(this.root, "examples", path.basename(dir))]);
    }

    get programDir(): string {
        return path.join(this.root, this.program);
    }

    /** Moves the whole checkout to a sibling directory and returns the new root. */
    move(name: string): string {
        const to = path.join(path.dirname(this.root), name);
        fs.renameSync(this.root, to);
        this.root = to;
        return to;
    }

    remove(): void {
        fs.rmSync(path.dirname(this.root), { recursive: true, force: true });
    }
}
