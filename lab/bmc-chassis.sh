#!/bin/sh
# Chassis control of one lab VM, called by its BMC (ipmi_sim, `chassis_control` in
# bmc.conf) as:
#   bmc-chassis.sh VMDIR get PARM...          prints PARM:VALUE lines
#   bmc-chassis.sh VMDIR set PARM VALUE...    power 0|1, reset 1, boot none|pxe|default|cdrom|bios
# VMDIR is the VM's run directory (qemu.sh, qemu.pid, qmp.sock). The boot device is
# kept in VMDIR/bootdev and read by qemu.sh at the next power on (then forgotten, as
# IPMI's boot flags are valid for one boot).
dir=$1 op=$2
shift 2 || exit 1
echo "$(date '+%F %T') $op $*" >>"$dir/bmc-chassis.log"

alive() { pid=$(cat "$dir/qemu.pid" 2>/dev/null) && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }

case $op in
    get)
        for parm in "$@"; do
            case $parm in
                power) if alive; then echo power:1; else echo power:0; fi ;;
                boot) echo "boot:$(cat "$dir/bootdev" 2>/dev/null || echo default)" ;;
                *) echo "Invalid parameter: $parm"; exit 1 ;;
            esac
        done ;;
    set)
        while [ $# -gt 0 ]; do
            parm=$1 val=${2:-}
            [ -n "$val" ] || { echo "No value for $parm"; exit 1; }
            shift 2
            case $parm in
                power)
                    if [ "$val" = 1 ]; then
                        if ! alive; then
                            setsid /bin/sh "$dir/qemu.sh" </dev/null >/dev/null 2>&1 &
                            # qemu.sh writes its pid (qemu's, it execs) first: wait for it, so
                            # that a "power status" right after "power on" reads on (a loaded
                            # machine took longer than ipmitool's next command: CI read off)
                            n=0
                            while ! alive && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
                        fi
                    else
                        # qemu exits on TERM; wait, so that a power cycle's "on" finds it gone
                        if alive; then
                            kill -TERM "$pid"
                            n=0
                            while alive && [ $n -lt 50 ]; do sleep 0.2; n=$((n + 1)); done
                            alive && kill -KILL "$pid"
                        fi
                    fi ;;
                reset)
                    [ "$val" = 1 ] && alive && printf '%s\n' '{"execute":"qmp_capabilities"}' \
                        '{"execute":"system_reset"}' | socat -t 2 - "UNIX-CONNECT:$dir/qmp.sock" >/dev/null ;;
                boot)
                    case $val in
                        none|default) rm -f "$dir/bootdev" ;;
                        pxe|cdrom|bios) echo "$val" >"$dir/bootdev" ;;
                        *) echo "Invalid boot value: $val"; exit 1 ;;
                    esac ;;
                identify) shift ;;  # interval, force: nothing to light up
                *) echo "Invalid parameter: $parm"; exit 1 ;;
            esac
        done ;;
    check) exit 1 ;;
    *) echo "Unknown operation: $op"; exit 1 ;;
esac
exit 0
