// The native provider: `pulumi-resource-baremetal`, served by @pulumi/pulumi's
// provider host (`provider.main`). Tokens `baremetal:index:<Kind>`. Every call goes
// to the same kind code as the dynamic resources, through the same adapter
// (provider/dynamic.ts); this front door adds only what the provider protocol
// needs: the kind from the type token, secrets unwrapped and wrapped again
// (secrets.ts), connections completed from the provider's configuration
// (config.ts), the package schema, and `pulumi import` (import.ts).
import * as path from "path";
import type * as dynamic from "@pulumi/pulumi/dynamic";
import type * as provider from "@pulumi/pulumi/provider";
import type { ConsulConnection } from "../consul/client";
import { AnyKindSpec, erase } from "../core/fields";
import { InputError } from "../core/errors";
import { productionContext } from "../context";
import { attachEngine, engineReporter, printOnce } from "../engineLog";
import type { HostConnection } from "../host";
import { kinds, providerFor } from "../index";
import { packageSchema } from "../schema/packageSchema";
import { NativeConfig, parseConfig, withConfigDefaults, withoutConfigDefaults } from "./config";
import { importers } from "./import";
import { conceal, kindSecretTree, namedSecretTrees, reveal, ValuePath } from "./secrets";

/** The URN's hidden input through which the dynamic adapter attributes log lines (see provider/dynamic.ts). */
const urnKey = "__urn";

type Props = Record<string, unknown>;

interface Kind {
    name: string;
    spec: AnyKindSpec;
    calls: dynamic.ResourceProvider;
}

/** The kind a URN's type token names: `baremetal:index:<Kind>` (a parent's type may precede it). */
export function kindOf(urn: string): Kind {
    const type = (urn.split("::")[2] ?? "").split("$").pop() ?? "";
    const m = /^baremetal:index:([A-Za-z]+)$/.exec(type);
    const impl = m ? (kinds as Record<string, (typeof kinds)[keyof typeof kinds]>)[m[1]] : undefined;
    if (!m || !impl?.spec) {
        throw new Error(`pulumi-resource-baremetal has no resource type ${JSON.stringify(type)}; its types are ${Object.keys(kinds).map((k) => `baremetal:index:${k}`).join(", ")}`);
    }
    return { name: m[1], spec: erase(impl.spec as never), calls: providerFor(m[1]) };
}

function withUrn(props: Props, urn: string): Props {
    return { ...props, [urnKey]: urn };
}

function withoutUrn(props: Props | undefined): Props {
    if (!props) return {};
    const { [urnKey]: _urn, ...rest } = props;
    return rest;
}

function concealFor(kind: Kind, value: Props, also: readonly ValuePath[] = []): Props {
    return conceal(value, kindSecretTree(kind.spec), namedSecretTrees(kind.spec), also);
}

export interface NativeOptions {
    version: string;
    /** The provider's configuration; throws (on every call, naming the setting) when it is bad. */
    config: () => NativeConfig;
}

/** The provider object `provider.main` serves. */
export function nativeProvider(opts: NativeOptions): provider.Provider {
    let schema: string | undefined;
    return {
        version: opts.version,
        getSchema: async () => (schema ??= JSON.stringify(packageSchema(Object.values(kinds).flatMap((k) => (k.spec ? [erase(k.spec as never)] : [])), opts.version), null, 2)),

        async check(urn, olds, news) {
            const kind = kindOf(urn);
            const n = reveal<Props>(news ?? {});
            const filled = withConfigDefaults(kind.spec.inputs, n.plain, opts.config());
            const res = await kind.calls.check!(reveal<Props>(olds ?? {}).plain, withUrn(filled, urn));
            if (res.failures && res.failures.length > 0) return { inputs: news, failures: [...res.failures] };
            return { inputs: concealFor(kind, withoutUrn(res.inputs as Props), n.secrets) };
        },

        async diff(id, urn, olds, news) {
            const kind = kindOf(urn);
            return kind.calls.diff!(id, reveal<Props>(olds ?? {}).plain, reveal<Props>(news ?? {}).plain);
        },

        async create(urn, inputs) {
            const kind = kindOf(urn);
            const i = reveal<Props>(inputs ?? {});
            const { id, outs } = await kind.calls.create(withUrn(i.plain, urn));
            return { id, outs: concealFor(kind, withoutUrn(outs as Props), i.secrets) };
        },

        async read(id, urn, props) {
            const kind = kindOf(urn);
            const p = reveal<Props>(props ?? {});
            // `pulumi import` reads with the import ID alone: no state yet.
            if (Object.keys(p.plain).length === 0) return importRead(kind, id, urn, opts.config());
            const live = await kind.calls.read!(id, withUrn(p.plain, urn));
            if (!live.id) return { id: "", props: {} };
            return { id: live.id, props: concealFor(kind, withoutUrn(live.props as Props), p.secrets) };
        },

        async update(id, urn, olds, news) {
            const kind = kindOf(urn);
            const o = reveal<Props>(olds ?? {});
            const n = reveal<Props>(news ?? {});
            const { outs } = await kind.calls.update!(id, o.plain, withUrn(n.plain, urn));
            return { outs: concealFor(kind, withoutUrn(outs as Props), n.secrets) };
        },

        async delete(id, urn, props) {
            const kind = kindOf(urn);
            await kind.calls.delete!(id, withUrn(reveal<Props>(props ?? {}).plain, urn));
        },
    };
}

