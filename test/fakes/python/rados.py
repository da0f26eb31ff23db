# A FAKE python3-rados for the unit tier (test/unit/cephClient.test.ts): no Ceph cluster runs on
# the test machine and its python3 has no rados module. It models only what the provider's
# client (provider/resources/cephOsd/client.ts) uses: Rados(clustername, conffile), connect,
# mon_command / mgr_command returning (ret, outbuf, outs), shutdown, and rados.Error.
# The answers come from $FAKE_RADOS (JSON): {"connect": "<error text>" (optional),
#   "answers": {"<mon|mgr> <prefix>": [ret, "outbuf", "outs"]}}; every call is appended to
# $FAKE_RADOS_CALLS, one JSON line each. The lab proves the client on a real cluster.
import json
import os


class Error(Exception):
    pass


class Rados:
    def __init__(self, clustername=None, conffile=None, **kwargs):
        self.config = json.loads(os.environ.get("FAKE_RADOS", "{}"))
        self.log({"call": "init", "clustername": clustername, "conffile": conffile})

    def log(self, entry):
        with open(os.environ["FAKE_RADOS_CALLS"], "a") as f:
            f.write(json.dumps(entry) + "\n")

    def connect(self, timeout=0):
        self.log({"call": "connect", "timeout": timeout})
        if "connect" in self.config:
            raise Error(self.config["connect"])

    def command(self, to, cmd, inbuf, timeout):
        c = json.loads(cmd)
        self.log({"call": to, "cmd": c, "timeout": timeout})
        ret, out, outs = self.config["answers"].get("%s %s" % (to, c["prefix"]), [-22, "", "unknown command %s" % c["prefix"]])
        return ret, out.encode(), outs

    def mon_command(self, cmd, inbuf, timeout=0, target=None):
        return self.command("mon", cmd, inbuf, timeout)

    def mgr_command(self, cmd, inbuf, timeout=0, target=None):
        return self.command("mgr", cmd, inbuf, timeout)

    def shutdown(self):
        self.log({"call": "shutdown"})
