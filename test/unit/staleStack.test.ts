// lab/staleStack: the demo starts its stack afresh only when the stack pins host keys
// that the running lab's VMs no longer present (a rebuilt lab), never otherwise.
import * as assert from "assert";
import { judgeStack } from "../../lab/staleStack";

const lab = { vms: { pxe1: { ssh: { hostKey: "ssh-ed25519 AAAAnew1" } }, storage1: { ssh: { hostKey: "ssh-ed25519 AAAAnew2" } } } };
const stack = (...keys: string[]) => ({
    deployment: {
        resources: [
            { type: "pulumi:pulumi:Stack", inputs: {} },
            ...keys.map((hostKey, i) => ({ type: "pulumi-nodejs:dynamic:Resource", inputs: { name: `r${i}`, connection: { host: "198.51.100.10", hostKey }, bmc: { box: { hostKey } } } })),
        ],
    },
});

describe("the demo's stack against a rebuilt lab (lab/staleStack)", () => {
    it("a new stack, or one whose every pinned key the lab presents, is current", () => {
        assert.deepStrictEqual(judgeStack({}, lab), { stale: false });
        assert.deepStrictEqual(judgeStack(stack(), lab), { stale: false });
        assert.deepStrictEqual(judgeStack(stack("ssh-ed25519 AAAAnew1", "ssh-ed25519 AAAAnew2 "), lab), { stale: false });
    });

    it("a stack that pins a key no VM of the lab presents is stale, counting its resources and the unknown keys", () => {
        assert.deepStrictEqual(judgeStack(stack("ssh-ed25519 AAAAold1", "ssh-ed25519 AAAAnew2", "ssh-ed25519 AAAAold1"), lab), { stale: true, resources: 3, unknownKeys: ["ssh-ed25519 AAAAold1"] });
    });
});
