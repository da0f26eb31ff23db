// Every reference page's example is a program a user can paste: it must compile
// against the SDK as published (no undeclared names, no wrong field). The example
// is type-checked with the TypeScript compiler, `pulumi-baremetal` resolved to sdk/.
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import * as ts from "typescript";

const repo = path.resolve(__dirname, "../../..");
const pages = path.join(repo, "docs/reference");

function exampleOf(page: string): string {
    const m = /```ts\n([\s\S]*?)```/.exec(fs.readFileSync(path.join(pages, page), "utf8"));
    assert.ok(m, `${page} has no TypeScript example`);
    return m[1];
}

function diagnosticsOf(files: Map<string, string>): string[] {
    const options: ts.CompilerOptions = {
        strict: true, noEmit: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS,
        moduleResolution: ts.ModuleResolutionKind.Node10, esModuleInterop: true, skipLibCheck: true, types: ["node"],
        baseUrl: repo, paths: { "pulumi-baremetal": ["sdk/index.ts"] },
    };
    const host = ts.createCompilerHost(options);
    const read = host.readFile.bind(host);
    host.readFile = (f) => files.get(f) ?? read(f);
    const exists = host.fileExists.bind(host);
    host.fileExists = (f) => files.has(f) || exists(f);
    const program = ts.createProgram([...files.keys()], options, host);
    return ts.getPreEmitDiagnostics(program)
        .filter((d) => d.file && files.has(d.file.fileName))
        .map((d) => `${path.basename(d.file!.fileName)}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`);
}

describe("reference pages", () => {
    it("every example compiles against the SDK", function () {
        this.timeout(120_000);
        const files = new Map<string, string>();
        for (const page of fs.readdirSync(pages).filter((p) => p.endsWith(".md") && p !== "README.md")) {
            files.set(path.join(repo, "docs", `.example-${page.replace(/\.md$/, "")}.ts`), exampleOf(page));
        }
        assert.ok(files.size >= 10, `expected a page per kind, found ${files.size}`);
        assert.deepStrictEqual(diagnosticsOf(files), []);
    });

    it("the check can fail: a wrong field in an example is reported", function () {
        this.timeout(120_000);
        const bad = new Map([[path.join(repo, "docs", ".example-bad.ts"), 'import { RaidArray } from "pulumi-baremetal";\nnew RaidArray("x", { connection: { host: "h" }, device: "/dev/md0", memberz: [] });\n']]);
        const d = diagnosticsOf(bad);
        assert.ok(d.some((m) => /memberz/.test(m)), d.join("\n"));
    });
});
