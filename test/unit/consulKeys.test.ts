import * as assert from "assert";
import { check, diff, planWrites, ConsulKeysInputs } from "../../provider/resources/consulKeys";

const good = {
    consul: { address: "192.0.2.10:8500" },
    prefix: "config/dns01/",
    keys: { listen: "192.0.2.53", "forwarders/0": "192.0.2.1" },
    secrets: { "tsig/key": "hunter2" },
};

function failuresOf(news: Record<string, unknown>): string[] {
    return check({}, news).failures.map((f) => `${f.field}: ${f.reason}`);
}

describe("ConsulKeys check", () => {
    it("normalises valid input and adds the trailing slash to the prefix", () => {
        const out = check({}, { ...good, prefix: "config/dns01" });
        assert.deepStrictEqual(out.failures, []);
        assert.strictEqual(out.inputs?.prefix, "config/dns01/");
        assert.strictEqual(out.inputs?.adopt, false);
        assert.deepStrictEqual(out.inputs?.secrets, { "tsig/key": "hunter2" });
    });

    it("accepts empty values, which are valid in Consul", () => {
        assert.deepStrictEqual(check({}, { ...good, keys: { flag: "" } }).failures, []);
    });

    const bad: [string, Record<string, unknown>, RegExp][] = [
        ["missing consul", { ...good, consul: undefined }, /^consul: is required/],
        ["address without port", { ...good, consul: { address: "192.0.2.10" } }, /^consul\.address: .*host:port/],
        ["port out of range", { ...good, consul: { address: "192.0.2.10:99999" } }, /^consul\.address: port 99999/],
        ["shell in the address", { ...good, consul: { address: "$(reboot):8500" } }, /^consul\.address/],
        ["unknown scheme", { ...good, consul: { address: "a:1", scheme: "ftp" } }, /^consul\.scheme: .*http or https/],
        ["unknown connection field", { ...good, consul: { address: "a:1", tokne: "x" } }, /^consul\.tokne: is not a Consul connection field/],
        ["absolute prefix", { ...good, prefix: "/config/" }, /^prefix: .*no leading/],
        ["traversal in prefix", { ...good, prefix: "config/../secrets/" }, /^prefix: .*"\.\."/],
        ["empty segment", { ...good, prefix: "config//x/" }, /^prefix: .*empty segments/],
        ["newline in a key", { ...good, keys: { "a\nb": "x" } }, /^keys key "a\\nb": must not contain control characters/],
        ["traversal in a key", { ...good, keys: { "../etc": "x" } }, /^keys\.\.\.\/etc: .*"\.\."/],
        ["non-string value", { ...good, keys: { port: 53 } }, /^keys\.port: must be a string, got number/],
        ["key declared twice", { ...good, secrets: { listen: "x" } }, /^secrets\.listen: is also declared in keys/],
        ["nothing declared", { ...good, keys: {}, secrets: {} }, /^keys: declare at least one key/],
        ["adopt not boolean", { ...good, adopt: "yes" }, /^adopt: must be true or false/],
        ["oversize prefix", { ...good, prefix: "a/".repeat(300) }, /^prefix: is 600 characters long; the limit is 512/],
    ];
    for (const [name, input, expected] of bad) {
        it(`rejects ${name}, naming the field`, () => {
            const failures = failuresOf(input);
            assert.ok(failures.some((f) => expected.test(f)), `expected ${expected} in ${JSON.stringify(failures)}`);
            assert.strictEqual(check({}, input).inputs, undefined);
        });
    }

    it("reports every bad field at once", () => {
        const failures = failuresOf({ consul: { address: "x" }, prefix: "/abs", keys: { k: 1 } });
        assert.ok(failures.length >= 3, JSON.stringify(failures));
    });

    it("never puts a secret value into a failure message", () => {
        const failures = failuresOf({ ...good, consul: { address: "nope" }, secrets: { "tsig/key": "hunter2", listen: "hunter3" } });
        assert.ok(!failures.join("\n").includes("hunter"), failures.join("\n"));
    });
});

describe("ConsulKeys diff", () => {
    const olds = check({}, good).inputs as ConsulKeysInputs;
    const with_ = (patch: Partial<ConsulKeysInputs>): ConsulKeysInputs => ({ ...olds, ...patch });

    it("sees no change when nothing changed", () => {
        assert.deepStrictEqual(diff(olds.prefix, olds, with_({})), { changes: false, replaces: [], stables: ["prefix"] });
    });
    it("updates values and secrets in place", () => {
        const d = diff(olds.prefix, olds, with_({ keys: { listen: "192.0.2.54" }, secrets: { "tsig/key": "new" } }));
        assert.deepStrictEqual([d.changes, d.replaces], [true, []]);
    });
    it("updates in place when only the token changes", () => {
        const d = diff(olds.prefix, olds, with_({ consul: { ...olds.consul, token: "t" } }));
        assert.deepStrictEqual([d.changes, d.replaces], [true, []]);
    });
    it("replaces when the prefix, the Consul address or the datacenter changes", () => {
        assert.deepStrictEqual(diff("", olds, with_({ prefix: "config/dns02/" })).replaces, ["prefix"]);
        assert.deepStrictEqual(diff("", olds, with_({ consul: { address: "192.0.2.11:8500" } })).replaces, ["consul.address"]);
        assert.deepStrictEqual(diff("", olds, with_({ consul: { ...olds.consul, datacenter: "dc2" } })).replaces, ["consul.datacenter"]);
    });
});

describe("ConsulKeys write plan", () => {
    it("writes only keys whose live value differs", () => {
        const want = new Map([["p/a", "1"], ["p/b", "2"], ["p/c", ""]]);
        const live = new Map([["p/a", "1"], ["p/b", "old"], ["p/other", "x"]]);
        assert.deepStrictEqual(planWrites(want, live), [
            { verb: "set", key: "p/b", value: "2" },
            { verb: "set", key: "p/c", value: "" },
        ]);
    });
});
