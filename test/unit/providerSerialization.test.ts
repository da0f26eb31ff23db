// The provider object stored in every resource's state: small, path-free, and
// working when evaluated the way the dynamic-provider host evaluates it.
import * as assert from "assert";
import * as pulumi from "@pulumi/pulumi";
import * as path from "path";
import { kinds } from "../../provider";
import { dynamicProvider } from "../../sdk/provider";

// eslint-disable-next-line @typescript-eslint/no-require-imports
const requireFromString: (code: string) => { handler: () => pulumi.dynamic.ResourceProvider } = require("require-from-string");

async function serialized(kind: string): Promise<string> {
    const provider = dynamicProvider(kind);
    return (await pulumi.runtime.serializeFunction(() => provider, { allowSecrets: false })).text;
}

describe("serialised dynamic provider", () => {
    for (const kind of Object.keys(kinds)) {
        it(`${kind}: is at most 2 KB, names the package, embeds no checkout path`, async () => {
            const text = await serialized(kind);
            assert.ok(text.length <= 2048, `${text.length} bytes`);
            assert.ok(text.includes('require("pulumi-baremetal/provider")'));
            const repo = path.resolve(__dirname, "../../..");
            assert.ok(!text.includes(repo), "the serialised provider mentions the checkout path");
        });

        it(`${kind}: evaluated like the dynamic-provider host does, loads the installed implementation`, async () => {
            const provider = requireFromString(await serialized(kind)).handler();
            const result = await provider.check!({}, {});
            assert.ok(result.failures && result.failures.length > 0, "check of empty input must fail");
            assert.ok(result.failures!.every((f) => f.reason.length > 0));
        });
    }
});
