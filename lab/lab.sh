#!/usr/bin/env bash
# The data center in a box: VMs under qemu (software emulation), switches as Linux
# bridges in the lab's own network namespace, one emulated BMC (OpenIPMI ipmi_sim)
# per VM. Linux only, root.
#
#   lab/lab.sh build            install the Debian packages, build kernel/initramfs/keys (cached)
#   lab/lab.sh start            build, then start the switches, BMCs and VMs; wait for SSH
#   lab/lab.sh stop             stop every VM and BMC, remove the namespace (disks are kept)
#   lab/lab.sh status           what runs; prints the path of lab.json on its last line
#   lab/lab.sh reset            stop, then remove the run directory (disks, BMC state)
#   lab/lab.sh clean            reset, then remove the cached builds too
#   lab/lab.sh ssh VM [CMD...]  ssh into a VM as root with its pinned host key
#   lab/lab.sh ipmi VM ARGS...  ipmitool -I lanplus against a VM's BMC
#
# Cache: ${PULUMI_BAREMETAL_CACHE:-$HOME/.cache/pulumi-baremetal}/lab
#   build-KEY/   kernel, modules, initramfs, TFTP root, keys; KEY hashes every input
#   run/         disks, sockets, logs, BMC state, lab.json (the one file programs read)
# The machine's own network is left alone: the lab lives in network namespace
# "bmlab"; the root namespace only gets one veth (bmlab0) with routes to the
# documentation/test ranges the lab uses (RFC 5737, RFC 2544; see "addressing" below),
# so programs reach VMs and BMCs directly.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${PULUMI_BAREMETAL_CACHE:-$HOME/.cache/pulumi-baremetal}
labdir=$cache/lab
run=$labdir/run
ns=bmlab
say() { printf '[lab] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# ---- addressing ------------------------------------------------------------------------
# Documentation (RFC 5737) and benchmark-test (RFC 2544, 198.18.0.0/15) ranges only.
# Two ranges are never used, not even inside the namespace, because the root namespace
# routes to the uplink and this machine lives in them: 192.0.2.0/24 (its own eth0) and
# 203.0.113.0/24 (where the package registries answer). [note from the lead engineer]
# switch   bridge      IPv4                 namespace side   VM N
# lan      br-lan      198.51.100.0/24      .1               198.51.100.N  (+ 2001:db8:0:1::N/64)
# storage  br-storage  198.18.1.0/24        .1               198.18.1.N
# wan      br-wan      198.18.2.0/24        .1               198.18.2.N
# ipmi     br-ipmi     198.18.3.0/24        .1               BMC of VM N: 198.18.3.N
# uplink   veth        198.18.255.252/30    .253 (bmlab-up)  root namespace: .254 (bmlab0)
switches=(lan storage wan ipmi)
declare -A net_prefix=([lan]=198.51.100. [storage]=198.18.1. [wan]=198.18.2. [ipmi]=198.18.3.)
declare -A net_off=([lan]=0 [storage]=0 [wan]=0 [ipmi]=0)
declare -A net_len=([lan]=24 [storage]=24 [wan]=24 [ipmi]=24)
declare -A net_gw=([lan]=198.51.100.1 [storage]=198.18.1.1 [wan]=198.18.2.1 [ipmi]=198.18.3.1)
declare -A net_cidr=([lan]=198.51.100.0/24 [storage]=198.18.1.0/24 [wan]=198.18.2.0/24 [ipmi]=198.18.3.0/24)
declare -A nic_num=([lan]=0 [storage]=1 [wan]=2)
lan6_prefix=2001:db8:0:1::
up_ns=198.18.255.253 up_host=198.18.255.254 host_if=bmlab0
bmc_port_base=9000   # ipmi_sim's VM channel, on the namespace's loopback

# ---- topology ------------------------------------------------------------------------
vms=()
declare -A vm_index vm_role vm_boot vm_power vm_mem vm_nics vm_ndisks vm_disksizes vm_consul
while read -r name index role boot power mem nics disks consul; do
    case "$name" in ''|'#'*) continue ;; esac
    vms+=("$name")
    vm_index[$name]=$index vm_role[$name]=$role vm_boot[$name]=$boot vm_power[$name]=$power
    vm_mem[$name]=$mem vm_nics[$name]=$nics vm_consul[$name]=$consul
    # disks: NxSIZE, or groups of them joined by + (4x6G+2x1G: vda-vdd 6G, vde-vdf 1G)
    sizes=()
    IFS=+ read -ra groups <<<"$disks"
    for g in "${groups[@]}"; do
        for ((j = 0; j < ${g%%x*}; j++)); do sizes+=("${g#*x}"); done
    done
    vm_ndisks[$name]=${#sizes[@]} vm_disksizes[$name]="${sizes[*]}"
done <"$here/topology.txt"
consul_server=
for v in "${vms[@]}"; do [ "${vm_consul[$v]}" = server ] && consul_server=$v; done

addr() { echo "${net_prefix[$2]}$(( net_off[$2] + vm_index[$1] ))"; }
bmc_addr() { addr "$1" ipmi; }
mac() { printf '52:54:00:b0:%02x:%02x\n' "${nic_num[$2]}" "${vm_index[$1]}"; }
tap() { echo "bmt${vm_index[$1]}n$2"; }
disk_letters=(a b c d e f g h i j k l m n o p)
disk_dev() { echo "/dev/vd${disk_letters[$1]}"; }
nic_list() { tr ',' ' ' <<<"${vm_nics[$1]}"; }
primary_addr() { local n; read -r n _ <<<"$(nic_list "$1")"; addr "$1" "$n"; }
cmdline() {
    local v=$1 i=0 n net=() gw=
    for n in $(nic_list "$v"); do
        net+=("eth$i:$(addr "$v" "$n")/${net_len[$n]}")
        [ -n "$gw" ] || gw=${net_gw[$n]}
        i=$((i + 1))
    done
    local c="console=ttyS0 loglevel=4 net.ifnames=0 apparmor=0 panic=10 systemd.unit=bmlab.target"
    c+=" bm.name=$v bm.net=$(IFS=,; echo "${net[*]}") bm.gw=$gw"
    [[ " $(nic_list "$v") " == *" lan "* ]] && c+=" bm.net6=eth0:$lan6_prefix${vm_index[$v]}/64"
    echo "$c"
}

# ---- build -------------------------------------------------------------------------
# Debian packages: installed by name, idempotently, never started on this machine.
install_packages() { bash "$here/apt-install.sh" "$here/lab-packages.txt"; }

kernel_package() {
    # The kernel the meta-package of this release points at, e.g. linux-image-6.1.0-56-amd64.
    apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'
}

consul_bin() {
    local bin
    bin=$(bash "$here/toolchain.sh" | tail -n 1) || die "lab/toolchain.sh failed"
    readlink -f "$bin/consul"
}

build_key() {
    { echo "$1"; cat "$here/lab.sh" "$here/initramfs-init.sh" "$here/bmc-chassis.sh" "$here/topology.txt" \
        "$here/lab-packages.txt"; } | sha256sum | cut -c1-12
}

# Files copied onto each VM's root by its initramfs (they win over the machine's /).
vm_files() {
    local v=$1 dir=$2 consul=$3
    mkdir -p "$dir/etc/ssh/sshd_config.d" "$dir/root/.ssh" "$dir/etc/systemd/system" \
        "$dir/etc/lxc" "$dir/etc/default"
    ssh-keygen -q -t ed25519 -N '' -C "root@$v" -f "$dir/etc/ssh/ssh_host_ed25519_key"
    cp "$build/keys/id_ed25519.pub" "$dir/root/.ssh/authorized_keys"
    cat >"$dir/etc/ssh/sshd_config.d/bmlab.conf" <<'EOF'
# bmlab: this VM's own host key only; key-only root login; many parallel sessions
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
UseDNS no
UsePAM no
MaxStartups 64:30:128
MaxSessions 64
EOF
    # root's shell init must not inherit the machine's (it made each ssh take seconds)
    printf '# bmlab\nexport PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n' \
        | tee "$dir/root/.profile" >"$dir/root/.bashrc"
    : >"$dir/etc/fstab"
    printf '# bmlab: no DNS inside the lab\n' >"$dir/etc/resolv.conf"
    {
        echo "127.0.0.1 localhost"
        local w n
        for w in "${vms[@]}"; do
            for n in $(nic_list "$w"); do echo "$(addr "$w" "$n") $w-$n"; done
            echo "$(primary_addr "$w") $w"
        done
    } >"$dir/etc/hosts"
    # The machine's timers and time sync have no business in the VMs.
    ln -sf /dev/null "$dir/etc/systemd/system/systemd-timesyncd.service"
    cat >"$dir/etc/systemd/system/bmlab.target" <<'EOF'
[Unit]
Description=bmlab VM: basic system, udev, sshd, Consul agent
Requires=basic.target
Wants=systemd-udevd.service systemd-udev-trigger.service ssh.service bmlab-consul.service dbus.service
After=basic.target
AllowIsolate=yes
EOF
    local role=${vm_consul[$v]} args=
    if [ "$role" != - ] && [ -n "$consul" ]; then
        args="agent -node=$v -datacenter=bmlab -data-dir=/var/lib/bmlab-consul -bind=$(primary_addr "$v")"
        args+=" -client=0.0.0.0 -log-level=warn -disable-host-node-id"
        if [ "$role" = server ]; then args+=" -server -bootstrap-expect=1 -ui=false"
        else args+=" -retry-join=$(primary_addr "$consul_server")"; fi
        cat >"$dir/etc/systemd/system/bmlab-consul.service" <<EOF
[Unit]
Description=Consul agent ($role) of the lab
After=network.target
[Service]
ExecStart=$consul $args
Restart=on-failure
[Install]
WantedBy=bmlab.target
EOF
    fi
    # LXC: no AppArmor in the lab kernel (apparmor=0); no lxc-net bridge (its default
    # range is 10.0.3.0/24, not for the lab): containers get no network unless their
    # own configuration gives them one
    printf 'USE_LXC_BRIDGE="false"\n' >"$dir/etc/default/lxc-net"
    printf '# bmlab: no default network (lxc-net is off)\nlxc.net.0.type = empty\n' >"$dir/etc/lxc/default.conf"
}

do_build() {
    local t0 kpkg kver key
    t0=$(now)
    mkdir -p "$labdir"
    exec 7>"$labdir/build.lock"
    flock 7
    install_packages
    kpkg=$(kernel_package)
    [ -n "$kpkg" ] || { apt-get update -q >&2; kpkg=$(kernel_package); }
    [ -n "$kpkg" ] || die "cannot find the kernel package behind linux-image-amd64"
    kver=$(apt-cache policy "$kpkg" | awk '/Candidate:/ {print $2}')
    key=$(build_key "$kpkg=$kver")
    build=$labdir/build-$key
    if [ -f "$build/.complete" ]; then
        ln -sfn "build-$key" "$labdir/build"
        say "build up to date: $build"
        return 0
    fi
    mkdir -p "$labdir"
    local consul
    consul=$(consul_bin)
    say "building $build ($kpkg $kver)"
    rm -rf "$build" && mkdir -p "$build"/{deb,kernel,keys,vms,tftp,initramfs/modules}
    (cd "$build/deb" && apt-get download -q "$kpkg" >&2 2>/dev/null) || die "apt-get download $kpkg failed"
    dpkg -x "$build"/deb/*.deb "$build/kernel"
    local krel
    krel=$(basename "$build"/kernel/boot/vmlinuz-*); krel=${krel#vmlinuz-}
    # modules ship without modules.dep; the VMs mount $build/kernel/lib/modules
    depmod -b "$build/kernel" "$krel"
    [ -f "$build/kernel/lib/modules/$krel/modules.dep" ] || die "depmod produced no modules.dep"
    cp "$build/kernel/boot/vmlinuz-$krel" "$build/vmlinuz"
    echo "$krel" >"$build/kernel-release"
    # initramfs: busybox-static, the 9p/overlay/virtio modules, /init
    local ir=$build/initramfs m f
    mkdir -p "$ir/bin"
    cp /bin/busybox "$ir/bin/busybox"
    ! ldd /bin/busybox >/dev/null 2>&1 || die "/bin/busybox is not static (install busybox-static)"
    for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci \
             9pnet 9pnet_virtio netfs fscache 9p overlay failover net_failover virtio_net; do
        f=$(find "$build/kernel/lib/modules/$krel/kernel" -name "$m.ko" | head -n1)
        [ -n "$f" ] || die "module $m not found in $kpkg"
        cp "$f" "$ir/modules/"
    done
    install -m 0755 "$here/initramfs-init.sh" "$ir/init"
    (cd "$ir" && find . | cpio -o -H newc --quiet | gzip -1) >"$build/initrd.img"
    # credentials: root's client key; BMC password; one SSH host key per VM
    ssh-keygen -q -t ed25519 -N '' -C "bmlab-client" -f "$build/keys/id_ed25519"
    head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$build/keys/bmc-password"
    chmod 0600 "$build/keys/bmc-password"
    local v
    for v in "${vms[@]}"; do vm_files "$v" "$build/vms/$v" "$consul"; done
    # TFTP root for PXE: iPXE fetches boot.ipxe, which chains to a per-MAC script
    ln "$build/vmlinuz" "$build/tftp/vmlinuz"
    ln "$build/initrd.img" "$build/tftp/initrd.img"
    cat >"$build/tftp/boot.ipxe" <<'EOF'
#!ipxe
echo bmlab: ${mac} ${ip} from ${next-server}
chain tftp://${next-server}/mac-${mac:hexhyp}.ipxe || exit
EOF
    for v in "${vms[@]}"; do
        printf '#!ipxe\nkernel tftp://${next-server}/vmlinuz %s\ninitrd tftp://${next-server}/initrd.img\nboot\n' \
            "$(cmdline "$v")" >"$build/tftp/mac-$(mac "$v" lan | tr : -).ipxe"
    done
    rm -rf "$build/deb" "$build/initramfs"
    echo "$consul" >"$build/consul-path"
    echo "$kpkg $kver" >"$build/kernel-package"
    touch "$build/.complete"
    ln -sfn "build-$key" "$labdir/build"
    # older builds are of no further use (a running lab keeps its files open)
    find "$labdir" -maxdepth 1 -name 'build-*' ! -name "build-$key" -exec rm -rf {} +
    say "built in $(since "$t0")s: $build"
}

current_build() {
    build=$(readlink -f "$labdir/build" 2>/dev/null || true)
    [ -n "$build" ] && [ -f "$build/.complete" ] || die "no lab build; run: lab/lab.sh build"
}

# ---- network -------------------------------------------------------------------------
nsx() { ip netns exec "$ns" "$@"; }

net_up() {
    # refuse to start if the machine already uses any of the lab's ranges
    local s r
    for s in "${switches[@]}" uplink; do
        r=${net_cidr[$s]:-198.18.255.252/30}
        if ip -4 route show match "$r" | grep -v '^default' | grep -q . || ip -4 route show root "$r" | grep -q .; then
            die "the machine already routes $r: $(ip -4 route show match "$r" | grep -v '^default' | head -n1)"
        fi
    done
    ip netns add "$ns"
    nsx ip link set lo up
    nsx sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
    local s
    for s in "${switches[@]}"; do
        nsx ip link add "br-$s" type bridge
        nsx ip link set "br-$s" up
        nsx ip addr add "${net_gw[$s]}/${net_len[$s]}" dev "br-$s"
    done
    nsx ip -6 addr add "${lan6_prefix}1/64" dev br-lan nodad
    local v i n
    for v in "${vms[@]}"; do
        nsx ip addr add "$(bmc_addr "$v")/${net_len[ipmi]}" dev br-ipmi
        i=0
        for n in $(nic_list "$v"); do
            nsx ip tuntap add dev "$(tap "$v" "$i")" mode tap
            nsx ip link set "$(tap "$v" "$i")" master "br-$n" up
            i=$((i + 1))
        done
    done
    # the one link to the root namespace, and routes to the lab's ranges only
    ip link add "$host_if" type veth peer name bmlab-up netns "$ns"
    nsx ip link set bmlab-up up
    nsx ip addr add "$up_ns/30" dev bmlab-up
    ip addr add "$up_host/30" dev "$host_if"
    ip link set "$host_if" up
    for s in "${switches[@]}"; do ip route add "${net_cidr[$s]}" via "$up_ns" dev "$host_if"; done
}

# ---- VMs and BMCs ------------------------------------------------------------------
write_vm() {
    local v=$1 d=$run/$1 i n args=()
    mkdir -p "$d/bmc-state"
    args=(qemu-system-x86_64 -name "$v" -machine q35 -accel tcg,thread=multi,tb-size=128
          -cpu max -smp 1 -m "${vm_mem[$v]}" -nodefaults -no-user-config -display none
          -chardev "file,id=ser0,path=$d/console.log,append=on" -serial chardev:ser0
          -qmp "unix:$d/qmp.sock,server=on,wait=off" -pidfile "$d/qemu.pid"
          -device virtio-rng-pci
          -fsdev local,id=hostroot,path=/,security_model=passthrough,multidevs=remap,readonly=on
          -device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot
          -fsdev "local,id=modules,path=$build/kernel/lib/modules,security_model=passthrough,readonly=on"
          -device virtio-9p-pci,fsdev=modules,mount_tag=modules
          -fsdev "local,id=bmlab,path=$build/vms/$v,security_model=passthrough,readonly=on"
          -device virtio-9p-pci,fsdev=bmlab,mount_tag=bmlab
          -chardev "socket,id=ipmi0,host=127.0.0.1,port=$((bmc_port_base + vm_index[$v])),reconnect=5"
          -device ipmi-bmc-extern,id=bmc0,chardev=ipmi0 -device isa-ipmi-kcs,bmc=bmc0)
    i=0
    for n in $(nic_list "$v"); do
        # every NIC keeps qemu's iPXE ROM (Debian's ipxe-qemu), so any VM can boot from the net
        args+=(-netdev "tap,id=n$i,ifname=$(tap "$v" "$i"),script=no,downscript=no"
               -device "virtio-net-pci,netdev=n$i,mac=$(mac "$v" "$n")")
        i=$((i + 1))
    done
    local sizes; read -ra sizes <<<"${vm_disksizes[$v]}"
    for ((i = 0; i < vm_ndisks[$v]; i++)); do
        [ -f "$d/disk$i.raw" ] || truncate -s "${sizes[$i]}" "$d/disk$i.raw"
        args+=(-drive "file=$d/disk$i.raw,if=none,id=d$i,format=raw,discard=unmap"
               -device "virtio-blk-pci,drive=d$i,serial=bm-$v-$i")
    done
    {
        echo '#!/bin/sh'
        echo "# $v: started by its BMC (ipmi_sim) on power on; generated by lab/lab.sh."
        echo "# Boots from the network when its default is pxe or when the BMC was told"
        echo "# 'chassis bootdev pxe' (one boot only), else the lab's kernel directly."
        printf 'boot=%s\n' "${vm_boot[$v]}"
        printf 'if [ -f %q ]; then [ "$(cat %q)" = pxe ] && boot=pxe; rm -f %q; fi\n' \
            "$d/bootdev" "$d/bootdev" "$d/bootdev"
        printf 'if [ "$boot" = pxe ]; then set -- -boot order=n\n'
        printf 'else set -- -kernel %q -initrd %q -append %q; fi\n' \
            "$build/vmlinuz" "$build/initrd.img" "$(cmdline "$v")"
        printf 'exec'; printf ' %q' "${args[@]}"; printf ' "$@" >>%q 2>&1\n' "$d/qemu.log"
    } >"$d/qemu.sh"
    cat >"$d/bmc.emu" <<'EOF'
mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
sel_enable 0x20 1000 0x0a
mc_enable 0x20
EOF
    local pw guid
    pw=$(cat "$build/keys/bmc-password")
    guid=$(printf '%s' "$v" | md5sum | cut -c1-32)
    cat >"$d/bmc.conf" <<EOF
# BMC of $v (OpenIPMI ipmi_sim), generated by lab/lab.sh
name "$v"
set_working_mc 0x20
  startlan 1
    addr $(bmc_addr "$v") 623
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid $guid
  endlan
  serial 15 127.0.0.1 $((bmc_port_base + vm_index[$v])) codec VM
  startcmd "/bin/sh $d/qemu.sh"
  chassis_control "$here/bmc-chassis.sh $d"
  startnow $([ "${vm_power[$v]}" = on ] && echo true || echo false)
  poweroff_wait 5
  kill_wait 5
  user 2 true "admin" "$pw" admin 10 none md2 md5 straight
EOF
}

start_bmc() {
    local v=$1 d=$run/$1
    # setsid: the BMC and the VM it powers on outlive this script, in the lab namespace
    # (exec all the way down, so that $! is ipmi_sim itself; fds 7 and 8, the lab locks, stay here)
    (exec ip netns exec "$ns" setsid ipmi_sim -n -c "$d/bmc.conf" -f "$d/bmc.emu" -s "$d/bmc-state" \
        </dev/null >>"$d/bmc.log" 2>&1 7>&- 8>&-) &
    echo $! >"$d/bmc.pid"
}

ssh_opts() {
    echo -i "$build/keys/id_ed25519" -o IdentitiesOnly=yes -o BatchMode=yes \
        -o StrictHostKeyChecking=yes -o "UserKnownHostsFile=$run/known_hosts" \
        -o ConnectTimeout=5 -o LogLevel=ERROR
}

vm_ssh() { local v=$1; shift; ssh $(ssh_opts) "root@$(primary_addr "$v")" "$@"; }

write_known_hosts() {
    local v n names
    for v in "${vms[@]}"; do
        names=$v
        for n in $(nic_list "$v"); do names+=",$(addr "$v" "$n")"; done
        echo "$names $(cut -d' ' -f1,2 "$build/vms/$v/etc/ssh/ssh_host_ed25519_key.pub")"
    done >"$run/known_hosts"
}

write_json() {
    local v n i vmjson=() nics disks kpkg
    kpkg=$(cat "$build/kernel-package")
    for v in "${vms[@]}"; do
        nics='[]' i=0
        for n in $(nic_list "$v"); do
            nics=$(jq -c --arg dev "eth$i" --arg net "$n" --arg mac "$(mac "$v" "$n")" \
                --arg a "$(addr "$v" "$n")" --argjson len "${net_len[$n]}" --arg tap "$(tap "$v" "$i")" \
                --arg br "br-$n" \
                '. + [{name: $dev, network: $net, mac: $mac, address: $a, prefixLength: $len, bridge: $br, tap: $tap}]' <<<"$nics")
            i=$((i + 1))
        done
        disks='[]'
        for ((i = 0; i < vm_ndisks[$v]; i++)); do
            disks=$(jq -c --arg dev "$(disk_dev "$i")" --arg id "/dev/disk/by-id/virtio-bm-$v-$i" \
                --arg f "$run/$v/disk$i.raw" --argjson size "$(stat -c %s "$run/$v/disk$i.raw")" \
                '. + [{device: $dev, byId: $id, sizeBytes: $size, file: $f}]' <<<"$disks")
        done
        vmjson+=("$(jq -n --arg name "$v" --arg role "${vm_role[$v]}" --arg boot "${vm_boot[$v]}" \
            --argjson on "$([ "${vm_power[$v]}" = on ] && echo true || echo false)" \
            --argjson mem "${vm_mem[$v]}" --argjson nics "$nics" --argjson disks "$disks" \
            --arg ip "$(primary_addr "$v")" \
            --arg hostkey "$(cut -d' ' -f1,2 "$build/vms/$v/etc/ssh/ssh_host_ed25519_key.pub")" \
            --arg bmc "$(bmc_addr "$v")" --arg pw "$(cat "$build/keys/bmc-password")" \
            --arg consul "${vm_consul[$v]}" --arg d "$run/$v" --arg cmdline "$(cmdline "$v")" \
            --arg mac0 "$(mac "$v" "$(nic_list "$v" | cut -d' ' -f1)")" \
            '{name: $name, role: $role, boot: $boot, poweredOnAtStart: $on, memoryMiB: $mem,
              mac: $mac0, nics: $nics,
              addresses: ($nics | map({key: .network, value: .address}) | from_entries),
              disks: $disks,
              ssh: {host: $ip, port: 22, user: "root", hostKey: $hostkey},
              bmc: {address: $bmc, port: 623, interface: "lanplus", user: "admin", password: $pw},
              consul: (if $consul == "-" then null else $consul end),
              qmpSocket: ($d + "/qmp.sock"), consoleLog: ($d + "/console.log"),
              kernelCmdline: $cmdline}')")
    done
    local nets='{}' s
    for s in "${switches[@]}"; do
        nets=$(jq -c --arg s "$s" --arg cidr "${net_cidr[$s]}" --arg gw "${net_gw[$s]}" --arg br "br-$s" \
            '. + {($s): {bridge: $br, cidr: $cidr, gateway: $gw}}' <<<"$nets")
    done
    nets=$(jq -c --arg p "${lan6_prefix}/64" '.lan.ipv6Cidr = $p' <<<"$nets")
    printf '%s\n' "${vmjson[@]}" | jq -s \
        --arg file "$run/lab.json" --arg build "$build" --arg kpkg "$kpkg" \
        --arg krel "$(cat "$build/kernel-release")" --arg ns "$ns" --arg hostif "$host_if" \
        --arg uphost "$up_host" --arg upns "$up_ns" --argjson nets "$nets" \
        --arg key "$build/keys/id_ed25519" --arg pub "$(cat "$build/keys/id_ed25519.pub")" \
        --arg kh "$run/known_hosts" --arg cs "$consul_server" \
        --arg csaddr "$(primary_addr "$consul_server")" --arg consul "$(cat "$build/consul-path")" \
        --arg pw "$(cat "$build/keys/bmc-password")" \
        '{version: 1, file: $file, namespace: $ns,
          access: {method: "veth", netns: $ns, hostInterface: $hostif, hostAddress: $uphost,
                   gateway: $upns, routes: [$nets[] | .cidr],
                   note: "the root namespace routes the lab ranges over a veth into namespace \($ns): connect to VM and BMC addresses directly; `ip netns exec \($ns)` works too"},
          build: {dir: $build, kernelPackage: $kpkg, kernelRelease: $krel,
                  vmlinuz: ($build + "/vmlinuz"), initrd: ($build + "/initrd.img"),
                  consulBinary: $consul},
          networks: $nets,
          ssh: {user: "root", privateKeyPath: $key, publicKey: $pub, knownHostsPath: $kh},
          bmc: {interface: "lanplus", port: 623, user: "admin", password: $pw},
          consul: {server: $cs, address: $csaddr, httpAddr: "\($csaddr):8500", datacenter: "bmlab"},
          pxe: {tftpRoot: ($build + "/tftp"), bootFile: "boot.ipxe",
                perMacScript: "mac-{mac with dashes}.ipxe", note: "the lab starts no PXE server: run dnsmasq in a VM (the tftp root is visible inside every VM at the same path)"},
          vms: (map({key: .name, value: .}) | from_entries)}' >"$run/lab.json.tmp"
    chmod 0600 "$run/lab.json.tmp"
    mv "$run/lab.json.tmp" "$run/lab.json"
}

running() { ip netns list 2>/dev/null | grep -qw "^$ns"; }

wait_ssh() {
    local t0=$1 deadline=$(( $(date +%s) + ${LAB_SSH_TIMEOUT:-300} )) pending=() left v
    shift
    pending=("$@")
    while [ ${#pending[@]} -gt 0 ]; do
        left=()
        for v in "${pending[@]}"; do
            if vm_ssh "$v" true 2>/dev/null; then say "$v answers SSH after $(since "$t0")s"
            else left+=("$v"); fi
        done
        pending=("${left[@]+"${left[@]}"}")
        [ ${#pending[@]} -eq 0 ] && break
        [ "$(date +%s)" -lt "$deadline" ] || die "no SSH from ${pending[*]} (see $run/<vm>/console.log)"
        sleep 2
    done
}

do_start() {
    do_build
    current_build
    exec 8>"$labdir/run.lock"
    flock 8
    if running; then
        local b alive=
        for v in "${vms[@]}"; do b=$(cat "$run/$v/bmc.pid" 2>/dev/null || true); pid_alive "$b" && alive=1; done
        if [ -n "$alive" ]; then say "already running"; do_status; return 0; fi
        say "a previous lab left its namespace without BMCs: cleaning up first"
        do_stop
    fi
    ip link del "$host_if" 2>/dev/null || true   # a veth left by a crash
    local t0 v on=()
    t0=$(now)
    mkdir -p "$run"
    net_up
    write_known_hosts
    for v in "${vms[@]}"; do write_vm "$v"; done
    write_json
    for v in "${vms[@]}"; do
        start_bmc "$v"
        [ "${vm_power[$v]}" = on ] && on+=("$v")
    done
    say "switches, BMCs and ${#on[@]} VMs started; waiting for SSH"
    wait_ssh "$t0" "${on[@]}"
    say "lab up in $(since "$t0")s; description: $run/lab.json"
    echo "$run/lab.json"
}

# alive and not a zombie (a reparented child may wait a moment to be reaped)
pid_alive() {
    [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

# TERM, then KILL after 10 s, the given pids whose command line contains WHAT
stop_pids() {
    local what=$1 pid pids=() i
    shift
    for pid in "$@"; do
        pid_alive "$pid" && grep -qa -- "$what" "/proc/$pid/cmdline" 2>/dev/null || continue
        kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
    done
    for i in $(seq 50); do
        for pid in "${pids[@]+"${pids[@]}"}"; do pid_alive "$pid" && break; pid=; done
        [ -z "${pid:-}" ] && return 0
        sleep 0.2
    done
    for pid in "${pids[@]+"${pids[@]}"}"; do pid_alive "$pid" && kill -KILL "$pid" 2>/dev/null; done
    return 0
}

do_stop() {
    mkdir -p "$labdir"
    exec 8>"$labdir/run.lock"
    flock 8
    local v bmcs=() qemus=()
    for v in "${vms[@]}"; do
        bmcs+=("$(cat "$run/$v/bmc.pid" 2>/dev/null || true)")
        qemus+=("$(cat "$run/$v/qemu.pid" 2>/dev/null || true)")
    done
    stop_pids ipmi_sim "${bmcs[@]}"      # first, so that nothing powers on again
    stop_pids qemu-system "${qemus[@]}"
    for v in "${vms[@]}"; do rm -f "$run/$v/qemu.pid" "$run/$v/bmc.pid" "$run/$v/qmp.sock"; done
    if running; then
        local pid
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            pid_alive "$pid" || continue
            say "stopping leftover process $pid in namespace $ns: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-80)"
            kill -KILL "$pid" 2>/dev/null || true
        done
        ip netns del "$ns"
    fi
    ip link del "$host_if" 2>/dev/null || true
    say "stopped"
}

do_status() {
    build=$(readlink -f "$labdir/build" 2>/dev/null || true)
    if ! running; then echo "lab: stopped (build: ${build:-none})"; else
        echo "lab: running in namespace $ns (build: $build)"
        local v d qpid bpid power
        for v in "${vms[@]}"; do
            d=$run/$v
            qpid=$(cat "$d/qemu.pid" 2>/dev/null || true); bpid=$(cat "$d/bmc.pid" 2>/dev/null || true)
            power=off; pid_alive "$qpid" && power=on
            local rss=0
            pid_alive "$qpid" && rss=$(awk '/VmRSS/ {print int($2/1024)}' "/proc/$qpid/status")
            printf '  %-12s %-10s power=%-3s bmc=%-4s rss=%sMiB ssh=root@%s bmc=%s\n' "$v" "${vm_role[$v]}" \
                "$power" "$(pid_alive "$bpid" && echo up || echo down)" "$rss" "$(primary_addr "$v")" "$(bmc_addr "$v")"
        done
    fi
    echo "$run/lab.json"
}

do_reset() { do_stop; rm -rf "$run"; say "reset: run directory removed"; }

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
    build) do_build ;;
    start) do_start ;;
    stop) do_stop ;;
    status) do_status ;;
    reset) do_reset ;;
    clean) do_reset; rm -rf "$labdir"/build-* "$labdir/build"; say "builds removed" ;;
    ssh) current_build; v=${1:?usage: lab.sh ssh VM [CMD...]}; shift; vm_ssh "$v" "$@" ;;
    ipmi) current_build; v=${1:?usage: lab.sh ipmi VM ARGS...}; shift
          ipmitool -I lanplus -C 3 -H "$(bmc_addr "$v")" -U admin -P "$(cat "$build/keys/bmc-password")" "$@" ;;
    *) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
