// The contract every resource kind implements, in the domain's own terms.
// Nothing here knows about Pulumi: provider/dynamic.ts adapts it to the engine.
import type { ConsulClient, ConsulConnection } from "../consul/client";
import type { HostConnection, Remote, RemoteOptions } from "../host";
import type { BmcClient, IpmiConnection } from "../ipmi/ipmitool";
import { FieldFailure } from "./errors";
import type { KindSpec } from "./fields";
import type { Reporter } from "./reporter";
import { sameValue } from "./values";

export { silentReporter, type Reporter } from "./reporter";
export { sameValue } from "./values";

/**
 * What one operation (create, read, update, delete) may use: its log, and the
 * only ways a kind reaches the outside. Production hands out real hosts (SSH),
 * Consul and BMCs (provider/context.ts); the unit tier hands out scripted doubles,
 * so every branch of a kind can run without a host.
 */
export interface OperationContext {
    log: Reporter;
    /** A host to run commands and plans on (cheap: connections are pooled per process). */
    remote(conn: HostConnection, options?: RemoteOptions): Remote;
    consul(conn: ConsulConnection): ConsulClient;
    bmc(conn: IpmiConnection): BmcClient;
    /**
     * One quick SSH dial to `conn` on a connection of its own (never a pooled one,
     * which would hide that the box just rebooted), running `true`. Resolves when
     * the box answers; throws the dial's error otherwise.
     */
    probeSsh(conn: HostConnection): Promise<void>;
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
    /** What a reviewer must read that the changed fields do not say (a live migration: from which box to which). */
    notes?: string[];
}

/**
 * One resource kind: `check` and `diff` are pure and run during preview with
 * every host unreachable; the rest act on real systems.
 */
export interface ResourceKind<I, O> {
    /** The field table: the one declaration of every input and output (see core/fields.ts). */
    readonly spec?: KindSpec<I, O>;
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

/** The fields of `fields` whose values differ between olds and news. */
export function changedFields<T extends object>(olds: Partial<T>, news: Partial<T>, fields: (keyof T)[]): (keyof T)[] {
    return fields.filter((f) => !sameValue(olds[f], news[f]));
}
