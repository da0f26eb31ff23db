import * as pulumi from "@pulumi/pulumi";
import { ConsulKeys } from "pulumi-baremetal";

const config = new pulumi.Config();

const dns = new ConsulKeys("dns01-config", {
    consul: { address: config.get("consulAddress") ?? "127.0.0.1:8500" },
    prefix: "config/dns01/",
    keys: {
        listen: config.get("listen") ?? "192.0.2.53",
        "forwarders/0": "192.0.2.1",
    },
    secrets: {
        "tsig/key": config.requireSecret("tsigKey"),
    },
});

export const prefix = dns.prefix;
export const keys = dns.keys;
