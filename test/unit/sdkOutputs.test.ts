// Every SDK class exposes what its provider returns. Pulumi only fills in the
// properties whose keys the constructor passed; an output-only key left out is
// silently never seen by programs (RaidArray's state, once). Pulumi's own mock
// monitor (the engine cannot run in the unit tier) plays the provider and answers
// each create with a marker value under every output-only key; the test reads the
// markers back through the class's properties.
import * as assert from "assert";
import * as pulumi from "@pulumi/pulumi";
import {
    CephOsd, ConsulKeys, KvmGuest, LxcContainer, Machine, NbdVolume, OvsBridge, PxeServer, RaidArray, VolumeGroup,
} from "../../sdk";

/** Output-only keys by kind, exhaustive against the provider's types in each sdk file (OutputOnly). */
const outputKeys: Record<string, string[]> = {
    RaidArray: ["uuid", "state", "activeMembers", "failedMembers", "sizeBytes", "syncPercent"],
    VolumeGroup: ["uuid", "sizeBytes", "freeBytes", "extentBytes", "lvCount", "physicalVolumes"],
    NbdVolume: ["sizeBytes", "lvUuid", "lvPath", "serving", "uri", "serviceId", "registered"],
    PxeServer: ["family", "baseUrl", "dhcpRole", "leases", "files"],
    Machine: ["entries", "consulNode", "facts", "bootSeconds"],
    KvmGuest: ["mac", "serviceName", "qmpSocket", "consoleLog", "status", "running", "blockDevices", "taps", "lastMigration"],
    OvsBridge: ["ports", "addresses", "movedAddresses", "tunnelStates"],
    LxcContainer: ["state", "pid", "addresses", "configPath"],
    CephOsd: ["osdId", "osdFsid", "clusterFsid", "hostName", "lvPath", "devices", "up", "in", "reweight"],
    ConsulKeys: [],
};
/** Inputs the provider fills in when left out; they must be outputs even when not given. */
const defaultedKeys: Record<string, string[]> = {
    RaidArray: ["level", "metadata", "name"],
    KvmGuest: ["vcpus"],
    NbdVolume: ["exportName", "exportAddress", "consulNode"],
    ConsulKeys: ["secrets", "adopt"],
};

const marker = (kind: string, key: string) => `marker:${kind}.${key}`;

function value<T>(o: pulumi.Output<T>): Promise<T> {
    return new Promise((resolve) => o.apply((v) => resolve(v)));
}

const conn = { host: "198.18.64.10", hostKey: "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", privateKey: "k" };

describe("sdk classes expose every output their provider returns", () => {
    before(() => {
        pulumi.runtime.setMocks({
            newResource(args) {
                const kind = args.type.split(":").pop() ?? "";
                const markers = Object.fromEntries([...(outputKeys[kind] ?? []), ...(defaultedKeys[kind] ?? [])].map((k) => [k, marker(kind, k)]));
                return { id: `${args.name}-id`, state: { ...args.inputs, ...markers } };
            },
            call: (args) => args.inputs,
        }, "project", "stack", false);
    });

    const make: Record<string, () => pulumi.CustomResource> = {
        RaidArray: () => new RaidArray("md", { connection: conn, device: "/dev/md0", members: ["/dev/vda", "/dev/vdb"] }),
        VolumeGroup: () => new VolumeGroup("vg", { connection: conn, name: "vg0", devices: ["/dev/md0"] }),
        NbdVolume: () => new NbdVolume("vol", { connection: conn, volumeGroup: "vg0", name: "lv", size: "1GiB", port: 10809, owner: "52:54:00:00:00:01" }),
        PxeServer: () => new PxeServer("pxe", { connection: conn, address: "198.18.64.10", subnet: "198.18.64.0/24", profiles: {} }),
        Machine: () => new Machine("m", { mac: "52:54:00:00:00:02", hostname: "m", ip: "198.18.64.20", profile: "default", pxeServers: [] }),
        KvmGuest: () => new KvmGuest("g", { connection: conn, name: "g", memoryMiB: 64, nics: [{ bridge: "br0", mac: "52:54:00:00:00:03" }] }),
        OvsBridge: () => new OvsBridge("b", { connection: conn, name: "br0" }),
        LxcContainer: () => new LxcContainer("c", { connection: conn, name: "c", template: "busybox" }),
        CephOsd: () => new CephOsd("osd", { connection: conn, device: "/dev/vdc" }),
        ConsulKeys: () => new ConsulKeys("k", { consul: { address: "198.18.64.10:8500" }, prefix: "config/x/", keys: { a: "1" } }),
    };

    for (const [kind, create] of Object.entries(make)) {
        it(`${kind}: output-only and defaulted keys reach the program`, async () => {
            const res = create() as unknown as Record<string, pulumi.Output<unknown> | undefined>;
            for (const key of [...outputKeys[kind], ...(defaultedKeys[kind] ?? [])]) {
                const out = res[key];
                assert.ok(pulumi.Output.isInstance(out), `${kind}.${key} is not an output of the resource (its key was not passed to the constructor)`);
                assert.strictEqual(await value(out!), marker(kind, key), `${kind}.${key}`);
            }
        });
    }

    it("ConsulKeys: every state key is an input, so every output is populated", async () => {
        const keys = new ConsulKeys("k", { consul: { address: "198.18.64.10:8500" }, prefix: "config/x/", keys: { a: "1" } });
        assert.deepStrictEqual(await value(keys.keys), { a: "1" });
    });
});
