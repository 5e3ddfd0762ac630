#!/usr/bin/env bash
# The project's bench command (README.md): what measures rather than
# tests, too long for ci/test.sh. Installs what it needs and builds like
# ci/test.sh, then runs each benchmark below (RDMIG_BENCH="NAME ..." runs
# only those named):
#   estimate    the estimate against measurement on a rate-capped loopback
#               wire (perf/model-report.sh, about 14 minutes, 4 GiB guest)
#   post-rate   4 KiB scattered WRITEs per second against ib_write_bw -s
#               4096 over soft-RoCE (perf/post-report.sh, a VM boot here)
#   passcost    what a pass costs beyond its pages on sparse 64 GiB and
#               1 TiB guests (perf/passcost-report.sh, about 2 minutes)
#   connect     rdmig_src_connect() against a bare rdma_cm connect plus the
#               same registrations, 256 MiB and 1 GiB, over soft-RoCE
#               (perf/connect-report.sh, a VM boot, about 3 minutes)
#   complete    complete's time at 256 MiB and 4 GiB over loopback
#               (perf/complete-time.sh, about 2 minutes)
#   fault-soak  fault injection, 1000 seeds (perf/fault-soak.sh, about 5)
#   skip        skipping on against off, nothing skippable and half the
#               rewrites unchanged, uncapped and at 40 and 10 Gb/s
#               (perf/skip-report.sh, about 10 minutes, 1 GiB guest)
#   fuzz        the long fuzzing run, only when RDMIG_BENCH_FUZZ=1
# Every benchmark's log goes to BUILD/bench/NAME.log; the JSON lines they
# print ({"bench": ..., "ratios": [{"what", "value", "goal"}]}) are
# gathered in BUILD/bench/bench.json and summed up as one table at the end,
# then printed as one JSON array. It fails only if a migration failed, an
# image was not exact or a seed or a fuzz input broke something; never on
# speed or accuracy.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build=${RDMIG_BUILD_DIR:-$root/build}
only=${RDMIG_BENCH:-}
out=$build/bench
failed=()

step() { echo; echo "=== $*"; }
wanted() { [ -z "$only" ] || [[ " $only " == *" $1 "* ]]; }

# bench NAME CMD...: runs CMD, its output to the terminal and the log, and
# keeps the JSON lines it printed.
bench() {
	local name=$1 rc
	shift
	wanted "$name" || return 0
	step "$name: $*"
	"$@" 2>&1 | tee "$out/$name.log"
	rc=${PIPESTATUS[0]}
	grep '^{"bench":' "$out/$name.log" >>"$out/bench.json"
	if [ "$rc" -ne 0 ]; then
		failed+=("$name")
		printf '{"bench":"%s","failed":true,"ratios":[]}\n' "$name" >>"$out/bench.json"
	fi
}

step "dependencies"
ci/deps.sh || exit 1
step "configure and build ($build)"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null || exit 1
cmake --build "$build" -j"$(nproc)" || exit 1
mkdir -p "$out"
: >"$out/bench.json"

bench estimate perf/model-report.sh "$build/perf/rdmig-perf" 4000 16000
bench post-rate perf/post-report.sh "$build"
bench passcost perf/passcost-report.sh "$build/perf/rdmig-passcost"
bench connect env RDMIG_VM_MEM=4096 ci/rxe-run.sh perf/connect-report.sh "$build" 5 "256 1024"
bench complete perf/complete-time.sh 5 256 4096 -- "$build/perf/rdmig-perf"
bench fault-soak perf/fault-soak.sh "$build/tests/fault_test" 1000
bench skip perf/skip-report.sh "$build/perf/rdmig-perf"
if [ "${RDMIG_BENCH_FUZZ:-0}" = 1 ] && [ -x ci/fuzz.sh ]; then
	bench fuzz ci/fuzz.sh --long
fi

step "summary (every ratio; $out/bench.json)"
jq -r '.bench as $b | if .failed then [$b, "FAILED", "", ""] else (.ratios[] |
	[$b, .what, (.value | tostring), .goal]) end | @tsv' "$out/bench.json" |
	awk -F '\t' '{ printf "%-11s %-72s %10s  %s\n", $1, $2, $3, $4 }'
jq -cs . "$out/bench.json"

echo
if [ ${#failed[@]} -ne 0 ]; then
	echo "bench: FAILED: ${failed[*]}"
	exit 1
fi
echo "bench: done"
