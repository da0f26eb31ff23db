// The QMP client that runs ON the guest's box. QMP is a Unix socket there, so the
// provider reaches it through the host layer (one SSH command, the requests on
// stdin) instead of opening a second transport. The script is a constant: the
// socket path and timeouts arrive as argv, the requests as JSON on stdin.
//
// Modes (argv after the script):
//   call SOCKET                      stdin: JSON list of {execute, arguments?};
//                                    stdout: JSON list of the replies, in order.
//   powerdown SOCKET TIMEOUT_S [FILE] system_powerdown, wait until qemu exits; after
//                                    the timeout, quit. Prints (and writes to FILE)
//                                    "powered-off S" or "quit S".
//   wait-tcp HOST PORT TIMEOUT_S     wait until HOST:PORT accepts a connection (a guest's
//                                    NBD server, before qemu starts on OpenRC)
//   migrate SOCKET URI TIMEOUT_S     migrate to URI and poll query-migrate until it
//                                    ends; prints the final query-migrate reply.
//   wait SOCKET TIMEOUT_S            until QMP answers; prints query-status.
// Exit 3: no qemu listens on SOCKET (the guest is not running).
import { initSystemOf } from "../host/family";
import type { OsFamily } from "../host/family";

export const qmpScript = String.raw`import json, select, socket, sys, time

NOT_RUNNING = 3

class Qmp:
    def __init__(self, path, timeout=30):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.reader = self.sock.makefile("rb")
        self.greeting = self.read()
        self.call("qmp_capabilities")

    def read(self):
        line = self.reader.readline()
        if not line:
            raise EOFError("qemu closed the QMP socket")
        return json.loads(line)

    def call(self, execute, arguments=None):
        msg = {"execute": execute}
        if arguments is not None:
            msg["arguments"] = arguments
        self.sock.sendall((json.dumps(msg) + "\n").encode())
        while True:
            reply = self.read()
            # Asynchronous events (SHUTDOWN, MIGRATION ...) interleave with replies.
            if "return" in reply or "error" in reply:
                return reply

    def closed_within(self, seconds):
        """True when qemu closes the socket (it exited) within the time."""
        deadline = time.time() + seconds
        while True:
            left = deadline - time.time()
            if left <= 0:
                return False
            readable, _, _ = select.select([self.sock], [], [], left)
            if readable:
                try:
                    if not self.sock.recv(65536):
                        return True
                except OSError:
                    return True

    def close(self):
        self.reader.close()
        self.sock.close()

def connect(path, timeout=30):
    try:
        return Qmp(path, timeout)
    except (FileNotFoundError, ConnectionRefusedError):
        sys.exit(NOT_RUNNING)

def main(mode, path, *rest):
    if mode == "call":
        requests = json.load(sys.stdin)
        q = connect(path)
        print(json.dumps([q.call(r["execute"], r.get("arguments")) for r in requests]))
    elif mode == "powerdown":
        limit = float(rest[0])
        q = connect(path)
        started = time.time()
        q.call("system_powerdown")
        outcome = "powered-off"
        if not q.closed_within(limit):
            outcome = "quit"
            # Raw reads above may have split a reply: quit on a fresh connection.
            q.close()
            try:
                Qmp(path, 10).call("quit")
            except (EOFError, OSError):
                pass
        line = "%s %.1f" % (outcome, time.time() - started)
        print(line)
        if len(rest) > 1:
            with open(rest[1], "w") as f:
                f.write(line + "\n")
    elif mode == "migrate":
        uri, limit = rest[0], float(rest[1])
        q = connect(path)
        reply = q.call("migrate", {"uri": uri})
        if "error" in reply:
            print(json.dumps(reply))
            return
        deadline = time.time() + limit
        while True:
            reply = q.call("query-migrate")
            status = reply.get("return", {}).get("status")
            if status in ("completed", "failed", "cancelled") or time.time() > deadline:
                print(json.dumps(reply))
                return
            time.sleep(0.05)
    elif mode == "wait":
        deadline = time.time() + float(rest[0])
        while True:
            try:
                q = Qmp(path, 5)
                print(json.dumps(q.call("query-status")))
                return
            except (OSError, EOFError):
                if time.time() > deadline:
                    sys.exit(NOT_RUNNING)
                time.sleep(0.2)
    elif mode == "wait-tcp":
        # path is a host here: wait until HOST:PORT accepts a connection (an NBD server at boot)
        deadline = time.time() + float(rest[1])
        while True:
            try:
                socket.create_connection((path, int(rest[0])), 5).close()
                return
            except OSError:
                if time.time() > deadline:
                    sys.exit("%s:%s did not answer within %ss" % (path, rest[0], rest[1]))
                time.sleep(1)
    else:
        sys.exit("unknown mode " + mode)

main(*sys.argv[1:])
`;

/** Where the plans install the script, for the init system's graceful stop (systemd boxes). */
export const qmpScriptPath = "/usr/local/libexec/baremetal-qmp";

/**
 * Where the script lives on a family's boxes. OpenRC boxes may be diskless, where
 * only /etc survives a reboot (`lbu commit`, or the "debian-openrc" /etc
 * archive): there it is under /etc, or a rebooted box would start its guests
 * with a stop command that no longer exists (found by a power cycle of the
 * lab's OpenRC box).
 */
export function qmpScriptPathOn(family: OsFamily): string {
    return initSystemOf(family) === "openrc" ? "/etc/baremetal/libexec/baremetal-qmp" : qmpScriptPath;
}

/** The script as an executable file (ExecStop / stop_pre call it on box shutdown). */
export function qmpScriptFile(): string {
    return `#!/usr/bin/python3\n# Installed by pulumi-baremetal: a QMP client for the guests' graceful stop.\n${qmpScript}`;
}

/** Exit status of the script when no qemu listens on the socket. */
export const qmpNotRunning = 3;
