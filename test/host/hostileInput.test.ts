// The hostile-input suite: every input field of every resource kind in
// provider/index.ts `kinds` gets invalid and hostile values (test/host/hostileCases.ts)
// through the provider the engine calls (providerFor(kind), the same object the
// serialised state loads), on the create path (no olds) and the update path (olds
// = a valid earlier input). `check` must reject each, naming the field, and repeat
// no secret; free-data fields must keep their value verbatim. The connection
// inputs point at a real sshd whose ForceCommand tripwire records every exec
// request and runs none: afterwards its log shows no TCP connection, no session
// and no command, and a Consul stand-in saw no connection either.
import * as assert from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { kinds, providerFor } from "../../provider";
import { Host, SshPool } from "../../provider/host";
import { ConnectionCounter } from "../helpers/net";
import { assertNoSecretIn, secretFragments } from "../helpers/secrets";
import { startSshd, TestSshd } from "../helpers/sshd";
import { casesFor, FieldSpec, HostileCase, hostileTables, secretCanary } from "./hostileCases";
import { inputFieldsOf } from "./inputFields";
import { openvpnStaticKey } from "../helpers/keys";

type Json = Record<string, unknown>;
type Segment = string | number;

const kindNames = Object.keys(kinds);
// Read from the TypeScript interfaces at load time: the test list depends on it.
const declaredFields = inputFieldsOf(kindNames);

/** What a run of the suite measured, printed at the end for the report. */
const figures: Record<string, { fields: number; cases: number; rejected: number; accepted: number; ignored: number }> = {};

// ---- baselines: one valid input per kind (two where fields exclude each other) ----------

const staticKey = openvpnStaticKey();
const sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

interface Secrets {
    sshPassword: string;
    keyPassphrase: string;
    encryptedKey: string;
    proxyKey: string;
    consulToken: string;
    standbyToken: string;
    bmcPassword: string;
    dbPassword: string;
    staticKey: string;
}

