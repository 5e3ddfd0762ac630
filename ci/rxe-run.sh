#!/usr/bin/env bash
# Runs a command with a working soft-RoCE (rxe) device and exits with its
# status. On a host whose kernel can do RDMA the command runs directly (an
# existing rxe device is used, or one is created on a dummy netdev and removed
# afterwards); otherwise a QEMU TCG VM boots Debian's stock kernel with the
# host's / as its read-only root, sets up rxe inside and runs the command
# there. See ci/README.md.
#
# Usage: ci/rxe-run.sh [--] CMD [ARGS...]
#        ci/rxe-run.sh --mode     print "host" or "vm" and exit
#
# The command sees RDMIG_TEST_IP (IPv4 address of the rxe netdev),
# RDMIG_TEST_DEV (rxe device name) and RDMIG_TEST_GID_INDEX (RoCE v2 GID index
# of that address).
#
# Multi-rail and NUMA (VM mode only; asking for either picks the VM in auto
# mode): RDMIG_RXE_RAILS=N (1-4) gives the VM N rxe devices, each on a dummy
# netdev of its own (rxe0 on 10.213.0.1, rxe1 on 10.213.1.1, ...); the
# command also sees RDMIG_TEST_RAILS=N and RDMIG_TEST_DEV_<i>,
# RDMIG_TEST_IP_<i>, RDMIG_TEST_GID_INDEX_<i> for each rail i (0 is the one
# above). RDMIG_VM_NUMA=N (1-4, at most RDMIG_VM_SMP) splits the VM's CPUs
# and memory evenly into N NUMA nodes.
set -euo pipefail

script_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
readonly script_dir

# Settings (environment).
mode_req=${RDMIG_RXE_MODE:-auto}         # auto | host | vm
rxe_addr=${RDMIG_RXE_ADDR:-10.213.0.1/24} # address of the netdev we create
rxe_mtu=${RDMIG_RXE_MTU:-9000}
vm_mem=${RDMIG_VM_MEM:-3072}              # MiB
vm_smp=${RDMIG_VM_SMP:-2}
vm_numa=${RDMIG_VM_NUMA:-1}               # NUMA nodes of the VM
rxe_rails=${RDMIG_RXE_RAILS:-1}           # rxe devices (VM mode beyond 1)
vm_timeout=${RDMIG_VM_TIMEOUT:-2400}      # seconds, whole VM run
vm_kernel=${RDMIG_VM_KERNEL:-}            # kernel version, default: newest usable
cache_dir=${RDMIG_CI_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/rdmig-ci}

# Names used when this script creates the device itself.
readonly own_netdev=rdmig-rxe
readonly own_rxe=rxe_rdmig

