// Figures for the foundation: serialised provider bytes per resource kind, and
// state bytes per resource measured on a real stack (real CLI, real Consul).
// Prints figures; never fails on a time. BENCH_FULL=1 for the larger run.
import * as pulumi from "@pulumi/pulumi";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { execFileSync } from "child_process";
import { kinds } from "../provider";
import { dynamicProvider } from "../sdk/provider";
import { startConsul } from "../test/helpers/consul";
import { PulumiStack } from "../test/helpers/pulumi";

async function providerBytes(): Promise<void> {
    console.log("serialised provider per resource kind (goal <= 2048 bytes):");
    for (const kind of Object.keys(kinds)) {
        const provider = dynamicProvider(kind);
        const text = (await pulumi.runtime.serializeFunction(() => provider, { allowSecrets: false })).text;
        console.log(`  ${kind.padEnd(16)} ${String(text.length).padStart(6)} bytes`);
    }
}

async function stateBytes(count: number): Promise<void> {
    const consul = await startConsul();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-program-"));
    execFileSync("cp", ["-rT", path.join(__dirname, "../../bench/fixtures/consul-keys-many"), dir]);
    // The program resolves pulumi-baremetal from the checkout's node_modules.
    fs.symlinkSync(path.resolve(__dirname, "../../node_modules"), path.join(dir, "node_modules"));
    const stack = await PulumiStack.init(dir, "bench");
    try {
        await stack.setConfig("consulAddress", consul.address);
        await stack.setConfig("count", String(count));
        await stack.setConfig("password", "bench-secret", true);
        let t = Date.now();
        await stack.preview();
        const previewMs = Date.now() - t;
        t = Date.now();
        await stack.up();
        const upMs = Date.now() - t;
        t = Date.now();
        await stack.preview();
        const noopMs = Date.now() - t;
        const state = await stack.exportState();
        console.log(`stack of ${count} ConsulKeys (real CLI, real Consul):`);
        console.log(`  state: ${state.length} bytes, ${Math.round(state.length / count)} bytes per resource`);
        console.log(`  preview (create): ${previewMs} ms, ${(previewMs / count).toFixed(1)} ms per resource`);
        console.log(`  up: ${upMs} ms; no-op preview: ${noopMs} ms`);
        await stack.ok(["destroy", "--yes"]);
    } finally {
        await stack.cleanup();
        fs.rmSync(dir, { recursive: true, force: true });
        await consul.stop();
    }
}

async function main(): Promise<void> {
    await providerBytes();
    await stateBytes(process.env.BENCH_FULL ? 100 : 10);
}

main().catch((e) => {
    console.error(e);
    process.exit(1);
});
