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
run_in_root ip link add "$RXE_NETDEV" type dummy || die "cannot create $RXE_NETDEV"
run_in_root ip link set "$RXE_NETDEV" mtu "$RXE_MTU" up || die "cannot bring $RXE_NETDEV up"
run_in_root ip addr add "$RXE_ADDR" dev "$RXE_NETDEV" || die "cannot add $RXE_ADDR"
run_in_root rdma link add "$RXE_DEV" type rxe netdev "$RXE_NETDEV" || die "rdma link add failed"

# Wait for the RoCE v2 GID of the IPv4 address (IPv4-mapped IPv6).
ip4=${RXE_ADDR%/*}
old_ifs=$IFS
IFS=.
# shellcheck disable=SC2086 # split the dotted quad
set -- $ip4
IFS=$old_ifs
want=$(printf '0000:0000:0000:0000:0000:ffff:%02x%02x:%02x%02x' "$1" "$2" "$3" "$4")
port=/sys/class/infiniband/$RXE_DEV/ports/1
gid_index=
n=0
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
    [ $n -lt 1000 ] || die "no RoCE v2 GID for $ip4 on $RXE_DEV"
    usleep 10000
done

mkdir -p "$R/run/rdmig"
cat >"$R/run/rdmig/guest.env" <<EOF
export RDMIG_TEST_IP=$ip4
export RDMIG_TEST_DEV=$RXE_DEV
export RDMIG_TEST_GID_INDEX=$gid_index
EOF
cp /job/cmd.sh "$R/run/rdmig/cmd.sh" || die "no /job/cmd.sh"

# RDMA memory registration pins pages: lift the locked-memory limit.
ulimit -l unlimited || die "ulimit -l unlimited failed"
ulimit -n 65536 2>/dev/null || true

read -r uptime _ </proc/uptime
log "ready dev=$RXE_DEV ip=$ip4 gid_index=$gid_index guest_uptime=${uptime}s"

chroot "$R" /usr/bin/env -i /bin/bash /run/rdmig/cmd.sh \
    </dev/null >/dev/port-rdmig.out 2>/dev/port-rdmig.err
status=$?

{ echo "$status" >/job/status.tmp && mv /job/status.tmp /job/status; } ||
    die "cannot write /job/status"
sync
poweroff -f
sleep 60