log() { printf 'rxe-run: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 125; }

usage() { sed -n '9,15s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }

now_us() { echo "${EPOCHREALTIME/./}"; }
since() { # since START_US -> seconds with 2 decimals
    local d=$(( $(now_us) - $1 ))
    printf '%d.%02d' $((d / 1000000)) $((d % 1000000 / 10000))
}

# IPv4-mapped IPv6 GID of a dotted quad, as sysfs prints it.
ipv4_gid() {
    local IFS=.
    # shellcheck disable=SC2086 # split the dotted quad
    set -- $1
    printf '0000:0000:0000:0000:0000:ffff:%02x%02x:%02x%02x' "$1" "$2" "$3" "$4"
}

# Prints the index of the RoCE v2 GID of IPv4 address $2 on device $1.
gid_index() {
    local port=/sys/class/infiniband/$1/ports/1 want g idx
    want=$(ipv4_gid "$2")
    for g in "$port"/gids/*; do
        idx=${g##*/}
        [[ $(cat "$g" 2>/dev/null) == "$want" ]] || continue
        [[ $(cat "$port/gid_attrs/types/$idx" 2>/dev/null) == "RoCE v2" ]] || continue
        echo "$idx"
        return 0
    done
    return 1
}

# ---------------------------------------------------------------- host mode

# Runs a command as root: directly, or through passwordless sudo.
as_root() {
    if ((EUID == 0)); then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo -n "$@"
    else
        return 1
    fi
}

host_rdma_works() {
    command -v rdma >/dev/null && rdma link show >/dev/null 2>&1
}

# Soft-RoCE: a software device (a "parent" netdev, no bus device) with an
# Ethernet link layer (siw, the other software driver, is iWARP).
is_rxe() {
    local d=/sys/class/infiniband/$1
    [[ -e $d/parent && ! -e $d/device ]] &&
        [[ $(cat "$d/ports/1/link_layer" 2>/dev/null) == Ethernet ]]
}

# Prints "DEV NETDEV IPV4" of a usable pre-existing rxe device.
host_find_rxe() {
    local _link devport _state _s _phys _p _nd netdev dev ip
    while read -r _link devport _state _s _phys _p _nd netdev _; do
        dev=${devport%/*}
        if [[ $dev == "$own_rxe" || -z $netdev ]] || ! is_rxe "$dev"; then
            continue
        fi
        ip=$(ip -4 -o addr show dev "$netdev" 2>/dev/null | awk '{ sub("/.*", "", $4); print $4; exit }')
        [[ -n $ip ]] || continue
        echo "$dev $netdev $ip"
        return 0
    done < <(rdma link show 2>/dev/null)
    return 1
}

host_can_create() {
    { ((EUID == 0)) || sudo -n true 2>/dev/null; } &&
        { [[ -d /sys/module/rdma_rxe ]] || modinfo rdma_rxe >/dev/null 2>&1; }
}

host_usable() {
    host_rdma_works && { host_find_rxe >/dev/null || host_can_create; }
}

host_created=0
host_cleanup() {
    ((host_created)) || return 0
    as_root rdma link delete "$own_rxe" 2>/dev/null || true
    as_root ip link delete "$own_netdev" 2>/dev/null || true
    host_created=0
}

# Creates the rxe device on a dummy netdev. Serialised by a lock, since all
# runs use the same names and address.
host_create_rxe() {
    local lock_file n
    lock_file=/run/lock/rdmig-rxe-run.lock
    [[ -w ${lock_file%/*} ]] || lock_file=${TMPDIR:-/tmp}/rdmig-rxe-run.lock
    exec {lock_fd}>>"$lock_file"
    if ! flock -n "$lock_fd"; then
        log "waiting for another host-mode run (lock $lock_file)"
        flock -w "$vm_timeout" "$lock_fd" || die "timed out waiting for $lock_file"
    fi
    as_root modprobe rdma_rxe || return 1
    host_created=1
    # Leftovers of a run that was killed.
    as_root rdma link delete "$own_rxe" 2>/dev/null || true
    as_root ip link delete "$own_netdev" 2>/dev/null || true
    as_root ip link add "$own_netdev" type dummy &&
        as_root ip link set "$own_netdev" mtu "$rxe_mtu" up &&
        as_root ip addr add "$rxe_addr" dev "$own_netdev" &&
        as_root rdma link add "$own_rxe" type rxe netdev "$own_netdev" || return 1
    test_dev=$own_rxe
    test_ip=${rxe_addr%/*}
    for ((n = 0; n < 500; n++)); do
        test_gid=$(gid_index "$test_dev" "$test_ip") && return 0
        sleep 0.01
    done
    log "no RoCE v2 GID for $test_ip appeared on $test_dev"
    return 1
}

# Sets up (or finds) the device; returns non-zero if the host cannot do it.
host_setup() {
    local found
    host_rdma_works || return 1
    if found=$(host_find_rxe); then
        read -r test_dev _ test_ip <<<"$found"
        if test_gid=$(gid_index "$test_dev" "$test_ip"); then
            log "using existing rxe device $test_dev ($test_ip)"
            return 0
        fi
    fi
    if host_create_rxe; then
        log "created $test_dev on dummy netdev $own_netdev ($test_ip)"
        return 0
    fi
    host_cleanup
    return 1
}

host_run() {
    trap host_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    if ! ulimit -l unlimited 2>/dev/null; then
        log "warning: cannot lift the locked-memory limit (ulimit -l is $(ulimit -l))"
    fi
    log "running on the host: dev=$test_dev ip=$test_ip gid_index=$test_gid"
    local status=0
    RDMIG_TEST_IP=$test_ip RDMIG_TEST_DEV=$test_dev RDMIG_TEST_GID_INDEX=$test_gid \
        "$@" || status=$?
    host_cleanup
    exit "$status"
}

# ------------------------------------------------------------------ VM mode

# rdma_rxe computes its ICRC through the crypto API's "crc32", and nothing in
# the guest loads crc32_generic on demand. (crc32_pclmul is deliberately left
# out: under TCG it makes rxe about a third slower than the generic code.)
readonly vm_modules=(virtio_pci 9pnet_virtio 9p virtio_console crc32_generic
    rdma_rxe ib_uverbs rdma_ucm dummy)

# Newest kernel with a /boot/vmlinuz-* image and an rdma_rxe module.
vm_pick_kernel() {
    local f kver best=
    if [[ -n $vm_kernel ]]; then
        [[ -r /boot/vmlinuz-$vm_kernel && -d /lib/modules/$vm_kernel ]] ||
            die "RDMIG_VM_KERNEL=$vm_kernel: no /boot/vmlinuz-$vm_kernel or /lib/modules/$vm_kernel"
        echo "$vm_kernel"
        return
    fi
    for f in /boot/vmlinuz-*; do
        kver=${f#/boot/vmlinuz-}
        [[ -r $f && -f /lib/modules/$kver/modules.dep ]] || continue
        modinfo -k "$kver" rdma_rxe >/dev/null 2>&1 || continue
        best=$(printf '%s\n' "$best" "$kver" | sort -V | tail -n 1)
    done
    [[ -n $best ]] || die "no usable kernel: need /boot/vmlinuz-* with rdma_rxe in /lib/modules (run ci/deps.sh)"
    echo "$best"
}

# Extracts the uncompressed ELF vmlinux from a bzImage into $2.
vm_extract_vmlinux() {
    local img=$1 out=$2 magic tool off
    for magic in '\xfd7zXZ\x00:xz -dc --single-stream' '\x28\xb5\x2f\xfd:zstd -dcq' '\x1f\x8b\x08:gzip -dcq'; do
        tool=${magic#*:}
        command -v "${tool%% *}" >/dev/null || continue
        while IFS=: read -r off _; do
            tail -c "+$((off + 1))" "$img" | $tool >"$out.tmp" 2>/dev/null || true
            if cmp -s -n 4 <(printf '\177ELF') "$out.tmp"; then
                mv -f "$out.tmp" "$out"
                return 0
            fi
        done < <(LC_ALL=C grep -obUaP "${magic%%:*}" "$img")
    done
    rm -f "$out.tmp"
    return 1
}

# One newc cpio entry without data (directory or device node).
cpio_node() { # NAME MODE(octal) [RDEV_MAJOR RDEV_MINOR]
    local name=$1 mode=$((8#$2)) namesize=$((${#1} + 1))
    printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
        0 "$mode" 0 0 1 0 0 0 0 "${3:-0}" "${4:-0}" "$namesize" 0
    printf '%s\0' "$name"
    printf '%*s' $(((4 - (110 + namesize) % 4) % 4)) '' | tr ' ' '\0'
}

# Module list for the initramfs: "FILE PARAMS" lines in load order.
vm_module_list() {
    local kver=$1 m deps kind path params
    local -A seen=()
    for m in "${vm_modules[@]}"; do
        deps=$(modprobe -S "$kver" --show-depends "$m") ||
            die "kernel $kver has no module $m"
        while read -r kind path params; do
            [[ $kind == insmod && -z ${seen[$path]-} ]] || continue
            seen[$path]=1
            echo "$path $params"
        done <<<"$deps"
    done
}

# Builds the initramfs $3 for kernel $1 from module list $2.
vm_build_initramfs() {
    local kver=$1 modlist=$2 out=$3 tmp path params base
    ldd /bin/busybox >/dev/null 2>&1 && die "/bin/busybox is dynamically linked; install busybox-static"
    tmp=$(mktemp -d "${out%/*}/initramfs.XXXXXX")
    mkdir -p "$tmp"/{bin,lib/modules,proc,sys,job,newroot}
    cp /bin/busybox "$tmp/bin/busybox"
    install -m 0755 "$script_dir/rxe-vm-init.sh" "$tmp/init"
    while read -r path params; do
        base=${path##*/}
        case $path in
            *.ko.xz) base=${base%.xz}; xz -dc "$path" >"$tmp/lib/modules/$base" ;;
            *.ko.zst) base=${base%.zst}; zstd -dcq "$path" >"$tmp/lib/modules/$base" ;;
            *.ko.gz) base=${base%.gz}; gzip -dc "$path" >"$tmp/lib/modules/$base" ;;
            *) cp "$path" "$tmp/lib/modules/$base" ;;
        esac
        echo "$base $params" >>"$tmp/modules.list"
    done <<<"$modlist"
    {
        (cd "$tmp" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet)
        # /dev/console must exist before PID 1 starts; cpio cannot create a
        # device node without root, so write the entry by hand.
        cpio_node dev 040755
        cpio_node dev/console 020600 5 1
        cpio_node TRAILER!!! 0
    } >"$out.tmp"
    rm -rf "$tmp"
    mv -f "$out.tmp" "$out"
}

