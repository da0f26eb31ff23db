// Constructing a resource must leave the program's stack formatter (ts-node
// installs one that applies source maps) in place and keep using it for every
// stack, the resource's own source position included, except the ones Pulumi
// records per promise for its leak report: those are printed only with
// PULUMI_DEBUG_PROMISE_LEAKS, and rendering them was a fifth of a large preview's
// CPU (sdk/provider.ts, skipLeakDebugStacks). Pulumi's own mock monitor stands in
// for the engine, which cannot run in the unit tier.
import * as assert from "assert";
import * as pulumi from "@pulumi/pulumi";
import { Machine } from "../../sdk";

describe("sdk: stack traces while a resource is constructed", () => {
    /** The function name of the top frame of every stack the program's formatter rendered. */
    let rendered: string[] = [];
    const formatter = (error: Error, sites: NodeJS.CallSite[]): string => {
        rendered.push(sites[0]?.getFunctionName() ?? "");
        return [String(error), ...sites.map((s) => `    at ${s}`)].join("\n");
    };
    let saved: typeof Error.prepareStackTrace;
    let n = 0;
    const machine = () => {
        n++;
        return new Machine(`stacks-${n}`, { mac: `52:54:00:00:10:${String(n).padStart(2, "0")}`, hostname: `stacks${n}`, ip: `198.18.64.${n}`, profile: "default", pxeServers: [] });
    };

    before(() => {
        pulumi.runtime.setMocks({
            newResource: (args) => ({ id: `${args.name}-id`, state: args.inputs }),
            call: (args) => args.inputs,
        }, "project", "stack", true);
        saved = Error.prepareStackTrace;
        Error.prepareStackTrace = formatter;
    });
    after(() => {
        Error.prepareStackTrace = saved;
        delete process.env.PULUMI_DEBUG_PROMISE_LEAKS;
    });
    beforeEach(() => {
        rendered = [];
    });

    it("leaves the program's formatter installed and renders the resource's source position with it", () => {
        machine();
        assert.strictEqual(Error.prepareStackTrace, formatter);
        assert.ok(rendered.includes("callsites"), `the resource's source position (Resource.callsites) was not rendered by the program's formatter: ${rendered.join(", ")}`);
    });

    it("does not render Pulumi's per-promise leak records", () => {
        machine();
        assert.deepStrictEqual(rendered.filter((f) => f === "debuggablePromise"), []);
    });

    it("renders them all with PULUMI_DEBUG_PROMISE_LEAKS set, when Pulumi prints them", () => {
        process.env.PULUMI_DEBUG_PROMISE_LEAKS = "true";
        try {
            machine();
        } finally {
            delete process.env.PULUMI_DEBUG_PROMISE_LEAKS;
        }
        // Four per property (value, known, secret, dependencies) and more per resource.
        assert.ok(rendered.filter((f) => f === "debuggablePromise").length >= 4 * 14, `only ${rendered.filter((f) => f === "debuggablePromise").length} leak records rendered`);
        assert.strictEqual(Error.prepareStackTrace, formatter);
    });

    it("restores the formatter when the constructor throws", () => {
        assert.throws(() => new Machine("stacks-bad", { mac: "52:54:00:00:10:ff", hostname: "bad", ip: "198.18.64.250", profile: "default", pxeServers: [] }, { parent: {} as pulumi.Resource }));
        assert.strictEqual(Error.prepareStackTrace, formatter);
    });
});
