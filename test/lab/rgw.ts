// The lab's S3 endpoint for Pulumi state (lab/rgw.sh: radosgw on a Ceph cluster of
// its own in ceph1, a bucket, a user whose keys are generated at its first start):
// started, or found running, and turned into a backend for PulumiStack. The keys
// stay in the lab's run directory and in the CLI's environment, never in a file of
// the repository or a stack's config.
import { execFile } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import type { StackBackend } from "../helpers/pulumi";
import { labJsonPath } from "./lab";

const repo = path.resolve(__dirname, "../../..");

export interface LabRgw {
    endpoint: string;
    bucket: string;
    region: string;
    accessKey: string;
    secretKey: string;
    /** The backend URL for the whole bucket. */
    backendUrl: string;
    /** Seconds lab/rgw.sh took: the setup when it made it, a check when it found it running. */
    seconds: number;
}

/** Makes or finds the lab's RGW (idempotent; several tests may ask at once). */
export async function startRgw(): Promise<LabRgw> {
    const out = await new Promise<string>((resolve, reject) => {
        execFile("bash", [path.join(repo, "lab/rgw.sh")], { maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
            if (err) reject(new Error(`lab/rgw.sh failed: ${stderr.trim()}`));
            else {
                process.stdout.write(stderr.split("\n").filter((l) => l.startsWith("[rgw]")).map((l) => `      ${l}\n`).join(""));
                resolve(stdout);
            }
        });
    });
    if (!out.trim().endsWith("rgw.env")) throw new Error(`lab/rgw.sh printed no rgw.env path: ${out}`);
    return JSON.parse(fs.readFileSync(path.join(path.dirname(labJsonPath), "rgw.json"), "utf8")) as LabRgw;
}

/**
 * Pulumi's S3 backend on the lab's RGW, under a prefix of its own in the bucket (one per
 * test run: stacks of different tests never meet). Path-style addressing (the bucket in
 * the path, not the host name), plain HTTP on the lab's LAN.
 */
export function rgwBackend(rgw: LabRgw, prefix: string): StackBackend {
    const unique = `${prefix}-${crypto.randomBytes(4).toString("hex")}`;
    return {
        url: `s3://${rgw.bucket}/${unique}?endpoint=${rgw.endpoint}&s3ForcePathStyle=true`,
        env: {
            AWS_ACCESS_KEY_ID: rgw.accessKey,
            AWS_SECRET_ACCESS_KEY: rgw.secretKey,
            AWS_REGION: rgw.region,
            // RGW 16 sends no checksums: without these the AWS SDK warns at every response.
            AWS_RESPONSE_CHECKSUM_VALIDATION: "when_required",
            AWS_REQUEST_CHECKSUM_CALCULATION: "when_required",
        },
    };
}
