#!/usr/bin/env bash
# The data center in a box: VMs under qemu (software emulation), switches as Linux
# bridges in the lab's own network namespace, one emulated BMC (OpenIPMI ipmi_sim)
# per VM. Linux only, root.
#
#   lab/lab.sh build            packages, kernel, initramfs, keys, root image, saved VM states (cached)
#   lab/lab.sh start            build, then switches, BMCs and VMs; wait until each answers SSH
#   lab/lab.sh stop             stop every VM and BMC, remove the namespace (disks are kept)
#   lab/lab.sh status           what runs; prints the path of lab.json on its last line
#   lab/lab.sh reset            stop, then remove the run directory (disks, BMC state)
#   lab/lab.sh clean            reset, then remove the cached builds too
#   lab/lab.sh ssh VM [CMD...]  ssh into a VM as root with its pinned host key
#   lab/lab.sh ipmi VM ARGS...  ipmitool -I lanplus against a VM's BMC
#   lab/lab.sh rgw [env|pause]  S3 for Pulumi state (radosgw in ceph1); prints the path of rgw.env
#
# Cache: ${PULUMI_BAREMETAL_CACHE:-$HOME/.cache/pulumi-baremetal}/lab
#   build-KEY/   kernel, initramfs, root image, saved VM states, TFTP root, keys; KEY
#                hashes every input (these scripts, the kernel, the packages in the image)
#   run/         disks, sockets, logs, BMC state, lab.json (the one file programs read)
# A start restores each VM from the RAM state saved after its first boot at build
# time when its disks are as fresh as they were then (after a reset); a VM whose
# disks hold data boots. The machine's own network is left alone: the lab lives in
# network namespace "bmlab"; the root namespace only gets one veth (bmlab0) with
# routes to the documentation/test ranges the lab uses (RFC 5737, RFC 2544; see
# "addressing" below), so programs reach VMs and BMCs directly.
set -euo pipefail
export LC_ALL=C   # decimal points, sort order

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${PULUMI_BAREMETAL_CACHE:-$HOME/.cache/pulumi-baremetal}
labdir=$cache/lab
run=$labdir/run
ns=bmlab
uplink=1        # the veth and routes from the root namespace (not for the build's first boot)
netexec=()      # how lab.sh reaches the VMs: directly, or from inside a private namespace
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
declare -A nic_num=([lan]=0 [storage]=1 [wan]=2 [ipmi]=3)
lan6_prefix=2001:db8:0:1::
up_ns=198.18.255.253 up_host=198.18.255.254 host_if=bmlab0
bmc_port_base=9000   # ipmi_sim's VM channel, on the namespace's loopback

# ---- topology ------------------------------------------------------------------------
vms=()
declare -A vm_index vm_role vm_boot vm_power vm_mem vm_nics vm_ndisks vm_disksizes vm_consul vm_init
while read -r name index role boot power mem nics disks consul init; do
    case "$name" in ''|'#'*) continue ;; esac
    vms+=("$name")
    vm_index[$name]=$index vm_role[$name]=$role vm_boot[$name]=$boot vm_power[$name]=$power
    vm_mem[$name]=$mem vm_nics[$name]=$nics vm_consul[$name]=$consul vm_init[$name]=${init:-systemd}
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
# Machines that boot directly get the lab's root image on a disk of their own (sda,
# read-only; their vd* disks stay theirs), which lets their RAM state be saved; a
# disk-less PXE client keeps the machine's own / over 9p.
image_root() { [ "${vm_boot[$1]}" = direct ]; }
root_dev=/dev/sda
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
    if image_root "$v"; then c+=" bm.root=$root_dev"; fi
    # the OpenRC box: tmpfs root, OpenRC's own PID 1, its last disk keeps the /etc archive
    if [ "${vm_init[$v]}" = openrc ]; then
        c+=" bm.rootfs=tmpfs bm.init=/sbin/openrc-init bm.persist=$(disk_dev $((vm_ndisks[$v] - 1)))"
    fi
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
    bin=$(bash "$here/toolchain.sh" consul | tail -n 1) || die "lab/toolchain.sh consul failed"
    readlink -f "$bin"
}

# The Debian packages of the root image: what lab-packages.txt lists, the base system
# (priority required and important) and everything they depend on, as installed here.
image_packages() {
    local listed base names
    listed=$(grep -hv '^[[:space:]]*\(#\|$\)' "$here/lab-packages.txt" | awk '{print $1}')
    base=$(dpkg-query -W -f '${Package} ${Priority} ${db:Status-Status}\n' \
        | awk '$3 == "installed" && ($2 == "required" || $2 == "important") {print $1}')
    # shellcheck disable=SC2086
    names=$(apt-cache depends --installed --recurse --no-recommends --no-suggests --no-conflicts \
        --no-breaks --no-replaces --no-enhances $listed $base 2>/dev/null | grep '^[a-z0-9]' | sort -u) || true
    # (alternatives that are not installed are named too)
    # shellcheck disable=SC2086
    { dpkg-query -W -f '${Package} ${db:Status-Status}\n' $names 2>/dev/null || true; } \
        | awk '$2 == "installed" {print $1}' | sort -u
}

build_key() {
    { echo "$1"; cat "$here/lab.sh" "$here/initramfs-init.sh" "$here/bmc-chassis.sh" "$here/topology.txt" \
        "$here/lab-packages.txt"; } | sha256sum | cut -c1-12
}

# Boot-time housekeeping of the machine's systemd that a lab VM has no use for (each
# costs seconds under emulation): users exist already (the image is the machine's
# /etc), no foreign binaries, no persistent journal or random seed (RAM root;
# virtio-rng), no LVM monitoring daemon, no debug/tracing/hugepage mounts. (The
# modules systemd loads early, loop and dm_mod among them, stay: a VM without loop
# devices has an empty /sys/block, which programs do not expect.)
lean_masks=(systemd-sysusers.service systemd-binfmt.service
    proc-sys-fs-binfmt_misc.automount systemd-random-seed.service lvm2-monitor.service
    sys-kernel-debug.mount sys-kernel-tracing.mount dev-hugepages.mount
    sys-fs-fuse-connections.mount systemd-journal-flush.service systemd-update-utmp.service
    systemd-pstore.service e2scrub_reap.service)

