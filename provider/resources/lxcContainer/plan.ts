// LxcContainer, part plan: create, config, start, stop, provision and destroy
// as steps (no I/O).
import { Plan, step } from "../../host";
import { distributionOf } from "../../host";
import type { OsFamily, Step } from "../../host";
import { configPath, configScript, createdMarker, createLock, fileScript, managedBlock, rootfsConfig } from "./render";
import type { LxcContainerInputs } from "./spec";

export function packagesFor(c: LxcContainerInputs, family: OsFamily): string[] {
    const nfs = c.mounts.some((m) => m.type.startsWith("nfs"));
    return distributionOf(family) === "alpine"
        ? ["lxc", ...(c.template ? ["lxc-templates"] : []), ...(nfs ? ["nfs-utils"] : [])]
        : ["lxc", ...(c.template ? ["lxc-templates"] : []), ...(nfs ? ["nfs-common"] : [])];
}

/** Packages, kernel modules for veth and bridges, then the container itself. */
export function planCreate(c: LxcContainerInputs, family: OsFamily): Plan {
    const empty = `/run/baremetal-lxc-${c.name}.conf`;
    const make: Plan = c.template
        ? [
              // An empty config for lxc-create: the box's default.conf must not add a network of its own.
              step.writeFile(empty, `${createdMarker(c.name)}\n# network and the rest: the managed block\n`),
              step.run(["lxc-create", "-q", "-n", c.name, "-t", c.template, "-f", empty, ...(c.templateArgs.length > 0 ? ["--", ...c.templateArgs] : [])], {
                  what: `create container ${c.name} from template ${c.template}`,
                  timeoutMs: 30 * 60_000,
                  lock: createLock(c.name),
              }),
              step.removeFile(empty),
          ]
        : [step.writeFile(configPath(c.name), rootfsConfig(c))];
    return [
        step.ensurePackages(...packagesFor(c, family)),
        step.run(["modprobe", "-a", "veth", "bridge"], { okExitCodes: [0, 1], changes: false, what: "load the veth and bridge modules" }),
        ...make,
        planConfig(c),
        step.persist(),
    ];
}

/** The step create and update ask about: "config" (the managed block changed, so a running container restarts). */
export type LxcContainerStep = "config";

export function planConfig(c: LxcContainerInputs): Step<LxcContainerStep> {
    return step.run(["sh", "-c", configScript, "baremetal-lxc-config", configPath(c.name)], {
        stdin: managedBlock(c),
        what: `write ${c.name}'s network, mounts, autostart and limits`,
        tag: "config",
    });
}

export function planStart(c: LxcContainerInputs): Plan {
    return [
        step.run(["lxc-start", "-n", c.name], { what: `start ${c.name}` }),
        step.run(["lxc-wait", "-n", c.name, "-s", "RUNNING", "-t", String(c.timeoutSeconds)], { timeoutMs: (c.timeoutSeconds + 30) * 1000, what: `wait until ${c.name} is RUNNING` }),
    ];
}

/** Clean halt (the container's init), killed after the timeout. */
export function planStop(c: Pick<LxcContainerInputs, "name" | "timeoutSeconds">): Plan {
    return [step.run(["lxc-stop", "-n", c.name, "-t", String(c.timeoutSeconds)], { okExitCodes: [0, 2], timeoutMs: (c.timeoutSeconds + 30) * 1000, what: `stop ${c.name} (up to ${c.timeoutSeconds}s, then kill)` })];
}

export function planProvision(c: LxcContainerInputs): Plan {
    return [
        ...c.files.map((f) => step.run(["lxc-attach", "-n", c.name, "--", "/bin/sh", "-c", fileScript, "baremetal-lxc-file", f.path, f.mode], { stdin: f.content, what: `write ${f.path} in ${c.name}` })),
        ...c.commands.map((argv) => step.run(["lxc-attach", "-n", c.name, "--", ...argv], { what: `run in ${c.name}: ${argv.join(" ").slice(0, 80)}` })),
    ];
}

/**
 * lxc-destroy deletes the rootfs too: right for a template's, wrong for a
 * rootfs that was on the box before (that only loses its config).
 */
export function planDestroy(c: Pick<LxcContainerInputs, "name" | "rootfs" | "timeoutSeconds">): Plan {
    return [
        ...planStop(c),
        c.rootfs
            ? step.run(["sh", "-c", 'rm -f "$1/config" && rmdir "$1"', "baremetal-lxc-forget", `/var/lib/lxc/${c.name}`], { what: `remove ${c.name}'s config (its rootfs ${c.rootfs} stays)` })
            : step.run(["lxc-destroy", "-n", c.name], { what: `destroy ${c.name} and its rootfs`, lock: createLock(c.name) }),
        step.persist(),
    ];
}
