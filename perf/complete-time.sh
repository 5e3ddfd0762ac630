#!/usr/bin/env bash
# complete's time against the guest's size, for one or two builds: --local
# migrations (one region, 1% of its pages holding data, one pass after the
# first), interleaved build by build and size by size, each printing
# rdmig_src_complete()'s time, the destination's COMPLETE-to-ACK time
# (rdmig_dst_stats.complete_ns; 0 from a build without it) and how long
# after complete was called the destination's rdmig_dst_run() returned
# (where its VMM would resume the guest). Then the medians per build and
# size, and each build's ratio largest/smallest size: about 1 when
# complete does not grow with the guest. A benchmark, not a test.
#
#   perf/complete-time.sh RUNS SIZE_MIB... [-- RDMIG_PERF...]
#
# RDMIG_PERF defaults to build/perf/rdmig-perf. Over loopback by default;
# RDMIG_REPORT_TRANSPORT=verbs and RDMIG_REPORT_BIND=ADDR (an RDMA
# device's address, e.g. $RDMIG_TEST_IP under ci/rxe-run.sh) for a device.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
runs=${1:-}
shift || true
sizes=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do
	sizes+=("$1")
	shift
done
[ "${1:-}" = -- ] && shift
perfs=("$@")
[ ${#perfs[@]} -gt 0 ] || perfs=("$root/build/perf/rdmig-perf")
for v in "$runs" "${sizes[@]}"; do
	[[ $v =~ ^[1-9][0-9]*$ ]] || {
		echo "complete-time: RUNS and SIZE_MIB must be positive integers, not '$v'" >&2
		exit 2
	}
done
[ ${#sizes[@]} -gt 0 ] || {
	echo "usage: perf/complete-time.sh RUNS SIZE_MIB... [-- RDMIG_PERF...]" >&2
	exit 2
}
transport=${RDMIG_REPORT_TRANSPORT:-loopback}
bind=${RDMIG_REPORT_BIND:-127.0.0.1}
export LC_ALL=C

num() { # num KEY JSON -> the first number after "KEY":
	grep -o "\"$1\":[0-9.]*" <<<"$2" | head -1 | cut -d: -f2
}

lines=()
for ((r = 1; r <= runs; r++)); do
	for size in "${sizes[@]}"; do
		for ((b = 0; b < ${#perfs[@]}; b++)); do
			out=$("${perfs[b]}" --local -b "$bind" --transport "$transport" -s "$size" -r 1 \
				-n 1 -t 1 --json -q 2>/dev/null)
			if ! grep -q '"ok":true' <<<"$out"; then
				echo "complete-time: ${perfs[b]} at $size MiB failed" >&2
				exit 1
			fi
			dst=$(grep -o '"destination":{[^}]*' <<<"$out")
			line="$b $size $(num complete_ns "$out") $(num complete_ns "$dst")"
			line+=" $(num returned_after_complete_ns "$dst")"
			echo "build $b (${perfs[b]}) $size MiB: complete_ns dst_ack_ns dst_returned_ns" \
				"${line#* * }"
			lines+=("$line")
		done
	done
done
printf '%s\n' "${lines[@]}" | awk -v nb=${#perfs[@]} '
function med(key, n,   i, j, t, a) {
	n = cnt[key]
	for (i = 1; i <= n; i++) a[i] = v[key, i]
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
	for (f = 0; f < 3; f++) { k = $1 SUBSEP $2 SUBSEP f; v[k, ++cnt[k]] = $(3 + f) }
	if (!($2 in seen)) { seen[$2] = 1; sz[++ns] = $2 }
}
END {
	for (b = 0; b < nb; b++) {
		for (s = 1; s <= ns; s++)
			printf "build %d %6d MiB: complete %.3f ms, destination COMPLETE to ACK %.3f ms, its run returned %.3f ms after complete was called (medians of %d)\n",
				b, sz[s], med(b SUBSEP sz[s] SUBSEP 0) / 1e6, med(b SUBSEP sz[s] SUBSEP 1) / 1e6,
				med(b SUBSEP sz[s] SUBSEP 2) / 1e6, cnt[b SUBSEP sz[s] SUBSEP 0]
		if (ns > 1) {
			printf "build %d ratio %d/%d MiB: complete %.2f, run returned %.2f\n", b, sz[ns], sz[1],
				med(b SUBSEP sz[ns] SUBSEP 0) / med(b SUBSEP sz[1] SUBSEP 0),
				med(b SUBSEP sz[ns] SUBSEP 2) / med(b SUBSEP sz[1] SUBSEP 2)
			json = json (json ? "," : "") sprintf("{\"what\":\"complete %d/%d MiB (build %d)\",\"value\":%.3f,\"goal\":\"~ 1 (does not grow with the guest)\"}", sz[ns], sz[1], b, med(b SUBSEP sz[ns] SUBSEP 0) / med(b SUBSEP sz[1] SUBSEP 0))
		}
	}
	# For ci/bench.sh summary: one JSON line.
	printf "{\"bench\":\"complete\",\"ratios\":[%s]}\n", json
}'
