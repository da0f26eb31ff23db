import * as pulumi from "@pulumi/pulumi";
import { ConnectionArgs, secretConnection } from "./connection";
import type { LxcContainerInputs, LxcContainerState } from "../provider/resources/lxcContainer";
import { BaremetalResource, OutputOnly, outputsOf } from "./provider";

/** Outputs that are not inputs, and inputs the provider defaults (see outputsOf). */
const containerOutputs: OutputOnly<LxcContainerState, LxcContainerInputs> = { state: undefined, pid: undefined, addresses: undefined, configPath: undefined };
const containerDefaults = ["template", "templateArgs", "rootfs", "network", "mounts", "autostart", "limits", "files", "commands", "timeoutSeconds", "adopt"];

export interface LxcNicArgs {
    /** A Linux or Open vSwitch bridge on the box. */
    bridge: pulumi.Input<string>;
    hwaddr?: pulumi.Input<string>;
    /** Static IPv4 with prefix length, e.g. `198.18.1.50/24`. */
    ipv4?: pulumi.Input<string>;
    gateway?: pulumi.Input<string>;
}

export interface LxcMountArgs {
    /** A path on the box, or `server:/export` for NFS. */
    source: pulumi.Input<string>;
    /** Absolute path inside the container. */
    target: pulumi.Input<string>;
    /** `none` for a bind mount (default), or a file system type such as `nfs`. */
    type?: pulumi.Input<string>;
    /** Mount options (default `bind,create=dir`). */
    options?: pulumi.Input<string>;
}

export interface LxcFileArgs {
    /** Absolute path inside the container. */
    path: pulumi.Input<string>;
    content: pulumi.Input<string>;
    /** Octal mode (default 0644). */
    mode?: pulumi.Input<string>;
}

export interface LxcContainerArgs {
    /** The guest or box that runs the container. Changing its host replaces the container. */
    connection: pulumi.Input<ConnectionArgs>;
    name: pulumi.Input<string>;
    /** An LXC template (e.g. `busybox`, which needs no internet); changing it replaces the container. */
    template?: pulumi.Input<string>;
    templateArgs?: pulumi.Input<pulumi.Input<string>[]>;
    /** A root file system directory already on the box, instead of a template; kept on delete. */
    rootfs?: pulumi.Input<string>;
    network?: pulumi.Input<pulumi.Input<LxcNicArgs>[]>;
    mounts?: pulumi.Input<pulumi.Input<LxcMountArgs>[]>;
    /** lxc.start.auto (default true). */
    autostart?: pulumi.Input<boolean>;
    limits?: pulumi.Input<{ memoryMiB?: pulumi.Input<number>; cpuWeight?: pulumi.Input<number>; pids?: pulumi.Input<number> }>;
    /** Files written inside after every start this resource does, and when they change. */
    files?: pulumi.Input<pulumi.Input<LxcFileArgs>[]>;
    /** Commands (argv) run inside after the files; keep them idempotent. */
    commands?: pulumi.Input<pulumi.Input<pulumi.Input<string>[]>[]>;
    /** Seconds to wait for RUNNING, and for a clean halt before the kill (default 60). */
    timeoutSeconds?: pulumi.Input<number>;
    /** Take over an existing container of the same name. */
    adopt?: pulumi.Input<boolean>;
}

/**
 * An LXC container: network, mounts, autostart and limits are a managed block of
 * its config (a change restarts it); files and commands provision it. ID: `NAME@HOST`.
 */
export class LxcContainer extends BaremetalResource {
    declare readonly name: pulumi.Output<string>;
    /** RUNNING, STOPPED ... as lxc-info last said. */
    declare readonly state: pulumi.Output<string>;
    declare readonly pid: pulumi.Output<number | undefined>;
    /** IPv4 addresses lxc-info reports. */
    declare readonly addresses: pulumi.Output<string[]>;
    declare readonly configPath: pulumi.Output<string>;

    constructor(name: string, args: LxcContainerArgs, opts?: pulumi.CustomResourceOptions) {
        super("LxcContainer", name, { ...outputsOf(containerOutputs), ...outputsOf(containerDefaults), ...args, connection: secretConnection(args.connection) }, opts);
    }
}
