#!/bin/busybox sh
# /init of the lab's initramfs (busybox-static). Builds the VM's root file system:
#   lower  bm.root=DEV: the lab's root image on that disk (ext4, read-only; lab.sh
#          builds it from the machine's Debian packages, kernel modules included);
#          without bm.root (a PXE client): the machine's own / over virtio-9p (tag
#          "hostroot") and the kernel's modules over 9p (tag "modules")
#   upper  a tmpfs, so everything the VM writes stays in its memory
#   bm.rootfs=tmpfs (the OpenRC box): / itself is a tmpfs, as on a diskless Alpine:
#          /etc copied into it, every other directory of the image an overlay
#          whose upper half lives in that tmpfs
#   bm.persist=DEV (the OpenRC box): the persist medium, when it holds a file
#          system: mounted at /media/persist, and <name>.etc.tar.gz on it (what the
#          OS adapter's persist step wrote) unpacked over /etc, as Alpine's
#          initramfs unpacks an apkovl
#   per-VM files (SSH host key, units, dotfiles): /vmfiles, a second cpio archive
#          appended to this initramfs by lab.sh, or else 9p tag "bmlab"
# The VM's identity comes from the kernel command line:
#   bm.name=NAME  bm.net=eth0:ADDR/PREFIX[,eth1:ADDR/PREFIX...]  bm.gw=ADDR
#   bm.net6=eth0:ADDR/PREFIX (optional)  bm.root=/dev/sdX (optional)
# then switch_root hands over to the machine's own systemd (bm.init overrides).
# "bmlab-init:" lines on the console are the stages lab.sh watches.
/bin/busybox mkdir -p /bin /sbin /proc /sys /dev /lower /rw /newroot /vmfiles
/bin/busybox --install -s /bin
export PATH=/bin

mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev

say() { echo "bmlab-init: $*" >/dev/console; }
fail() {
    say "$*"
    say "dropping to a shell"
    exec sh </dev/console >/dev/console 2>&1
}

