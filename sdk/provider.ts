// The provider object Pulumi serialises into every resource's state. It must stay
// tiny and self-contained: no clients, sockets or captured module state, only the
// kind name. Each call loads the implementation by package name, resolved from the
// program's node_modules, so new code serves old state and the state does not
// depend on where the checkout lives.
import * as pulumi from "@pulumi/pulumi";
import type { SecretNode } from "../provider/schema/walk";
import { secretShapes } from "./generated/types";
import { declareResource, derivedFrom } from "./siteCheck";

/** The dynamic provider for one resource kind (see provider/index.ts `kinds`). */
export function dynamicProvider(kind: string): pulumi.dynamic.ResourceProvider {
    // Short names and rest parameters on purpose: this text is stored once per
    // resource in the state (bench/providerSize.ts measures it).
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const p = (): Required<pulumi.dynamic.ResourceProvider> => require("pulumi-baremetal/provider").providerFor(kind);
    return {
        check: (...a) => p().check(...a),
        diff: (...a) => p().diff(...a),
        create: (...a) => p().create(...a),
        read: (...a) => p().read(...a),
        update: (...a) => p().update(...a),
        delete: (...a) => p().delete(...a),
    };
}

const providers = new Map<string, pulumi.dynamic.ResourceProvider>();

/**
 * One provider object per kind for the whole program. @pulumi/pulumi caches the
 * serialised text by object, so a fresh object per resource would serialise the
 * function again for each one (9-21 ms CPU each; bench/preview.ts measured 3.2x
 * less CPU at 1,000 machines with this cache).
 */
export function providerOf(kind: string): pulumi.dynamic.ResourceProvider {
    let p = providers.get(kind);
    if (!p) {
        p = dynamicProvider(kind);
        providers.set(kind, p);
    }
    return p;
}

/**
 * Every key of a resource's state that is not one of its inputs, each mapped to
 * undefined. Typed against the provider's State and Inputs, so the compiler says
 * when a new output is not listed (or a listed one no longer exists).
 */
export type OutputOnly<State, Inputs> = { [K in Exclude<keyof State, keyof Inputs>]-?: undefined };

/**
 * Props that name outputs as undefined. Pulumi only fills in the properties of a
 * resource whose keys were passed to its constructor: an output the provider
 * returns under any other key never reaches the program. Pass every output-only
 * key (see OutputOnly) and every input the provider defaults, through this.
 */
export function outputsOf(keys: readonly string[] | Record<string, undefined>): Record<string, undefined> {
    const names = Array.isArray(keys) ? keys : Object.keys(keys);
    return Object.fromEntries(names.map((k) => [k, undefined]));
}

/** The module part of every type token: `pulumi-nodejs:dynamic/baremetal:<Kind>`. */
export const typeModule = "baremetal";

/**
 * What the SDK needs at run time from a kind's field table (generated into
 * sdk/generated): the output-only keys and defaulted inputs to pass as undefined
 * (Pulumi fills in only the properties whose keys the constructor passed), and
 * where the secrets sit in the inputs.
 */
export interface KindShape {
    outputs: readonly string[];
    defaulted: readonly string[];
    secrets: Readonly<Record<string, SecretNode>>;
}

export type { SecretNode };

/**
 * The value with every secret its tree names wrapped as a Pulumi secret, so it is
 * encrypted in state whatever the caller passed.
 */
export function protectSecrets(value: pulumi.Input<unknown>, node: SecretNode): pulumi.Input<unknown> {
    if (value === undefined) return value;
    if (node === true) return pulumi.secret(value);
    if (typeof node === "string") {
        const tree = secretShapes[node];
        return tree === undefined ? value : protectSecrets(value, tree);
    }
    // A plain object keeps its own shape, so only the secret fields are secret (a
    // preview still shows `connection.host`); an Output can only be wrapped whole.
    // (The site check reads the wrapped value as the one it wraps: sdk/siteCheck.ts.)
    if (pulumi.Output.isInstance(value) || value instanceof Promise) return derivedFrom(pulumi.output(value).apply((v: unknown) => protectFields(v, node)), value);
    return protectFields(value, node) as pulumi.Input<unknown>;
}

