// `npm run generate`: writes every file that comes from the field tables (the
// SDK's generated types and classes, the reference pages). `--check` writes
// nothing and exits 1 naming each stale file (what the unit test asks too).
import * as fs from "fs";
import * as path from "path";
import type { AnyKindSpec } from "../core/fields";
import { kinds } from "../index";
import { docFiles } from "./docgen";
import { sdkFiles } from "./sdkgen";

/** Every generated file by path relative to the repository root. */
export function generatedFiles(): Map<string, string> {
    const specs = Object.values(kinds).flatMap((k): AnyKindSpec[] => (k.spec ? [k.spec as unknown as AnyKindSpec] : []));
    return new Map([...sdkFiles(specs), ...docFiles(specs)]);
}

/** Generated files whose committed text differs from what the tables give now. */
export function staleFiles(root: string): string[] {
    const stale: string[] = [];
    for (const [rel, text] of generatedFiles()) {
        const file = path.join(root, rel);
        if (!fs.existsSync(file) || fs.readFileSync(file, "utf8") !== text) stale.push(rel);
    }
    return stale;
}

function main(argv: string[]): number {
    const root = path.resolve(__dirname, "../../..");
    if (argv.includes("--check")) {
        const stale = staleFiles(root);
        for (const f of stale) console.error(`stale: ${f} (run npm run generate)`);
        return stale.length > 0 ? 1 : 0;
    }
    for (const [rel, text] of generatedFiles()) {
        const file = path.join(root, rel);
        fs.mkdirSync(path.dirname(file), { recursive: true });
        if (!fs.existsSync(file) || fs.readFileSync(file, "utf8") !== text) {
            fs.writeFileSync(file, text);
            console.error(`wrote ${rel}`);
        }
    }
    return 0;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