# systemd runs every generator at boot and at each daemon-reload, and under emulation each
# is a process start of about 160 ms: the 13 of the machine made a reload take 3.2-4.4 s
# (measured on ceph1 and svc1; 1.5 s with none). Every `systemctl enable` or `disable`
# reloads, and the resources enable and reload units often. A lab VM needs only the SysV
# generator (nbd-server, the storage tests' daemon, ships only an init script in Debian);
# its /etc/fstab is empty and the resources write their own units (no openvpn@).
lean_generators=(openvpn-generator systemd-cryptsetup-generator systemd-debug-generator
    systemd-fstab-generator systemd-getty-generator systemd-gpt-auto-generator
    systemd-hibernate-resume-generator systemd-integritysetup-generator
    systemd-rc-local-generator systemd-run-generator systemd-system-update-generator
    systemd-veritysetup-generator)

# Files copied onto each VM's root by its initramfs (they win over the machine's /).
vm_files() {
    local v=$1 dir=$2 consul=$3 u
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
    # The machine's timers and time sync have no business in the VMs (lab.sh sets
    # their clocks to this machine's when they start).
    ln -sf /dev/null "$dir/etc/systemd/system/systemd-timesyncd.service"
    for u in "${lean_masks[@]}"; do ln -sf /dev/null "$dir/etc/systemd/system/$u"; done
    mkdir -p "$dir/etc/systemd/system-generators"
    for u in "${lean_generators[@]}"; do ln -sf /dev/null "$dir/etc/systemd/system-generators/$u"; done
    cat >"$dir/etc/systemd/system/bmlab.target" <<'EOF'
[Unit]
Description=bmlab VM: basic system, udev, sshd, Consul agent
Requires=basic.target
Wants=systemd-udevd.service systemd-udev-trigger.service ssh.service bmlab-consul.service dbus.service
After=basic.target
AllowIsolate=yes
EOF
    local role=${vm_consul[$v]} id
    args=
    if [ "$role" != - ] && [ -n "$consul" ]; then
        # a node ID of its own that a reboot keeps (the data dir is in RAM): a rebooted
        # agent is the same node to the server, not a second one with its name
        id=$(printf '%s' "bmlab-consul-$v" | md5sum | sed -E 's/^(.{8})(.{4})(.{4})(.{4})(.{12}).*/\1-\2-\3-\4-\5/')
        args="agent -node=$v -node-id=$id -datacenter=bmlab -data-dir=/var/lib/bmlab-consul -bind=$(primary_addr "$v")"
        args+=" -client=0.0.0.0 -log-level=warn -config-file=/etc/bmlab-consul.hcl"
        # Gossip paced for a handful of emulated nodes, not for a data center of fast ones: the
        # agents were the largest idle cost in every VM (3.4 % of its vCPU idle; 111-121 s of CPU
        # in 29 minutes of the lab tier on storage1, svc1 and ceph1 alike, 7 %), and a loaded
        # one-vCPU VM answers a probe slower than memberlist's 500 ms default. Measured idle:
        # 202-207 -> 113-128 jiffies a minute. A dead node is still declared failed within about
        # 16 s (suspicion 4 x log10(6) x 5 s), well inside a power cycle.
        cat >"$dir/etc/bmlab-consul.hcl" <<'EOF'
gossip_lan {
  gossip_interval = "1s"
  probe_interval  = "5s"
  probe_timeout   = "3s"
}
EOF
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
    [ "${vm_init[$v]}" != openrc ] || openrc_files "$v" "$dir" "$consul" "$args"
}

# BusyBox applets that stand in for Debian's coreutils (and a few util-linux
# tools) on the OpenRC box, as they do on Alpine: first on the PATH of an SSH
# command (/usr/local/bin), so the provider's scripts run on them. Daemons and
# their init scripts keep Debian's tools (OpenRC's PATH has no /usr/local/bin).
openrc_applets="awk basename cat chmod chown cmp cp cut date dd dirname du echo env false find flock
    grep gzip head hostname id ln ls md5sum mkdir mktemp mountpoint mv od printf readlink rm rmdir
    sed seq sha256sum sleep sort stat sync tail tar tee test timeout touch tr true uniq wc xargs"

# The OpenRC box's own files: its runlevels (udev and cgroups at sysinit; the network,
# which the initramfs configured, at boot; sshd and the Consul agent by default), the
# Consul agent as an OpenRC service, and the BusyBox applets.
openrc_files() {
    local v=$1 dir=$2 consul=$3 args=$4 rl a
    for rl in sysinit boot default nonetwork shutdown off recovery; do mkdir -p "$dir/etc/runlevels/$rl"; done
    mkdir -p "$dir/etc/init.d" "$dir/usr/local/bin"
    ln -s /etc/init.d/udev "$dir/etc/runlevels/sysinit/udev"
    ln -s /etc/init.d/cgroups "$dir/etc/runlevels/sysinit/cgroups"
    # /dev/pts and /dev/shm (LXC needs the first for its consoles), as Alpine's devfs does
    ln -s /etc/init.d/mountdevsubfs.sh "$dir/etc/runlevels/sysinit/mountdevsubfs.sh"
    ln -s /etc/init.d/bmlab-net "$dir/etc/runlevels/boot/bmlab-net"
    ln -s /etc/init.d/ssh "$dir/etc/runlevels/default/ssh"
    cat >"$dir/etc/rc.conf" <<'EOF'
# bmlab: OpenRC on the lab's OpenRC box (Debian's openrc package)
rc_parallel="NO"
rc_logger="NO"
# cgroup v2 only, as LXC and Alpine's current releases use it
rc_cgroup_mode="unified"
EOF
    cat >"$dir/etc/init.d/bmlab-net" <<'EOF'
#!/sbin/openrc-run
# bmlab: the lab's initramfs configured the NICs from the kernel command line;
# this service stands for them as OpenRC's `net` (Alpine's `networking` does).
description="bmlab network (configured by the initramfs)"

depend() {
	provide net
}

start() {
	return 0
}
EOF
    chmod 0755 "$dir/etc/init.d/bmlab-net"
    if [ -n "$args" ]; then
        cat >"$dir/etc/init.d/bmlab-consul" <<EOF
#!/sbin/openrc-run
description="Consul agent (${vm_consul[$v]}) of the lab"
command=$consul
command_args="$args"
supervisor=supervise-daemon
respawn_delay=2

depend() {
	need net
}
EOF
        chmod 0755 "$dir/etc/init.d/bmlab-consul"
        ln -s /etc/init.d/bmlab-consul "$dir/etc/runlevels/default/bmlab-consul"
    fi
    mkdir -p "$dir/usr/lib/bmlab"
    cp "$build/busybox/bin/busybox" "$dir/usr/lib/bmlab/busybox"
    # (Debian's BusyBox builds lack flock and mountpoint, which Alpine's has: those
    # stay util-linux's)
    for a in $openrc_applets; do
        ! "$build/busybox/bin/busybox" --list | grep -qx "$a" || ln -s /usr/lib/bmlab/busybox "$dir/usr/local/bin/$a"
    done
}

