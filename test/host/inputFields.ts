// Every input field of a resource kind, read from the kind's `<Kind>Inputs`
// interface in provider/resources/<kind>.ts (or <kind>/spec.ts for a kind split into
// parts) with the TypeScript compiler, so the
// hostile-input suite can prove that no field (and no kind) was left without cases:
// a field added to an interface, or a kind added to `kinds`, fails the suite until
// it has cases.
//
// Paths use `[]` for list items and `*` for values of string-keyed maps, e.g.
// `disks[].nbd.host`, `profiles.*.kernel.url`. Objects, lists and maps are fields
// too (they get wrong-type cases), as are their leaves.
import * as fs from "fs";
import * as path from "path";
import * as ts from "typescript";

const repo = path.resolve(__dirname, "../../..");

/**
 * Where a kind declares its inputs, by the project's convention: provider/resources/<kind
 * with a lower-case first letter>.ts, or that folder's spec.ts for a kind split into parts.
 */
export function resourceSource(kind: string): string {
    const base = path.join(repo, "provider", "resources", `${kind[0].toLowerCase()}${kind.slice(1)}`);
    return fs.existsSync(path.join(base, "spec.ts")) ? path.join(base, "spec.ts") : `${base}.ts`;
}

let program: ts.Program | undefined;

function programFor(files: string[]): ts.Program {
    // One program for every kind: type-checking is the slow part (seconds on 2 cores).
    if (!program || files.some((f) => !program!.getSourceFile(f))) {
        program = ts.createProgram(files, {
            target: ts.ScriptTarget.ES2022,
            module: ts.ModuleKind.CommonJS,
            moduleResolution: ts.ModuleResolutionKind.Node10,
            strict: true,
            skipLibCheck: true,
            noEmit: true,
            types: ["node"],
        });
    }
    return program;
}

/** The field paths of `<kind>Inputs`, sorted; throws when the interface cannot be found. */
export function inputFieldsOf(kinds: string[]): Record<string, string[]> {
    const files = kinds.map(resourceSource);
    for (const [i, f] of files.entries()) {
        if (!fs.existsSync(f)) throw new Error(`kind ${kinds[i]}: ${f} does not exist (a kind's module is provider/resources/<kind>.ts, or <kind>/spec.ts when split into parts)`);
    }
    const prog = programFor(files);
    const checker = prog.getTypeChecker();
    const out: Record<string, string[]> = {};
    for (const [i, kind] of kinds.entries()) {
        const source = prog.getSourceFile(files[i])!;
        const decl = source.statements.find((s): s is ts.InterfaceDeclaration => ts.isInterfaceDeclaration(s) && s.name.text === `${kind}Inputs`);
        if (!decl) throw new Error(`kind ${kind}: ${files[i]} declares no interface ${kind}Inputs`);
        const fields = new Set<string>();
        walk(checker, checker.getTypeAtLocation(decl), "", fields, []);
        out[kind] = [...fields].sort();
    }
    return out;
}

function declaredInProvider(t: ts.Type): boolean {
    const decls = (t.aliasSymbol ?? t.getSymbol())?.getDeclarations() ?? [];
    return decls.some((d) => d.getSourceFile().fileName.includes(`${path.sep}provider${path.sep}`));
}

/**
 * Adds `prefix` and every field below it. A type met again on its own path (a
 * connection's `proxy` is a connection) is a field, not expanded again.
 */
function walk(checker: ts.TypeChecker, type: ts.Type, prefix: string, fields: Set<string>, path: ts.Type[]): void {
    const t = checker.getNonNullableType(type);
    if (prefix) fields.add(prefix);
    if (path.includes(t)) return;
    const inner = [...path, t];
    if (t.isUnion()) {
        // A union of object shapes (e.g. { nbd } | { device }): every member's fields.
        const objects = t.types.filter((m) => m.flags & ts.TypeFlags.Object);
        for (const m of objects) walk(checker, m, prefix, fields, inner);
        return;
    }
    if (!(t.flags & ts.TypeFlags.Object)) return;
    if (checker.isArrayType(t)) {
        const [item] = checker.getTypeArguments(t as ts.TypeReference);
        walk(checker, item, `${prefix}[]`, fields, inner);
        return;
    }
    const index = t.getStringIndexType();
    if (index) {
        walk(checker, index, `${prefix}.*`, fields, inner);
        return;
    }
    if (prefix && !declaredInProvider(t)) return;
    for (const p of t.getProperties()) {
        const decl = p.valueDeclaration ?? p.declarations?.[0];
        if (!decl) continue;
        walk(checker, checker.getTypeOfSymbolAtLocation(p, decl), prefix ? `${prefix}.${p.name}` : p.name, fields, inner);
    }
}
