#!/usr/bin/env bash
# Installs the Debian packages needed to build and test rdmig and to run the
# soft-RoCE (rxe) harness (ci/rxe-run.sh), including its QEMU fallback VM.
# Idempotent: apt is not touched when everything is already installed.
#
# Usage: ci/deps.sh [--check]
#   --check   only report missing packages; exit 1 if any are missing.
set -euo pipefail

build_pkgs=(
    build-essential cmake pkg-config
    libibverbs-dev librdmacm-dev libnuma-dev libhwloc-dev
    libcmocka-dev libxxhash-dev libssl-dev clang-format
    clang libclang-rt-14-dev
)
runtime_pkgs=(
    rdma-core ibverbs-providers ibverbs-utils rdmacm-utils perftest iproute2 jq
)
# Only needed by the VM fallback of ci/rxe-run.sh (hosts without RDMA support).
vm_pkgs=(
    qemu-system-x86 linux-image-amd64 busybox-static cpio xz-utils kmod
)
all_pkgs=("${build_pkgs[@]}" "${runtime_pkgs[@]}" "${vm_pkgs[@]}")

log() { printf 'deps: %s\n' "$*" >&2; }

check_only=0
case "${1-}" in
    "") ;;
    --check) check_only=1 ;;
    -h | --help) sed -n '2,8s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) log "unknown argument: $1"; exit 2 ;;
esac

is_installed() {
    local status
    status=$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) || return 1
    [[ $status == installed ]]
}

missing=()
for pkg in "${all_pkgs[@]}"; do
    is_installed "$pkg" || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
    log "all ${#all_pkgs[@]} packages already installed"
    exit 0
fi

log "missing: ${missing[*]}"
((check_only)) && exit 1

sudo=()
if ((EUID != 0)); then
    command -v sudo >/dev/null || { log "not root and sudo is not available"; exit 1; }
    sudo=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}"
log "installed: ${missing[*]}"