function baselinesFor(kind: string, sshd: TestSshd, consulAddress: string, s: Secrets): Json[] {
    const connection = {
        host: "127.0.0.1",
        port: sshd.port,
        user: "root",
        password: s.sshPassword,
        privateKey: s.encryptedKey,
        privateKeyPassword: s.keyPassphrase,
        agentSocketPath: "/run/baremetal-agent.sock",
        dialErrorLimit: 3,
        perDialTimeout: 15,
        hostKey: sshd.hostKey,
        proxy: { host: "127.0.0.1", port: sshd.port, privateKey: s.proxyKey, hostKey: sshd.hostKeyFingerprint },
        sudo: false,
        trustOnFirstUse: false,
    };
    const consul = { address: consulAddress, scheme: "http", token: s.consulToken, datacenter: "dc1" };
    switch (kind) {
        case "ConsulKeys":
            return [{ consul, prefix: "config/web01/", keys: { listen: "198.51.100.80" }, secrets: { "db/password": s.dbPassword }, adopt: false }];
        case "RaidArray":
            return [{ connection, device: "/dev/md0", level: "raid1", members: ["/dev/vdb", "/dev/vdc"], metadata: "1.2", name: "data", allowDataLoss: false, waitForSync: false, syncTimeoutSeconds: 3600 }];
        case "VolumeGroup":
            return [{ connection, name: "vg0", devices: ["/dev/md0"], adopt: false, allowDataLoss: false }];
        case "NbdVolume": {
            const volume = {
                connection, volumeGroup: "vg0", name: "web01-var", size: "256MiB", exportName: "web01-var", port: 10810, readOnly: false,
                allowedClients: ["198.18.1.12", "198.18.1.0/24"], owner: "52:54:00:12:34:56", consul, exportAddress: "198.18.1.11",
                consulNode: "san1-nbd", serviceName: "nbd", adopt: false, allowDataLoss: false,
            };
            // asFound needs adopt: a second baseline, an export adopted as the box's own nbd-server serves it.
            return [volume, { ...volume, adopt: true, asFound: { service: "nbd-server.service", config: "/etc/nbd-server/config" } }];
        }
        case "PxeServer":
            return [{
                connection, name: "pxe", address: "198.51.100.10", interface: "eth0", subnet: "198.51.100.0/24", gateway: "198.51.100.1",
                dnsServers: ["198.51.100.1"], domain: "lab.example", leaseSeconds: 3600, httpPort: 80, ipxeBootloaders: true,
                profiles: {
                    default: {
                        kind: "alpine", kernel: { url: "http://198.51.100.1/boot/vmlinuz-lts", sha256: sha }, initramfs: { path: "/srv/boot/initramfs-lts" },
                        modloop: { url: "http://198.51.100.1/boot/modloop-lts", sha256: sha }, repository: "http://198.51.100.1/alpine/v3.20/main",
                        overlay: { "etc/hostname": "pxeclient\n" }, cmdline: ["console=ttyS0"],
                    },
                    local: {
                        kind: "alpine", kernel: { path: "/srv/boot/vmlinuz" }, initramfs: { url: "http://198.51.100.1/boot/initramfs", sha256: sha },
                        modloop: { path: "/srv/boot/modloop" }, overlay: {}, cmdline: [],
                    },
                },
                standby: { consulAddress: "127.0.0.1:8500", lockKey: "baremetal/pxe/leader", consulBinary: "/usr/bin/consul", token: s.standbyToken },
                adopt: false,
            }];
        case "Machine":
            return [{
                mac: "52:54:00:b0:00:14", hostname: "web01", ip: "198.51.100.20", role: "web", profile: "default", kernelArgs: ["quiet"],
                pxeServers: [{ connection, name: "pxe" }], consul, consulPrefix: "machines/web01/", config: { "net/gateway": "198.51.100.1" },
                ipmi: { address: "127.0.0.1", port: 623, user: "admin", password: s.bmcPassword, interface: "lanplus", cipherSuite: 3 },
                power: { onCreate: "pxe", cycleOnBootChange: true, offOnDelete: false },
                waitForSsh: { connection, timeoutSeconds: 600 }, adopt: false,
            }];
        case "KvmGuest":
            return [{
                connection, name: "web01", memoryMiB: 512, vcpus: 1,
                disks: [{ nbd: { host: "198.18.1.11", port: 10810, export: "web01-var" }, readOnly: false }, { device: "/dev/vg0/web01-root", readOnly: true }],
                nics: [{ bridge: "br-lan", bridgeType: "ovs", mac: "52:54:00:b0:00:21", model: "virtio-net-pci" }],
                boot: "network", machine: "pc", autostart: true, shutdownTimeoutSeconds: 120, migrationPort: 49152, migrationTimeoutSeconds: 600, adopt: false,
            }].flatMap((g) => [g, { ...g, adopt: true, asFound: { service: "vm-web01.service", qmpSocket: "/run/qemu/web01.qmp" } }]);
            // (the second: asFound needs adopt — a qemu adopted under the service that runs it now)
        case "OvsBridge":
            return [{
                connection, name: "br-storage", network: "storage", uplink: "eth1", moveAddresses: false,
                tunnels: [{ name: "vpn-storage", port: 1194, remote: "198.51.100.11", remotePort: 1194, key: s.staticKey }], adopt: false,
            }];
        case "CephOsd":
            return [{
                connection, device: "/dev/vdb", deviceClass: "hdd", crushWeight: 0.5, crushLocation: { root: "default", host: "ceph1" },
                cluster: "ceph", adopt: false, allowDataLoss: false, drainTimeoutSeconds: 3600,
            }];
        case "LxcContainer": {
            const common = {
                connection, name: "dns01",
                network: [{ bridge: "br-lan", hwaddr: "52:54:00:c0:00:01", ipv4: "198.51.100.50/24", gateway: "198.51.100.1" }],
                mounts: [
                    { source: "/srv/dns", target: "/var/lib/dns", type: "none", options: "bind,create=dir" },
                    { source: "nfs1:/export/www", target: "/var/www", type: "nfs", options: "defaults,create=dir" },
                ],
                autostart: true, limits: { memoryMiB: 256, cpuWeight: 100, pids: 512 },
                files: [{ path: "/etc/motd", content: "hello\n", mode: "0644" }], commands: [["sh", "-c", "echo ok"]], timeoutSeconds: 60, adopt: false,
            };
            // template and rootfs exclude each other: one baseline each.
            return [{ ...common, template: "busybox", templateArgs: ["--flavor=tiny"] }, { ...common, rootfs: "/srv/lxc/dns01/rootfs" }];
        }
        default:
            return [];
    }
}

// ---- paths ------------------------------------------------------------------------------

function formatPath(p: Segment[]): string {
    return p.map((s, i) => (typeof s === "number" ? `[${s}]` : i === 0 ? s : `.${s}`)).join("");
}

