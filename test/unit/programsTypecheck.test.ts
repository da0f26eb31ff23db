// The TypeScript programs the tests run under the real CLI (examples/ and the e2e
// fixtures) type-check against the package: what `pulumi up` does by default for a
// `typescript: true` project. The test helper runs those programs transpile-only
// (PULUMI_NODEJS_TRANSPILE_ONLY, test/helpers/pulumi.ts: ts-node's type check is
// 3-4 s of CPU per CLI command on these machines, dozens of times per run), so the
// type check is made here, once, with the project's strict settings
// (examples/tsconfig.check.json).
import * as assert from "assert";
import * as path from "path";
import * as ts from "typescript";

const repo = path.resolve(__dirname, "../../..");

/** The compiler's diagnostics for a tsconfig, one line each with file and position. */
function diagnosticsOf(configPath: string): { files: string[]; errors: string[] } {
    const read = ts.readConfigFile(configPath, ts.sys.readFile);
    if (read.error) return { files: [], errors: [ts.flattenDiagnosticMessageText(read.error.messageText, "\n")] };
    const parsed = ts.parseJsonConfigFileContent(read.config, ts.sys, path.dirname(configPath));
    const program = ts.createProgram(parsed.fileNames, parsed.options);
    const errors = [...parsed.errors, ...ts.getPreEmitDiagnostics(program)].map((d) => {
        const text = ts.flattenDiagnosticMessageText(d.messageText, "\n");
        if (!d.file || d.start === undefined) return text;
        const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
        return `${path.relative(repo, d.file.fileName)}:${line + 1}:${character + 1}: ${text}`;
    });
    return { files: parsed.fileNames.map((f) => path.relative(repo, f)), errors };
}

describe("the TypeScript programs the tests run under the CLI", function () {
    this.timeout(120_000);

    it("type-check with the project's strict settings (examples/tsconfig.check.json)", () => {
        const { files, errors } = diagnosticsOf(path.join(repo, "examples/tsconfig.check.json"));
        for (const program of ["examples/lab/index.ts", "examples/datacenter/index.ts", "examples/consul-keys/index.ts", "test/e2e/fixtures/one-resource/index.ts"]) {
            assert.ok(files.includes(program), `${program} is not checked: add its directory to examples/tsconfig.check.json`);
        }
        assert.deepStrictEqual(errors, []);
    });

});
