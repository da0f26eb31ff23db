// Which way the imports run (DESIGN.md §2), read from the TypeScript sources of
// provider/ and sdk/: no import cycle anywhere (type-only imports count: a cycle
// of types is still two modules that cannot be understood one without the other);
// resource modules never import each other; only the host layer imports ssh2 and
// only the Consul layer imports `consul`; nothing imports lab/ or test/; sdk/
// takes only types from provider/ (the implementation is loaded by package name).
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import * as ts from "typescript";

const repo = path.resolve(__dirname, "../../..");
/** The package's own name: `pulumi-baremetal/<path>` is the file at <path> of this repository. */
const selfPackage = "pulumi-baremetal";

interface Edge {
    from: string;
    /** Repository-relative path of a file of this package, or the bare name of another package. */
    to: string;
    /** `import type`, `export type ... from`, `typeof import(...)`: erased at run time. */
    typeOnly: boolean;
    /** Reached by package name (`require("pulumi-baremetal/provider")`), resolved when called. */
    byPackageName: boolean;
}

// ---- reading the sources -----------------------------------------------------------------

function sourcesUnder(dirs: string[]): Map<string, string> {
    const out = new Map<string, string>();
    const walk = (rel: string): void => {
        for (const entry of fs.readdirSync(path.join(repo, rel), { withFileTypes: true })) {
            const child = path.posix.join(rel, entry.name);
            if (entry.isDirectory()) walk(child);
            else if (entry.name.endsWith(".ts")) out.set(child, fs.readFileSync(path.join(repo, child), "utf8"));
        }
    };
    for (const d of dirs) walk(d);
    return out;
}

/** The module specifiers of one file, with whether each is type-only. */
function specifiersOf(file: string, text: string): { spec: string; typeOnly: boolean }[] {
    const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
    const found: { spec: string; typeOnly: boolean }[] = [];
    const visit = (node: ts.Node): void => {
        if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
            const clause = node.importClause;
            const named = clause?.namedBindings && ts.isNamedImports(clause.namedBindings) ? clause.namedBindings.elements : undefined;
            const allTypes = !!clause && !clause.name && !!named && named.length > 0 && named.every((e) => e.isTypeOnly);
            found.push({ spec: node.moduleSpecifier.text, typeOnly: !!clause && (clause.isTypeOnly || allTypes) });
        } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
            const named = node.exportClause && ts.isNamedExports(node.exportClause) ? node.exportClause.elements : undefined;
            found.push({ spec: node.moduleSpecifier.text, typeOnly: node.isTypeOnly || (!!named && named.length > 0 && named.every((e) => e.isTypeOnly)) });
        } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference) && ts.isStringLiteral(node.moduleReference.expression)) {
            found.push({ spec: node.moduleReference.expression.text, typeOnly: node.isTypeOnly });
        } else if (ts.isCallExpression(node) && node.arguments.length > 0 && ts.isStringLiteral(node.arguments[0])) {
            const isRequire = ts.isIdentifier(node.expression) && node.expression.text === "require";
            if (isRequire || node.expression.kind === ts.SyntaxKind.ImportKeyword) found.push({ spec: node.arguments[0].text, typeOnly: false });
        } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
            found.push({ spec: node.argument.literal.text, typeOnly: true });
        }
        ts.forEachChild(node, visit);
    };
    visit(sf);
    return found;
}

/** A relative or self-package specifier as a repository path (the .ts file when there is one). */
function resolve(from: string, spec: string, files: ReadonlyMap<string, string>): string {
    const base = spec.startsWith(".") ? path.posix.normalize(path.posix.join(path.posix.dirname(from), spec)) : spec.slice(selfPackage.length + 1);
    for (const candidate of [`${base}.ts`, `${base}/index.ts`, base]) if (files.has(candidate)) return candidate;
    return base;
}

export function edgesOf(files: ReadonlyMap<string, string>): Edge[] {
    const edges: Edge[] = [];
    for (const [file, text] of files) {
        for (const { spec, typeOnly } of specifiersOf(file, text)) {
            const byPackageName = spec === selfPackage || spec.startsWith(`${selfPackage}/`);
            const local = spec.startsWith(".") || byPackageName;
            edges.push({ from: file, to: local ? resolve(file, spec, files) : packageName(spec), typeOnly, byPackageName });
        }
    }
    return edges;
}

/** `ssh2/lib/protocol` → `ssh2`, `@pulumi/pulumi/dynamic` → `@pulumi/pulumi`, `node:fs` → `node:fs`. */
function packageName(spec: string): string {
    const parts = spec.split("/");
    return spec.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
}

// ---- the rules ------------------------------------------------------------------------------

const under = (dir: string) => (file: string) => file === dir || file.startsWith(`${dir}/`);
const inProvider = under("provider");
const inSdk = under("sdk");

/** The kind a file under provider/resources belongs to: its file name, or its folder for a kind split into parts. */
function kindOf(file: string): string | undefined {
    const m = /^provider\/resources\/([^/]+?)(?:\.ts|\/.*)$/.exec(file);
    return m?.[1];
}