# initramfs: busybox-static, /init, the modules it needs (dependencies first) and,
# per VM that boots directly, a copy with that VM's own files appended
build_initramfs() {
    local krel=$1 ir=$build/initramfs m f
    mkdir -p "$ir/bin" "$ir/modules"
    cp /bin/busybox "$ir/bin/busybox"
    ! ldd /bin/busybox >/dev/null 2>&1 || die "/bin/busybox is not static (install busybox-static)"
    : >"$ir/modules/order"
    for m in virtio_pci virtio_net virtio_scsi sd_mod virtio_blk ext4 overlay 9p 9pnet_virtio; do
        modprobe -d "$build/kernel" -S "$krel" --show-depends "$m" >"$build/deps" \
            || die "module $m not found in the kernel package"
        for f in $(awk '$1 == "insmod" {print $2}' "$build/deps"); do
            grep -qx "$(basename "$f")" "$ir/modules/order" && continue
            cp "$f" "$ir/modules/"
            basename "$f" >>"$ir/modules/order"
        done
    done
    rm -f "$build/deps"
    install -m 0755 "$here/initramfs-init.sh" "$ir/init"
    (cd "$ir" && find . | cpio -o -H newc --quiet | gzip -1) >"$build/initrd.img"
    local v t
    for v in "${vms[@]}"; do
        image_root "$v" || continue
        t=$build/vmcpio/vmfiles
        rm -rf "$build/vmcpio" && mkdir -p "$t" && cp -a "$build/vms/$v/." "$t/"
        { cat "$build/initrd.img"; (cd "$build/vmcpio" && find vmfiles | cpio -o -H newc --quiet | gzip -1); } \
            >"$build/initrd-$v.img"
        chmod 0600 "$build/initrd-$v.img"
    done
    rm -rf "$build/vmcpio" "$ir"
}

