// Every shape of service the kinds describe, rendered for an OpenRC family: the
// fixture of the checks that run the scripts through BusyBox (test/host) and
// through OpenRC's own openrc-run (test/unit/openrcRun.test.ts).
import * as assert from "assert";
import { OsFamily, renderService, ServiceSpec } from "../../provider/host";
import { check as checkGuest, guestService, KvmGuestInputs } from "../../provider/resources/kvmGuest";
import { exportService } from "../../provider/resources/nbdVolume";
import { tunnelServiceSpec } from "../../provider/resources/ovsBridge";
import { check as checkPxe, pxeServices, PxeServerInputs } from "../../provider/resources/pxeServer";

/** [label, spec] for each kind's services, in the shapes they take (OVS and Linux NICs, IPv6 NBD, standby with a token ...). */
export function serviceSpecsOfTheKinds(family: OsFamily): [string, ServiceSpec][] {
    const connection = { host: "198.51.100.12", hostKey: "SHA256:" + "A".repeat(43), password: "pw" };
    const guest = (extra: Record<string, unknown>): KvmGuestInputs => {
        const r = checkGuest({}, { connection, name: "web01", memoryMiB: 512, nics: [{ bridge: "br-lan", mac: "52:54:00:ab:00:01" }], disks: [{ nbd: { host: "198.18.1.11", export: "web01-var" } }], ...extra });
        assert.deepStrictEqual(r.failures, []);
        return r.inputs as KvmGuestInputs;
    };
    const pxe = (extra: Record<string, unknown>): PxeServerInputs => {
        const r = checkPxe({}, { connection, name: "pxe-a", address: "198.18.0.2", interface: "eth1", subnet: "198.18.0.0/24", profiles: { a: { kind: "alpine", kernel: { path: "/srv/vmlinuz" }, initramfs: { path: "/srv/initramfs" } } }, ...extra });
        assert.deepStrictEqual(r.failures, []);
        return r.inputs as PxeServerInputs;
    };
    return [
        ["guest on OVS", guestService(guest({}), family)],
        [
            "guest on a Linux bridge, two NICs, local and IPv6 NBD disks",
            guestService(guest({ nics: [{ bridge: "br0", bridgeType: "linux", mac: "52:54:00:ab:00:01" }, { bridge: "br-lan", mac: "52:54:00:ab:00:02" }], disks: [{ device: "/dev/vg0/x", readOnly: true }, { nbd: { host: "2001:db8::11", export: "x" } }] }), family),
        ],
        ["tunnel dialling out", tunnelServiceSpec("br-storage", { name: "vpn-storage", key: "k", port: 1194, remote: "198.18.1.12", remotePort: 1195 }, family)],
        ["tunnel listening", tunnelServiceSpec("br-storage", { name: "vpn2", key: "k", port: 1194 }, family)],
        ["NBD export", exportService("vg0-web01--var", family)],
        ...Object.entries(pxeServices(pxe({}), family)).map(([k, v]): [string, ServiceSpec] => [`PXE ${k}`, v]),
        ...Object.entries(pxeServices(pxe({ standby: { lockKey: "baremetal/pxe/leader", token: "t" } }), family)).map(([k, v]): [string, ServiceSpec] => [`PXE standby ${k}`, v]),
    ];
}

/** [label, script text] of every OpenRC script the kinds render on this family. */
export function openrcScriptsOfTheKinds(family: OsFamily = "alpine"): [string, string][] {
    return serviceSpecsOfTheKinds(family).map(([label, spec]) => [label, renderService(spec, family)]);
}