function protectFields(v: unknown, node: { [field: string]: SecretNode }): unknown {
    if (v === undefined || v === null || typeof v !== "object") return v;
    if (Array.isArray(v)) return node["[]"] === undefined ? v : v.map((x) => protectSecrets(x, node["[]"]));
    const out: Record<string, unknown> = { ...(v as Record<string, unknown>) };
    for (const [k, child] of Object.entries(node)) {
        if (k === "{}") {
            for (const key of Object.keys(out)) out[key] = protectSecrets(out[key], child);
        } else if (k !== "[]" && out[k] !== undefined) {
            out[k] = protectSecrets(out[k], child);
        }
    }
    return out;
}

/**
 * Until the returned function is called, the stack traces Pulumi's SDK records for
 * its own promise-leak report are left as the bare "Error" line, unless
 * PULUMI_DEBUG_PROMISE_LEAKS is set (the only time that report prints them).
 *
 * Why: the constructor of a resource makes four promises per property
 * (@pulumi/pulumi runtime/rpc.js transferProperties) and each records
 * `new Error().stack`. Under ts-node, every such stack is rendered through the
 * source maps, frame by frame; with the ~19 properties of our kinds that was a
 * fifth of the program's CPU and ~90 MiB at the peak of a 100-machine preview
 * (bench/README.md, "Where a preview's time goes"). Every other stack, the
 * errors Pulumi keeps to report a failed registration and the resource's
 * source position included, is rendered by the formatter in place, as before.
 */
function skipLeakDebugStacks(): () => void {
    const installed = Error.prepareStackTrace;
    // Without a formatter installed in JavaScript (a plain JavaScript program) Node renders stacks itself: left alone.
    // With PULUMI_DEBUG_PROMISE_LEAKS set, Pulumi prints the stack of every promise still pending at exit.
    if (process.env.PULUMI_DEBUG_PROMISE_LEAKS || typeof installed !== "function") return () => undefined;
    Error.prepareStackTrace = (error, sites) => (isLeakDebugStack(sites) ? String(error) : installed(error, sites));
    return () => {
        Error.prepareStackTrace = installed;
    };
}

/** A stack taken by @pulumi/pulumi's debuggablePromise (its first frame). */
function isLeakDebugStack(sites: NodeJS.CallSite[]): boolean {
    const top = sites[0];
    return top !== undefined && top.getFunctionName() === "debuggablePromise" && (top.getFileName() ?? "").endsWith("debuggable.js");
}

/**
 * Which provider the SDK's resources register with: `dynamic` (the default, Pulumi's
 * dynamic-provider host running this package's code from the program's
 * node_modules, type `pulumi-nodejs:dynamic/baremetal:<Kind>`) or `native` (the
 * plugin `pulumi-resource-baremetal`, type `baremetal:index:<Kind>`, which must be
 * on PATH or installed; see the README's "The native provider"). Both run the
 * same kind code; the classes, their arguments and their outputs are the same.
 */
export type FrontDoor = "dynamic" | "native";

let frontDoor: FrontDoor = "dynamic";

/**
 * Makes every pulumi-baremetal resource constructed from now on register with the
 * native provider plugin (`on` false: with the dynamic provider again). Returns
 * whether it did before, so a part of a program can switch and restore:
 *
 *     const before = useNativeProvider();
 *     try { declareMyRack(); } finally { useNativeProvider(before); }
 *
 * A resource keeps the provider it was registered with in the stack's state: moving
 * an existing stack's resources from one to the other is an import (README).
 */
export function useNativeProvider(on = true): boolean {
    const before = frontDoor === "native";
    frontDoor = on ? "native" : "dynamic";
    return before;
}

