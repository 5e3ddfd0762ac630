#!/usr/bin/env bash
# Runs inside ci/rxe-run.sh (one VM boot for all of it): the device tests
# over soft-RoCE, a demo migration through rdmig-perf, the VMM example
# (examples/: both ends in one process, then in two), rdmig-perf over the
# kernel's dirty log (soft-dirty in the VM), a small rdmig-perf matrix
# (fails only if an image is not exact, never on speed), the NUMA queries on
# the VM's nodes (RDMIG_VM_NUMA) and the wire rate
# against ib_write_bw on the same device (printed, never failing). Usage:
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

echo "== the kernel's dirty log: dirtylog_test, rdmig-perf --dirty-log over rxe"
# Soft-dirty is the VM kernel's (Debian 6.1, CONFIG_MEM_SOFT_DIRTY=y): there it
# must run, not skip. Each rdmig-perf run fails on an inexact image or a log
# that differs from the writer's stores; one is the memcached-like writer.
dl=soft-dirty
if grep -qx 'CONFIG_MEM_SOFT_DIRTY=y' "/boot/config-$(uname -r)" 2>/dev/null; then
    RDMIG_DIRTYLOG_REQUIRE=soft-dirty "$build/tests/dirtylog_test" soft-dirty || rc=1
elif "$build/tests/dirtylog_test" pagemap-scan --probe >/dev/null; then
    dl=pagemap-scan
else
    dl=
    echo "(kernel $(uname -r): neither soft-dirty nor PAGEMAP_SCAN; skipped)"
fi
if [[ -n $dl ]]; then
    "$build/perf/rdmig-perf" --local --size 32 --passes 2 --dirty 10 --same 50 --dirty-log "$dl" || rc=1
    "$build/perf/rdmig-perf" --local --size 32 --rate 2000 --workload memcached \
        --max-passes 4 --downtime 100 --dirty-log "$dl" || rc=1
fi

echo "== NUMA: numa_test on ${RDMIG_VM_NUMA:-1} node(s)"
# ci/test.sh boots the VM with two nodes (RDMIG_VM_NUMA=2): there the
# two-node case must run, not skip.
if [ "${RDMIG_VM_NUMA:-1}" -ge 2 ]; then
    RDMIG_NUMA_REQUIRE=$RDMIG_VM_NUMA "$build/tests/numa_test" || rc=1
else
    "$build/tests/numa_test" || rc=1
fi

echo "== the post-copy install engine (uffd_test) on 2 MiB hugetlbfs pages too"
# The VM's kernel (Debian 6.1) is another userfaultfd than the host's; huge
# pages are reserved here so that the hugetlbfs cases run, not skip.
if echo 64 >/proc/sys/vm/nr_hugepages 2>/dev/null &&
    [ "$(cat /proc/sys/vm/nr_hugepages)" -ge 64 ]; then
    RDMIG_UFFD_REQUIRE_HUGETLB=1 "$build/tests/uffd_test" || rc=1
    echo 0 >/proc/sys/vm/nr_hugepages
else
    echo "(cannot reserve huge pages here: uffd_test without them)"
    "$build/tests/uffd_test" || rc=1
fi

echo "== rdmig-perf matrix (16 MiB guest, 3 passes after the first)"
"$build/perf/rdmig-perf" --local --matrix --size 16 --passes 3 || rc=1

echo "== against ib_write_bw on the same device"
"$(dirname "$0")/vs-perftest.sh" "$build" 64 || echo "(comparison unavailable)"
exit $rc
