// The README's "Use it in your own project", done as a user would: the checkout packed
// with `npm pack`, a fresh project in a temporary directory that installs the tarball
// with npm (from npm's cache where it can), the README's own Pulumi.yaml, tsconfig.json
// and index.ts, and `pulumi preview` with every box unreachable. Then three mistakes in
// the three resources: one preview names all three.
import * as assert from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { PulumiStack } from "../helpers/pulumi";
import { generateKeyPair } from "../helpers/sshd";
import { requireTools } from "../helpers/tools";

const repo = path.resolve(__dirname, "../../..");
const hostKey = `SHA256:${"Z".repeat(43)}`;

/** The README's section on using the package in one's own project. */
function readmeSection(): string {
    const readme = fs.readFileSync(path.join(repo, "README.md"), "utf8");
    const start = readme.indexOf("## Use it in your own project");
    assert.ok(start >= 0, "the README has no section \"Use it in your own project\"");
    const end = readme.indexOf("\n## ", start + 1);
    return readme.slice(start, end < 0 ? undefined : end);
}

/** The section's code block whose first line names `file` (`# Pulumi.yaml`, `// index.ts`). */
function fileBlock(section: string, file: string): string {
    for (const m of section.matchAll(/```\w*\n([\s\S]*?)```/g)) {
        const [first, ...rest] = m[1].split("\n");
        if (first.replace(/^(#|\/\/)\s*/, "") === file) return rest.join("\n");
    }
    throw new Error(`the README section has no code block for ${file}`);
}

/** The arguments of the section's `npm install` (continuation lines joined). */
function installArgs(section: string): string[] {
    const line = /^npm install (.*)$/m.exec(section.replace(/\\\n\s*/g, " "))?.[1];
    assert.ok(line, "the README section has no npm install line");
    return line.split(/\s+/).filter(Boolean);
}

function npm(args: string[], cwd: string): string {
    return execFileSync("npm", args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, npm_config_update_notifier: "false" } });
}

describe("the README's own project: npm pack of the checkout, a fresh project, a first preview", function () {
    this.timeout(600_000);
    const section = readmeSection();
    let work: string;
    let project: string;
    let tarball: string;
    let stack: PulumiStack;

    before(async () => {
        requireTools(["npm", "pulumi", "pulumi-language-nodejs", "pulumi-resource-pulumi-nodejs", "ssh-keygen"]);
        work = fs.mkdtempSync(path.join(os.tmpdir(), "bm-own-project-"));
        const packed = JSON.parse(npm(["pack", "--json", "--pack-destination", work], repo)) as { filename: string; files: { path: string }[] }[];
        tarball = path.join(work, packed[0].filename);
        project = path.join(work, "my-site");
        fs.mkdirSync(project);
        npm(["init", "-y"], project);
        const args = installArgs(section).map((a) => (a.endsWith(".tgz") ? tarball : a));
        npm(["install", "--prefer-offline", "--no-audit", "--no-fund", ...args], project);
        for (const file of ["Pulumi.yaml", "tsconfig.json", "index.ts"]) fs.writeFileSync(path.join(project, file), fileBlock(section, file));
        stack = await PulumiStack.init(project, "dev");
        const key = generateKeyPair(work, "e2e").privateKey;
        // The README's command: `pulumi config set-all --secret "sshPrivateKey=..." --plaintext "hostKey=..."`.
        await stack.ok(["config", "set-all", "--secret", `sshPrivateKey=${key}`, "--plaintext", `hostKey=${hostKey}`]);
    });

    after(async () => {
        await stack?.cleanup();
        if (work) fs.rmSync(work, { recursive: true, force: true });
    });

    it("packs only what a project needs: the built SDK and provider, bin/, the reference pages", () => {
        const files = execFileSync("tar", ["tzf", tarball], { encoding: "utf8" }).split("\n").filter(Boolean).map((f) => f.replace(/^package\//, ""));
        const tops = [...new Set(files.map((f) => (f.startsWith("dist/") ? f.split("/").slice(0, 2).join("/") : f.split("/")[0])))].sort();
        assert.deepStrictEqual(tops, ["README.md", "bin", "dist/provider", "dist/sdk", "docs", "lab", "package.json"]);
        assert.deepStrictEqual(files.filter((f) => f.startsWith("lab/")), ["lab/link-self.js"]);
        assert.ok(files.includes("dist/sdk/index.d.ts") && files.includes("dist/provider/index.js"));
    });

    it("installs with the README's versions: one @pulumi/pulumi (a peer, pinned), nothing written outside the package", () => {
        const own = JSON.parse(fs.readFileSync(path.join(repo, "package.json"), "utf8")) as { peerDependencies: Record<string, string>; devDependencies: Record<string, string> };
        const pulumiVersion = own.peerDependencies["@pulumi/pulumi"];
        const args = installArgs(section);
        for (const want of [`@pulumi/pulumi@${pulumiVersion}`, `typescript@${own.devDependencies.typescript}`, `ts-node@${own.devDependencies["ts-node"]}`]) {
            assert.ok(args.includes(want), `the README installs ${args.join(" ")}, not ${want} as package.json pins it`);
        }
        const copies = execFileSync("find", ["node_modules", "-path", "*/@pulumi/pulumi/package.json"], { cwd: project, encoding: "utf8" }).split("\n").filter(Boolean);
        assert.deepStrictEqual(copies, ["node_modules/@pulumi/pulumi/package.json"]);
        const installed = JSON.parse(fs.readFileSync(path.join(project, "node_modules/@pulumi/pulumi/package.json"), "utf8")) as { version: string };
        assert.strictEqual(installed.version, pulumiVersion);
        const mine = JSON.parse(fs.readFileSync(path.join(project, "package.json"), "utf8")) as { dependencies: Record<string, string> };
        assert.strictEqual(mine.dependencies["@pulumi/pulumi"], pulumiVersion, "--save-exact pins it");
        // The package is a copy, not a link into the checkout, and its postinstall left no link behind.
        assert.ok(!fs.lstatSync(path.join(project, "node_modules/pulumi-baremetal")).isSymbolicLink());
        assert.ok(!fs.existsSync(path.join(project, "node_modules/pulumi-baremetal/node_modules/pulumi-baremetal")));
        const ours = ["Pulumi.dev.yaml", "Pulumi.yaml", "index.ts", "node_modules", "package-lock.json", "package.json", "tsconfig.json"];
        assert.deepStrictEqual(fs.readdirSync(project).filter((f) => !ours.includes(f)), [], "files the install left in the project");
    });

    it("previews the README's program with every box unreachable: three resources to create", async () => {
        const r = await stack.ok(["preview"]);
        assert.match(r.stdout, /\+\s+pulumi-nodejs:dynamic\/baremetal:PxeServer pxe1 create/);
        assert.match(r.stdout, /\+\s+pulumi-nodejs:dynamic\/baremetal:Machine storage1 create/);
        assert.match(r.stdout, /\+\s+pulumi-nodejs:dynamic\/baremetal:RaidArray storage1-md0 create/);
        assert.match(r.stdout, /\+ 4 to create/); // and the stack
    });

    it("three mistakes in the three resources: one preview names all three", async () => {
        const program = fs.readFileSync(path.join(project, "index.ts"), "utf8");
        const wrong = program.replace('subnet: "198.51.100.0/24"', 'subnet: "198.51.100.0/33"').replace('mac: "52:54:00:b0:00:12"', 'mac: "52:54:00:b0:00"').replace('"/dev/sdb"', '"sdb"');
        assert.notStrictEqual(wrong, program);
        fs.writeFileSync(path.join(project, "index.ts"), wrong);
        try {
            const r = await stack.run(["preview"]);
            const out = r.stdout + r.stderr;
            assert.notStrictEqual(r.code, 0, "the preview must fail");
            const diagnostics = out.slice(out.indexOf("Diagnostics:"));
            for (const line of [
                'PxeServer "pxe1": subnet: "198.51.100.0/33" is not an IPv4 network like 198.51.100.0/24',
                'Machine "storage1": mac: "52:54:00:b0:00" is not a MAC address like 52:54:00:12:34:56',
                'RaidArray "storage1-md0": members[0]: "sdb" is not a /dev path like /dev/vdb or /dev/disk/by-id/...',
            ]) {
                assert.strictEqual(diagnostics.split(line).length - 1, 1, `expected once in the preview: ${line}\n${out}`);
            }
        } finally {
            fs.writeFileSync(path.join(project, "index.ts"), program);
        }
    });
});