/** The type token of a kind through a front door. */
export function typeToken(door: FrontDoor, kind: string): string {
    return door === "native" ? `baremetal:index:${kind}` : `pulumi-nodejs:dynamic/${typeModule}:${kind}`;
}

/** What one resource registers: its type token, its properties and its options. */
export interface Registration {
    type: string;
    props: pulumi.Inputs;
    opts: pulumi.CustomResourceOptions | undefined;
}

/**
 * The registration of a resource through a front door: the type token; every output
 * and defaulted input present (as undefined when not given) and the secrets wrapped,
 * as the kind's shape says; the kind's secret outputs kept secret. The dynamic
 * provider also gets the resource's URN as the hidden input `__urn` (its log lines
 * land on the resource; provider/dynamic.ts); the native plugin gets the URN with
 * every call, so its inputs are the kind's own alone. Pure: registers nothing.
 */
export function registrationOf(door: FrontDoor, kind: string, name: string, props: pulumi.Inputs, shape: KindShape | undefined, opts: pulumi.CustomResourceOptions | undefined): Registration {
    const type = typeToken(door, kind);
    const inputs = shape ? shapedInputs(props, shape) : { ...props };
    const secretOutputs = shape ? Object.entries(shape.secrets).filter(([, n]) => n === true).map(([k]) => k) : [];
    const allOpts = secretOutputs.length > 0 ? { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), ...secretOutputs] } : opts;
    if (door === "native") return { type, props: inputs, opts: allOpts };
    return { type, props: { ...inputs, __urn: pulumi.createUrn(name, type, opts?.parent) }, opts: allOpts };
}

/**
 * Base of every pulumi-baremetal resource: a dynamic resource with a readable
 * type token, whose provider is loaded by package name, and whose URN travels
 * with its inputs so the provider can log against it. After useNativeProvider()
 * the same class registers with the native plugin instead (see below).
 */
export abstract class BaremetalResource extends pulumi.dynamic.Resource {
    protected constructor(kind: string, name: string, props: pulumi.Inputs, shapeOrOpts?: KindShape | pulumi.CustomResourceOptions, maybeOpts?: pulumi.CustomResourceOptions) {
        const shape = shapeOrOpts && "defaulted" in shapeOrOpts ? (shapeOrOpts as KindShape) : undefined;
        const opts = shape ? maybeOpts : (shapeOrOpts as pulumi.CustomResourceOptions | undefined);
        const door = frontDoor;
        const reg = registrationOf(door, kind, name, props, shape, opts);
        const { __urn: _urn, ...inputs } = reg.props;
        // Checked now, alone and against the resources before it (sdk/siteCheck.ts), so one preview shows every mistake.
        const site = declareResource(kind, name, inputs, reg.opts);
        const restoreStacks = skipLeakDebugStacks();
        try {
            if (door === "native") {
                // A custom resource of the native type, built with this class's prototype
                // (new.target): the program gets the same class, outputs and instanceof as
                // with the dynamic provider; the subclasses' constructors go on with it as
                // `this`. Only the registration differs: no serialised provider, the native token.
                const self = Reflect.construct(pulumi.CustomResource, [reg.type, name, reg.props, site.opts], new.target) as BaremetalResource;
                site.made(self);
                return self;
            }
            super(providerOf(kind), name, reg.props, site.opts, typeModule, kind);
        } finally {
            restoreStacks();
        }
        site.made(this);
    }
}

/** Every output and defaulted input present (as undefined when not given), secrets wrapped. */
function shapedInputs(args: pulumi.Inputs, shape: KindShape): pulumi.Inputs {
    const out: pulumi.Inputs = { ...outputsOf(shape.defaulted), ...args, ...outputsOf(shape.outputs) };
    for (const [k, node] of Object.entries(shape.secrets)) {
        if (args[k] !== undefined) out[k] = protectSecrets(args[k], node);
    }
    return out;
}
