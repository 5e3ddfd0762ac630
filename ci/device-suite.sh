#!/usr/bin/env bash
# Runs inside ci/rxe-run.sh (one VM boot for all of it): the device tests
# over soft-RoCE, a demo migration through rdmig-perf, the VMM example
# (examples/: both ends in one process, then in two), a small rdmig-perf
# matrix (fails only if an image is not exact, never on speed) and the wire
# rate against ib_write_bw on the same device (printed, never failing). Usage:
#   ci/rxe-run.sh ci/device-suite.sh BUILD_DIR
# Writes BUILD_DIR/device-junit.xml for ci/test.sh to count from.
set -uo pipefail
build=${1:?usage: device-suite.sh BUILD_DIR}
rc=0

echo "== device tests over ${RDMIG_TEST_DEV:-?} (${RDMIG_TEST_IP:-?})"
(cd "$build" && ctest -L device --output-on-failure --test-output-size-passed 1000000 --output-junit device-junit.xml) || rc=1

echo "== demo migration: rdmig-perf --local"
"$build/perf/rdmig-perf" --local --size 64 --regions 3 --passes 5 --dirty 10 || rc=1

echo "== the VMM example (examples/vmm_loop.c): one process, then two"
sh "$(dirname "$0")/../examples/run-example.sh" "$build/examples/rdmig-vmm-example" local || rc=1
sh "$(dirname "$0")/../examples/run-example.sh" "$build/examples/rdmig-vmm-example" split || rc=1

echo "== rdmig-perf matrix (16 MiB guest, 3 passes after the first)"
"$build/perf/rdmig-perf" --local --matrix --size 16 --passes 3 || rc=1

echo "== against ib_write_bw on the same device"
"$(dirname "$0")/vs-perftest.sh" "$build" 64 || echo "(comparison unavailable)"
exit $rc
