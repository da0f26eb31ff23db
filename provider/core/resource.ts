// The contract every resource kind implements, in the domain's own terms.
// Nothing here knows about Pulumi: provider/dynamic.ts adapts it to the engine.
import { FieldFailure } from "./errors";

/** Where progress and command output go (the Pulumi log in production). */
export interface Reporter {
    info(message: string): void;
    warn(message: string): void;
    /** Transient progress ("waiting for safe-to-destroy, 40s"): shown, not kept. */
    progress(message: string): void;
}

export const silentReporter: Reporter = { info() {}, warn() {}, progress() {} };

export interface OperationContext {
    log: Reporter;
}

export interface CheckOutcome<I> {
    /** The normalised inputs, present when there are no failures. */
    inputs?: I;
    failures: FieldFailure[];
}

export interface DiffOutcome {
    changes: boolean;
    /** Fields whose change replaces the object. */
    replaces: string[];
    /** Fields that never change once created (lets preview keep them known). */
    stables?: string[];
    deleteBeforeReplace?: boolean;
}

/**
 * One resource kind: `check` and `diff` are pure and run during preview with
 * every host unreachable; the rest act on real systems.
 */
export interface ResourceKind<I, O> {
    /** Validate and normalise. `olds` are the previous inputs (empty on create). */
    check(olds: Record<string, unknown>, news: Record<string, unknown>): CheckOutcome<I>;
    diff(id: string, olds: O, news: I): DiffOutcome;
    /** Idempotent: adopts what an interrupted earlier create left, never makes a second copy. */
    create(inputs: I, ctx: OperationContext): Promise<{ id: string; outs: O }>;
    /** The live state, or undefined when the object no longer exists. */
    read(id: string, props: O, ctx: OperationContext): Promise<O | undefined>;
    update(id: string, olds: O, news: I, ctx: OperationContext): Promise<O>;
    delete(id: string, props: O, ctx: OperationContext): Promise<void>;
}

/** Compare two plain JSON-ish values structurally. */
export function sameValue(a: unknown, b: unknown): boolean {
    return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

function canonical(v: unknown): unknown {
    if (Array.isArray(v)) return v.map(canonical);
    if (v && typeof v === "object") {
        return Object.fromEntries(
            Object.keys(v as object)
                .sort()
                .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
        );
    }
    return v;
}

/** The fields of `fields` whose values differ between olds and news. */
export function changedFields<T extends object>(olds: Partial<T>, news: Partial<T>, fields: (keyof T)[]): (keyof T)[] {
    return fields.filter((f) => !sameValue(olds[f], news[f]));
}
