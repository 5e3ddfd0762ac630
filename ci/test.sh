#!/usr/bin/env bash
# The project's test command (README.md; .ci/run calls it): installs what it
# needs, builds (warnings are errors when CI=true or RDMIG_WERROR=ON), checks
# formatting, runs the unit tests and the loopback-transport tests (the
# fault injection with 100 seeds among them) on the host, a short run of
# the estimate report (any migration failing or image inexact fails it),
# the fuzz targets
# for a short fixed run (ci/fuzz.sh), the device tests and a demo migration
# over soft-RoCE (on the host if it can, else in a VM), and builds a program
# against an installed copy. Benchmarks, the estimate report among them,
# are ci/bench.sh's. Fails if any step fails or if the device
# tests did not actually run.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build=${RDMIG_BUILD_DIR:-$root/build}
werror=${RDMIG_WERROR:-$([ "${CI:-}" = true ] && echo ON || echo OFF)}
failed=()

step() { echo; echo "=== $*"; }

# Counts from a ctest JUnit file: "programs failed skipped cases-passed",
# where cases are the cmocka tests inside the programs.
junit_counts() {
	local counts
	[ -f "$1" ] || return 0
	counts=$(tr '\n' ' ' <"$1" |
		sed -n 's/.*<testsuite[^>]*[[:space:]]tests="\([0-9]*\)"[^>]*[[:space:]]failures="\([0-9]*\)"[^>]*[[:space:]]skipped="\([0-9]*\)".*/\1 \2 \3/p')
	echo "$counts $(grep -c '^\[       OK \]' "$1")"
}

step "dependencies"
ci/deps.sh || exit 1

step "configure and build ($build, warnings as errors: $werror)"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRDMIG_WERROR="$werror" || exit 1
cmake --build "$build" -j"$(nproc)" || exit 1

step "format (clang-format --dry-run)"
if git ls-files '*.c' '*.h' | xargs clang-format --dry-run --Werror; then
	echo "format: ok"
else
	failed+=(format)
fi

step "unit tests and loopback-transport tests (host, no device)"
rm -f "$build"/unit-junit.xml "$build"/device-junit.xml
(cd "$build" && ctest -L 'unit|loopback' --output-on-failure --test-output-size-passed 1000000 --output-junit unit-junit.xml) || failed+=(unit)

step "estimate, a short run (perf/model-report.sh, 64 MiB, one run a case: fails only when a migration fails or an image is not exact; the full report is ci/bench.sh's)"
RDMIG_REPORT_MIB=64 RDMIG_REPORT_RUNS=1 perf/model-report.sh "$build/perf/rdmig-perf" 4000 || failed+=(estimate)

step "fuzzing: each libFuzzer target for a fixed number of executions (ci/fuzz.sh)"
ci/fuzz.sh || failed+=(fuzz)

step "device tests and demo over soft-RoCE ($(ci/rxe-run.sh --mode) mode)"
# Two NUMA nodes and two rxe rails (VM only): the NUMA and multi-rail cases
# run there.
RDMIG_VM_NUMA=2 RDMIG_RXE_RAILS=2 ci/rxe-run.sh ci/device-suite.sh "$build" || failed+=(device)
read -r dev_total dev_failed dev_skipped dev_cases < <(junit_counts "$build/device-junit.xml")
dev_total=${dev_total:-0} dev_failed=${dev_failed:-0} dev_skipped=${dev_skipped:-0}
dev_ran=$((dev_total - dev_skipped))
echo "device tests: $dev_ran programs ran over rxe (${dev_cases:-0} cases passed), $dev_skipped skipped, $dev_failed failed"
if [ "$dev_ran" -eq 0 ] || [ "$dev_skipped" -ne 0 ]; then
	echo "device tests did not all run: that is a failure here, not a skip" >&2
	failed+=(device-not-run)
fi

step "install and build a consumer against it"
prefix=$build/_install
rm -rf "$prefix" "$build/consumer"
if cmake --install "$build" --prefix "$prefix" >/dev/null &&
	cmake -S tests/consumer -B "$build/consumer" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null &&
	cmake --build "$build/consumer" &&
	LD_LIBRARY_PATH=$prefix/lib "$build/consumer/consumer_shared" &&
	"$build/consumer/consumer_static" &&
	PKG_CONFIG_PATH=$prefix/lib/pkgconfig cc -Wall -Werror -o "$build/consumer/consumer_pc" \
		tests/consumer/main.c $(PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --cflags --libs rdmig) &&
	LD_LIBRARY_PATH=$prefix/lib "$build/consumer/consumer_pc" &&
	rm -rf "$build/examples-installed" &&
	cmake -S examples -B "$build/examples-installed" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null &&
	cmake --build "$build/examples-installed" &&
	RDMIG_TRANSPORT=loopback LD_LIBRARY_PATH=$prefix/lib \
		sh examples/run-example.sh "$build/examples-installed/rdmig-vmm-example" local >/dev/null; then
	echo "consumer: ok (CMake package shared and static, pkg-config, examples/ against the install)"
else
	failed+=(consumer)
fi

read -r unit_total unit_failed unit_skipped unit_cases < <(junit_counts "$build/unit-junit.xml")
unit_total=${unit_total:-0} unit_failed=${unit_failed:-0} unit_skipped=${unit_skipped:-0}
total_failed=$((unit_failed + dev_failed))
total_passed=$((${unit_cases:-0} + ${dev_cases:-0}))
echo
if [ ${#failed[@]} -ne 0 ]; then
	echo "FAILED steps: ${failed[*]}"
	[ "$total_failed" -eq 0 ] && total_failed=${#failed[@]}
fi
echo "$total_passed passed, $total_failed failed, $((unit_skipped + dev_skipped)) skipped"
[ ${#failed[@]} -eq 0 ]
