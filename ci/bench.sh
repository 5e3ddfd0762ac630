#!/usr/bin/env bash
# The project's bench command (README.md): what measures rather than
# tests, too long for ci/test.sh. Installs what it needs and builds like
# ci/test.sh, then runs
#   - the estimate against measurement on a rate-capped loopback wire
#     (perf/model-report.sh, about 14 minutes with a 4 GiB guest),
#   - what a pass costs beyond its pages on sparse 64 GiB and 1 TiB guests
#     (perf/passcost-report.sh, about 2 minutes),
#   - the fault-injection soak, 1000 seeds (perf/fault-soak.sh, about 5),
#   - the long fuzzing run when RDMIG_BENCH_FUZZ=1 (ci/fuzz.sh --long).
# It fails only if a migration failed, an image was not exact or a seed or
# a fuzz input broke something; never on speed or accuracy.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build=${RDMIG_BUILD_DIR:-$root/build}
failed=()

step() { echo; echo "=== $*"; }

step "dependencies"
ci/deps.sh || exit 1
step "configure and build ($build)"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null || exit 1
cmake --build "$build" -j"$(nproc)" || exit 1

step "estimate against measurement, rate-capped loopback"
perf/model-report.sh "$build/perf/rdmig-perf" 4000 16000 || failed+=(model-report)

step "what a pass costs beyond its pages, sparse guests of 64 GiB and 1 TiB"
perf/passcost-report.sh "$build/perf/rdmig-passcost" || failed+=(passcost-report)

step "fault injection, 1000 seeds"
perf/fault-soak.sh "$build/tests/fault_test" 1000 || failed+=(fault-soak)

if [ "${RDMIG_BENCH_FUZZ:-0}" = 1 ] && [ -x ci/fuzz.sh ]; then
	step "fuzzing, the long run"
	ci/fuzz.sh --long || failed+=(fuzz)
fi

echo
if [ ${#failed[@]} -ne 0 ]; then
	echo "bench: FAILED: ${failed[*]}"
	exit 1
fi
echo "bench: done"
