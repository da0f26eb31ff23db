// Adapts a ResourceKind to the shape Pulumi's dynamic-provider host calls. The
// provider objects serialised into state (sdk/provider.ts) forward every call here,
// loaded by package name, so the code that serves a stack is always the installed one.
import type * as dynamic from "@pulumi/pulumi/dynamic";
import { productionContext } from "./context";
import { OperationContext, ResourceKind } from "./core/resource";
import { containsUnknown } from "./core/validate";
import { engineReporter, printOnce } from "./engineLog";

/**
 * The SDK passes each resource's URN as the hidden input `__urn` so that log lines
 * land on the resource; it is not part of the resource's own inputs or outputs.
 */
const urnKey = "__urn";

function urnOf(props: unknown): string | undefined {
    const urn = props && typeof props === "object" ? (props as Record<string, unknown>)[urnKey] : undefined;
    return typeof urn === "string" ? urn : undefined;
}

function contextFor(props: unknown): OperationContext {
    return productionContext(engineReporter(urnOf(props)));
}

/** Keeps the URN in the stored state (read and delete need it later). */
function withUrn<T>(outs: T, from: unknown): T {
    const urn = from && typeof from === "object" ? (from as Record<string, unknown>)[urnKey] : undefined;
    return urn === undefined ? outs : ({ ...outs, [urnKey]: urn } as T);
}

/**
 * Pulumi's dynamic-provider host hands every call the serialised provider as the
 * input `__provider` (and puts it back itself after check); kinds never see it, nor
 * the URN, so a field table can refuse every key it does not declare.
 */
const providerKey = "__provider";

function withoutUrn<T>(props: T): T {
    if (!props || typeof props !== "object" || !(urnKey in props || providerKey in props)) return props;
    const { [urnKey]: _urn, [providerKey]: _provider, ...rest } = props as Record<string, unknown>;
    return rest as T;
}

/** Runs one operation; an operator's error reaches the engine's log once (see printOnce). */
async function reported<T>(operation: () => T | Promise<T>): Promise<T> {
    try {
        return await operation();
    } catch (e) {
        printOnce(e);
        throw e;
    }
}

export function adapt<I, O>(kind: ResourceKind<I, O>): dynamic.ResourceProvider {
    return {
        async check(olds: Record<string, unknown>, news: Record<string, unknown>) {
            const outcome = await reported(() => kind.check(withoutUrn(olds ?? {}), withoutUrn(news ?? {})));
            if (outcome.failures.length > 0) {
                // No `property`: the engine prints that input's whole value next to the
                // reason ("property X value {...} has a problem"), which would show the
                // contents of a secret input (a connection, the secrets map) and every
                // byte of a 100 KB hostile string. The reason names the field.
                return {
                    inputs: news,
                    failures: outcome.failures.map((f) => ({ property: "", reason: `${f.field}: ${f.reason}` })),
                };
            }
            // With values still unknown (preview), what could be checked was; the
            // engine checks again with real values before create or update.
            if (containsUnknown(news)) return { inputs: news };
            return { inputs: withUrn(outcome.inputs as Record<string, unknown>, news) };
        },
        async diff(id: string, olds: O, news: I) {
            const d = await reported(() => kind.diff(id, withoutUrn(olds), withoutUrn(news)));
            // What the changed fields cannot say (a live migration: from which box to which); shown on the resource.
            for (const note of d.notes ?? []) engineReporter(urnOf(news)).info(note);
            return {
                changes: d.changes,
                replaces: d.replaces,
                stables: d.stables,
                deleteBeforeReplace: d.deleteBeforeReplace,
            };
        },
        async create(inputs: I) {
            const { id, outs } = await reported(() => kind.create(withoutUrn(inputs), contextFor(inputs)));
            return { id, outs: withUrn(outs, inputs) };
        },
        async read(id: string, props: O) {
            const live = await reported(() => kind.read(id, withoutUrn(props), contextFor(props)));
            // An empty id tells the engine the object is gone, so refresh drops it.
            return live === undefined ? { id: "", props: {} } : { id, props: withUrn(live, props) };
        },
        async update(id: string, olds: O, news: I) {
            return { outs: withUrn(await reported(() => kind.update(id, withoutUrn(olds), withoutUrn(news), contextFor(news))), news) };
        },
        async delete(id: string, props: O) {
            await reported(() => kind.delete(id, withoutUrn(props), contextFor(props)));
        },
    };
}
