import * as pulumi from "@pulumi/pulumi";
import type { DhcpLease } from "../provider/parsers/dnsmasq";
import type { HostConnection } from "../provider/host";
import type { PxeProfile, PxeServerInputs, PxeServerState, StandbyConfig } from "../provider/resources/pxeServer";
import { ConnectionArgs, secretConnection } from "./connection";
import { BaremetalResource, OutputOnly, outputsOf } from "./provider";

/** Outputs that are not inputs, and inputs the provider defaults (see outputsOf). */
const pxeOutputs: OutputOnly<PxeServerState, PxeServerInputs> = { family: undefined, baseUrl: undefined, dhcpRole: undefined, leases: undefined, files: undefined };
const pxeDefaults = ["interface", "gateway", "dnsServers", "domain", "leaseSeconds", "httpPort", "ipxeBootloaders", "adopt"];

/** Where a profile file comes from: a URL the PXE box downloads (optionally checked), or a file already on the box. */
export type FileSourceArgs = { url: pulumi.Input<string>; sha256?: pulumi.Input<string> } | { path: pulumi.Input<string> };

/** One boot profile, e.g. the seed's `pxeboot`, `default` and `lxc-repo`. */
export interface PxeProfileArgs {
    /** `alpine` (default: diskless, apkovl overlay) or `debian` (kernel, initrd and a command line). */
    kind?: pulumi.Input<"alpine" | "debian">;
    kernel: pulumi.Input<FileSourceArgs>;
    initramfs: pulumi.Input<FileSourceArgs>;
    /** Alpine's modloop (the kernel modules squashfs): `modloop=` on the command line. */
    modloop?: pulumi.Input<FileSourceArgs>;
    /** Alpine package repository: `alpine_repo=`. */
    repository?: pulumi.Input<string>;
    /**
     * Alpine apkovl content: relative path (`etc/hostname`, `etc/local.d/10-consul.start`)
     * to file content. Built into `<profile>.apkovl.tar.gz` (a real tar.gz, the same bytes
     * for the same content) and given to the kernel as `apkovl=`.
     */
    overlay?: pulumi.Input<Record<string, pulumi.Input<string>>>;
    /** Extra kernel arguments for every machine of this profile (one word each). */
    cmdline?: pulumi.Input<pulumi.Input<string>[]>;
}

/** Standby mode: DHCP runs only while this server holds a Consul lock (leader election). */
export interface StandbyArgs {
    /** K/V prefix of the lock the group of PXE servers competes for; `baremetal/pxe/leader` when omitted. */
    lockKey?: pulumi.Input<string>;
    /** The Consul agent as the PXE box reaches it; `127.0.0.1:8500` when omitted. */
    consulAddress?: pulumi.Input<string>;
    /** Path of the consul binary on the box; `/usr/bin/consul` when omitted. */
    consulBinary?: pulumi.Input<string>;
    /** ACL token with key and session write access (a secret). */
    token?: pulumi.Input<string>;
}

export interface PxeServerArgs {
    /** The PXE box. Changing its host replaces the server. */
    connection: pulumi.Input<ConnectionArgs>;
    /** Instance name (paths, service names); several may share a box. Defaults to the resource name. Changing it replaces. */
    name?: pulumi.Input<string>;
    /** The box's address on the boot network (DHCP next-server, HTTP host). */
    address: pulumi.Input<string>;
    /** Interface to serve DHCP on; `eth0` when omitted. */
    interface?: pulumi.Input<string>;
    /** The boot network, e.g. `198.51.100.0/24`. Leases are static: only declared Machines get one. */
    subnet: pulumi.Input<string>;
    gateway?: pulumi.Input<string>;
    dnsServers?: pulumi.Input<pulumi.Input<string>[]>;
    domain?: pulumi.Input<string>;
    /** Lease time; 3600 when omitted. */
    leaseSeconds?: pulumi.Input<number>;
    /** Port of the HTTP server; 80 when omitted. */
    httpPort?: pulumi.Input<number>;
    /** Copy iPXE's undionly.kpxe and ipxe.efi into the TFTP root (package `ipxe`), for NICs without iPXE firmware. Default true. */
    ipxeBootloaders?: pulumi.Input<boolean>;
    /** Boot profiles by name. */
    profiles: pulumi.Input<Record<string, pulumi.Input<PxeProfileArgs>>>;
    /** Serve DHCP only while holding a Consul lock, so that N servers give N-fold redundancy. */
    standby?: pulumi.Input<StandbyArgs>;
    /** Take over an existing instance's files that pulumi-baremetal did not write. */
    adopt?: pulumi.Input<boolean>;
}

/**
 * A PXE server: dnsmasq (static DHCP leases by MAC, TFTP) and an HTTP server for the
 * iPXE scripts and each profile's kernel, initramfs, modloop and apkovl.
 * ID: `<name>@<host>`.
 */
export class PxeServer extends BaremetalResource {
    declare readonly connection: pulumi.Output<HostConnection>;
    declare readonly name: pulumi.Output<string>;
    declare readonly address: pulumi.Output<string>;
    declare readonly subnet: pulumi.Output<string>;
    declare readonly profiles: pulumi.Output<Record<string, PxeProfile>>;
    declare readonly standby: pulumi.Output<StandbyConfig | undefined>;
    /** `http://ADDRESS[:PORT]`: the root of what the server serves. */
    declare readonly baseUrl: pulumi.Output<string>;
    /** `active` (serving DHCP), `standby` (waiting for the lock) or `stopped`, as last read. */
    declare readonly dhcpRole: pulumi.Output<"active" | "standby" | "stopped">;
    /** dnsmasq's leases as last read. */
    declare readonly leases: pulumi.Output<DhcpLease[]>;
    /** OS family of the box. */
    declare readonly family: pulumi.Output<"alpine" | "debian">;
    /** sha256 of each generated file as last read ("missing" when gone): edits by hand show here. */
    declare readonly files: pulumi.Output<Record<string, string>>;

    constructor(name: string, args: PxeServerArgs, opts?: pulumi.CustomResourceOptions) {
        const standby = args.standby === undefined ? undefined : pulumi.output(args.standby).apply((s) => (s.token === undefined ? s : { ...s, token: pulumi.secret(s.token) }));
        super(
            "PxeServer",
            name,
            {
                ...outputsOf(pxeDefaults),
                ...args,
                name: args.name ?? name,
                connection: secretConnection(args.connection),
                standby,
                ...outputsOf(pxeOutputs),
            },
            { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "connection", "standby"] },
        );
    }
}
