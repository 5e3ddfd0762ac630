#!/usr/bin/env bash
# The fault-injection soak (issue 11 item 9): the loopback test program
# tests/device/fault_test.c with 1000 seeds instead of the test command's
# 100. Each seed migrates a 4 MiB guest while the loopback NIC injects one
# fault at a point drawn from the seed (a QP to error, a SEND dropped,
# duplicated or delayed, one side killed); every run must complete with an
# exact image or fail on both sides within the bound, and leave nothing
# behind. Not part of ci/test.sh: it takes about 5 minutes on 2 CPUs.
#
#   perf/fault-soak.sh [FAULT_TEST] [SEEDS]
#
# Defaults: build/tests/fault_test, 1000 seeds (RDMIG_FAULT_SEEDS). The
# program prints a line per seed and a summary; a failing seed is replayed
# alone with RDMIG_FAULT_SEED=N.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prog=${1:-$root/build/tests/fault_test}
seeds=${2:-${RDMIG_FAULT_SEEDS:-1000}}
if [ ! -x "$prog" ]; then
	echo "fault-soak: $prog is not built (cmake --build build)" >&2
	exit 1
fi
RDMIG_TRANSPORT=loopback RDMIG_FAULT_SEEDS=$seeds "$prog"