/** Concrete paths in `value` that match a field pattern (`a[].b`, `m.*.c`). */
function concretePaths(value: unknown, pattern: string): Segment[][] {
    const tokens = pattern.match(/\[\]|[^.[\]]+/g) ?? [];
    let found: { at: Segment[]; v: unknown }[] = [{ at: [], v: value }];
    for (const [i, t] of tokens.entries()) {
        const last = i === tokens.length - 1;
        const next: { at: Segment[]; v: unknown }[] = [];
        for (const { at, v } of found) {
            if (t === "[]") {
                if (Array.isArray(v)) v.forEach((x, j) => next.push({ at: [...at, j], v: x }));
            } else if (t === "*") {
                if (v && typeof v === "object" && !Array.isArray(v)) for (const [k, x] of Object.entries(v)) next.push({ at: [...at, k], v: x });
            } else if (v && typeof v === "object" && !Array.isArray(v) && (t in v || last)) {
                next.push({ at: [...at, t], v: (v as Json)[t] });
            }
        }
        found = next;
    }
    return found.map((f) => f.at);
}

function getAt(root: unknown, p: Segment[]): unknown {
    return p.reduce<unknown>((v, s) => (v === undefined || v === null ? undefined : (v as Record<string | number, unknown>)[s]), root);
}

function setAt(root: unknown, p: Segment[], value: unknown): unknown {
    const copy = structuredClone(root) as Record<string | number, unknown>;
    const parent = getAt(copy, p.slice(0, -1)) as Record<string | number, unknown>;
    parent[p[p.length - 1]] = value;
    return copy;
}

interface Placement {
    baseline: Json;
    at: Segment[];
    ok: unknown;
}

/** Where a field lives in the baselines: prefer a baseline that sets it, else one that can. */
function place(baselines: Json[], pattern: string): Placement | undefined {
    for (const needLeaf of [true, false]) {
        for (const baseline of baselines) {
            const hit = concretePaths(baseline, pattern).find((p) => !needLeaf || getAt(baseline, p) !== undefined);
            if (hit) return { baseline, at: hit, ok: getAt(baseline, hit) };
        }
    }
    return undefined;
}

// ---- checking one case --------------------------------------------------------------------

interface Failure {
    property: string;
    reason: string;
}


/**
 * The reason starts with the field's path. `property` stays empty: the engine would
 * print that input's whole value beside the reason (secrets inside it included).
 */
