// discover, part options: the command line (and an optional boxes file) turned
// into checked connections. Every connection is checked by the host layer's own
// validator (the SDK's connection fields); a bad value names its flag or field.
import * as fs from "fs";
import { parse as parseYaml } from "yaml";
import { checkHostConnection, HostConnection } from "../../host";
import { Validator } from "../../core/validate";

export const discoverHelp = `usage: baremetal discover [options] BOX...

Reads every box over SSH, only reading (a check in the host layer refuses any
command that could change a box, before it is sent), and writes an inventory for
examples/datacenter's program: machines (NICs, disks by id), md arrays, volume
groups and their NBD exports, qemu guests, LXC containers, OVS bridges, Ceph OSDs,
Consul K/V. Everything found is marked adopt: true; what the inventory cannot hold
is written as a commented block saying what and why. No secret is written: the
file names the stack config keys to set. Progress goes to stderr, one line per box;
a box that cannot be reached is reported and the others are still read.

  BOX                     a box to read: ADDRESS, ADDRESS:PORT or USER@ADDRESS[:PORT]
  --boxes FILE            YAML list of boxes, each the SDK's connection fields
                          { host, port, user, hostKey, trustOnFirstUse, sudo } plus bmc
  --user USER             SSH user (default root)
  --key FILE              private key file (default: the agent at $SSH_AUTH_SOCK)
  --host-key BOX=KEY      pin a box's host key (OpenSSH line or SHA256: fingerprint)
  --known-hosts FILE      pin host keys from an OpenSSH known_hosts file
  --trust-on-first-use    accept an unpinned box's key (the inventory records the key seen)
  --sudo                  run every command through sudo -n
  --bmc BOX=ADDRESS       a box's BMC address (recorded on its machine)
  --consul HOST:PORT      a Consul agent: K/V under --kv-prefix is read too
                          (token from $CONSUL_HTTP_TOKEN, never written)
  --consul-datacenter DC  its datacenter
  --kv-prefix PREFIX      K/V prefix to bring in as ConsulKeys (repeatable)
  --network NAME=CIDR     name a network (default: lan for the first box's, then net1 ...)
  --datacenter NAME       the inventory's datacenter name (default: discovered)
  -o, --output FILE       write the inventory here (default: stdout)
  -h, --help              this text
`;

export interface DiscoverOptions {
    boxes: { conn: HostConnection; label: string; bmc?: string }[];
    consul?: { address: string; datacenter?: string; token?: string; prefixes: string[] };
    networkNames: Map<string, string>;
    datacenter: string;
    output?: string;
    keyFile?: string;
}

/** A usage mistake: printed with the hint to run --help, exit status 2. */
export class UsageError extends Error {}

interface Raw {
    boxes: string[];
    boxesFile?: string;
    user?: string;
    key?: string;
    hostKeys: Map<string, string>;
    knownHosts?: string;
    tofu: boolean;
    sudo: boolean;
    bmcs: Map<string, string>;
    consul?: string;
    consulDc?: string;
    prefixes: string[];
    networks: Map<string, string>;
    datacenter?: string;
    output?: string;
}

function pair(flag: string, v: string): [string, string] {
    const i = v.indexOf("=");
    if (i <= 0 || i === v.length - 1) throw new UsageError(`${flag} takes NAME=VALUE, got ${JSON.stringify(v)}`);
    return [v.slice(0, i), v.slice(i + 1)];
}

function readArgs(args: string[]): Raw | "help" {
    const raw: Raw = { boxes: [], hostKeys: new Map(), tofu: false, sudo: false, bmcs: new Map(), prefixes: [], networks: new Map() };
    for (let i = 0; i < args.length; i++) {
        const a = args[i];
        const value = (): string => {
            const v = args[++i];
            if (v === undefined) throw new UsageError(`${a} needs a value`);
            return v;
        };
        switch (a) {
            case "-h": case "--help": return "help";
            case "--boxes": raw.boxesFile = value(); break;
            case "--user": raw.user = value(); break;
            case "--key": raw.key = value(); break;
            case "--host-key": { const [b, k] = pair(a, value()); raw.hostKeys.set(b, k); break; }
            case "--known-hosts": raw.knownHosts = value(); break;
            case "--trust-on-first-use": raw.tofu = true; break;
            case "--sudo": raw.sudo = true; break;
            case "--bmc": { const [b, addr] = pair(a, value()); raw.bmcs.set(b, addr); break; }
            case "--consul": raw.consul = value(); break;
            case "--consul-datacenter": raw.consulDc = value(); break;
            case "--kv-prefix": raw.prefixes.push(value()); break;
            case "--network": { const [name, cidr] = pair(a, value()); raw.networks.set(cidr, name); break; }
            case "--datacenter": raw.datacenter = value(); break;
            case "-o": case "--output": raw.output = value(); break;
            default:
                if (a.startsWith("-")) throw new UsageError(`unknown option ${a}`);
                raw.boxes.push(a);
        }
    }
    return raw;
}

