#!/bin/busybox sh
# /init of the lab's initramfs (busybox-static). Builds the VM's root file system
# without any disk image:
#   lower  the machine's own / shared read-only over virtio-9p (tag "hostroot")
#   upper  a tmpfs, so everything the VM writes stays in its memory
#   /lib/modules  the unpacked Debian kernel's modules (9p tag "modules")
#   per-VM files (SSH host keys, units, dotfiles) copied from 9p tag "bmlab"
# The VM's identity comes from the kernel command line:
#   bm.name=NAME  bm.net=eth0:ADDR/PREFIX[,eth1:ADDR/PREFIX...]  bm.gw=ADDR
#   bm.net6=eth0:ADDR/PREFIX (optional)
# then switch_root hands over to the machine's own systemd (bm.init overrides).
/bin/busybox mkdir -p /bin /sbin /proc /sys /dev /lower /rw /newroot /vmfiles
/bin/busybox --install -s /bin
export PATH=/bin

mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev

fail() {
    echo "bmlab-init: $*" >/dev/console
    echo "bmlab-init: dropping to a shell" >/dev/console
    exec sh </dev/console >/dev/console 2>&1
}

name=bmlab net= net6= gw= init=/lib/systemd/systemd
for arg in $(cat /proc/cmdline); do
    case "$arg" in
        bm.name=*) name=${arg#bm.name=} ;;
        bm.net=*) net=${arg#bm.net=} ;;
        bm.net6=*) net6=${arg#bm.net6=} ;;
        bm.gw=*) gw=${arg#bm.gw=} ;;
        bm.init=*) init=${arg#bm.init=} ;;
    esac
done

# Order matters: plain insmod does not resolve dependencies.
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci \
         9pnet 9pnet_virtio netfs fscache 9p overlay failover net_failover virtio_net; do
    insmod "/modules/$m.ko" || fail "insmod $m failed"
done

opts=trans=virtio,version=9p2000.L,msize=512000,cache=loose
mount -t 9p -o "$opts,ro" hostroot /lower || fail "cannot mount the host root (9p tag hostroot)"
mount -t tmpfs -o mode=0755 rw /rw || fail "cannot mount the tmpfs"
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot \
    || fail "cannot mount the overlay root"
# a fresh /tmp: the machine's own /tmp is none of the VM's business, and emptying it
# through the overlay at boot (systemd-tmpfiles) would take minutes
mount -t tmpfs -o mode=1777,nosuid,nodev tmp /newroot/tmp
mkdir -p /newroot/lib/modules
mount -t 9p -o "$opts,ro" modules /newroot/lib/modules || fail "cannot mount the modules (9p tag modules)"

# Per-VM files: replace what the VM must not share with the machine or the other VMs.
# Whiteouts (rm in the overlay) hide the machine's own SSH host keys and timers.
rm -f /newroot/etc/ssh/ssh_host_*
# the machine may itself be a container: its marker would make systemd in the VM
# believe it runs in one (and ignore the kernel command line, skip udev, ...)
rm -f /newroot/.dockerenv /newroot/run/.containerenv
rm -rf /newroot/etc/systemd/system/timers.target.wants
if mount -t 9p -o "$opts,ro" bmlab /vmfiles; then
    cp -a /vmfiles/. /newroot/
    umount /vmfiles
else
    fail "cannot mount the per-VM files (9p tag bmlab)"
fi
chmod 0600 /newroot/etc/ssh/ssh_host_*_key 2>/dev/null
chmod 0700 /newroot/root /newroot/root/.ssh 2>/dev/null

# Identity: hostname, machine-id, hosts, network (interfaces stay up across switch_root).
echo "$name" >/newroot/etc/hostname
hostname "$name"
echo "$name" | md5sum | cut -c1-32 >/newroot/etc/machine-id
ip link set lo up
for spec in $(echo "$net" | tr ',' ' '); do
    dev=${spec%%:*} addr=${spec#*:}
    ip link set "$dev" up && ip addr add "$addr" dev "$dev" || echo "bmlab-init: cannot configure $dev $addr" >/dev/console
done
for spec in $(echo "$net6" | tr ',' ' '); do
    dev=${spec%%:*} addr=${spec#*:}
    ip -6 addr add "$addr" dev "$dev" nodad || echo "bmlab-init: cannot configure $dev $addr" >/dev/console
done
[ -n "$gw" ] && ip route add default via "$gw"
{
    echo "BM_NAME=$name"
    echo "BM_NET=$net"
    echo "BM_NET6=$net6"
    echo "BM_GW=$gw"
} >/newroot/etc/bmlab.env

mount --move /dev /newroot/dev
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
exec switch_root /newroot "$init"