# The VMs' root file system: an ext4 image of the packages image_packages names,
# the machine's /etc and /var (as at build time), the kernel's modules and the
# files of this build and of the toolchain the VMs run (Consul, the TFTP root), at
# the paths they have here. Files are hard-linked into a staging tree (no copy),
# which mke2fs writes into the image.
build_root_image() {
    local krel=$1 consul=$2 stage=$build/rootfs d
    say "root image: $(wc -l <"$build/image-packages") Debian packages"
    rm -rf "$stage" && mkdir -p "$stage"
    # a merged /usr's top-level links first, so that /lib/x lands in usr/lib/x
    for d in /*; do
        if [ -L "$d" ]; then cp -P "$d" "$stage/"; mkdir -p "$stage/$(readlink "$d")"; fi
    done
    {
        # shellcheck disable=SC2046
        dpkg-query -L $(cat "$build/image-packages") 2>/dev/null \
            | sed -E 's/^(package diverts others to|diverted by .* to): //' || true
        find /etc /var -xdev \( -path /var/cache/apt -o -path /var/lib/apt/lists -o -path /var/tmp \
            -o -path /var/log -o -path '/etc/ssh/ssh_host_*' \) -prune -o -print || true
        # written by maintainer scripts, owned by no package
        find /usr/lib/python3* -path '*/__pycache__*' 2>/dev/null || true
        find /usr/bin /usr/sbin -maxdepth 1 -type l || true
        ls -d /usr/lib/udev/hwdb.bin /usr/lib/locale/* /var/log /var/tmp 2>/dev/null || true
        printf '%s\n' "$consul" "$build/vmlinuz" "$build/initrd.img"
        find "$build/tftp"
    } | grep '^/.' | sort -u | while IFS= read -r f; do
        if { [ -e "$f" ] || [ -L "$f" ]; } && ! [ -L "$f" -a "${f%/*}" = "" ]; then printf '%s\n' "${f#/}"; fi
    done >"$build/image-files"
    # hard links where possible (same file system), copies otherwise
    (cd / && cpio -pdlm --quiet "$stage" <"$build/image-files") 2>"$build/image-cpio.log" || true
    { grep -v 'newer or same age' "$build/image-cpio.log" || true; } | head -n 5 | while IFS= read -r l; do say "cpio: $l"; done
    mkdir -p "$stage/usr/lib/modules"
    cp -al "$build/kernel/lib/modules/$krel" "$stage/usr/lib/modules/$krel"
    for d in proc sys dev run tmp mnt root home srv; do mkdir -p "$stage/$d"; done
    chmod 0700 "$stage/root"; chmod 1777 "$stage/tmp"
    # dpkg's database names only what the image holds
    rm -f "$stage/var/lib/dpkg/status"
    awk 'NR == FNR { keep[$1] = 1; next } /^Package: / { p = $2 } { par = par $0 "\n" }
         /^$/ { if (p in keep) printf "%s", par; par = ""; p = "" }
         END { if (p in keep) printf "%s\n", par }' \
        "$build/image-packages" /var/lib/dpkg/status >"$stage/var/lib/dpkg/status"
    local kib n
    kib=$(du -sk "$stage" | cut -f1)
    n=$(find "$stage" | wc -l)
    mke2fs -q -t ext4 -d "$stage" -L bmlab-root -m 0 -O ^has_journal,^metadata_csum -N $((n + n / 5 + 1000)) \
        -E root_owner=0:0 "$build/root.img" "$((kib + kib / 8 + 65536))k" \
        || die "mke2fs could not write the root image"
    chmod 0600 "$build/root.img"
    rm -rf "$stage" "$build/image-cpio.log"
    say "root image: $(( $(stat -c %s "$build/root.img") >> 20 )) MiB, $n files"
}

# What the build key depends on, cheaply: these scripts and the state of dpkg and
# apt. While it is unchanged, the key worked out last time holds (working it out
# again costs seconds of apt-cache and dpkg-query on a busy machine).
inputs_fingerprint() {
    { cat "$here/lab.sh" "$here/initramfs-init.sh" "$here/bmc-chassis.sh" "$here/topology.txt" \
        "$here/lab-packages.txt" "$here/apt-install.sh"; stat -c '%n %Y %s' /var/lib/dpkg/status /var/lib/apt/lists; } \
        | sha256sum | cut -c1-16
}

do_build() {
    local t0 kpkg kver key fp k pkgs=
    t0=$(now)
    mkdir -p "$labdir"
    exec 7>"$labdir/build.lock"
    flock 7
    fp=$(inputs_fingerprint)
    if { read -r k key <"$labdir/build.key"; } 2>/dev/null && [ "$k" = "$fp" ] && [ -f "$labdir/build-$key/.complete" ]; then
        build=$labdir/build-$key
    else
        install_packages
        kpkg=$(kernel_package)
        [ -n "$kpkg" ] || { apt-get update -q >&2; kpkg=$(kernel_package); }
        [ -n "$kpkg" ] || die "cannot find the kernel package behind linux-image-amd64"
        kver=$(apt-cache policy "$kpkg" | awk '/Candidate:/ {print $2}')
        pkgs=$(image_packages)
        # shellcheck disable=SC2086
        key=$(build_key "$kpkg=$kver busybox=$(apt-cache policy busybox | awk '/Candidate:/ {print $2}') $(dpkg-query -W -f '${Package}=${Version} ' $pkgs)")
        build=$labdir/build-$key
    fi
    if [ -f "$build/.complete" ]; then
        echo "$(inputs_fingerprint) $key" >"$labdir/build.key"
        ln -sfn "build-$key" "$labdir/build"
        [ -f "$build/snap/.complete" ] || [ -f "$build/snap/.failed" -a "${1:-}" != again ] || bake_states
        say "build up to date: $build"
        return 0
    fi
    mkdir -p "$labdir"
    local consul
    consul=$(consul_bin)
    say "building $build ($kpkg $kver)"
    rm -rf "$build" && mkdir -p "$build"/{deb,kernel,keys,vms,tftp}
    printf '%s\n' "$pkgs" >"$build/image-packages"
    (cd "$build/deb" && apt-get download -q "$kpkg" >&2 2>/dev/null) || die "apt-get download $kpkg failed"
    dpkg -x "$build"/deb/*.deb "$build/kernel"
    # The OpenRC box's BusyBox: Debian's regular build (busybox), whose shell runs
    # the programs on PATH as Alpine's does; busybox-static (the machine's, for the
    # initramfs) prefers its own applets to them (start-stop-daemon, mount, ip ...).
    mkdir -p "$build/deb/busybox" "$build/busybox"
    (cd "$build/deb/busybox" && apt-get download -q busybox >&2 2>/dev/null) || die "apt-get download busybox failed"
    dpkg -x "$build"/deb/busybox/*.deb "$build/busybox"
    local krel
    krel=$(basename "$build"/kernel/boot/vmlinuz-*); krel=${krel#vmlinuz-}
    # modules ship without modules.dep
    depmod -b "$build/kernel" "$krel"
    [ -f "$build/kernel/lib/modules/$krel/modules.dep" ] || die "depmod produced no modules.dep"
    cp "$build/kernel/boot/vmlinuz-$krel" "$build/vmlinuz"
    echo "$krel" >"$build/kernel-release"
    # credentials: root's client key; BMC password; one SSH host key per VM
    ssh-keygen -q -t ed25519 -N '' -C "bmlab-client" -f "$build/keys/id_ed25519"
    head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$build/keys/bmc-password"
    chmod 0600 "$build/keys/bmc-password"
    local v
    for v in "${vms[@]}"; do vm_files "$v" "$build/vms/$v" "$consul"; done
    build_initramfs "$krel"
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
    build_root_image "$krel" "$consul"
    rm -rf "$build/deb"
    echo "$consul" >"$build/consul-path"
    echo "$kpkg $kver" >"$build/kernel-package"
    touch "$build/.complete"
    echo "$(inputs_fingerprint) $key" >"$labdir/build.key"
    ln -sfn "build-$key" "$labdir/build"
    # older builds are of no further use, but for the one a running lab uses (its VMs
    # and BMCs read it: power on, PXE, keys); the next build removes that one
    local used=
    if running; then used=$(jq -r '.build.dir // empty' "$run/lab.json" 2>/dev/null || true); fi
    find "$labdir" -maxdepth 1 -name 'build-*' ! -name "build-$key" ! -name "$(basename "${used:-none}")" -exec rm -rf {} +
    say "built in $(since "$t0")s: $build"
    bake_states
}

current_build() {
    build=$(readlink -f "$labdir/build" 2>/dev/null || true)
    [ -n "$build" ] && [ -f "$build/.complete" ] || die "no lab build; run: lab/lab.sh build"
}

# The build of the running lab (its keys), else the current one.
lab_build() {
    local b=
    if running; then b=$(jq -r '.build.dir // empty' "$run/lab.json" 2>/dev/null || true); fi
    if [ -n "$b" ] && [ -d "$b" ]; then build=$b; else current_build; fi
}

# ---- processes -------------------------------------------------------------------------
# Daemons started here must not keep this script's descriptors: its locks (fds 7, 8)
# or a lock its caller holds (`flock LOCK lab.sh start`), which would stay held as
# long as the lab runs.
close_fds() {
    local fd
    for fd in /proc/$BASHPID/fd/*; do
        fd=${fd##*/}
        if [ "$fd" -gt 2 ] && [ "$fd" != 255 ]; then eval "exec $fd>&-"; fi
    done 2>/dev/null
    return 0
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

# QMP: each command's answer ({"return": ...} or {"error": ...}) on a line of its own
qmp() {
    python3 - "$@" <<'EOF'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(60)
s.connect(sys.argv[1])
f = s.makefile("rw")
def answer():
    while True:
        line = f.readline()
        if not line:
            sys.exit("qmp: connection closed")
        m = json.loads(line)
        if "return" in m or "error" in m:
            return m
f.readline()  # greeting
def send(c):
    f.write(c + "\n")
    f.flush()
    return answer()
send('{"execute": "qmp_capabilities"}')
for c in sys.argv[2:]:
    print(json.dumps(send(c)))
EOF
}

# ---- network -------------------------------------------------------------------------
nsx() { ip netns exec "$ns" "$@"; }

