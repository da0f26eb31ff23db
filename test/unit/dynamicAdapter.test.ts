// The dynamic-provider host passes hidden keys with every call (`__provider`, the
// serialised provider, and the SDK's `__urn`); a field table refuses undeclared
// keys, so the adapter must hide them from every kind (found by the e2e tier).
import * as assert from "assert";
import { providerFor } from "../../provider";

describe("dynamic adapter", () => {
    const news = {
        __provider: "exports.handler = __f0;",
        __urn: "urn:pulumi:s::p::pulumi-nodejs:dynamic/baremetal:ConsulKeys::k",
        consul: { address: "198.18.64.10:8500" },
        prefix: "config/x/",
        keys: { a: "1" },
    };

    it("check does not show the host's hidden keys to the kind, and keeps the URN for later calls", async () => {
        const out = await providerFor("ConsulKeys").check!({}, news);
        assert.deepStrictEqual(out.failures ?? [], []);
        assert.strictEqual((out.inputs as Record<string, unknown>).__urn, news.__urn);
        assert.strictEqual((out.inputs as Record<string, unknown>).__provider, undefined, "the host puts __provider back itself");
    });

    it("a key the table does not declare is still refused by name", async () => {
        const out = await providerFor("ConsulKeys").check!({}, { ...news, prefixx: "typo/" });
        assert.match(JSON.stringify(out.failures), /prefixx: is not a field here/);
    });
});
