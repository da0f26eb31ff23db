import * as assert from "assert";
import { inspect } from "util";
import { planAsData, renderPlan, step } from "../../provider/host/plan";
import { Redactor, Secret, redactedMark } from "../../provider/host/redact";

describe("host redaction", () => {
    const secret = new Secret("hunter2-token");

    it("a Secret prints as [secret] whichever way it is turned into text", () => {
        assert.strictEqual(String(secret), redactedMark);
        assert.strictEqual(`${secret}`, redactedMark);
        assert.strictEqual(JSON.stringify({ secret }), `{"secret":"${redactedMark}"}`);
        assert.ok(!inspect({ nested: { secret } }).includes("hunter2"));
        assert.strictEqual(secret.reveal(), "hunter2-token");
    });

    it("scrubs a secret from text, also in base64 and line by line for multi-line keys", () => {
        const key = "-----BEGIN KEY-----\nAAAAB3NzaC1yc2EAAAADAQABAAABAQ\n-----END KEY-----";
        const r = new Redactor().add(secret, key);
        assert.strictEqual(r.redact("token=hunter2-token;"), "token=[secret];");
        assert.strictEqual(r.redact(Buffer.from("hunter2-token").toString("base64")), "[secret]");
        assert.ok(!r.redact("error near AAAAB3NzaC1yc2EAAAADAQABAAABAQ").includes("AAAAB3Nz"));
    });

    it("scrubs the longer of two overlapping secrets whole", () => {
        const r = new Redactor().add("abcdef", "abcdefghij");
        assert.strictEqual(r.redact("x abcdefghij y abcdef"), "x [secret] y [secret]");
    });

    it("ignores empty and very short values rather than blanking every letter", () => {
        const r = new Redactor().add("", "a");
        assert.strictEqual(r.redact("a banana"), "a banana");
    });

    it("keeps secrets out of a plan's text and data forms", () => {
        const plan = [
            step.run(["ceph", "auth", "import", "-i", "-"], { stdin: secret, what: "import the OSD key" }),
            step.run(["mysql", "-p", secret]),
            step.writeFile("/etc/ceph/keyring", secret, { mode: "0600" }),
        ];
        const text = renderPlan(plan) + JSON.stringify(planAsData(plan));
        assert.ok(!text.includes("hunter2"), text);
        assert.match(renderPlan(plan), /mysql -p '\[secret\]'/);
        assert.match(renderPlan(plan), /write \/etc\/ceph\/keyring \(mode 0600, owner root:root, secret content\)/);
    });
});