function namesField(f: Failure, field: string): boolean {
    return f.reason.startsWith(field) && /^[:.[ ]/.test(f.reason.slice(field.length)) && f.property === "";
}

async function runCase(kind: string, placement: Placement, c: HostileCase, fragments: string[]): Promise<"rejected" | "accepted" | "ignored"> {
    const provider = providerFor(kind);
    const { baseline, at } = placement;
    let news: Json;
    let field = formatPath(at);
    if (c.mode === "key") {
        const map = getAt(baseline, at) as Json;
        const entry = structuredClone(Object.values(map)[0] ?? "x");
        news = setAt(baseline, at, { ...map, [c.value as string]: entry }) as Json;
    } else {
        news = setAt(baseline, at, c.value) as Json;
    }
    if (c.names) field = formatPath([...at.slice(0, -1), c.names]);
    const secretValues = c.secret ? secretFragments([String(c.value), secretCanary]) : [];
    const olds = (await provider.check!({}, baseline)).inputs as Json;
    for (const [pathName, before] of [["create", {}], ["update", olds]] as const) {
        const out = await provider.check!(before, news);
        const failures = (out.failures ?? []) as Failure[];
        const shown = failures.map((f) => `${f.property} | ${f.reason}`).join("\n");
        assertNoSecretIn(shown, [...fragments, ...secretValues, secretCanary], `${kind}.${field} (${c.label}, ${pathName})`);
        if (c.expect === "reject") {
            assert.ok(failures.length > 0, `${kind}: ${field} = ${show(c)} was ACCEPTED on ${pathName}; it must be rejected`);
            assert.ok(
                failures.some((f) => namesField(f, field)),
                `${kind}: ${field} = ${show(c)} was rejected on ${pathName}, but no message names ${field}:\n${shown}`,
            );
        } else {
            assert.strictEqual(failures.length, 0, `${kind}: ${field} = ${show(c)} must be accepted as data on ${pathName}, got:\n${shown}`);
            const kept = getAt(out.inputs, at);
            if (c.expect === "accept") {
                assert.deepStrictEqual(kept, c.value, `${kind}: ${field} = ${show(c)} was not kept verbatim`);
            } else {
                assert.notDeepStrictEqual(kept, c.value, `${kind}: ${field} is derived by check, but the user's value ${show(c)} was used`);
            }
        }
    }
    return c.expect === "reject" ? "rejected" : c.expect === "accept" ? "accepted" : "ignored";
}

function show(c: HostileCase): string {
    const v = c.secret ? "<secret>" : JSON.stringify(c.value) ?? String(c.value);
    return `${c.label} (${v.length > 60 ? `${v.slice(0, 60)}…` : v})`;
}

// ---- the engine's order of calls ---------------------------------------------------------

/**
 * What the engine does with a resource on `up`: check; on failures report them
 * and stop; otherwise diff (update) and create or update with check's inputs.
 * Returns the failures, or the error of the create/update (which ran).
 */
async function engineUp(kind: string, news: Json, old?: { id: string; inputs: Json }): Promise<{ failures: Failure[]; ran: boolean; error?: Error }> {
    const provider = providerFor(kind);
    const checked = await provider.check!(old?.inputs ?? {}, news);
    if ((checked.failures ?? []).length > 0) return { failures: checked.failures as Failure[], ran: false };
    try {
        if (old) {
            await provider.diff!(old.id, old.inputs, checked.inputs);
            await provider.update!(old.id, old.inputs, checked.inputs);
        } else {
            await provider.create!(checked.inputs);
        }
        return { failures: [], ran: true };
    } catch (e) {
        return { failures: [], ran: true, error: e as Error };
    }
}

// ---- the suite ----------------------------------------------------------------------------

describe("hostile input: check rejects it naming the field, and nothing reaches the host", function () {
    this.timeout(300_000);
    let sshd: TestSshd;
    let consul: ConnectionCounter;
    let secrets: Secrets;
    const started = Date.now();

    before(async () => {
        // A tripwire sshd: every exec request is recorded by its ForceCommand and refused.
        sshd = await startSshd({ audit: "block" });
        consul = await new ConnectionCounter().start();
        // PEM-encrypted RSA: ssh2 opens it in well under a millisecond, where an encrypted
        // OpenSSH-format key costs ~0.66 s of bcrypt per check (measured; see the report).
        const keyFile = path.join(sshd.dir, "encrypted_rsa");
        const keyPassphrase = "passphrase-Zq81-canary";
        execFileSync("ssh-keygen", ["-q", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", keyPassphrase, "-C", "hostile", "-f", keyFile]);
        secrets = {
            sshPassword: "ssh-Passw0rd-canary-41",
            keyPassphrase,
            encryptedKey: fs.readFileSync(keyFile, "utf8"),
            proxyKey: sshd.client.privateKey,
            consulToken: "b3c1e7a2-5d1f-4c6e-9a8b-consul-canary",
            standbyToken: "0f7d2c3e-8b4a-4f1e-a2c9-standby-canary",
            bmcPassword: "bmc-Pw-canary-19",
            dbPassword: "db-Passw0rd-canary-77",
            staticKey,
        };
    });

    after(async () => {
        await consul?.stop();
        await sshd?.stop();
        const rows = Object.entries(figures);
        const total = rows.reduce((n, [, f]) => n + f.cases, 0);
        console.log(`\n    hostile input: ${total} cases on ${rows.reduce((n, [, f]) => n + f.fields, 0)} fields of ${rows.length} kinds in ${((Date.now() - started) / 1000).toFixed(1)} s`);
        for (const [k, f] of rows) console.log(`      ${k.padEnd(13)} fields ${String(f.fields).padStart(3)}  cases ${String(f.cases).padStart(4)}  rejected ${f.rejected}  kept as data ${f.accepted}  derived ${f.ignored}`);
    });

    it("has cases for every input field of every kind in provider `kinds`, and none for fields that do not exist", () => {
        const problems: string[] = [];
        for (const kind of kindNames) {
            const table = hostileTables[kind];
            if (!table) {
                problems.push(`${kind}: no hostile-input table (add one to test/host/hostileCases.ts and a baseline to hostileInput.test.ts)`);
                continue;
            }
            for (const f of declaredFields[kind]) if (!table[f]) problems.push(`${kind}.${f}: declared in ${kind}Inputs but has no hostile cases`);
            for (const f of Object.keys(table)) if (!declaredFields[kind].includes(f)) problems.push(`${kind}.${f}: has cases but ${kind}Inputs has no such field`);
        }
        assert.deepStrictEqual(problems, []);
    });

    for (const kind of kindNames) {
        describe(kind, () => {
            let baselines: Json[];
            let fragments: string[];

            before(() => {
                baselines = baselinesFor(kind, sshd, `127.0.0.1:${consul.port}`, secrets);
                fragments = secretFragments(Object.values(secrets));
                figures[kind] = { fields: 0, cases: 0, rejected: 0, accepted: 0, ignored: 0 };
            });

            it("its baseline inputs pass check (so each rejection below is the hostile field's)", async () => {
                assert.ok(baselines.length > 0, `${kind} has no baseline input in hostileInput.test.ts`);
                for (const b of baselines) {
                    const out = await providerFor(kind).check!({}, b);
                    assert.deepStrictEqual(out.failures ?? [], [], `${kind} baseline is rejected`);
                }
            });

            it("check is idempotent: its own output passes and comes back unchanged", async () => {
                for (const b of baselines) {
                    const once = (await providerFor(kind).check!({}, b)).inputs as Json;
                    const twice = await providerFor(kind).check!({}, once);
                    assert.deepStrictEqual(twice.failures ?? [], []);
                    assert.deepStrictEqual(twice.inputs, once);
                }
            });

            it("driven in the engine's order (check, then diff and create/update), a hostile value stops at check on create and on update", async () => {
                const provider = providerFor(kind);
                const olds = (await provider.check!({}, baselines[0])).inputs as Json;
                const fields = declaredFields[kind].filter((f) => !f.endsWith("]") && hostileTables[kind]?.[f]);
                let driven = 0;
                for (const field of fields) {
                    const placement = place(baselines, field);
                    const c = placement && casesFor(hostileTables[kind][field], placement.ok).find((x) => x.expect === "reject" && x.mode !== "key");
                    if (!placement || !c) continue;
                    const news = setAt(placement.baseline, placement.at, c.value) as Json;
                    for (const old of [undefined, { id: "hostile-test", inputs: olds }]) {
                        const r = await engineUp(kind, news, old);
                        assert.ok(!r.ran, `${kind}.${field} = ${show(c)} got past check to ${old ? "update" : "create"}`);
                        assert.ok(r.failures.length > 0);
                        driven++;
                    }
                }
                assert.ok(driven >= 2 * Math.min(5, fields.length), `only ${driven} cases driven`);
            });

            for (const field of declaredFields[kind]) {
                const spec: FieldSpec | undefined = hostileTables[kind]?.[field];
                it(`${field}: every hostile value is rejected naming the field; data is kept`, async () => {
                    assert.ok(spec, `${kind}.${field} has no hostile cases in test/host/hostileCases.ts`);
                    const placement = place(baselines, field);
                    assert.ok(placement, `no baseline of ${kind} can hold ${field}: add it to the baseline`);
                    const cases = casesFor(spec, placement.ok);
                    assert.ok(cases.length >= 3, `${kind}.${field} has only ${cases.length} cases`);
                    const problems: string[] = [];
                    for (const c of cases) {
                        try {
                            figures[kind][await runCase(kind, placement, c, fragments)]++;
                        } catch (e) {
                            problems.push((e as Error).message.split("\n").slice(0, 4).join("\n    "));
                        }
                        figures[kind].cases++;
                    }
                    figures[kind].fields++;
                    assert.deepStrictEqual(problems, [], `${problems.length} of ${cases.length} cases failed`);
                });
            }
        });
    }

    describe("the host saw nothing", () => {
        it("sshd logged no connection, no session and no command; Consul saw no connection", () => {
            assert.strictEqual(sshd.connections(), 0, `sshd accepted connections:\n${sshd.log()}`);
            assert.strictEqual(sshd.commandSessions(), 0);
            assert.deepStrictEqual(sshd.commands(), []);
            assert.strictEqual(consul.count, 0, "something connected to the Consul address");
        });

        it("a valid input driven the same way does reach the host (so the two checks above can fail)", async () => {
            const before = sshd.commands().length;
            const r = await engineUp("VolumeGroup", { connection: sshd.connection(), name: "vg0", devices: ["/dev/baremetal-hostile-none"] });
            assert.ok(r.ran, "a valid input must get past check");
            assert.match(String(r.error?.message), /exit code 126/, "the tripwire refused the first command");
            assert.ok(sshd.commands().length > before, "the tripwire recorded the command it refused");
            assert.ok(sshd.connections() >= 1);
        });

        it("the tripwire records a command that is sent (the check above can fail)", async () => {
            const pool = new SshPool();
            try {
                const host = new Host(sshd.connection(), { pool });
                const out = await host.exec(["echo", "tripwire-probe; $(id)"]);
                assert.strictEqual(out.exitCode, 126, "the tripwire refuses every command");
            } finally {
                await pool.closeAll();
            }
            assert.ok(sshd.connections() >= 1);
            assert.ok(sshd.commandSessions() >= 1);
            assert.ok(sshd.commands().some((c) => c.includes("tripwire-probe; $(id)")), JSON.stringify(sshd.commands()));
        });
    });
});