/**
 * `pulumi import`: the importer finds the object from its import ID; the kind's
 * check completes those inputs and its read gives the live state. The inputs
 * handed back (what `pulumi import` prints as code) leave out every value the
 * kind or the configuration would fill in anyway, so the program stays short and
 * holds no credential.
 */
async function importRead(kind: Kind, importId: string, urn: string, config: NativeConfig): Promise<provider.ReadResult> {
    const importer = importers[kind.name];
    if (!importer) {
        throw new Error(`${kind.name} cannot be imported with \`pulumi import\` (its objects cannot be found from an ID alone); declare it with adopt: true instead, which takes the object over on the next \`pulumi up\``);
    }
    const ctx = productionContext(engineReporter(urn));
    const complete = (props: Props) => withConfigDefaults(kind.spec.inputs, props, config);
    const reach = {
        ctx,
        ssh: (host: string) => (complete({ connection: { host } }).connection ?? { host }) as HostConnection,
        consul: (address: string) => (complete({ consul: { address } }).consul ?? { address }) as ConsulConnection,
    };
    const located = await reported(() => importer(importId, reach));
    if (!located) throw new Error(`no ${kind.name} ${JSON.stringify(importId)} was found to import (nothing was changed)`);
    const checkedInputs = await kind.calls.check!({}, withUrn(complete(located.inputs), urn));
    if (checkedInputs.failures && checkedInputs.failures.length > 0) {
        throw new InputError(checkedInputs.failures.map((f) => ({ field: "import", reason: `what was read does not make valid ${kind.name} inputs: ${f.reason}` })));
    }
    const live = await kind.calls.read!(located.id, checkedInputs.inputs as Props);
    if (!live.id) throw new Error(`${kind.name} ${JSON.stringify(importId)} disappeared while it was read (nothing was changed)`);
    const state = withoutUrn(live.props as Props);
    return { id: live.id, props: concealFor(kind, state), inputs: concealFor(kind, importedInputs(kind, state, config)) };
}

/** The inputs of an imported state, without what the table's defaults or the configuration give. */
export function importedInputs(kind: Pick<Kind, "spec">, state: Props, config: NativeConfig): Props {
    const out: Props = {};
    for (const [k, f] of Object.entries(kind.spec.inputs)) {
        if (f.derived || f.deprecated || state[k] === undefined) continue;
        if (f.default !== undefined && JSON.stringify(f.default) === JSON.stringify(state[k])) continue;
        out[k] = state[k];
    }
    return withoutConfigDefaults(kind.spec.inputs, out, config);
}

async function reported<T>(operation: () => Promise<T>): Promise<T> {
    try {
        return await operation();
    } catch (e) {
        printOnce(e);
        throw e;
    }
}

interface StructClass {
    new (): unknown;
}
interface ReadRequestClass {
    prototype: { getProperties(): unknown };
}

/**
 * @pulumi/pulumi's provider host reads a Read request's state with
 * `req.getProperties().toJavaScript()`, but `pulumi import` sends a Read with no
 * state at all (only the ID), and the host fails with "Cannot read properties of
 * undefined". An empty state is what the request means, so the getter gives one.
 */
export function tolerateStatelessReads(): void {
    /* eslint-disable @typescript-eslint/no-require-imports */
    const pulumiDir = path.dirname(require.resolve("@pulumi/pulumi/package.json"));
    const { Struct } = require(require.resolve("google-protobuf/google/protobuf/struct_pb", { paths: [pulumiDir] })) as { Struct: StructClass };
    const { ReadRequest } = require("@pulumi/pulumi/proto/provider_pb") as { ReadRequest: ReadRequestClass };
    /* eslint-enable @typescript-eslint/no-require-imports */
    const getProperties = ReadRequest.prototype.getProperties;
    ReadRequest.prototype.getProperties = function (this: unknown) {
        return getProperties.call(this) ?? new Struct();
    };
}

/** The plugin's entry (bin/pulumi-resource-baremetal): serves the provider until the engine hangs up. */
export async function main(args: string[]): Promise<void> {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { main: serve } = require("@pulumi/pulumi/provider") as typeof provider;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { version } = require("../../../package.json") as { version: string };
    const engine = args.find((a) => !a.startsWith("-"));
    if (engine) attachEngine(engine);
    tolerateStatelessReads();
    // Parsed once; a bad setting fails every operation with its name, not the plugin's start.
    let parsed: NativeConfig | InputError | undefined;
    const config = (): NativeConfig => {
        if (parsed === undefined) {
            try {
                parsed = parseConfig(process.env.PULUMI_CONFIG);
            } catch (e) {
                parsed = e instanceof InputError ? e : new InputError([{ field: "baremetal", reason: String(e) }]);
            }
        }
        if (parsed instanceof InputError) throw parsed;
        return parsed;
    };
    await serve(nativeProvider({ version, config }), args);
}