name=bmlab net= net6= gw= root= init=/lib/systemd/systemd rootfs=overlay persist=
for arg in $(cat /proc/cmdline); do
    case "$arg" in
        bm.name=*) name=${arg#bm.name=} ;;
        bm.net=*) net=${arg#bm.net=} ;;
        bm.net6=*) net6=${arg#bm.net6=} ;;
        bm.gw=*) gw=${arg#bm.gw=} ;;
        bm.root=*) root=${arg#bm.root=} ;;
        bm.init=*) init=${arg#bm.init=} ;;
        bm.rootfs=*) rootfs=${arg#bm.rootfs=} ;;
        bm.persist=*) persist=${arg#bm.persist=} ;;
    esac
done

# /modules/order lists the modules dependencies first (plain insmod resolves none)
say "loading modules"
for m in $(cat /modules/order); do
    insmod "/modules/$m" || say "insmod $m failed"
done

opts=trans=virtio,version=9p2000.L,msize=512000,cache=loose
if [ -n "$root" ]; then
    # the SCSI scan runs in the background: wait for the disk
    n=0
    while [ ! -b "$root" ]; do
        [ $n -lt 600 ] || fail "no root disk $root after 60 s"
        [ $((n % 100)) -ne 0 ] || say "waiting for the root disk $root"
        sleep 0.1; n=$((n + 1))
    done
    mount -t ext4 -o ro "$root" /lower || fail "cannot mount the root image $root"
else
    mount -t 9p -o "$opts,ro" hostroot /lower || fail "cannot mount the host root (9p tag hostroot)"
fi
if [ "$rootfs" = tmpfs ]; then
    mount -t tmpfs -o mode=0755 root /newroot || fail "cannot mount the tmpfs root"
    for d in /lower/*; do
        n=${d#/lower/}
        if [ -L "$d" ] || [ ! -d "$d" ]; then cp -a "$d" /newroot/; continue; fi
        case "$n" in
            etc) cp -a "$d" /newroot/ ;;
            proc|sys|dev|run|tmp|lost+found) mkdir -p "/newroot/$n" ;;
            *)
                mkdir -p "/newroot/$n" "/newroot/.bm-rw/$n/upper" "/newroot/.bm-rw/$n/work"
                mount -t overlay -o "lowerdir=$d,upperdir=/newroot/.bm-rw/$n/upper,workdir=/newroot/.bm-rw/$n/work" "bm-$n" "/newroot/$n" \
                    || fail "cannot mount the overlay on /$n"
                ;;
        esac
    done
    mount -t tmpfs -o mode=0755,nosuid,nodev run /newroot/run
    # Debian's udev script, run by OpenRC (no sysvinit RUNLEVEL=S), takes a missing
    # /run/udev for a start from an interactive shell and waits 60 s
    mkdir -p /newroot/run/udev
    say "root mounted (tmpfs, /etc copied, overlays on ${root:-9p hostroot})"
else
    mount -t tmpfs -o mode=0755 rw /rw || fail "cannot mount the tmpfs"
    mkdir -p /rw/upper /rw/work
    mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot \
        || fail "cannot mount the overlay root"
    say "root mounted (${root:-9p hostroot})"
fi
# a fresh /tmp: the machine's own /tmp is none of the VM's business, and emptying it
# through the overlay at boot (systemd-tmpfiles) would take minutes
mount -t tmpfs -o mode=1777,nosuid,nodev tmp /newroot/tmp
if [ -z "$root" ]; then
    mkdir -p /newroot/lib/modules
    mount -t 9p -o "$opts,ro" modules /newroot/lib/modules || fail "cannot mount the modules (9p tag modules)"
fi

# Per-VM files: replace what the VM must not share with the machine or the other VMs.
# Whiteouts (rm in the overlay) hide the machine's own SSH host keys and timers.
rm -f /newroot/etc/ssh/ssh_host_*
# the machine may itself be a container: its marker would make systemd in the VM
# believe it runs in one (and ignore the kernel command line, skip udev, ...)
rm -f /newroot/.dockerenv /newroot/run/.containerenv
rm -rf /newroot/etc/systemd/system/timers.target.wants
case "$init" in
    # OpenRC's box: its own runlevels only (not the machine's, which /vmfiles replaces)
    *openrc*) rm -rf /newroot/etc/runlevels ;;
esac
if [ -d /vmfiles/etc ]; then
    cp -a /vmfiles/. /newroot/
elif mount -t 9p -o "$opts,ro" bmlab /vmfiles; then
    cp -a /vmfiles/. /newroot/
    # unmounted: a mounted 9p share would forbid saving the VM's state
    umount /vmfiles
else
    fail "cannot mount the per-VM files (9p tag bmlab)"
fi
chmod 0600 /newroot/etc/ssh/ssh_host_*_key 2>/dev/null
# the OpenRC box brings a BusyBox of its own: it is /bin/sh
[ ! -x /newroot/usr/lib/bmlab/busybox ] || ln -sf /usr/lib/bmlab/busybox /newroot/usr/bin/sh
chmod 0700 /newroot/root /newroot/root/.ssh 2>/dev/null

# The persist medium (the OpenRC box): restore what the persist step kept. A blank
# disk (no file system yet) restores nothing; the box's operator makes one.
if [ -n "$persist" ]; then
    n=0
    while [ ! -b "$persist" ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
    mkdir -p /newroot/media/persist
    if mount -t ext4 "$persist" /newroot/media/persist 2>/dev/null; then
        if [ -f "/newroot/media/persist/$name.etc.tar.gz" ]; then
            tar -xzf "/newroot/media/persist/$name.etc.tar.gz" -C /newroot || fail "cannot unpack $persist: $name.etc.tar.gz"
            say "restored /etc from $persist ($name.etc.tar.gz)"
        else
            say "persist medium $persist mounted; no $name.etc.tar.gz on it yet"
        fi
    else
        say "persist medium $persist holds no file system: nothing to restore"
    fi
fi

# Identity: hostname, machine-id, hosts, network (interfaces stay up across switch_root).
echo "$name" >/newroot/etc/hostname
hostname "$name"
echo "$name" | md5sum | cut -c1-32 >/newroot/etc/machine-id
ip link set lo up
for spec in $(echo "$net" | tr ',' ' '); do
    dev=${spec%%:*} addr=${spec#*:}
    ip link set "$dev" up && ip addr add "$addr" dev "$dev" || say "cannot configure $dev $addr"
done
for spec in $(echo "$net6" | tr ',' ' '); do
    dev=${spec%%:*} addr=${spec#*:}
    # no duplicate address detection: the lab's addresses are unique by construction
    # (busybox ip knows no "nodad")
    echo 0 >"/proc/sys/net/ipv6/conf/$dev/accept_dad"
    ip -6 addr add "$addr" dev "$dev" || say "cannot configure $dev $addr"
done
[ -n "$gw" ] && ip route add default via "$gw"
{
    echo "BM_NAME=$name"
    echo "BM_NET=$net"
    echo "BM_NET6=$net6"
    echo "BM_GW=$gw"
} >/newroot/etc/bmlab.env

say "switch_root to $init"
mount --move /dev /newroot/dev
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
exec switch_root /newroot "$init"
