// How `pulumi import baremetal:index:<Kind> <name> <id>` names the object of each
// kind: one sentence per kind, shown on its reference page and used by the
// native provider's import (provider/native/import.ts). A kind without an entry
// cannot be imported (its page says to use `adopt: true` instead).
//
// The rule: the import ID is the resource's ID, plus `@<host>` when the ID does
// not name the box (or Consul agent) to read it on. Credentials never appear in
// it: they come from the provider's configuration (`baremetal:privateKey`,
// `baremetal:hostKeys`, `baremetal:consulToken`, ...; see provider/native/config.ts).

export const importIds: Readonly<Record<string, string>> = {
    ConsulKeys:
        "`<prefix>@<address>`, e.g. `config/dns01/@192.0.2.2:8500`, with `#<key>,<key>` appended to name the keys whose values are secrets (`config/dns01/@192.0.2.2:8500#tsig/key`): every key under the prefix is imported, the named ones into `secrets`, the rest into `keys`; the ACL token comes from `baremetal:consulToken`. The printed code holds every value read, the secrets' too: replace those with config references (`${dbPassword}` in YAML) before committing it.",
    RaidArray: "`<uuid>@<host>`, e.g. `3b1e4c2a:6f0d9e11:8a7c5b40:12de34f5@198.51.100.12`: the array with that UUID, its members by their kernel names.",
    NbdVolume:
        "`<host>/<vg>/<lv>@<consul address>`, e.g. `198.51.100.11/vg0/web01-var@198.51.100.2:8500`: an LV exported in this provider's layout (`/etc/nbd-server/baremetal/`) and registered in Consul, where its owner is recorded (an LV that is not exported yet is declared with `adopt: true` instead).",
    KvmGuest: "`<mac>@<host>`, e.g. `52:54:00:ab:00:01@198.51.100.13`: the guest whose service on that box (as this provider writes it) carries the MAC of its first NIC; its hardware from that service's qemu command line, its live state through QMP.",
    LxcContainer: "the ID, `<name>@<host>`, e.g. `dns01@198.18.1.20`: its template (or rootfs) from its LXC config; network, mounts, autostart and limits from this provider's managed block when there is one.",
};
