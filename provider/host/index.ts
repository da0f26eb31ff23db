// The host layer: the only part of pulumi-baremetal that speaks SSH. Resources
// build Plans (data), hand them to a Host, and get back records and errors that
// are safe to show. Nothing here imports @pulumi/pulumi.
export { checkHostConnection, connectionField, connectionType, describeTarget, fingerprintOf, type HostConnection } from "./connection";
export {
    AuthError,
    CommandError,
    CommandTimeoutError,
    ConnectionLostError,
    DialError,
    HostKeyError,
    UnsupportedHostError,
} from "./errors";
export {
    Host,
    planResult,
    sharedPool,
    type CommandOutput,
    type CommandRecord,
    type HostOptions,
    type PlanResult,
    type Remote,
    type RemoteOptions,
    type RunOptions,
    type StepRecord,
} from "./execute";
export { hostLocks, NamedLocks, objectLock, type LockName, type ObjectLockName } from "./locks";
export { adapterFor, AlpineAdapter, DebianAdapter, DebianOpenrcAdapter, persistMedia, renderCommands, type OsAdapter, type OsFacts, type OsFamily } from "./os";
export { distributionOf, initSystemOf, lvmServiceOf, osFamilies, ovsServiceOf, type Distribution, type InitSystem } from "./family";
export { describeStep, planAsData, renderPlan, step, type Plan, type Step, type Tagged } from "./plan";
export {
    renderService,
    serviceFilePath,
    serviceNameOn,
    serviceStateShell,
    type ServiceHook,
    type ServiceRef,
    type ServiceSpec,
} from "./service";
export { SshPool, type HostKeySeen, type PoolOptions, type PoolStats } from "./pool";
export { resolvePaths, resolvePathsScript } from "./paths";
export { quote } from "./quote";
export { Secret, type MaybeSecret } from "./redact";
export { traceEnvVar, traceFormatVersion, type CommandEvent, type ConnectEvent, type TraceEvent, type TraceTarget } from "./trace";
