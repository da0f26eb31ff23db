// PxeServer: a box that network-boots the others. dnsmasq gives static leases by
// MAC (one file per machine in a --dhcp-hostsdir, so machines come and go
// independently) and serves TFTP (iPXE bootloaders for firmware without iPXE); a
// small HTTP server (python3 http.server on Debian, busybox httpd on Alpine) serves
// the iPXE scripts and each profile's kernel, initramfs, modloop and apkovl.
//
// Boot chain: DHCP (static lease) → iPXE (the NIC's own, or undionly.kpxe/ipxe.efi
// over TFTP) → http://ADDRESS:PORT/boot.ipxe → boot/<mac-with-dashes>.ipxe (written
// by Machine) → profiles/<profile>/boot.ipxe (written here) → kernel + initrd.
//
// Standby mode: dnsmasq runs as the child of `consul lock`, so only the holder of
// the Consul lock at `standby.lockKey` serves DHCP; the others wait, and one takes
// over within seconds of the holder releasing the lock (clean stop) or within the
// session TTL (15 s) plus lock delay (15 s) when the holder dies.
//
// ID: `<name>@<host>`, e.g. `pxe@198.51.100.10`. Several instances (different
// names) can share a box; their files live under /etc/baremetal/pxe/<name> and
// /srv/baremetal/pxe/<name>.
//
// Parts: spec (field table), check (check, diff), render (the files on the box),
// plan (steps as data), read (the live server), lifecycle (create/read/update/delete).
// provider/pxe holds what it shares with Machine (the layout, the descriptor).
import { ResourceKind } from "../../core/resource";
import { check, diff } from "./check";
import { create, read, remove, update } from "./lifecycle";
import { PxeServerInputs, PxeServerState, spec } from "./spec";

export { check, diff } from "./check";
export { fetchScript, planDelete, planFiles, planServices, PxeFileStep, restartsBetween, restartsFrom, writeBase64Script } from "./plan";
export { DhcpSeen, dhcpRoleOf, dhcpSettling, LiveServer, parseServerRead, serverReadScript } from "./read";
export {
    baseUrlOf, descriptorOf, dhcpCommand, dnsmasqConf, expectedDigests, generatedFiles, httpCommand, ipxeDir, overlays, profileBootScript, profileKernelArgs, pxeServices, rootBootScript, sha256,
} from "./render";
export { DhcpRole, FileSource, ProfileKind, PxeProfile, pxeProfileType, PxeServerInputs, PxeServerState, spec, StandbyConfig, standbyType } from "./spec";

export const pxeServer: ResourceKind<PxeServerInputs, PxeServerState> = { spec, check, diff, create, read, update, delete: remove };
