// The seed's data center: the inventory (inventory.yaml, or the file named by
// config `inventory`) turned into resources by the shared program. Secrets come
// from stack config; see README.md.
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { declareDataCenter, secretsFromConfig, formatSummary } from "./program/datacenter";
import { InventoryError, loadInventory } from "./program/inventory";
import { stackPartFromConfig } from "./program/stacks";

const config = new pulumi.Config();
// One inventory, one or two stacks (config `part`: all, storage or services; see README.md).
const split = stackPartFromConfig(config);

function inventory() {
    try {
        // A relative `inventory` is taken from where pulumi runs; the default sits next to this file.
        return loadInventory(path.resolve(config.get("inventory") ?? path.join(__dirname, "inventory.yaml")));
    } catch (err) {
        // A RunError prints its message alone: the problems with their lines, no stack trace.
        if (err instanceof InventoryError) throw new pulumi.RunError(err.message);
        throw err;
    }
}

const dc = declareDataCenter(inventory(), secretsFromConfig(config), {
    allowDataLoss: config.getBoolean("allowDataLoss") ?? false,
    part: split.part,
    ...(split.storage ? { storage: split.storage } : {}),
    raidWaitForSync: config.getBoolean("raidWaitForSync") ?? false,
    // Config `native: true`: every resource through the native provider plugin (baremetal:index:<Kind>).
    native: config.getBoolean("native") ?? false,
});

export const resourceCount = dc.resourceCount;
export const summary = dc.summary;
/** `pulumi stack output summaryText` prints it as lines. */
export const summaryText = dc.summary.apply(formatSummary);
/** The NBD exports a services stack reads (StackReference); a services stack shows them as it read them. */
export const storageExports = dc.storageExports;
