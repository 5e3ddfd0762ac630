#!/bin/sh
# rdmig-perf with the kernel's dirty log, as a test: skipped (77) where the
# kernel lacks METHOD (dirtylog_test --probe says so), else the run's own
# checks decide: the image byte for byte, and the log against the writer's
# stores (a page reported and never written, or written and never reported,
# fails it).
#   perf_dirtylog.sh RDMIG_PERF DIRTYLOG_TEST METHOD [rdmig-perf options]
perf=$1 probe=$2 method=$3
shift 3
"$probe" "$method" --probe || exit $?
exec "$perf" --local --dirty-log "$method" "$@"
