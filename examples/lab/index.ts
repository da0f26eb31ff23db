// The lab-sized data center: the seed's program (../datacenter/program) on the lab
// VMs. No stack config is required: lab.json supplies the lab's facts and secrets.
// Config (all optional): labJson (path), allowDataLoss (true to let destroy wipe the
// array, the volume group and the volume), withCeph (add ceph1's OSD), openvpnKey.
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { DataCenterSecrets, declareDataCenter, formatSummary } from "../datacenter/program/datacenter";
import { InventoryError, loadInventory } from "../datacenter/program/inventory";
import { stackPartFromConfig } from "../datacenter/program/stacks";
import { completeFromLab, defaultLabJsonPath, derivedStaticKey, LabJson, readLabJson } from "./lab";

const config = new pulumi.Config();
// One inventory, one or two stacks (config `part`: all, storage or services).
const split = stackPartFromConfig(config);
const lab = readLabJson(config.get("labJson") ?? defaultLabJsonPath());

function inventory() {
    // Next to this file, whichever directory `pulumi` runs in (here or the repository root).
    const file = config.get("inventory") ?? path.join(__dirname, "inventory.yaml");
    try {
        return loadInventory(file, { complete: completeFromLab(lab, { withCeph: config.getBoolean("withCeph") ?? false }) });
    } catch (err) {
        if (err instanceof InventoryError) throw new pulumi.RunError(err.message);
        throw err;
    }
}

/**
 * The lab's secrets: its client key and BMC passwords from lab.json (made secrets
 * here), and OpenVPN static keys derived from the client key, so that every run
 * declares the same key without one more thing to configure. Config `openvpnKey`
 * (secret) overrides the derived key.
 */
function labSecrets(lab: LabJson, config: pulumi.Config): DataCenterSecrets {
    const privateKey = fs.readFileSync(lab.ssh.privateKeyPath, "utf8");
    const vpnOverride = config.getSecret("openvpnKey");
    return {
        sshPrivateKey: pulumi.secret(privateKey),
        bmcPassword: (machine) => {
            const vm = lab.vms[machine];
            if (!vm) throw new Error(`no lab VM ${machine} in ${lab.file}`);
            return pulumi.secret(vm.bmc.password);
        },
        openvpnKey: (network) => vpnOverride ?? pulumi.secret(derivedStaticKey(privateKey, network)),
    };
}

const dc = declareDataCenter(inventory(), labSecrets(lab, config), {
    allowDataLoss: config.getBoolean("allowDataLoss") ?? false,
    part: split.part,
    ...(split.storage ? { storage: split.storage } : {}),
    // The lab's guests have nothing inside that needs SSH; keep dial retries short.
    guestBootSeconds: 120,
});

export const resourceCount = dc.resourceCount;
export const summary = dc.summary;
/** `pulumi stack output summaryText` prints it as lines. */
export const summaryText = dc.summary.apply(formatSummary);
/** The NBD exports a services stack reads (StackReference); a services stack shows them as it read them. */
export const storageExports = dc.storageExports;
