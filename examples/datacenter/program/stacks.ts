// One inventory, two stacks: which part of the data center this stack declares, from
// stack config, and for the services stack the storage stack's exports through a
// StackReference. Config:
//   part          all (default) | storage | services
//   storageStack  for services: the storage stack's name (default <organization>/<project>/storage,
//                 the stack `storage` of the same project; a DIY backend's organization is `organization`)
import * as pulumi from "@pulumi/pulumi";
import { DataCenterPart, dataCenterParts, StorageExports } from "./datacenter";

export interface StackPart {
    part: DataCenterPart;
    /** For `services`: the storage stack's `storageExports` output. */
    storage?: pulumi.Output<StorageExports>;
    /** For `services`: the stack it reads. */
    storageStack?: string;
}

export function stackPartFromConfig(config: pulumi.Config): StackPart {
    const raw = config.get("part") ?? "all";
    const part = dataCenterParts.find((p) => p === raw);
    if (!part) throw new pulumi.RunError(`config ${config.name}:part: "${raw}" is not one of ${dataCenterParts.join(", ")}`);
    if (part !== "services") {
        if (config.get("storageStack") !== undefined) throw new pulumi.RunError(`config ${config.name}:storageStack: only a stack with part: services reads another stack (this one has part: ${part})`);
        return { part };
    }
    const storageStack = config.get("storageStack") ?? `${pulumi.getOrganization()}/${pulumi.getProject()}/storage`;
    const ref = new pulumi.StackReference("storage-stack", { name: storageStack });
    return { part, storage: ref.requireOutput("storageExports") as pulumi.Output<StorageExports>, storageStack };
}