# Sets vm_kernel_img and vm_initrd, building them into the cache if needed.
vm_prepare_cache() {
    local kver=$1 dir modlist key t0
    dir=$cache_dir/$kver
    mkdir -p "$dir"
    modlist=$(vm_module_list "$kver")
    # The initramfs is rebuilt whenever its inputs change.
    key=$({
        cat "$script_dir/rxe-vm-init.sh"
        echo "$modlist"
        cut -d' ' -f1 <<<"$modlist" | xargs stat -L -c '%n %s %Y' /bin/busybox
    } | sha256sum | cut -c1-16)
    vm_kernel_img=$dir/vmlinux
    vm_initrd=$dir/initramfs-$key.cpio
    # A reinstalled kernel image invalidates the extracted one.
    if [[ -e $vm_kernel_img && ! $vm_kernel_img -nt /boot/vmlinuz-$kver ]]; then
        rm -f "$vm_kernel_img"
    fi
    [[ -s $vm_kernel_img && -s $vm_initrd ]] && return 0

    exec {cache_lock}>>"$dir/.lock"
    flock "$cache_lock"
    t0=$(now_us)
    if [[ ! -s $vm_kernel_img && ! $dir/vmlinux.unextractable -nt /boot/vmlinuz-$kver ]]; then
        if vm_extract_vmlinux "/boot/vmlinuz-$kver" "$vm_kernel_img"; then
            log "extracted vmlinux of $kver into $dir"
        else
            log "cannot extract vmlinux from /boot/vmlinuz-$kver; booting the bzImage (slower)"
            touch "$dir/vmlinux.unextractable"
        fi
    fi
    [[ -s $vm_kernel_img ]] || vm_kernel_img=/boot/vmlinuz-$kver
    if [[ ! -s $vm_initrd ]]; then
        rm -f "$dir"/initramfs-*.cpio
        vm_build_initramfs "$kver" "$modlist" "$vm_initrd"
        log "built initramfs for $kver in $(since "$t0")s"
    fi
    exec {cache_lock}>&-
}

