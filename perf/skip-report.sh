#!/usr/bin/env bash
# Skipping against no skipping (issue 14, item 2: skipping never costs more
# than it saves): fixed-pass migrations over the loopback transport, a
# first pass then 5 more each after a writer round over 20% of the pages
# (6 passes, the last one final and verified), of a guest of random data,
#   random   every rewritten page changed (nothing can be skipped),
#   same50   half the rewrites store what the page held,
# uncapped and with rdmig's bandwidth cap at 10 and 40 Gb/s, --skip on and
# --skip off interleaved, RDMIG_REPORT_RUNS runs each (default 5). Prints
# the medians and the ratios on/off of the total time and of the 5 passes
# after the first (the ones that can skip), and one JSON line for
# ci/bench.sh. With RDMIG_REPORT_BASE=PATH (another rdmig-perf, e.g. main's)
# both binaries run interleaved, and the ratios of each are printed.
# A benchmark, not a test: it fails (exit 1) only if a migration fails or
# an image is not exact.
#
#   perf/skip-report.sh [RDMIG_PERF]
#
# Goals (the issue's): random, on <= 1.05 x off; same50, on <= 0.7 x off
# wherever the wire is the slower stage (the capped rows).
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
perf=${1:-$root/build/perf/rdmig-perf}
base=${RDMIG_REPORT_BASE:-}
runs=${RDMIG_REPORT_RUNS:-5}
size=${RDMIG_REPORT_MIB:-1024}
caps=(${RDMIG_REPORT_CAPS:-0 5000000000 1250000000})
for v in "RDMIG_REPORT_RUNS=$runs" "RDMIG_REPORT_MIB=$size"; do
	[[ ${v#*=} =~ ^[1-9][0-9]*$ ]] || {
		echo "skip-report: ${v%%=*} must be a positive integer, not '${v#*=}'" >&2
		exit 2
	}
done
command -v jq >/dev/null || { echo "skip-report: needs jq" >&2; exit 2; }
export LC_ALL=C
rc=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bins=(new)
declare -A bin=([new]=$perf)
[ -n "$base" ] && bins+=(base) && bin[base]=$base

# run BIN CAP SAME SKIP: prints "total_s rewrite_s final_error_pct", or fails.
run() {
	local out
	out=$("$1" --local -b 127.0.0.1 --transport loopback --size "$size" --regions 2 \
		--passes 5 --dirty 20 --same "$3" --skip "$4" --max-bandwidth "$2" --json \
		2>"$tmp/err") || { cat "$tmp/err" >&2; return 1; }
	jq -r '[.total_ns / 1e9, ([.per_pass[1:][].duration_ns] | add) / 1e9,
		(.final_pass.error_pct // "nan")] | @tsv' <<<"$out"
}
median() { sort -g | awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

printf '%-10s %-7s %-5s %9s %9s %7s %9s %9s %7s %8s\n' "cap B/s" case build "on s" "off s" \
	"on/off" "on 2-6 s" "off 2-6" "on/off" "est err"
json=()
for cap in "${caps[@]}"; do
	for c in random same50; do
		same=0
		[ $c = same50 ] && same=50
		for ((i = 1; i <= runs; i++)); do
			for b in "${bins[@]}"; do
				for skip in on off; do
					if ! r=$(run "${bin[$b]}" "$cap" "$same" "$skip"); then
						echo "rdmig-perf failed ($b, cap $cap, $c, skip $skip)" >&2
						rc=1
						continue
					fi
					echo "$r" >>"$tmp/$b.$cap.$c.$skip"
				done
			done
		done
		for b in "${bins[@]}"; do
			f=$tmp/$b.$cap.$c
			[ -s "$f.on" ] && [ -s "$f.off" ] || continue
			ton=$(cut -f1 "$f.on" | median) toff=$(cut -f1 "$f.off" | median)
			ron=$(cut -f2 "$f.on" | median) roff=$(cut -f2 "$f.off" | median)
			rt=$(awk -v a="$ton" -v b="$toff" 'BEGIN { printf "%.3f", a / b }')
			rr=$(awk -v a="$ron" -v b="$roff" 'BEGIN { printf "%.3f", a / b }')
			# The final pass's estimate with skipping on: the median error, %.
			err=$(cut -f3 "$f.on" | median)
			printf '%-10s %-7s %-5s %9.3f %9.3f %7s %9.3f %9.3f %7s %7s%%\n' "$cap" $c $b "$ton" \
				"$toff" "$rt" "$ron" "$roff" "$rr" "$err"
			goal="<= 1.05"
			[ $c = same50 ] && goal="<= 0.7 where the wire is slower"
			json+=("{\"what\":\"$b $c cap $cap: total on/off\",\"value\":$rt,\"goal\":\"$goal\"}")
			json+=("{\"what\":\"$b $c cap $cap: passes 2-6 on/off\",\"value\":$rr,\"goal\":\"$goal\"}")
		done
	done
done
echo "goals: random on/off <= 1.05; same50 on/off <= 0.7 where the wire is the slower stage;" \
	"the final pass's estimate within 10% (medians of $runs interleaved runs, ${size} MiB guest)"
(
	IFS=,
	echo "{\"bench\":\"skip\",\"ratios\":[${json[*]}]}"
)
exit $rc
