#!/usr/bin/env bash
# The demo (README.md): installs what it needs, builds, and migrates a
# synthetic guest through rdmig-perf over soft-RoCE, both ends in one
# process. Arguments go to rdmig-perf (see `rdmig-perf --help`).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build=${RDMIG_BUILD_DIR:-$root/build}
ci/deps.sh
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target rdmig-perf
[ $# -gt 0 ] || set -- --size 256 --regions 3 --passes 5 --dirty 10
exec ci/rxe-run.sh "$build/perf/rdmig-perf" --local "$@"