net_up() {
    local s r
    if [ "$uplink" = 1 ]; then
        # refuse to start if the machine already uses any of the lab's ranges
        for s in "${switches[@]}" uplink; do
            r=${net_cidr[$s]:-198.18.255.252/30}
            if ip -4 route show match "$r" | grep -v '^default' | grep -q . || ip -4 route show root "$r" | grep -q .; then
                die "the machine already routes $r: $(ip -4 route show match "$r" | grep -v '^default' | head -n1)"
            fi
        done
    fi
    ip netns add "$ns"
    nsx ip link set lo up
    nsx sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
    for s in "${switches[@]}"; do
        # a fixed MAC (52:54:00:b0:<switch>:01, the gateway's .1): a VM restored from
        # its saved state still has the gateway in its ARP cache
        nsx ip link add "br-$s" address "$(printf '52:54:00:b0:%02x:01' "${nic_num[$s]}")" type bridge
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
    [ "$uplink" = 1 ] || return 0
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
    local v=$1 d=$run/$1 i n args=() ninep=()
    mkdir -p "$d/bmc-state"
    # tb-size: TCG's cache of translated code, in MiB. At 128 it filled and was thrown away
    # about once per `ceph` CLI run on ceph1 (23 flushes in a bootstrap + one OSD create, measured
    # with `info jit`), and everything was translated again: 1024 flushes about once an OSD create
    # and made five `ceph osd tree` 20.6 -> 12.9 s. It is host memory only as far as it is used.
    # The CPU: qemu64 with the x86-64-v2 extensions, not max. Every instruction is emulated,
    # and max's extras cost more than they give here (glibc and the kernel pick AVX2 and
    # `rep movsb` copies, 5-level paging, a larger XSAVE state at each switch). Measured on one
    # VM, a fixed mix of process starts, Python starts, LVM reads, file reads and copies (qemu's
    # CPU time, warm rounds): max 1,586-1,993 jiffies, this 1,426-1,570, bare qemu64 1,283-1,388;
    # boot to SSH 18.6-18.8 s against 15.4 s; a 300 MiB dd 0.49 s against 0.12 s. Bare qemu64
    # lacks SSSE3, which Ceph's erasure-code library takes for granted once it sees SSE3: the
    # monitor died of an illegal instruction at start.
    args=(qemu-system-x86_64 -name "$v" -machine q35 -accel tcg,thread=multi,tb-size=1024
          -cpu qemu64,+ssse3,+sse4.1,+sse4.2,+popcnt,+aes,+pclmulqdq -smp 1 -m "${vm_mem[$v]}" -nodefaults -no-user-config -display none
          -chardev "file,id=ser0,path=$d/console.log,append=on" -serial chardev:ser0
          -qmp "unix:$d/qmp.sock,server=on,wait=off" -pidfile "$d/qemu.pid"
          -device virtio-rng-pci
          # a new generation ID at each start: a restored kernel reseeds its RNG
          -device vmgenid,guid=auto
          -chardev "socket,id=ipmi0,host=127.0.0.1,port=$((bmc_port_base + vm_index[$v])),reconnect=5"
          -device ipmi-bmc-extern,id=bmc0,chardev=ipmi0 -device isa-ipmi-kcs,bmc=bmc0)
    if image_root "$v"; then
        args+=(-device virtio-scsi-pci,id=scsi0
               -drive "file=$build/root.img,if=none,id=root,format=raw,readonly=on"
               -device scsi-hd,drive=root,bus=scsi0.0,serial=bm-root)
    fi
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
    # virtio-9p after every other device (their PCI slots stay those of the saved
    # states); a mounted 9p share cannot be saved, so only PXE boots get them
    image_root "$v" || ninep+=(
          -fsdev local,id=hostroot,path=/,security_model=passthrough,multidevs=remap,readonly=on
          -device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot
          -fsdev "local,id=modules,path=$build/kernel/lib/modules,security_model=passthrough,readonly=on"
          -device virtio-9p-pci,fsdev=modules,mount_tag=modules)
    ninep+=(-fsdev "local,id=bmlab,path=$build/vms/$v,security_model=passthrough,readonly=on"
            -device virtio-9p-pci,fsdev=bmlab,mount_tag=bmlab)
    local initrd=$build/initrd.img
    image_root "$v" && initrd=$build/initrd-$v.img
    {
        echo '#!/bin/sh'
        echo "# $v: started by its BMC (ipmi_sim) on power on; generated by lab/lab.sh."
        echo "# Boots from the network when its default is pxe or when the BMC was told"
        echo "# 'chassis bootdev pxe' (one boot only), else the lab's kernel directly; or,"
        echo "# when lab.sh start left a 'restore' note and the disks are still empty,"
        echo "# restores the RAM state saved at build time instead of booting."
        printf 'd=%q\n' "$d"
        echo "# this shell execs qemu, so its pid is qemu's: the BMC reads the chassis as on"
        echo "# from here, not only once qemu has set up its devices and written -pidfile"
        echo 'echo $$ >"$d/qemu.pid"'
        printf 'boot=%s\n' "${vm_boot[$v]}"
        printf 'if [ -f "$d/bootdev" ]; then [ "$(cat "$d/bootdev")" = pxe ] && boot=pxe; rm -f "$d/bootdev"; fi\n'
        printf 'restore=\n'
        printf 'if [ -f "$d/restore" ]; then restore=$(cat "$d/restore"); rm -f "$d/restore"; fi\n'
        # the saved state saw empty disks: any block written since (allocated in the
        # sparse file) means boot instead
        printf 'for f in "$d"/disk*.raw; do [ -f "$f" ] && [ "$(stat -c %%b "$f")" != 0 ] && restore=; done\n'
        printf 'if [ "$boot" = pxe ]; then set -- -boot order=n'; printf ' %q' "${ninep[@]}"; printf '\n'
        printf 'else set -- -kernel %q -initrd %q -append %q' "$build/vmlinuz" "$initrd" "$(cmdline "$v")"
        image_root "$v" || printf ' %q' "${ninep[@]}"
        printf '; fi\n'
        printf 'if [ -n "$restore" ] && [ "$boot" = direct ]; then\n'
        printf '    export BMLAB_STATE="$restore"\n'
        printf '    set -- "$@" -incoming '"'"'exec:cat "$BMLAB_STATE"'"'"'\n'
        printf '    mode=restore\nelse mode=$boot; fi\n'
        printf 'echo "$mode $(date +%%s) $$" >"$d/power-on"\n'
        printf 'echo "[bmlab] $(date "+%%F %%T") power on: $mode" >>"$d/console.log"\n'
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
    # (exec all the way down, so that $! is ipmi_sim itself)
    (close_fds; exec ip netns exec "$ns" setsid ipmi_sim -n -c "$d/bmc.conf" -f "$d/bmc.emu" -s "$d/bmc-state" \
        </dev/null >>"$d/bmc.log" 2>&1) &
    echo $! >"$d/bmc.pid"
    disown $!
}

# Power a VM off (qemu stopped) and on again the way its BMC does it.
power_cycle() {
    local d=$run/$1
    (close_fds; exec ip netns exec "$ns" sh "$here/bmc-chassis.sh" "$d" set power 0 </dev/null >/dev/null 2>&1)
    rm -f "$d/power-on"
    (close_fds; exec ip netns exec "$ns" sh "$here/bmc-chassis.sh" "$d" set power 1 </dev/null >/dev/null 2>&1)
}

ssh_opts() {
    echo -i "$build/keys/id_ed25519" -o IdentitiesOnly=yes -o BatchMode=yes \
        -o StrictHostKeyChecking=yes -o "UserKnownHostsFile=$run/known_hosts" \
        -o ConnectTimeout=5 -o LogLevel=ERROR
}

vm_ssh() { local v=$1; shift; "${netexec[@]}" ssh $(ssh_opts) "root@$(primary_addr "$v")" "$@"; }

write_known_hosts() {
    local v n names
    for v in "${vms[@]}"; do
        names=$v
        for n in $(nic_list "$v"); do names+=",$(addr "$v" "$n")"; done
        echo "$names $(cut -d' ' -f1,2 "$build/vms/$v/etc/ssh/ssh_host_ed25519_key.pub")"
    done >"$run/known_hosts"
}

# ---- waiting for the VMs ---------------------------------------------------------------
# A VM is up when it answers SSH and its clock is set to this machine's (a restored
# kernel's clock says the time its state was saved; a booted one's was read from the
# RTC to the second). The wait follows each VM's
# progress: its console output (initramfs stages, systemd), qemu's state while a
# saved state loads, SSH. A VM that makes none for LAB_STALL_SECONDS (default 120)
# or whose qemu exits is powered off and booted again, up to LAB_START_ATTEMPTS
# (default 3) times; then the start fails naming the VM, its stage and its console.
stall_s=${LAB_STALL_SECONDS:-120}
attempts_max=${LAB_START_ATTEMPTS:-3}
stage= clock_note=

# What the console says since the last power on: the stage of a boot
console_stage() {
    local log=$run/$1/console.log
    awk '/^\[bmlab\] .* power on:/ { s = "firmware and kernel (no console output yet)" }
         /bmlab-init: / { sub(/.*bmlab-init: /, ""); s = "initramfs: " $0 }
         /iPXE/ { s = "iPXE (network boot)" }
         /Welcome to/ { s = "systemd starting" }
         /OpenRC .* is starting up/ { s = "OpenRC starting" }
         /Reached target.*bmlab/ { s = "bmlab.target reached" }
         /Kernel panic/ { s = "kernel panic" }
         END { print s }' "$log" 2>/dev/null | tr -d '\r' | tail -n 1
}

console_tail() { tail -c 2000 "$run/$1/console.log" 2>/dev/null | tr -d '\r' | sed 's/\x1b\[[0-9;]*[A-Za-z]//g' | grep -a . | tail -n 3 | sed 's/^/    /'; }

# Where VM (powered on to MODE: restore or a boot) stands; sets $stage. Returns 0
# once it answers SSH and its clock is set ($clock_note says how well).
probe_vm() {
    local v=$1 mode=$2 pid status
    # qemu.sh writes "MODE TIME PID" and execs qemu: PID is qemu's
    if [ ! -s "$run/$v/power-on" ]; then stage="powering on"; return 1; fi
    read -r _ _ pid <"$run/$v/power-on"
    if ! pid_alive "$pid"; then stage="qemu not running"; return 1; fi
    if [ "$mode" = restore ]; then
        status=$(qmp "$run/$v/qmp.sock" '{"execute": "query-status"}' 2>/dev/null | jq -r '.return.status // empty' 2>/dev/null || true)
        case "$status" in
            inmigrate) stage="loading the saved state" ;;
            # saved paused, so loaded paused: run it
            paused|postmigrate)
                qmp "$run/$v/qmp.sock" '{"execute": "cont"}' >/dev/null 2>&1 || true
                stage="restored, running it" ;;
            running) stage="restored, waiting for SSH" ;;
            '') stage="starting qemu" ;;
            *) stage="qemu state $status" ;;
        esac
    else
        stage=$(console_stage "$v")
    fi
    case "$stage" in restored*|systemd*|bmlab.target*|OpenRC*) ;; *) return 1 ;; esac
    set_clock "$v"
}

