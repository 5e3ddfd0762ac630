#!/usr/bin/env bash
# rdmig's wire rate as a fraction of perftest's ib_write_bw on the same RDMA
# device, in the same run (absolute numbers under soft-RoCE mean little; the
# ratio does). Usage: ci/vs-perftest.sh [BUILD_DIR] [SIZE_MIB]
# Without an RDMA device in the environment it re-runs itself under
# ci/rxe-run.sh (soft-RoCE on the host or in a VM).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$root/build}
size=${2:-256}
if [ -z "${RDMIG_TEST_DEV:-}" ]; then
	exec "$root/ci/rxe-run.sh" "$root/ci/vs-perftest.sh" "$build" "$size"
fi
gid=${RDMIG_TEST_GID_INDEX:-1}

# ib_write_bw: 64 KiB messages (larger ones overrun rxe's default ACK
# timeout under emulation, see shared/notes/soft-roce.md).
# Gb/s (10^9 bits), so that no MB convention has to be guessed.
ibw=(ib_write_bw -d "$RDMIG_TEST_DEV" -x "$gid" -s 65536 -n 4000 -F --report_gbits)
"${ibw[@]}" >/tmp/ibw-server.log 2>&1 &
server=$!
sleep 1
"${ibw[@]}" "$RDMIG_TEST_IP" >/tmp/ibw.log 2>&1
wait "$server" || true
# The result line: bytes, iterations, peak, average (Gb/sec), message rate.
perftest=$(awk '$1 == 65536 && NF >= 5 { print $4 }' /tmp/ibw.log | tail -n 1)

# rdmig: one full pass over a random guest, nothing to skip, 1 and 2 workers.
rdmig() {
	"$build/perf/rdmig-perf" --local --size "$size" --passes 0 --skip off --workers "$1" |
		awk '/pass  1:/ { for (i = 1; i <= NF; i++) if ($i == "MiB/s") v = $(i - 1) } END { print v }'
}
r1=$(rdmig 1)
r2=$(rdmig 2)
# rdmig-perf reports MiB/s: Gb/s = MiB/s * 2^20 * 8 / 10^9.
awk -v p="$perftest" -v a="$r1" -v b="$r2" 'BEGIN {
	if (p <= 0) { print "ib_write_bw gave no result"; exit 1 }
	ga = a * 1048576 * 8 / 1e9; gb = b * 1048576 * 8 / 1e9
	printf "ib_write_bw, 64 KiB, 1 QP:    %6.2f Gb/s\n", p
	printf "rdmig first pass, 1 worker:   %6.2f Gb/s  %.2f of ib_write_bw\n", ga, ga / p
	printf "rdmig first pass, 2 workers:  %6.2f Gb/s  %.2f of ib_write_bw\n", gb, gb / p
}'
