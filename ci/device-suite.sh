#!/usr/bin/env bash
# Runs inside ci/rxe-run.sh (one VM boot for all of it): the device tests
# over soft-RoCE, then a demo migration through rdmig-perf. Usage:
#   ci/rxe-run.sh ci/device-suite.sh BUILD_DIR
# Writes BUILD_DIR/device-junit.xml for ci/test.sh to count from.
set -uo pipefail
build=${1:?usage: device-suite.sh BUILD_DIR}
rc=0

echo "== device tests over ${RDMIG_TEST_DEV:-?} (${RDMIG_TEST_IP:-?})"
(cd "$build" && ctest -L device --output-on-failure --test-output-size-passed 1000000 --output-junit device-junit.xml) || rc=1

echo "== demo migration: rdmig-perf --local"
"$build/perf/rdmig-perf" --local --size 64 --regions 3 --passes 5 --dirty 10 || rc=1
exit $rc
