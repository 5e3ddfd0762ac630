#!/bin/busybox sh
# PID 1 of the soft-RoCE test VM started by ci/rxe-run.sh (busybox sh, runs
# from the initramfs). It loads the modules, mounts the host's / read-only
# over virtio-9p plus the read-write shares, creates a dummy netdev with an
# rxe device on it, runs the job's command chrooted into the host root, writes
# its exit status to the job share and powers the VM off.
#
# Protocol with the host (all through the 9p share tagged "job", mounted at
# /job): /job/config (sh variables, written by the host), /job/cmd.sh (the
# command, run by the host's bash inside the chroot), /job/status (written
# here: the command's exit status). virtio-serial ports "rdmig.out" and
# "rdmig.err" carry the command's stdout and stderr, "rdmig.ctl" this
# script's own messages.

# shellcheck shell=sh disable=SC3043,SC3045 # busybox sh has local, ulimit -l/-n
/bin/busybox --install -s /bin
export PATH=/bin
umask 022

mount -t devtmpfs devtmpfs /dev
exec </dev/null >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys

CTL=/dev/console
log() { echo "$*" >"$CTL"; }

# Reports a setup failure; the host sees no /job/status and fails the run.
die() {
    log "guest setup failed: $*"
    [ "$CTL" = /dev/console ] || echo "rxe-run guest: $*" >/dev/console
    sync
    poweroff -f
    sleep 60
}

# Modules, in dependency order, with their parameters (see /modules.list).
while read -r mod params; do
    [ -n "$mod" ] || continue
    # shellcheck disable=SC2086 # params is a list of words
    insmod "/lib/modules/$mod" $params || die "insmod $mod failed"
done </modules.list

# Name the virtio-serial ports (no udev here): /dev/port-<name>.
n=0
while :; do
    for p in /sys/class/virtio-ports/*; do
        [ -e "$p/name" ] || continue
        name=$(cat "$p/name")
        [ -n "$name" ] && ln -sf "/dev/${p##*/}" "/dev/port-$name"
    done
    [ -e /dev/port-rdmig.ctl ] && [ -e /dev/port-rdmig.out ] && [ -e /dev/port-rdmig.err ] && break
    n=$((n + 1))
    [ $n -lt 500 ] || die "virtio-serial ports did not appear"
    usleep 10000
done
CTL=/dev/port-rdmig.ctl

# mount9p TAG DIR OPTIONS: virtio-9p devices may still be probing; retry.
mount9p() {
    local tries=0 err
    until err=$(mount -t 9p -o "trans=virtio,version=9p2000.L,msize=$MSIZE,$3" "$1" "$2" 2>&1); do
        tries=$((tries + 1))
        [ $tries -lt 200 ] || die "cannot mount 9p share $1 on $2: $err"
        usleep 10000
    done
}

MSIZE=512000
mkdir -p /job /newroot
mount9p job /job cache=none
[ -r /job/config ] || die "no /job/config"
# shellcheck disable=SC1091 # written by ci/rxe-run.sh
. /job/config

# The guest root: the host's / read-only, with private writable scratch space.
R=/newroot
mount9p root "$R" ro,cache=loose
mount -t devtmpfs devtmpfs "$R/dev"
mkdir -p "$R/dev/shm" "$R/dev/pts"
ln -sf /proc/self/fd "$R/dev/fd" # what udev would add (bash needs it for <(...))
ln -sf /proc/self/fd/0 "$R/dev/stdin"
ln -sf /proc/self/fd/1 "$R/dev/stdout"
ln -sf /proc/self/fd/2 "$R/dev/stderr"
mount -t tmpfs -o mode=1777 tmpfs "$R/dev/shm"
mount -t devpts -o ptmxmode=0666 devpts "$R/dev/pts"
mount -t proc proc "$R/proc"
mount -t sysfs sysfs "$R/sys"
mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"
mount -t tmpfs -o mode=1777 tmpfs "$R/var/tmp"
mount -t tmpfs -o mode=0755 tmpfs "$R/run"
mount -t tmpfs -o mode=0700 tmpfs "$R/root"

# Read-write shares at their host paths (parents first; a share under one of
# the tmpfs mounts above gets its mount point created there).
share=1
while [ "$share" -le "${RW_COUNT:-0}" ]; do
    eval "dir=\$RW_$share"
    # shellcheck disable=SC2154 # dir is set by the eval above
    mkdir -p "$R$dir" 2>/dev/null || [ -d "$R$dir" ] || die "no mount point for $dir"
    mount9p "rw$share" "$R$dir" cache=mmap
    share=$((share + 1))
done