# Sets the VM's clock to this machine's over one SSH session, once it is logged in
# (the time SSH takes to log in does not count), the way NTP does: each sample reads
# the VM's clock between two readings of this machine's, the offset is that of the
# sample with the shortest round trip (half of it is the error), and the VM's kernel
# adds the opposite to its clock (clock_adjtime ADJ_SETOFFSET: a step relative to
# the clock itself, so the time the stepping program takes does not count; `date -s`
# if python3 is missing). Samples again check the result. (The RTC would do to the
# second only: the kernel and hwclock read whole seconds.)
clock_step_py='import ctypes, math, sys
from decimal import Decimal
d = Decimal(sys.argv[1]); s = math.floor(d)
L, I = ctypes.c_long, ctypes.c_int
class Timex(ctypes.Structure):
    _fields_ = [("modes", ctypes.c_uint), ("offset", L), ("freq", L), ("maxerror", L), ("esterror", L),
                ("status", I), ("constant", L), ("precision", L), ("tolerance", L), ("sec", L), ("nsec", L),
                ("tick", L), ("ppsfreq", L), ("jitter", L), ("shift", I), ("stabil", L), ("jitcnt", L),
                ("calcnt", L), ("errcnt", L), ("stbcnt", L), ("tai", I), ("pad", I * 11)]
t = Timex(modes=0x2100, sec=s, nsec=int((d - s) * 1000000000))  # ADJ_SETOFFSET | ADJ_NANO
sys.exit(ctypes.CDLL(None).clock_adjtime(0, ctypes.byref(t)) < 0)'
set_clock() {
    local v=$1 off line
    coproc CLOCK { vm_ssh "$v" "export LC_ALL=C; echo ready; while read -r c a; do case \$c in
        t) echo \"\$EPOCHREALTIME\" ;;
        step) { python3 -c '$clock_step_py' \"\$a\" 2>/dev/null || date -s \"\$a seconds\" >/dev/null; } && echo stepped ;;
        *) exit 0 ;; esac; done" 2>/dev/null; }
    # bash unsets CLOCK (and closes its pipes) as soon as it reaps a coprocess that ended, which
    # an ssh refused at once (a booting VM's sshd not up yet) can do before the next line: keep
    # the descriptors and pid now; a read from a closed one fails like a VM that does not answer
    local clock_in=${CLOCK[0]:-} clock_out=${CLOCK[1]:-} clock_pid=${CLOCK_PID:-}
    [ -n "$clock_in" ] && [ -n "$clock_out" ] || { [ -z "$clock_pid" ] || kill "$clock_pid" 2>/dev/null || true; return 1; }
    local i=0 ok=
    if read -r -t 60 line <&"$clock_in" && [ "$line" = ready ] && off=$(clock_offset); then
        ok=1
        # again while the offset exceeds the error (and 2 ms)
        while [ $i -lt 3 ] && awk -v o="${off% *}" -v e="${off#* }" 'BEGIN { exit !(o * o > (e + 0.002) ^ 2) }'; do
            i=$((i + 1)) ok=
            echo "step $(awk -v o="${off% *}" 'BEGIN { printf "%+.6f", -o }')" >&"$clock_out" || break
            read -r -t 60 line <&"$clock_in" && [ "$line" = stepped ] && off=$(clock_offset) || break
            ok=1
        done
    fi
    if [ -n "$ok" ]; then
        echo quit >&"$clock_out" 2>/dev/null || true
        wait "$clock_pid" 2>/dev/null || true
        clock_note=$(awk -v o="${off% *}" -v e="${off#* }" 'BEGIN { printf "clock set: %+.3fs from this machine (+-%.3fs)", o, e }')
        return 0
    fi
    kill "$clock_pid" 2>/dev/null || true
    return 1
}