/** `user@host:port` → its parts (an IPv6 address in brackets). */
function parseBox(text: string): { host: string; port?: number; user?: string } {
    const m = /^(?:([^@]+)@)?(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(text);
    if (!m) throw new UsageError(`${JSON.stringify(text)} is not a box (ADDRESS, ADDRESS:PORT or USER@ADDRESS[:PORT])`);
    const out: { host: string; port?: number; user?: string } = { host: m[2].replace(/^\[|\]$/g, "") };
    if (m[1]) out.user = m[1];
    if (m[3]) out.port = Number(m[3]);
    return out;
}

/** Host keys of an OpenSSH known_hosts file (plain host names, `[host]:port` too; hashed lines are skipped). */
export function parseKnownHosts(text: string): Map<string, string> {
    const out = new Map<string, string>();
    for (const line of text.split("\n")) {
        const [hosts, type, key] = line.trim().split(/\s+/);
        if (!hosts || hosts.startsWith("#") || hosts.startsWith("|") || !key) continue;
        for (const h of hosts.split(",")) out.set(h.replace(/^\[([^\]]+)\]:22$/, "$1"), `${type} ${key}`);
    }
    return out;
}

function readText(file: string, what: string): string {
    try {
        return fs.readFileSync(file, "utf8");
    } catch (err) {
        throw new UsageError(`cannot read ${what} ${file}: ${(err as Error).message}`);
    }
}

/** The options, every connection checked; a UsageError names the flag or field at fault. */
export function parseOptions(args: string[], env: NodeJS.ProcessEnv = process.env): DiscoverOptions | "help" {
    const raw = readArgs(args);
    if (raw === "help") return raw;
    const privateKey = raw.key ? readText(raw.key, "the key file") : undefined;
    const known = raw.knownHosts ? parseKnownHosts(readText(raw.knownHosts, "the known_hosts file")) : new Map<string, string>();
    const listed: Record<string, unknown>[] = raw.boxes.map((b) => ({ ...parseBox(b), label: b }));
    if (raw.boxesFile) {
        const parsed: unknown = parseYaml(readText(raw.boxesFile, "the boxes file"));
        if (!Array.isArray(parsed)) throw new UsageError(`${raw.boxesFile} must be a YAML list of boxes`);
        parsed.forEach((b, i) => listed.push({ ...(b as Record<string, unknown>), label: `${raw.boxesFile}[${i}]` }));
    }
    if (listed.length === 0) throw new UsageError("name at least one box to read");
    const v = new Validator();
    const boxes = listed.map((b, i) => {
        const { label, bmc, ...fields } = b as { label: string; bmc?: unknown } & Record<string, unknown>;
        const host = String(fields.host ?? "");
        const key = raw.hostKeys.get(label) ?? raw.hostKeys.get(host) ?? known.get(fields.port && fields.port !== 22 ? `[${host}]:${fields.port}` : host);
        const conn = checkHostConnection(v, raw.boxesFile && i >= raw.boxes.length ? label : `box ${label}`, {
            user: raw.user,
            ...(privateKey ? { privateKey } : {}),
            ...(key ? { hostKey: key } : {}),
            ...(raw.tofu ? { trustOnFirstUse: true } : {}),
            ...(raw.sudo ? { sudo: true } : {}),
            // A box that does not answer is reported quickly; the others go on.
            dialErrorLimit: 2,
            perDialTimeout: 10,
            ...fields,
        });
        const bmcAddress = (bmc as string | undefined) ?? raw.bmcs.get(label) ?? raw.bmcs.get(host);
        return { conn: conn as HostConnection, label, ...(bmcAddress ? { bmc: bmcAddress } : {}) };
    });
    if (!v.ok) throw new UsageError(v.failures.map((f) => `${f.field}: ${f.reason}`).join("\n"));
    for (const b of boxes) {
        if (!b.conn.hostKey && !b.conn.trustOnFirstUse) {
            throw new UsageError(`box ${b.label}: no host key is pinned; pin it (--host-key, --known-hosts, hostKey in --boxes) or pass --trust-on-first-use`);
        }
    }
    const out: DiscoverOptions = { boxes, networkNames: raw.networks, datacenter: raw.datacenter ?? "discovered" };
    if (!/^[a-z][a-z0-9-]{0,30}$/.test(out.datacenter)) throw new UsageError(`--datacenter ${JSON.stringify(out.datacenter)} must be lower-case letters, digits and '-'`);
    for (const [cidr, name] of raw.networks) {
        if (!/^[a-z][a-z0-9]{0,6}$/.test(name)) throw new UsageError(`--network ${name}=${cidr}: a network name is lower-case letters and digits, at most 7 characters`);
        if (!/^[0-9.]+\/[0-9]{1,2}$/.test(cidr)) throw new UsageError(`--network ${name}=${cidr}: ${cidr} is not an IPv4 network like 198.51.100.0/24`);
    }
    if (raw.output) out.output = raw.output;
    if (raw.key) out.keyFile = raw.key;
    if (raw.consul) {
        out.consul = { address: raw.consul.includes(":") ? raw.consul : `${raw.consul}:8500`, prefixes: raw.prefixes };
        if (raw.consulDc) out.consul.datacenter = raw.consulDc;
        if (env.CONSUL_HTTP_TOKEN) out.consul.token = env.CONSUL_HTTP_TOKEN;
    } else if (raw.prefixes.length > 0) {
        throw new UsageError("--kv-prefix needs --consul");
    }
    return out;
}
