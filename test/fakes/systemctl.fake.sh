#!/bin/sh
# A FAKE systemctl for the unit tier (test/unit/systemdUnitScripts.test.ts): systemd does not run
# on the test machine. It keeps what systemd would hold in memory under $FAKE_SYSTEMD:
#   loaded/UNIT   the unit file as systemd loaded it (what it runs until a daemon-reload)
#   enabled/UNIT  the unit is linked into its target
#   failed/UNIT   the unit failed: systemd keeps it loaded even once its file is gone
#   calls         every call, one line each (the tests count daemon-reloads)
# Unit files are in $FAKE_UNIT_DIR. What it models, as measured on the lab's systemd 252
# (Debian 12): `show` loads a unit it does not hold yet from its file (LoadState=loaded,
# NeedDaemonReload=no); a held unit whose file changed or went says NeedDaemonReload=yes; a
# unit without a file that nothing holds is not-found (systemd drops a stopped unit nothing
# refers to). `show -p LoadState -p NeedDaemonReload` prints LoadState first, as systemd does.
set -eu
state=$FAKE_SYSTEMD
mkdir -p "$state/loaded" "$state/enabled" "$state/failed"
echo "$*" >>"$state/calls"
# options come before or after the verb, as systemctl takes them
value=; props=; cmd=; unit=
while [ $# -gt 0 ]; do
    case $1 in
        --quiet | --no-reload) ;;
        --value) value=1 ;;
        -p) shift; props="$props $1" ;;
        *) if [ -z "$cmd" ]; then cmd=$1; else unit=$1; fi ;;
    esac
    shift
done
file="$FAKE_UNIT_DIR/$unit"

held() {
    if [ -f "$state/loaded/$unit" ]; then
        [ -f "$file" ] || [ -f "$state/failed/$unit" ] || { rm -f "$state/loaded/$unit"; return 1; }
        return 0
    fi
    [ -f "$file" ] || return 1
    cp "$file" "$state/loaded/$unit"
}

case $cmd in
    show)
        if held; then load=loaded; else load=not-found; fi
        stale=no
        if [ "$load" = loaded ] && ! { [ -f "$file" ] && cmp -s "$file" "$state/loaded/$unit"; }; then stale=yes; fi
        for p in LoadState NeedDaemonReload; do
            case " $props " in *" $p "*) ;; *) continue ;; esac
            v=$load; [ "$p" = NeedDaemonReload ] && v=$stale
            if [ -n "$value" ]; then echo "$v"; else echo "$p=$v"; fi
        done
        ;;
    daemon-reload)
        for f in "$state"/loaded/*; do
            [ -e "$f" ] || continue
            u=${f##*/}
            if [ -f "$FAKE_UNIT_DIR/$u" ]; then cp "$FAKE_UNIT_DIR/$u" "$f"; else rm -f "$f"; fi
        done
        ;;
    is-enabled) [ -f "$state/enabled/$unit" ] ;;
    disable) rm -f "$state/enabled/$unit" ;;
    enable) touch "$state/enabled/$unit" ;;
    *) echo "fake systemctl: $cmd is not modelled" >&2; exit 64 ;;
esac
