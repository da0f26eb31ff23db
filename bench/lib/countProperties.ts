// Loaded into a Pulumi program's process with `node --require` (through
// NODE_OPTIONS) by bench/preview.ts: counts the properties the program's
// resources hand to @pulumi/pulumi (inputs, inputs passed as undefined so their
// outputs exist, output-only keys, hidden ones such as __provider), because the
// SDK's cost per resource grows with that number (see bench/README.md, "Where a
// preview's time goes"). Writes {"resources": n, "properties": m} to the file
// named by BENCH_PROPERTY_COUNT_FILE when the process exits, if it registered any.
// Only reads: the wrapped function is called as before, with the same arguments.
import * as fs from "fs";

export const propertyCountFileVar = "BENCH_PROPERTY_COUNT_FILE";

export interface PropertyCount {
    resources: number;
    properties: number;
}

type TransferProperties = (onto: unknown, label: string, props: Record<string, unknown>) => unknown;

function install(file: string): void {
    let rpc: { transferProperties?: TransferProperties };
    try {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        rpc = require("@pulumi/pulumi/runtime/rpc");
    } catch {
        return; // not a process that can load the Pulumi SDK
    }
    const original = rpc.transferProperties;
    if (typeof original !== "function") return; // another SDK version: nothing counted, the bench says so
    const count: PropertyCount = { resources: 0, properties: 0 };
    rpc.transferProperties = function (this: unknown, onto, label, props) {
        // The stack itself is registered the same way; it is not one of the program's resources.
        if (!label.endsWith("[pulumi:pulumi:Stack]")) {
            count.resources++;
            count.properties += Object.keys(props ?? {}).length;
        }
        return original.call(this, onto, label, props);
    };
    process.on("exit", () => {
        if (count.resources > 0) fs.writeFileSync(file, JSON.stringify(count));
    });
}

const target = process.env[propertyCountFileVar];
if (target) install(target);
