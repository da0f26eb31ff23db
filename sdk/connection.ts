// How to reach a host over SSH: the type is generated from the connection's field
// table (provider/host/connection.ts), like every other input type.
import * as pulumi from "@pulumi/pulumi";
import type { ConnectionArgs } from "./generated/types";
import { protectSecrets } from "./provider";

export type { ConnectionArgs };

/**
 * The connection with its credentials made secret, whatever the caller passed (the
 * resources do this themselves; for programs that pass a connection elsewhere).
 */
export function secretConnection(c: pulumi.Input<ConnectionArgs>): pulumi.Output<ConnectionArgs> {
    return pulumi.output(protectSecrets(c, "Connection")) as pulumi.Output<ConnectionArgs>;
}
