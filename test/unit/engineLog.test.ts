// An operator's error reaches the engine's log once. Pulumi's dynamic-provider
// host echoes an error thrown by check, diff, read or delete to stderr before it
// hands the same error to the engine (which shows it as the operation's error):
// a refused delete read three times, with a stack trace. The adapter drops that
// echo for the errors written for operators, and only for them.
import * as assert from "assert";
import * as fs from "fs";
import { RefusedError } from "../../provider/core/errors";
import { DiffOutcome, ResourceKind } from "../../provider/core/resource";
import { adapt } from "../../provider/dynamic";

/** A kind whose delete fails as told: a test double, no host behind it. */
function failingKindDouble(error: () => Error): ResourceKind<Record<string, unknown>, Record<string, unknown>> {
    return {
        check: (_olds, news) => ({ inputs: news, failures: [] }),
        diff: (): DiffOutcome => ({ changes: false, replaces: [] }),
        create: async () => ({ id: "x", outs: {} }),
        read: async () => undefined,
        update: async () => ({}),
        delete: async () => {
            throw error();
        },
    };
}

/** What the host does with an error from delete (node_modules/@pulumi/pulumi/cmd/dynamic-provider). */
async function hostDelete(kind: ResourceKind<Record<string, unknown>, Record<string, unknown>>): Promise<Error> {
    try {
        await adapt(kind).delete!("x", {});
    } catch (e) {
        const err = e as Error;
        console.error(`${err}: ${err.stack}`);
        return err;
    }
    throw new Error("delete did not fail");
}

/** Everything written to stderr while `body` runs (console.error included). */
async function stderrOf(body: () => Promise<void>): Promise<string> {
    const chunks: string[] = [];
    const write = process.stderr.write;
    process.stderr.write = ((chunk: string | Uint8Array) => {
        chunks.push(String(chunk));
        return true;
    }) as typeof process.stderr.write;
    try {
        await body();
    } finally {
        process.stderr.write = write;
    }
    return chunks.join("");
}

const refusal = "deleting volume group vg0 on root@198.51.100.12:22 would destroy it";

describe("an operator's error reaches the engine's log once", () => {
    it("the installed Pulumi host still echoes errors of delete as `${e}: ${e.stack}` (what the adapter drops)", () => {
        const host = fs.readFileSync(require.resolve("@pulumi/pulumi/cmd/dynamic-provider/index.js"), "utf8");
        assert.ok(host.includes("console.error(`${e}: ${e.stack}`);"), "the dynamic-provider host prints errors differently now: update hostEchoOf in provider/engineLog.ts");
    });

    it("a refused delete: the host's echo is dropped, the engine still gets the error with its whole message", async () => {
        let err: Error | undefined;
        const printed = await stderrOf(async () => {
            err = await hostDelete(failingKindDouble(() => new RefusedError(refusal, "Set allowDataLoss: true on this VolumeGroup")));
        });
        assert.ok(err instanceof RefusedError);
        assert.match(err.message, /would destroy it\. Nothing was changed\. Set allowDataLoss: true/);
        assert.strictEqual(printed, "", "the refusal was printed besides the engine's copy");
    });

    it("two resources refused with the same words at once: both echoes are dropped", async () => {
        const printed = await stderrOf(async () => {
            const same = new RefusedError(refusal, "Set allowDataLoss: true");
            await Promise.all([hostDelete(failingKindDouble(() => same)), hostDelete(failingKindDouble(() => same))]);
        });
        assert.strictEqual(printed, "");
    });

    it("a bug keeps its echo and stack trace, and other prints get through", async () => {
        const printed = await stderrOf(async () => {
            await hostDelete(failingKindDouble(() => new TypeError("cannot read properties of undefined")));
            console.error("a line of its own");
        });
        assert.match(printed, /TypeError: cannot read properties of undefined: TypeError: cannot read properties of undefined\n\s+at /);
        assert.match(printed, /a line of its own/);
    });

    it("an echo that never came (create returns its error without one) is forgotten, not dropped later", async () => {
        const same = new RefusedError(refusal, "Set allowDataLoss: true");
        await assert.rejects(adapt(failingKindDouble(() => same)).delete!("x", {}));
        await new Promise((r) => setImmediate(r));
        const printed = await stderrOf(async () => console.error(`${same}: ${same.stack}`));
        assert.ok(printed.includes(refusal), "a later print of the same text was swallowed");
    });
});
