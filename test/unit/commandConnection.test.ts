// The README promises that one connection object serves this package and
// `@pulumi/command` (its `remote.Command`, `remote.CopyToRemote`): a program
// declares a box's connection once and hands it to both. Held two ways:
// - at compile time, below: each type is assignable to the other, so `tsc`
//   (run by the test command before any tier) fails when they drift apart;
// - field by field, with the compiler's checker: every field of
//   `remote.ConnectionArgs` is one of ours, with the same optionality and type,
//   so a field they add shows up here by name instead of as an opaque error.
// Only types are used: @pulumi/command's provider plugin is not served to these
// machines, so nothing runs it here.
import * as assert from "assert";
import * as path from "path";
import * as ts from "typescript";
import type * as command from "@pulumi/command";
import type { ConnectionArgs } from "../../sdk";

type Theirs = command.types.input.remote.ConnectionArgs;

// Both ways: ours where theirs is wanted, theirs where ours is wanted.
export const oursServesCommand = (c: ConnectionArgs): Theirs => c;
export const commandsServesOurs = (c: Theirs): ConnectionArgs => c;

const repo = path.resolve(__dirname, "../../..");

interface Field { optional: boolean; type: string }

/** The fields of the two connection types as the compiler sees them. */
function fieldsOf(extra = ""): { ours: Map<string, Field>; theirs: Map<string, Field> } {
    const file = path.join(repo, "test", "unit", ".commandConnection-probe.ts");
    const text = [
        `import type * as command from "@pulumi/command";`,
        `import type { ConnectionArgs } from "./../../sdk";`,
        `export type Theirs = command.types.input.remote.ConnectionArgs;`,
        `export type Ours = ConnectionArgs${extra};`,
    ].join("\n");
    const options: ts.CompilerOptions = {
        strict: true, noEmit: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS,
        moduleResolution: ts.ModuleResolutionKind.Node10, skipLibCheck: true, types: ["node"],
    };
    const host = ts.createCompilerHost(options);
    const read = host.readFile.bind(host);
    host.readFile = (f) => (f === file ? text : read(f));
    const exists = host.fileExists.bind(host);
    host.fileExists = (f) => f === file || exists(f);
    const program = ts.createProgram([file], options, host);
    const checker = program.getTypeChecker();
    const source = program.getSourceFile(file)!;
    const aliases = new Map<string, ts.Type>();
    source.forEachChild((n) => {
        if (ts.isTypeAliasDeclaration(n)) aliases.set(n.name.text, checker.getTypeAtLocation(n.name));
    });
    const fields = (t: ts.Type): Map<string, Field> => new Map(checker.getPropertiesOfType(t).map((p) => [p.name, {
        optional: (p.flags & ts.SymbolFlags.Optional) !== 0,
        // Input<string> and Input<number> print alike in both packages; nested types by name only.
        type: checker.typeToString(checker.getTypeOfSymbolAtLocation(p, source)).replace(/\w*ConnectionArgs/g, "<connection>"),
    }]));
    return { ours: fields(aliases.get("Ours")!), theirs: fields(aliases.get("Theirs")!) };
}

/** How ours differs from theirs, field by field (empty when one object serves both). */
function differences(ours: Map<string, Field>, theirs: Map<string, Field>): string[] {
    return [...theirs].flatMap(([name, t]) => {
        const o = ours.get(name);
        if (!o) return [`${name}: missing from ours`];
        if (o.optional !== t.optional) return [`${name}: ${o.optional ? "optional" : "required"} in ours, ${t.optional ? "optional" : "required"} in theirs`];
        if (o.type !== t.type) return [`${name}: ${o.type} in ours, ${t.type} in theirs`];
        return [];
    });
}

describe("one connection object for this package and @pulumi/command", () => {
    it("every field of remote.ConnectionArgs is ours, with the same optionality and type", function () {
        this.timeout(120_000);
        const { ours, theirs } = fieldsOf();
        assert.ok(theirs.size >= 10, `@pulumi/command's ConnectionArgs has ${theirs.size} fields: is the package installed?`);
        assert.deepStrictEqual(differences(ours, theirs), []);
        // What we add is optional, so their objects are whole connections for us.
        const added = [...ours].filter(([name]) => !theirs.has(name));
        assert.deepStrictEqual(added.map(([n]) => n).sort(), ["sudo", "trustOnFirstUse"]);
        assert.ok(added.every(([, f]) => f.optional), "a field only we have must be optional");
    });

    it("the comparison can fail: a field we dropped or made required is named", function () {
        this.timeout(120_000);
        const { ours, theirs } = fieldsOf(` extends infer C ? Omit<C, "hostKey"> & { port: number } : never`);
        const d = differences(ours, theirs);
        assert.ok(d.includes("hostKey: missing from ours"), d.join("\n"));
        assert.ok(d.some((x) => x.startsWith("port: required in ours")), d.join("\n"));
    });
});
