// The SDK's generated types and classes and the reference pages come from the
// field tables; a table change without `npm run generate` leaves them stale.
import * as assert from "assert";
import * as path from "path";
import { staleFiles } from "../../provider/schema/generate";

describe("generated files match the field tables", () => {
    it("sdk/generated and docs/reference are up to date (else: npm run generate)", () => {
        const root = path.resolve(__dirname, "../../..");
        assert.deepStrictEqual(staleFiles(root), []);
    });
});