export function ruleViolations(edges: Edge[]): string[] {
    const out: string[] = [];
    for (const e of edges) {
        const edge = `${e.from} imports ${e.to}${e.typeOnly ? " (type only)" : ""}`;
        const [fromKind, toKind] = [kindOf(e.from), kindOf(e.to)];
        if (fromKind && toKind && fromKind !== toKind) out.push(`${edge}: resource modules never import each other (move what both need to provider/core, parsers, host or pxe)`);
        if (e.to === "ssh2" && !under("provider/host")(e.from)) out.push(`${edge}: only provider/host speaks SSH`);
        if (e.to === "consul" && !under("provider/consul")(e.from)) out.push(`${edge}: only provider/consul speaks to Consul`);
        if (under("lab")(e.to) || under("test")(e.to)) out.push(`${edge}: provider/ and sdk/ never import lab/ or test/`);
        if (inSdk(e.from) && inProvider(e.to) && !e.typeOnly && !e.byPackageName) {
            out.push(`${edge}: sdk/ takes only types from provider/ (\`import type\`); the implementation is loaded by package name at call time`);
        }
    }
    return out;
}

/** Every import cycle among the files, each once, as `a.ts → b.ts → a.ts` (package-name loads are late-bound and left out). */
export function cyclesOf(edges: Edge[]): string[] {
    const next = new Map<string, string[]>();
    for (const e of edges) if (!e.byPackageName && e.to.endsWith(".ts")) next.set(e.from, [...(next.get(e.from) ?? []), e.to]);
    const cycles = new Set<string>();
    const state = new Map<string, "open" | "done">();
    const stack: string[] = [];
    const visit = (file: string): void => {
        state.set(file, "open");
        stack.push(file);
        for (const to of new Set(next.get(file) ?? [])) {
            if (state.get(to) === "open") cycles.add(canonicalCycle(stack.slice(stack.indexOf(to))));
            else if (!state.has(to)) visit(to);
        }
        stack.pop();
        state.set(file, "done");
    };
    for (const file of [...next.keys()].sort()) if (!state.has(file)) visit(file);
    return [...cycles].sort();
}

/** The same cycle found from any of its files reads the same: it starts at its smallest path. */
function canonicalCycle(files: string[]): string {
    const start = files.indexOf([...files].sort()[0]);
    const turned = [...files.slice(start), ...files.slice(0, start)];
    return [...turned, turned[0]].join(" → ");
}

// ---- the tests ------------------------------------------------------------------------------

describe("imports (DESIGN.md §2)", () => {
    const files = sourcesUnder(["provider", "sdk"]);
    const edges = edgesOf(files);

    it("reads the sources it judges (a walk that finds nothing would pass anything)", () => {
        assert.ok(files.size > 40, `only ${files.size} files under provider/ and sdk/`);
        assert.ok(edges.some((e) => e.from === "provider/host/pool.ts" && e.to === "ssh2"), "the host layer's ssh2 import is seen");
        assert.ok(edges.some((e) => inSdk(e.from) && inProvider(e.to) && e.typeOnly), "sdk's type imports from provider are seen");
    });

    it("has no import cycle in provider/ or sdk/ (type-only imports included)", () => {
        const cycles = cyclesOf(edges);
        assert.deepStrictEqual(cycles, [], `import cycle(s):\n  ${cycles.join("\n  ")}`);
    });

    it("keeps the direction rules: kinds apart, ssh2 and consul in their layers, no lab/ or test/, sdk/ types only from provider/", () => {
        const violations = ruleViolations(edges);
        assert.deepStrictEqual(violations, [], `import rule(s) broken:\n  ${violations.join("\n  ")}`);
    });

    it("names the cycle and the edge when a rule is broken (the checks above can fail)", () => {
        const bad = new Map<string, string>([
            ["provider/parsers/x.ts", 'import type { A } from "../resources/aKind";\n'],
            ["provider/resources/aKind.ts", 'import { parse } from "../parsers/x";\nimport { B } from "./bKind";\nimport { Client } from "ssh2";\n'],
            ["provider/resources/bKind/check.ts", 'import { sh } from "../../../test/helpers/sshd";\nimport Consul from "consul";\n'],
            ["provider/resources/bKind.ts", 'export * from "./bKind/check";\n'],
            ["sdk/a.ts", 'import { kinds } from "../provider/index";\nimport type { A } from "../provider/resources/aKind";\nconst p = () => require("pulumi-baremetal/provider");\n'],
            ["provider/index.ts", 'export { aKind } from "./resources/aKind";\n'],
            // A kind split into a folder is one module: its parts import each other freely, but not another kind's parts.
            ["provider/resources/cKind/index.ts", 'export { plan } from "./plan";\nexport type { CInputs } from "./spec";\n'],
            ["provider/resources/cKind/plan.ts", 'import type { CInputs } from "./spec";\nimport { readLive } from "../dKind/read";\n'],
            ["provider/resources/cKind/spec.ts", "export interface CInputs { name: string }\n"],
            ["provider/resources/dKind/read.ts", 'import { check } from "../../core/validate";\n'],
        ]);
        const e = edgesOf(bad);
        assert.deepStrictEqual(cyclesOf(e), ["provider/parsers/x.ts → provider/resources/aKind.ts → provider/parsers/x.ts"]);
        assert.deepStrictEqual(ruleViolations(e), [
            "provider/resources/aKind.ts imports provider/resources/bKind.ts: resource modules never import each other (move what both need to provider/core, parsers, host or pxe)",
            "provider/resources/aKind.ts imports ssh2: only provider/host speaks SSH",
            "provider/resources/bKind/check.ts imports test/helpers/sshd: provider/ and sdk/ never import lab/ or test/",
            "provider/resources/bKind/check.ts imports consul: only provider/consul speaks to Consul",
            "sdk/a.ts imports provider/index.ts: sdk/ takes only types from provider/ (`import type`); the implementation is loaded by package name at call time",
            "provider/resources/cKind/plan.ts imports provider/resources/dKind/read.ts: resource modules never import each other (move what both need to provider/core, parsers, host or pxe)",
        ]);
    });
});
