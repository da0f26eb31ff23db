// The provider object Pulumi serialises into every resource's state. It must stay
// tiny and self-contained: no clients, sockets or captured module state, only the
// kind name. Each call loads the implementation by package name, resolved from the
// program's node_modules, so new code serves old state and the state does not
// depend on where the checkout lives.
import type * as pulumi from "@pulumi/pulumi";

/** The dynamic provider for one resource kind (see provider/index.ts `kinds`). */
export function dynamicProvider(kind: string): pulumi.dynamic.ResourceProvider {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const impl = () => require("pulumi-baremetal/provider").providerFor(kind);
    return {
        check: (olds, news) => impl().check(olds, news),
        diff: (id, olds, news) => impl().diff(id, olds, news),
        create: (inputs) => impl().create(inputs),
        read: (id, props) => impl().read(id, props),
        update: (id, olds, news) => impl().update(id, olds, news),
        delete: (id, props) => impl().delete(id, props),
    };
}

/** The module part of every type token: `pulumi-nodejs:dynamic/baremetal:<Kind>`. */
export const typeModule = "baremetal";
