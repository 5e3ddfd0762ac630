#!/usr/bin/env bash
# The bandwidth cap (opts.max_bandwidth, RDMIG_MAX_BANDWIDTH) against the
# wire it gives, and the estimate under it: migrations over the loopback
# transport with an uncapped wire (memory copies, 2 GB/s and more) and
# rdmig's own cap set, each printing, in one run, the first pass's and the
# final pass's rate (bytes over the pass's time) as a ratio of the cap, the
# final pass predicted beside measured, and what one rdmig_src_progress()
# call cost from a thread polling every millisecond meanwhile. A benchmark,
# not a test: it runs for a minute or so and fails (exit 1) when a ratio is
# off by more than 5%, an estimate by more than 10%, or a migration fails.
#
#   perf/cap-report.sh [RDMIG_PERF] [BYTES_PER_S...]
#
# Defaults: build/perf/rdmig-perf, caps of 250000000 and 1000000000 bytes/s
# (2 and 8 Gb/s), a guest of 2 s at the cap (RDMIG_REPORT_MIB overrides),
# two pre-copy passes over 20% of it, then the verified final pass, three
# runs each (RDMIG_REPORT_RUNS).
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
perf=${1:-$root/build/perf/rdmig-perf}
shift || true
caps=("$@")
[ ${#caps[@]} -gt 0 ] || caps=(250000000 1000000000)
runs=${RDMIG_REPORT_RUNS:-3}
for v in "RDMIG_REPORT_RUNS=$runs" "${caps[@]/#/BYTES_PER_S=}" \
	${RDMIG_REPORT_MIB:+RDMIG_REPORT_MIB=$RDMIG_REPORT_MIB}; do
	[[ ${v#*=} =~ ^[1-9][0-9]*$ ]] || {
		echo "cap-report: ${v%%=*} must be a positive integer, not '${v#*=}'" >&2
		exit 2
	}
done
export LC_ALL=C
rc=0

printf '%-12s %-6s %-4s %12s %12s %10s %10s %8s %12s\n' "cap B/s" "MiB" "run" "pass 1/cap" \
	"final/cap" "final ms" "predicted" "error" "progress ns"
for cap in "${caps[@]}"; do
	size=${RDMIG_REPORT_MIB:-$(((cap * 2 / 1048576 + 63) / 64 * 64))}
	((size > 2048)) && [ -z "${RDMIG_REPORT_MIB:-}" ] && size=2048
	for ((i = 1; i <= runs; i++)); do
		out=$("$perf" --local -b 127.0.0.1 --transport loopback --size "$size" \
			--regions 2 --passes 2 --dirty 20 --max-bandwidth "$cap" -q 2>&1) || {
			echo "rdmig-perf failed (cap $cap, run $i):" >&2
			echo "$out" >&2
			rc=1
			continue
		}
		# "  bandwidth cap  238.4 MiB/s (250000000 bytes/s): pass 1 at 1.001 of it,
		#  the final pass at 1.003 (...)"
		read -r r1 rf < <(sed -n 's/^  bandwidth cap .*pass 1 at \([0-9.]*\) of it, the final pass at \([0-9.]*\) .*/\1 \2/p' <<<"$out")
		# "  final pass  390.02 ms measured, 395.17 ms predicted (error +1.3%), ..."
		read -r meas pred err < <(sed -n 's/^  final pass *\([0-9.]*\) ms measured, \([0-9.]*\) ms predicted (error \([-+0-9.]*\)%).*/\1 \2 \3/p' <<<"$out")
		pns=$(sed -n 's/^  rdmig_src_progress *\([0-9]*\) ns a call.*/\1/p' <<<"$out")
		if [ -z "${r1:-}" ] || [ -z "${err:-}" ] || ! grep -q '^  image .*MATCH' <<<"$out"; then
			echo "rdmig-perf gave no cap line, no prediction or no exact image (cap $cap):" >&2
			echo "$out" >&2
			rc=1
			continue
		fi
		verdict=$(awk -v a="$r1" -v b="$rf" -v e="$err" 'BEGIN {
			bad = (a < 0.95 || a > 1.05 || b < 0.95 || b > 1.05) ? "cap" : "";
			if (e < -10 || e > 10) bad = bad (bad ? "," : "") "estimate";
			print bad ? "OFF(" bad ")" : "ok" }')
		printf '%-12s %-6s %-4s %12s %12s %10s %10s %7s%% %12s  %s\n' "$cap" "$size" "$i" \
			"$r1" "$rf" "$meas" "$pred" "$err" "${pns:-?}" "$verdict"
		[ "$verdict" = ok ] || rc=1
	done
done
echo "goal: both ratios within 0.95-1.05 of the cap, the estimate within 10% of the" \
	"measured final pass"
exit $rc