# "OFFSET ERROR" of the VM's clock (coproc CLOCK, through set_clock's clock_in and clock_out)
# from this machine's, best of 5
clock_offset() {
    local i a b g best=
    for i in 1 2 3 4 5; do
        a=$EPOCHREALTIME
        echo t >&"$clock_out" || return 1
        read -r -t 30 g <&"$clock_in" || return 1
        b=$EPOCHREALTIME
        best+="$a $b $g"$'\n'
    done
    awk 'NF == 3 { r = $2 - $1; if (n++ == 0 || r < rmin) { rmin = r; o = $3 - ($1 + $2) / 2 } }
         END { printf "%.6f %.6f\n", o, rmin / 2 }' <<<"$best"
}

# Waits for one VM, in a process of its own (VMs do not wait for each other). A VM
# that failed is powered off and on again to boot (a saved state that did not
# restore once is not tried again).
wait_vm() {
    local v=$1 att=1 mode prev= psize=-1 size last t0 why
    t0=$(now) last=$(date +%s)
    while :; do
        # what qemu.sh did at power on: restore or boot
        mode=${vm_boot[$v]}
        if [ -s "$run/$v/power-on" ]; then read -r mode _ <"$run/$v/power-on"; fi
        if probe_vm "$v" "$mode"; then
            say "$v $([ "$mode" = restore ] && echo restored || echo booted), answers SSH after $(since "$t0")s ($clock_note)"
            return 0
        fi
        size=$(stat -c %s "$run/$v/console.log" 2>/dev/null || echo 0)
        if [ "$stage" != "$prev" ] || [ "$size" != "$psize" ]; then
            [ "$stage" = "$prev" ] || [ -n "${LAB_QUIET:-}" ] || say "$v: $stage ($(since "$t0")s)"
            prev=$stage psize=$size last=$(date +%s)
        fi
        why=
        case "$stage" in "qemu not running"|"kernel panic") why=$stage ;; esac
        [ $(( $(date +%s) - last )) -lt "$stall_s" ] || why="no progress for ${stall_s}s at: $stage"
        if [ -n "$why" ]; then
            say "$v: $why (attempt $att/$attempts_max, $mode); last console lines:"
            console_tail "$v" >&2
            [ "$stage" != "qemu not running" ] || [ ! -s "$run/$v/qemu.log" ] \
                || { say "$v: qemu.log:"; tail -n 3 "$run/$v/qemu.log" | sed 's/^/    /' >&2; }
            if [ "$att" -ge "$attempts_max" ]; then
                say "error: $v did not come up after $attempts_max attempts; it stopped at: $stage (console: $run/$v/console.log)"
                return 1
            fi
            att=$((att + 1))
            say "$v: powering it off and on again (boot)"
            rm -f "$run/$v/restore"
            power_cycle "$v"
            prev= psize=-1 last=$(date +%s)
        fi
        sleep 1
    done
}

