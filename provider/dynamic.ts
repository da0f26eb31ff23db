// Adapts a ResourceKind to the shape Pulumi's dynamic-provider host calls. The
// provider objects serialised into state (sdk/provider.ts) forward every call here,
// loaded by package name, so the code that serves a stack is always the installed one.
import type * as dynamic from "@pulumi/pulumi/dynamic";
import { OperationContext, Reporter, ResourceKind } from "./core/resource";

/** Progress goes to stderr of the provider process, which the engine shows with -v. */
const processReporter: Reporter = {
    info: (m) => process.stderr.write(`${m}\n`),
    warn: (m) => process.stderr.write(`warning: ${m}\n`),
    progress: (m) => process.stderr.write(`${m}\n`),
};

export function adapt<I, O>(kind: ResourceKind<I, O>, reporter: Reporter = processReporter): dynamic.ResourceProvider {
    const ctx: OperationContext = { log: reporter };
    return {
        async check(olds: Record<string, unknown>, news: Record<string, unknown>) {
            const outcome = kind.check(olds ?? {}, news ?? {});
            if (outcome.failures.length > 0) {
                return {
                    inputs: news,
                    failures: outcome.failures.map((f) => ({ property: f.field.split(/[. ]/)[0], reason: `${f.field}: ${f.reason}` })),
                };
            }
            return { inputs: outcome.inputs as Record<string, unknown> };
        },
        async diff(id: string, olds: O, news: I) {
            const d = kind.diff(id, olds, news);
            return {
                changes: d.changes,
                replaces: d.replaces,
                stables: d.stables,
                deleteBeforeReplace: d.deleteBeforeReplace,
            };
        },
        async create(inputs: I) {
            return kind.create(inputs, ctx);
        },
        async read(id: string, props: O) {
            const live = await kind.read(id, props, ctx);
            // An empty id tells the engine the object is gone, so refresh drops it.
            return live === undefined ? { id: "", props: {} } : { id, props: live };
        },
        async update(id: string, olds: O, news: I) {
            return { outs: await kind.update(id, olds, news, ctx) };
        },
        async delete(id: string, props: O) {
            await kind.delete(id, props, ctx);
        },
    };
}
