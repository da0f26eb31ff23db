// PxeServer: generated from its field table (provider/resources/pxeServer/spec.ts). The
// class here adds one thing the table cannot say: the instance name defaults to
// the resource's name.
import * as pulumi from "@pulumi/pulumi";
import * as generated from "./generated/pxeServer";
import type { FileFromUrlArgs, FileOnBoxArgs } from "./generated/types";

export { PxeServerArgs } from "./generated/pxeServer";
export { FileFromUrlArgs, FileOnBoxArgs, PxeProfileArgs, StandbyArgs } from "./generated/types";

/** Where a profile file comes from: a URL the PXE box downloads (optionally checked), or a file already on the box. */
export type FileSourceArgs = FileFromUrlArgs | FileOnBoxArgs;

/**
 * A PXE server: dnsmasq (static DHCP leases by MAC, TFTP) and an HTTP server for the
 * iPXE scripts and each profile's files (see the generated class for every field).
 * Its instance name is the resource's name unless `name` says otherwise.
 */
export class PxeServer extends generated.PxeServer {
    constructor(name: string, args: generated.PxeServerArgs, opts?: pulumi.CustomResourceOptions) {
        super(name, { ...args, name: args.name ?? name }, opts);
    }
}
