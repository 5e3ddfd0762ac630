#!/usr/bin/env bash
# The posting path's worst case over a real RDMA device: RDMA WRITEs per
# second when every dirty page is a WRITE of its own (4 KiB, every other
# page dirty: rdmig-perf --scatter, skipping off), as a ratio to perftest's
# ib_write_bw -s 4096 message rate on the same device in the same run.
# Several builds (e.g. before and after a change) are measured interleaved,
# medians of RUNS runs each; a table on stdout, then one JSON line.
#
# Usage: perf/post-report.sh [-n RUNS] [-s SIZE_MIB] BUILD_DIR...
# Without an RDMA device in the environment it re-runs itself under
# ci/rxe-run.sh (soft-RoCE on the host or in a VM).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
runs=5
size=128
while getopts n:s: o; do
	case $o in
	n) runs=$OPTARG ;;
	s) size=$OPTARG ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || set -- "$root/build"
builds=()
for b in "$@"; do builds+=("$(cd "$b" && pwd)"); done
if [ -z "${RDMIG_TEST_DEV:-}" ]; then
	exec "$root/ci/rxe-run.sh" "$root/perf/post-report.sh" -n "$runs" -s "$size" "${builds[@]}"
fi
gid=${RDMIG_TEST_GID_INDEX:-1}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

# ib_write_bw: 4 KiB messages, one QP; its last column is the message rate
# in Mpps.
ibw() {
	local ibw=(ib_write_bw -d "$RDMIG_TEST_DEV" -x "$gid" -s 4096 -n 20000 -F --report_gbits)
	"${ibw[@]}" >"$tmp/ibw-server.log" 2>&1 &
	local server=$!
	sleep 1
	"${ibw[@]}" "$RDMIG_TEST_IP" >"$tmp/ibw.log" 2>&1 || true
	wait "$server" || true
	awk '$1 == 4096 && NF >= 5 { print $NF * 1e6 }' "$tmp/ibw.log" | tail -n 1
}

# rdmig: passes 2 and 3 write every other page of the guest (skipping
# off: no NOTICEs; --verify off: the final pass is a plain one too), one
# worker, one QP, as ib_write_bw. WRITEs per second of those passes.
rdmig() {
	"$1/perf/rdmig-perf" --local --size "$size" --passes 2 --scatter --skip off \
		--verify off --workers 1 --quiet --json 2>"$tmp/perf.err" |
		jq -r 'if .image != "exact" then "inexact" else
			([.per_pass[1:][] | .writes] | add) * 1e9 /
			([.per_pass[1:][] | .duration_ns] | add) end'
}

: >"$tmp/ibw.all"
for ((r = 0; r < runs; r++)); do
	ibw >>"$tmp/ibw.all"
	for i in "${!builds[@]}"; do
		v=$(rdmig "${builds[$i]}") || v=failed
		if [ "$v" = inexact ] || [ "$v" = failed ] || [ -z "$v" ]; then
			echo "post-report: ${builds[$i]}: the migration failed or its image was not exact" >&2
			cat "$tmp/perf.err" >&2
			exit 1
		fi
		echo "$v" >>"$tmp/rdmig.$i"
	done
done
ref=$(median <"$tmp/ibw.all")
if [ -z "$ref" ]; then
	echo "post-report: ib_write_bw gave no result" >&2
	cat "$tmp/ibw.log" >&2
	exit 1
fi
printf 'WRITEs per second, 4 KiB scattered, 1 QP, medians of %d interleaved runs (%s)\n' "$runs" "$RDMIG_TEST_DEV"
printf '  %-40s %12.0f /s\n' "ib_write_bw -s 4096" "$ref"
# For ci/bench.sh's summary: one JSON line, a ratio per build.
json="{\"bench\":\"post-rate\",\"device\":\"$RDMIG_TEST_DEV\",\"runs\":$runs,\"ib_write_bw_wr_per_s\":$ref,\"ratios\":["
for i in "${!builds[@]}"; do
	m=$(median <"$tmp/rdmig.$i")
	r=$(awk -v a="$m" -v b="$ref" 'BEGIN { printf "%.3f", a / b }')
	printf '  %-40s %12.0f /s  %s of ib_write_bw\n' "${builds[$i]}" "$m" "$r"
	json+="$([ "$i" -gt 0 ] && echo ,){\"what\":\"4 KiB scattered WRITEs/s over ib_write_bw -s 4096 ($(basename "${builds[$i]}"))\",\"value\":$r,\"wr_per_s\":$m,\"goal\":\"report\"}"
done
echo "$json]}"