# Network: loopback plus a dummy netdev carrying the rxe device. No device
# reaches outside the VM.
hostname rdmig-vm
ip link set lo up
run_in_root() { chroot "$R" "$@"; }
# Rail i: a dummy netdev with an address and an rxe device on it, then the
# index of the address's RoCE v2 GID (IPv4-mapped IPv6) once it appears.
# Rail 0 is RXE_NETDEV/RXE_DEV at RXE_ADDR; rail i is rdmig<i>/rxe<i> at
# that address with i added to its third octet. Prints "dev ip gid_index".
rail_up() {
    local i=$1 netdev dev addr ip4 want port gid_index= n=0 g idx old_ifs
    if [ "$i" -eq 0 ]; then
        netdev=$RXE_NETDEV dev=$RXE_DEV addr=$RXE_ADDR
    else
        netdev=rdmig$i dev=rxe$i
        old_ifs=$IFS
        IFS=./
        # shellcheck disable=SC2086 # split the dotted quad and the prefix
        set -- $RXE_ADDR
        IFS=$old_ifs
        addr=$1.$2.$(($3 + i)).$4/$5
    fi
    run_in_root ip link add "$netdev" type dummy || die "cannot create $netdev"
    run_in_root ip link set "$netdev" mtu "$RXE_MTU" up || die "cannot bring $netdev up"
    run_in_root ip addr add "$addr" dev "$netdev" || die "cannot add $addr"
    run_in_root rdma link add "$dev" type rxe netdev "$netdev" || die "rdma link add $dev failed"
    ip4=${addr%/*}
    old_ifs=$IFS
    IFS=.
    # shellcheck disable=SC2086 # split the dotted quad
    set -- $ip4
    IFS=$old_ifs
    want=$(printf '0000:0000:0000:0000:0000:ffff:%02x%02x:%02x%02x' "$1" "$2" "$3" "$4")
    port=/sys/class/infiniband/$dev/ports/1
    while [ -z "$gid_index" ]; do
        for g in "$port"/gids/*; do
            idx=${g##*/}
            if [ "$(cat "$g" 2>/dev/null)" = "$want" ] &&
                [ "$(cat "$port/gid_attrs/types/$idx" 2>/dev/null)" = "RoCE v2" ]; then
                gid_index=$idx
                break
            fi
        done
        [ -n "$gid_index" ] && break
        n=$((n + 1))
        [ $n -lt 1000 ] || die "no RoCE v2 GID for $ip4 on $dev"
        usleep 10000
    done
    echo "$dev $ip4 $gid_index"
}

# Each rail in turn (die() inside a command substitution only ends that
# subshell: an empty answer means the rail failed).
mkdir -p "$R/run/rdmig"
rails=${RXE_RAILS:-1}
set -- $(rail_up 0)
[ $# -eq 3 ] || die "rail 0 ($RXE_DEV) did not come up"
dev=$1 ip4=$2 gid_index=$3
{
    echo "export RDMIG_TEST_IP=$ip4"
    echo "export RDMIG_TEST_DEV=$dev"
    echo "export RDMIG_TEST_GID_INDEX=$gid_index"
    echo "export RDMIG_TEST_RAILS=$rails"
    echo "export RDMIG_TEST_IP_0=$ip4 RDMIG_TEST_DEV_0=$dev RDMIG_TEST_GID_INDEX_0=$gid_index"
} >"$R/run/rdmig/guest.env"
i=1
while [ "$i" -lt "$rails" ]; do
    # shellcheck disable=SC2046 # three words
    set -- $(rail_up "$i")
    [ $# -eq 3 ] || die "rail $i did not come up"
    echo "export RDMIG_TEST_IP_$i=$2 RDMIG_TEST_DEV_$i=$1 RDMIG_TEST_GID_INDEX_$i=$3" \
        >>"$R/run/rdmig/guest.env"
    i=$((i + 1))
done
cp /job/cmd.sh "$R/run/rdmig/cmd.sh" || die "no /job/cmd.sh"

# RDMA memory registration pins pages: lift the locked-memory limit.
ulimit -l unlimited || die "ulimit -l unlimited failed"
ulimit -n 65536 2>/dev/null || true

read -r uptime _ </proc/uptime
log "ready dev=$dev ip=$ip4 gid_index=$gid_index rails=$rails guest_uptime=${uptime}s"

chroot "$R" /usr/bin/env -i /bin/bash /run/rdmig/cmd.sh \
    </dev/null >/dev/port-rdmig.out 2>/dev/port-rdmig.err
status=$?

{ echo "$status" >/job/status.tmp && mv /job/status.tmp /job/status; } ||
    die "cannot write /job/status"
sync
poweroff -f
sleep 60