wait_up() {
    local v pids=() failed=() i=0
    for v in "$@"; do wait_vm "$v" & pids+=($!); done
    for v in "$@"; do wait "${pids[$i]}" || failed+=("$v"); i=$((i + 1)); done
    [ ${#failed[@]} -eq 0 ] || die "${failed[*]} did not come up (see above)"
}

# ---- the saved states ----------------------------------------------------------------
# Once per build: the VMs that start powered on boot in a private namespace (same
# switches, addresses and BMCs, no link to the root namespace) with empty disks;
# when every one answers SSH, udev has settled and the Consul agents have joined,
# all are paused and their RAM and device states saved to $build/snap/<vm>.state
# (qemu's migration to a file). `start` restores them (`-incoming`), which takes
# seconds instead of a boot. A failure here is not fatal: starts then boot.
bake_states() {
    local t0 err
    t0=$(now)
    mkdir -p "$build/snap"
    rm -f "$build/snap/.failed"
    if (bake_run) 2>&1 | tee "$build/snap/bake.log" | sed 's/^\[lab\] /[lab] build: /' >&2; then
        touch "$build/snap/.complete"
        say "VM states saved in $(since "$t0")s: $build/snap"
    else
        err=$(grep -a 'error:' "$build/snap/bake.log" | tail -n 1)
        echo "$err" >"$build/snap/.failed"
        say "warning: could not save the VMs' states (${err:-see $build/snap/bake.log}); starts will boot each VM (slower); \`lab.sh build again\` retries"
    fi
}

bake_run() {
    ns=bmbake uplink=0 run=$build/bake
    netexec=(ip netns exec "$ns")
    umask 077
    local v baked=() b
    for v in "${vms[@]}"; do
        if [ "${vm_power[$v]}" = on ] && image_root "$v"; then baked+=("$v"); fi
    done
    [ ${#baked[@]} -gt 0 ] || return 0
    case "$build" in *"'"*|*'"'*|*'\'*) die "the cache path $build holds a quote" ;; esac
    bake_cleanup
    trap bake_cleanup EXIT
    rm -rf "$run" && mkdir -p "$run"
    say "first boot of ${baked[*]} to save their states"
    net_up
    write_known_hosts
    for v in "${baked[@]}"; do write_vm "$v"; start_bmc "$v"; done
    LAB_QUIET=1 wait_up "${baked[@]}"
    # the Consul agents have joined the server
    local want=() have last=0 n t
    for v in "${baked[@]}"; do [ "${vm_consul[$v]}" = - ] || want+=("$v"); done
    if [ -n "$consul_server" ] && [[ " ${baked[*]} " == *" $consul_server "* ]]; then
        t=$(date +%s)
        while :; do
            have=$(vm_ssh "$consul_server" "curl -fsS http://$(primary_addr "$consul_server"):8500/v1/catalog/nodes" 2>/dev/null \
                | jq -r '.[].Node' 2>/dev/null | sort | tr '\n' ' ' || true)
            n=$(wc -w <<<"$have")
            [ "$have" = "$(printf '%s\n' "${want[@]}" | sort | tr '\n' ' ')" ] && break
            if [ "$n" != "$last" ]; then last=$n t=$(date +%s); fi
            [ $(( $(date +%s) - t )) -lt "$stall_s" ] || die "the Consul catalog has only: $have"
            sleep 2
        done
    fi
    for v in "${baked[@]}"; do
        vm_ssh "$v" 'udevadm settle; sync; if [ -d /run/systemd/system ]; then s=$(systemctl is-system-running); [ "$s" = running ] || echo "$s: $(systemctl --failed --plain --no-legend | cut -d" " -f1 | tr "\n" " ")"; else rc-status --crashed; fi' \
            | while IFS= read -r l; do say "$v: $l"; done
    done
    # pause all at once, then save each
    for v in "${baked[@]}"; do qmp "$run/$v/qmp.sock" '{"execute": "stop"}' >/dev/null; done
    for v in "${baked[@]}"; do
        b=$build/snap/$v.state
        qmp "$run/$v/qmp.sock" \
            '{"execute": "migrate-set-parameters", "arguments": {"max-bandwidth": 17179869184}}' \
            "{\"execute\": \"migrate\", \"arguments\": {\"uri\": \"exec:cat >'$b.tmp'\"}}" >/dev/null
        local s=
        while :; do
            s=$(qmp "$run/$v/qmp.sock" '{"execute": "query-migrate"}' | jq -r '.return.status')
            case "$s" in completed) break ;; failed|cancelled) die "saving $v's state: $s" ;; esac
            sleep 0.5
        done
        qmp "$run/$v/qmp.sock" '{"execute": "quit"}' >/dev/null 2>&1 || true
        mv "$b.tmp" "$b"
        say "$v: state saved ($(( $(stat -c %s "$b") >> 20 )) MiB)"
    done
}

bake_cleanup() {
    local pid
    if ip netns list 2>/dev/null | grep -qw "^$ns"; then
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
        sleep 0.5
        ip netns del "$ns" 2>/dev/null || true
    fi
    rm -rf "$run"
}

# ---- lab.json ------------------------------------------------------------------------
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
            --arg root "$(image_root "$v" && echo image || echo 9p)" \
            '{name: $name, role: $role, boot: $boot, poweredOnAtStart: $on, memoryMiB: $mem,
              mac: $mac0, nics: $nics,
              addresses: ($nics | map({key: .network, value: .address}) | from_entries),
              disks: $disks, root: $root,
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
                  rootImage: ($build + "/root.img"), savedStates: ($build + "/snap"),
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

# ---- start, stop, status -------------------------------------------------------------
running() { ip netns list 2>/dev/null | grep -qw "^$ns"; }

# Empty disks: every disk file of the VM is all holes (never written, or written
# and discarded), as the saved state saw them.
disks_empty() {
    local f
    for f in "$run/$1"/disk*.raw; do
        [ -f "$f" ] || continue
        [ "$(stat -c %b "$f")" = 0 ] || return 1
    done
    return 0
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
    local t0 v on=() restored=() booted=()
    t0=$(now)
    mkdir -p "$run"
    net_up
    write_known_hosts
    for v in "${vms[@]}"; do write_vm "$v"; rm -f "$run/$v/restore" "$run/$v/power-on"; done
    write_json
    for v in "${vms[@]}"; do
        [ "${vm_power[$v]}" = on ] || continue
        on+=("$v")
        if image_root "$v" && [ -f "$build/snap/.complete" ] && [ -f "$build/snap/$v.state" ] && disks_empty "$v"; then
            echo "$build/snap/$v.state" >"$run/$v/restore"
            restored+=("$v")
        else
            booted+=("$v")
        fi
    done
    for v in "${vms[@]}"; do start_bmc "$v"; done
    say "switches, BMCs and ${#on[@]} VMs started (restoring: ${restored[*]:-none}; booting: ${booted[*]:-none})"
    wait_up "${on[@]}"
    say "lab up in $(since "$t0")s; description: $run/lab.json"
    echo "$run/lab.json"
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
    for v in "${vms[@]}"; do rm -f "$run/$v/qemu.pid" "$run/$v/bmc.pid" "$run/$v/qmp.sock" "$run/$v/restore"; done
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
        local v d qpid bpid power how
        for v in "${vms[@]}"; do
            d=$run/$v
            qpid=$(cat "$d/qemu.pid" 2>/dev/null || true); bpid=$(cat "$d/bmc.pid" 2>/dev/null || true)
            power=off; pid_alive "$qpid" && power=on
            local rss=0
            pid_alive "$qpid" && rss=$(awk '/VmRSS/ {print int($2/1024)}' "/proc/$qpid/status")
            how=$(cut -d' ' -f1 "$d/power-on" 2>/dev/null || echo -)
            printf '  %-12s %-10s power=%-3s bmc=%-4s rss=%sMiB ssh=root@%s bmc=%s last-power-on=%s\n' "$v" "${vm_role[$v]}" \
                "$power" "$(pid_alive "$bpid" && echo up || echo down)" "$rss" "$(primary_addr "$v")" "$(bmc_addr "$v")" "$how"
        done
    fi
    echo "$run/lab.json"
}

do_reset() { do_stop; rm -rf "$run"; say "reset: run directory removed"; }

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
    build) do_build "${1:-}" ;;
    start) do_start ;;
    stop) do_stop ;;
    status) do_status ;;
    reset) do_reset ;;
    clean) do_reset; rm -rf "$labdir"/build-* "$labdir/build"; say "builds removed" ;;
    ssh) lab_build; v=${1:?usage: lab.sh ssh VM [CMD...]}; shift; vm_ssh "$v" "$@" ;;
    ipmi) lab_build; v=${1:?usage: lab.sh ipmi VM ARGS...}; shift
          ipmitool -I lanplus -C 3 -H "$(bmc_addr "$v")" -U admin -P "$(cat "$build/keys/bmc-password")" "$@" ;;
    rgw) exec bash "$here/rgw.sh" "$@" ;;
    *) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