# Quotes a string for a POSIX shell (busybox reads the job config).
sh_quote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

# Escapes a value for a QEMU option list (commas are doubled).
qemu_esc() { printf '%s' "${1//,/,,}"; }

# Read-write shares: the repository, the working directory and
# RDMIG_VM_RW_DIRS (colon-separated), without ones nested in another.
vm_rw_dirs() {
    local repo d kept k ok
    local -a cand=()
    repo=$(git -C "$script_dir" rev-parse --show-toplevel 2>/dev/null) || repo=$script_dir/..
    cand+=("$(cd -- "$repo" && pwd -P)" "$(pwd -P)")
    if [[ -n ${RDMIG_VM_RW_DIRS-} ]]; then
        local IFS=:
        for d in $RDMIG_VM_RW_DIRS; do
            if [[ -d $d ]]; then
                cand+=("$(cd -- "$d" && pwd -P)")
            else
                log "RDMIG_VM_RW_DIRS: no directory $d, ignored"
            fi
        done
    fi
    local -a sorted=()
    mapfile -t sorted < <(printf '%s\n' "${cand[@]}" | awk '{ print length, $0 }' | sort -n -s | cut -d' ' -f2-)
    kept=()
    for d in "${sorted[@]}"; do
        if [[ $d == / ]]; then
            log "not sharing / read-write; the guest sees it read-only"
            continue
        fi
        ok=1
        for k in "${kept[@]}"; do
            [[ $d == "$k" || $d == "$k"/* ]] && { ok=0; break; }
        done
        ((ok)) && kept+=("$d")
    done
    printf '%s\n' "${kept[@]}"
}

# The script the guest runs (by the host's bash, chrooted into the 9p root):
# the environment to pass, the working directory and the command.
vm_write_cmd() {
    local name
    echo '# generated by ci/rxe-run.sh'
    for name in $(compgen -e); do
        case $name in
            RDMIG_* | CTEST_* | CI | PATH | HOME | TERM | LANG | LANGUAGE | LC_* | TZ | USER | LOGNAME)
                printf 'export %s=%q\n' "$name" "${!name}" ;;
        esac
    done
    echo '. /run/rdmig/guest.env'
    printf 'cd -- %q 2>/dev/null || cd -- %q || exit 125\n' "$PWD" "$(pwd -P)"
    printf 'exec'
    printf ' %q' "$@"
    printf '\n'
}

vm_pid=
vm_job=
vm_readers=()
fifo_out='' fifo_err='' fifo_ctl=''

# Closes this shell's own read-write handles on the output FIFOs.
vm_close_fifos() {
    [[ -z $fifo_out ]] || exec {fifo_out}>&-
    [[ -z $fifo_err ]] || exec {fifo_err}>&-
    [[ -z $fifo_ctl ]] || exec {fifo_ctl}>&-
    fifo_out='' fifo_err='' fifo_ctl=''
}
# shellcheck disable=SC2317 # invoked by trap
vm_cleanup() {
    local p
    if [[ -n $vm_pid ]] && kill -0 "$vm_pid" 2>/dev/null; then
        kill "$vm_pid" 2>/dev/null || true
        wait "$vm_pid" 2>/dev/null || true
    fi
    vm_close_fifos
    for p in "${vm_readers[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    [[ -n $vm_job ]] && rm -rf -- "$vm_job"
    vm_job=
}

vm_show_logs() {
    if [[ -s $vm_job/console.log ]]; then
        log "guest console (last 30 lines):"
        tail -n 30 "$vm_job/console.log" | sed 's/^/rxe-run:   /' >&2
    fi
    if [[ -s $vm_job/qemu.log ]]; then
        log "qemu stderr:"
        sed 's/^/rxe-run:   /' "$vm_job/qemu.log" >&2
    fi
}

vm_run() {
    local kver sm i t0 d status qemu_rc=0
    local -a rw qemu

    command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found (run ci/deps.sh)"
    kver=$(vm_pick_kernel)
    vm_prepare_cache "$kver"
    mapfile -t rw < <(vm_rw_dirs)

    trap vm_cleanup EXIT
    trap 'log "interrupted"; exit 130' INT
    trap 'log "terminated"; exit 143' TERM
    vm_job=$(mktemp -d "${TMPDIR:-/tmp}/rxe-run.XXXXXX")

    {
        echo "RXE_ADDR=$(sh_quote "$rxe_addr")"
        echo "RXE_MTU=$(sh_quote "$rxe_mtu")"
        echo "RXE_DEV=rxe0"
        echo "RXE_NETDEV=rdmig0"
        echo "RXE_RAILS=$rxe_rails"
        echo "RW_COUNT=${#rw[@]}"
        for i in "${!rw[@]}"; do
            echo "RW_$((i + 1))=$(sh_quote "${rw[i]}")"
        done
    } >"$vm_job/config"
    vm_write_cmd "$@" >"$vm_job/cmd.sh"

    # The guest's stdout/stderr/messages arrive on FIFOs. Holding each one
    # open read-write here means neither the readers nor QEMU block on open,
    # and the readers see EOF only once QEMU is gone and these are closed.
    mkfifo "$vm_job/out.fifo" "$vm_job/err.fifo" "$vm_job/ctl.fifo"
    exec {fifo_out}<>"$vm_job/out.fifo" {fifo_err}<>"$vm_job/err.fifo" {fifo_ctl}<>"$vm_job/ctl.fifo"
    # Children must not inherit those handles, or the readers never see EOF.
    # Should our stdout/stderr go away (`| head`), the reader keeps draining
    # so that the guest does not stall on a full pipe.
    { cat || exec cat >/dev/null; } <"$vm_job/out.fifo" {fifo_out}>&- {fifo_err}>&- {fifo_ctl}>&- &
    vm_readers+=($!)
    { cat >&2 || exec cat >/dev/null; } <"$vm_job/err.fifo" {fifo_out}>&- {fifo_err}>&- {fifo_ctl}>&- &
    vm_readers+=($!)
    t0=$(now_us)
    (
        vm_close_fifos
        while IFS= read -r line; do
            case $line in
                ready*) log "VM up in $(since "$t0")s: ${line#ready }" ;;
                *) log "guest: $line" ;;
            esac
        done <"$vm_job/ctl.fifo"
    ) &
    vm_readers+=($!)

    sm=passthrough
    ((EUID == 0)) || sm=none # unprivileged QEMU cannot chown files
    # shellcheck disable=SC2054 # commas are QEMU's
    qemu=(qemu-system-x86_64
        -nodefaults -no-user-config -display none -monitor none -no-reboot
        -accel tcg,thread=multi -cpu max,-erms,-fsrm -smp "$vm_smp" -m "$vm_mem"
        -nic none
        -kernel "$vm_kernel_img" -initrd "$vm_initrd"
        -append "console=ttyS0 quiet loglevel=3 panic=-1 clocksource=tsc tsc=reliable mitigations=off"
        -serial "file:$vm_job/console.log"
        -virtfs "local,path=/,mount_tag=root,security_model=$sm,readonly=on,multidevs=remap"
        -virtfs "local,path=$(qemu_esc "$vm_job"),mount_tag=job,security_model=$sm"
        -device virtio-serial-pci,id=vser
    )
    for i in "${!rw[@]}"; do
        qemu+=(-virtfs "local,path=$(qemu_esc "${rw[i]}"),mount_tag=rw$((i + 1)),security_model=$sm")
    done
    # NUMA nodes: CPUs dealt out in order, memory split evenly (the last
    # node takes the remainders).
    if ((vm_numa > 1)); then
        local per=$((vm_mem / vm_numa)) cpn=$((vm_smp / vm_numa)) n size last
        for ((n = 0; n < vm_numa; n++)); do
            size=$per last=$(((n + 1) * cpn - 1))
            if ((n + 1 == vm_numa)); then
                size=$((vm_mem - per * (vm_numa - 1))) last=$((vm_smp - 1))
            fi
            qemu+=(-object "memory-backend-ram,id=numa$n,size=${size}M"
                -numa "node,nodeid=$n,cpus=$((n * cpn))-$last,memdev=numa$n")
        done
    fi
    for d in out err ctl; do
        qemu+=(-chardev "file,id=$d,path=$(qemu_esc "$vm_job/$d.fifo")"
            -device "virtserialport,bus=vser.0,chardev=$d,name=rdmig.$d")
    done

    local extra=
    ((vm_numa == 1)) || extra+=", $vm_numa NUMA nodes"
    ((rxe_rails == 1)) || extra+=", $rxe_rails rxe rails"
    log "booting VM: kernel $kver, ${vm_mem} MiB, ${vm_smp} vCPUs (TCG)$extra, rw shares: ${rw[*]}"
    timeout --kill-after=10 "$vm_timeout" "${qemu[@]}" </dev/null 2>"$vm_job/qemu.log" \
        {fifo_out}>&- {fifo_err}>&- {fifo_ctl}>&- &
    vm_pid=$!
    wait "$vm_pid" || qemu_rc=$?
    vm_pid=
    vm_close_fifos
    for i in "${vm_readers[@]}"; do
        wait "$i" || true
    done
    vm_readers=()

    if ((qemu_rc == 124 || qemu_rc == 137)); then
        vm_show_logs
        log "error: timed out after ${vm_timeout}s (RDMIG_VM_TIMEOUT); QEMU killed"
        exit 124
    fi
    if [[ ! -s $vm_job/status ]]; then
        vm_show_logs
        die "VM ended without reporting the command's exit status (QEMU exit status $qemu_rc)"
    fi
    status=$(<"$vm_job/status")
    [[ $status =~ ^[0-9]+$ ]] || die "bad exit status from the VM: $status"
    log "VM finished in $(since "$t0")s; command exit status $status"
    exit "$status"
}

# --------------------------------------------------------------------- main

case $mode_req in
    auto | host | vm) ;;
    *) die "RDMIG_RXE_MODE must be auto, host or vm (is $mode_req)" ;;
esac
[[ $rxe_rails =~ ^[1-4]$ ]] || die "RDMIG_RXE_RAILS must be 1 to 4 (is $rxe_rails)"
[[ $vm_numa =~ ^[1-4]$ ]] || die "RDMIG_VM_NUMA must be 1 to 4 (is $vm_numa)"
[[ $vm_smp =~ ^[1-9][0-9]*$ ]] || die "RDMIG_VM_SMP must be a positive integer (is $vm_smp)"
((vm_numa <= vm_smp)) || die "RDMIG_VM_NUMA ($vm_numa) must not exceed RDMIG_VM_SMP ($vm_smp)"
# Several rails or NUMA nodes: only the VM has them.
if ((rxe_rails > 1 || vm_numa > 1)); then
    [[ $mode_req == host ]] &&
        die "RDMIG_RXE_RAILS > 1 and RDMIG_VM_NUMA > 1 need the VM (RDMIG_RXE_MODE=vm or auto)"
    mode_req=vm
fi

case ${1-} in
    -h | --help) usage; exit 0 ;;
    --mode)
        case $mode_req in
            auto) if host_usable; then echo host; else echo vm; fi ;;
            *) echo "$mode_req" ;;
        esac
        exit 0
        ;;
    --) shift ;;
esac
(($# > 0)) || { usage >&2; exit 2; }
# Fail fast rather than after booting a VM (the guest has the same PATH and /).
command -v -- "$1" >/dev/null || { log "error: command not found: $1"; exit 127; }

if [[ $mode_req != vm ]]; then
    if host_setup; then
        host_run "$@"
    fi
    [[ $mode_req == host ]] && die "RDMIG_RXE_MODE=host but the host cannot provide an rxe device"
fi
vm_run "$@"
