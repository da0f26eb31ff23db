// CephOsd, part client: the cluster's monitors and manager asked through ONE librados
// client per command batch, instead of one `ceph` CLI run per command.
//
// Why: the `ceph` CLI is a Python program that, on every run, imports its argument
// parser, connects, and fetches and parses the daemons' whole command table before it
// sends anything. On a small box that is most of the cost of a read: measured on the
// lab's ceph1 (one emulated vCPU), `ceph osd dump -f json` 2.7-4 s, `ceph --version`
// alone 1.0 s, a librados client sending the same command 1.2 s. Every refresh and
// preview of an OSD reads the maps, and a delete asks safe-to-destroy until it agrees.
//
// What it needs: python3 and its `rados` module, the module the `ceph` CLI itself runs
// on (Debian's ceph-common depends on python3-rados; the CLI cannot start without it),
// so every box where the CLI works has it. It reads the same files the CLI reads
// (/etc/ceph/CLUSTER.conf and the admin keyring the conf or the default path names)
// and prints what the CLI prints: each command's output on stdout (a JSON answer on
// one line, which the manager's are not always as it sends them); Ceph's status words
// on stderr, as "Error EBUSY: ..." when a command fails; and exits with the failing
// command's errno (16 for EBUSY, 11 for EAGAIN), as the CLI does.
import { clusterFiles, connectTimeoutSeconds } from "./plan";

/**
 * One command in the JSON form the daemons take (and the CLI sends): `prefix` is the
 * command's words, the rest its named arguments, e.g. `{ prefix: "osd dump", format: "json" }`.
 */
export interface CephCommand {
    prefix: string;
    [argument: string]: string | number | boolean | string[];
}

/** The commands the manager serves rather than the monitors. */
export function servedByManager(c: CephCommand): boolean {
    return c.prefix === "osd safe-to-destroy" || c.prefix === "osd ok-to-stop" || c.prefix.startsWith("pg ");
}

// Python without a single quote in it: it is embedded in single quotes in shell scripts.
const python = [
    "import errno, json, sys",
    "cluster, conf, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3])",
    "commands = json.load(sys.stdin)",
    "try:",
    "    import rados",
    "except ImportError as e:",
    "    sys.exit(\"python3 cannot import rados (python3-rados, which the ceph CLI runs on): %s\" % e)",
    "client = rados.Rados(clustername=cluster, conffile=conf)",
    "try:",
    "    client.connect(timeout=timeout)",
    "except rados.Error as e:",
    "    sys.exit(\"error connecting to cluster %s within %ss: %s\" % (cluster, timeout, e))",
    "try:",
    "    for cmd in commands:",
    "        send = client.mgr_command if cmd.pop(\"_manager\", False) else client.mon_command",
    "        ret, out, status = send(json.dumps(cmd), b\"\", timeout=timeout)",
    "        text = out.decode(\"utf-8\", \"replace\").strip()",
    "        if text and cmd.get(\"format\") == \"json\":",
    "            # the manager pretty-prints some (pg stat ends in a newline and a brace): one line each",
    "            text = json.dumps(json.loads(text), ensure_ascii=False, separators=(\",\", \":\"))",
    "        if text:",
    "            sys.stdout.write(text + \"\\n\")",
    "        if ret != 0:",
    "            sys.stderr.write(\"Error %s: %s\\n\" % (errno.errorcode.get(-ret, str(-ret)), status))",
    "            sys.stdout.flush()",
    "            sys.exit(-ret if 0 < -ret < 256 else 1)",
    "        if status:",
    "            sys.stderr.write(status.rstrip(\"\\n\") + \"\\n\")",
    "finally:",
    "    client.shutdown()",
].join("\n");

/** The client as one shell command: `python3 -c '...' CLUSTER CONF TIMEOUT`, the commands on its stdin. */
export const clientCommand = `python3 -c '${python}'`;

// Run as `sh -c <baremetal-ceph-client> CLUSTER CONF TIMEOUT` so that logs and errors show
// the constant script by name (see briefCommand), not its Python.
const clientScript = `exec ${clientCommand} "$@"`;

export function clientArgv(cluster: string): string[] {
    return ["sh", "-c", clientScript, "baremetal-ceph-client", cluster, clusterFiles(cluster).conf, String(connectTimeoutSeconds)];
}

/** What the client reads on stdin for these commands (the manager's marked for it). */
export function clientInput(commands: readonly CephCommand[]): string {
    return JSON.stringify(commands.map((c) => (servedByManager(c) ? { ...c, _manager: true } : c)));
}
