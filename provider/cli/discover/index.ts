// `baremetal discover`: reads a running site into an inventory (see options.ts
// for the command line). Boxes are read in parallel through read-only hosts
// (provider/host/readOnly.ts); one that cannot be reached is reported and left
// out, the others are still read.
import * as fs from "fs";
import { consulClient, ConsulConnection } from "../../consul/client";
import { Host, HostConnection, Remote, SshPool } from "../../host";
import { ReadOnlyRemote } from "../../host/readOnly";
import type { Subcommand } from "../subcommand";
import { buildInventory, Discovered, DiscoverInput, Note, Unreachable } from "./inventory";
import { discoverHelp, DiscoverOptions, parseOptions, UsageError } from "./options";
import { renderInventory } from "./render";
import { BoxReport, surveyBox } from "./survey";

/** Where discover's hosts and Consul come from: real ones in production, doubles in the unit tier. */
export interface DiscoverWorld {
    /** A host to read; `hostKey()` is the key the box showed (after the first command). */
    host(conn: HostConnection): { remote: Remote; hostKey(): string | undefined };
    consulKv(conn: ConsulConnection): { tree(prefix: string): Promise<Map<string, string>> };
    /** Progress lines (stderr). */
    progress(line: string): void;
    close(): Promise<void>;
}

export function productionWorld(): DiscoverWorld {
    const pool = new SshPool();
    return {
        host(conn) {
            const host = new Host(conn, { pool });
            return { remote: host, hostKey: () => host.hostKeySeen?.key };
        },
        // Only the K/V read is handed out: discover holds no way to write to Consul.
        consulKv: (conn) => ({ tree: (prefix) => consulClient(conn).kv.tree(prefix) }),
        progress: (line) => process.stderr.write(`discover: ${line}\n`),
        close: () => pool.closeAll(),
    };
}

export interface DiscoverResult {
    discovered: Discovered;
    yaml: string;
    reports: BoxReport[];
    unreachable: Unreachable[];
    /** Per box: seconds and commands. */
    figures: { box: string; seconds: number; commands: number }[];
}

/** Boxes read at once. */
const parallelBoxes = 4;

/** Key names whose values look like secrets: never written; a note names them. */
const secretLike = /(pass(word)?|secret|token|private|credential|key)$/i;

export async function discover(options: DiscoverOptions, world: DiscoverWorld, when = new Date()): Promise<DiscoverResult> {
    const reports: BoxReport[] = [];
    const unreachable: Unreachable[] = [];
    const figures: DiscoverResult["figures"] = [];
    const hostKeys = new Map<string, string>();
    const queue = [...options.boxes];
    const worker = async () => {
        for (let box = queue.shift(); box; box = queue.shift()) {
            const started = Date.now();
            world.progress(`${box.label}: reading`);
            const { remote, hostKey } = world.host(box.conn);
            const readOnly = new ReadOnlyRemote(remote);
            try {
                const report = await surveyBox(readOnly, box.conn.host);
                reports.push(report);
                hostKeys.set(box.conn.host, box.conn.hostKey ?? hostKey() ?? "");
                const seconds = (Date.now() - started) / 1000;
                figures.push({ box: box.label, seconds, commands: readOnly.sent });
                world.progress(`${box.label} (${report.survey.hostname}): ${summaryOf(report)} in ${seconds.toFixed(1)} s, ${readOnly.sent} command(s)`);
            } catch (err) {
                const message = (err as Error).message.split("\n")[0];
                unreachable.push({ address: box.label, error: message });
                world.progress(`${box.label}: NOT READ: ${message}`);
            }
        }
    };
    await Promise.all(Array.from({ length: Math.min(parallelBoxes, options.boxes.length) }, worker));
    // In the order given, whatever order they finished in.
    const order = (address: string) => options.boxes.findIndex((b) => b.conn.host === address);
    reports.sort((a, b) => order(a.address) - order(b.address));
    const consulNotes: Note[] = [];
    const input: DiscoverInput = {
        datacenter: options.datacenter,
        sshUser: options.boxes[0].conn.user ?? "root",
        hostKeys,
        ports: new Map(options.boxes.filter((b) => b.conn.port).map((b) => [b.conn.host, b.conn.port as number])),
        bmcs: new Map(options.boxes.filter((b) => b.bmc).map((b) => [b.conn.host, b.bmc as string])),
        networkNames: options.networkNames,
    };
    if (options.consul) input.consul = await readConsul(options.consul, world, consulNotes);
    const discovered = buildInventory(reports, unreachable, input);
    discovered.notes.push(...consulNotes);
    discovered.counts.notes = discovered.notes.length;
    const yaml = renderInventory(discovered, { boxes: options.boxes.map((b) => b.label), when, ...(options.keyFile ? { keyFile: options.keyFile } : {}) });
    return { discovered, yaml, reports, unreachable, figures };
}

