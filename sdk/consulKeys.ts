import * as pulumi from "@pulumi/pulumi";
import type { ConsulConnection } from "../provider/consul/client";
import { BaremetalResource } from "./provider";

/** How to reach Consul; pass the token as a secret. */
export interface ConsulConnectionArgs {
    /** `host:port` of the agent's HTTP API, e.g. `10.0.0.2:8500`. */
    address: pulumi.Input<string>;
    /** `http` (default) or `https`. */
    scheme?: pulumi.Input<"http" | "https">;
    /** ACL token (a secret). */
    token?: pulumi.Input<string>;
    /** Datacenter; the agent's own when omitted. */
    datacenter?: pulumi.Input<string>;
}

export interface ConsulKeysArgs {
    /** The Consul agent to write to. Changing address or datacenter replaces the keys. */
    consul: pulumi.Input<ConsulConnectionArgs>;
    /** Root of the subtree, e.g. `config/dns01/` (a trailing `/` is added). Changing it replaces. */
    prefix: pulumi.Input<string>;
    /** Plain values by key relative to the prefix, e.g. `{ "listen": "10.0.0.53" }`. */
    keys?: pulumi.Input<Record<string, pulumi.Input<string>>>;
    /** Secret values by key relative to the prefix; always stored encrypted in state. */
    secrets?: pulumi.Input<Record<string, pulumi.Input<string>>>;
    /**
     * Take over keys that already exist in Consul with other values (their values are
     * replaced by the declared ones). Without it, create fails and changes nothing.
     * This is how existing keys are brought under management: `pulumi import` does
     * not work for dynamic resources (pulumi/pulumi#16175).
     */
    adopt?: pulumi.Input<boolean>;
}

/**
 * A subtree of Consul's K/V store: a service's or box's configuration.
 * Only the declared keys are managed; other keys under the prefix are left alone.
 * ID: the prefix.
 */
export class ConsulKeys extends BaremetalResource {
    declare readonly consul: pulumi.Output<ConsulConnection>;
    declare readonly prefix: pulumi.Output<string>;
    /** Plain values as last read from Consul. */
    declare readonly keys: pulumi.Output<Record<string, string>>;
    /** Secret values as last read from Consul (secret). */
    declare readonly secrets: pulumi.Output<Record<string, string>>;
    declare readonly adopt: pulumi.Output<boolean>;

    constructor(name: string, args: ConsulKeysArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            "ConsulKeys",
            name,
            {
                consul: args.consul,
                prefix: args.prefix,
                keys: args.keys ?? {},
                secrets: args.secrets === undefined ? {} : pulumi.secret(args.secrets),
                adopt: args.adopt ?? false,
            },
            { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "secrets"] },
        );
    }
}
