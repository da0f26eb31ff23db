#!/bin/sh
# A FAKE ovs-vsctl for the unit tier (test/unit/ovsBridgeReadScript.test.ts and
# discoverSurveyOvs.test.ts): Open vSwitch does not run on the test machine. It answers the calls
# of the bridge read script and of discover's survey the way the
# real one does in the state named by FAKE_OVS:
#   present              bridge bmpar2 exists, label parallel-test, two ports
#   absent               br-exists exits 2 (the bridge is not in the database)
#   timeout              the database does not answer: killed by SIGALRM, as --timeout does
#   timeout-after-exists br-exists answers, the next call times out
#   timeout-after-list   list-br answers bmpar2, list-ports times out (the discover survey)
#   stopped              ovsdb-server is not running: its socket is gone (message as Open vSwitch
#                        prints it; captured on the lab's svc1 with the service stopped)
for a in "$@"; do case $a in --timeout=*) shift ;; *) break ;; esac; done
cmd=$1
case "$FAKE_OVS:$cmd" in
    present:br-exists | timeout-after-exists:br-exists) exit 0 ;;
    present:br-get-external-id) echo parallel-test ;;
    present:list-ports) printf 'eth1\nvm5254007e0001\n' ;;
    present:list-br | timeout-after-list:list-br) echo bmpar2 ;;
    absent:list-br) ;;
    absent:br-exists) exit 2 ;;
    timeout:* | timeout-after-exists:* | timeout-after-list:*)
        # as the real one dies by its --timeout (captured on the lab's svc1 with ovsdb-server stopped by SIGSTOP)
        echo "2026-12-04T02:25:53Z|00001|fatal_signal|WARN|terminating with signal 14 (Alarm clock)" >&2
        kill -ALRM $$
        ;;
    stopped:*)
        echo "ovs-vsctl: unix:/var/run/openvswitch/db.sock: database connection failed (No such file or directory)" >&2
        exit 1
        ;;
    *) echo "ovs-vsctl.fake.sh: no answer for FAKE_OVS=$FAKE_OVS $*" >&2; exit 99 ;;
esac