async function readConsul(c: NonNullable<DiscoverOptions["consul"]>, world: DiscoverWorld, notes: Note[]): Promise<NonNullable<DiscoverInput["consul"]>> {
    const conn: ConsulConnection = { address: c.address, ...(c.token ? { token: c.token } : {}), ...(c.datacenter ? { datacenter: c.datacenter } : {}) };
    const out: NonNullable<DiscoverInput["consul"]> = { address: c.address, keys: [], ...(c.datacenter ? { datacenter: c.datacenter } : {}) };
    for (const raw of c.prefixes) {
        const prefix = raw.endsWith("/") ? raw : `${raw}/`;
        try {
            const tree = await world.consulKv(conn).tree(prefix);
            const keys = new Map<string, string>();
            const secret: string[] = [];
            for (const [k, v] of tree) {
                const rel = k.slice(prefix.length);
                if (rel === "" || rel.endsWith("/")) continue;
                if (secretLike.test(rel)) secret.push(rel);
                else keys.set(rel, v);
            }
            out.keys.push({ prefix, keys });
            world.progress(`consul ${c.address}: ${keys.size} key(s) under ${prefix}`);
            if (secret.length > 0) notes.push({ where: "consul", what: `keys ${secret.map((k) => prefix + k).join(", ")}`, why: "their names say they hold secrets, so their values are not written; they are left as they are (declare them in a ConsulKeys' secrets from stack config to manage them)" });
        } catch (err) {
            const message = (err as Error).message.split("\n")[0];
            world.progress(`consul ${c.address}: NOT READ under ${prefix}: ${message}`);
            notes.push({ where: "consul", what: `K/V under ${prefix}`, why: `it could not be read: ${message}` });
        }
    }
    return out;
}

function summaryOf(r: BoxReport): string {
    const n = (count: number, what: string) => `${count} ${what}${count === 1 ? "" : "s"}`;
    const exportsN = r.survey.nbdConfigs.reduce((k, f) => k + Object.keys(f.config).filter((s) => s !== "generic" && f.config[s].exportname).length, 0);
    return [
        n(r.survey.nics.filter((x) => x.kind === "physical").length, "NIC"),
        n(r.survey.disks.length, "disk"),
        n(r.arrays.length, "md array"),
        n(r.survey.vgs.length, "volume group"),
        n(exportsN, "NBD export"),
        n(r.guests.length, "guest"),
        n(r.containers.length, "container"),
        n(r.survey.ovsBridges.size, "OVS bridge"),
        n(r.survey.osds.length, "OSD"),
    ].join(", ");
}

export const command: Subcommand = {
    summary: "read a running site (boxes over SSH, Consul) into an inventory, only reading",
    async run(args: string[]): Promise<number> {
        let options: DiscoverOptions | "help";
        try {
            options = parseOptions(args);
        } catch (err) {
            if (!(err instanceof UsageError)) throw err;
            process.stderr.write(`baremetal discover: ${err.message}\n(baremetal discover --help for the options)\n`);
            return 2;
        }
        if (options === "help") {
            process.stdout.write(discoverHelp);
            return 0;
        }
        const world = productionWorld();
        try {
            const started = Date.now();
            const result = await discover(options, world);
            if (options.output) fs.writeFileSync(options.output, result.yaml, { mode: 0o644 });
            else process.stdout.write(result.yaml);
            const c = result.discovered.counts;
            world.progress(
                `${result.reports.length} of ${options.boxes.length} box(es) read in ${((Date.now() - started) / 1000).toFixed(1)} s: ` +
                    `${c.machines} machine(s), ${c.raid} md array(s), ${c.volumeGroups} SAN volume group(s), ${c.volumes} volume(s), ${c.guests} guest(s), ` +
                    `${c.containers} container(s), ${c.osds} OSD(s), ${c.consulKeys} K/V key(s); ${c.notes} note(s)${options.output ? `; written to ${options.output}` : ""}`,
            );
            // Some boxes unread: the inventory is still written, and the exit status says it is partial.
            return result.unreachable.length > 0 ? 1 : 0;
        } finally {
            await world.close();
        }
    },
};
