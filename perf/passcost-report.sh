#!/usr/bin/env bash
# What a pass costs beyond its pages (issue 14, "a pass costs what is
# dirty"): rdmig-passcost on sparse guests over loopback, each size run
# RUNS times, and against an older build of it when one is given (the same
# tool built on the older library with -DRDMIG_PASSCOST_NO_LIST), the two
# interleaved run by run so that the machine's noise falls on both alike.
# Reports medians over the runs (each run's own figures are medians of its
# repetitions) and the ratios the issue asks for:
#   empty/read  a pass over bitmaps with nothing dirty over one read of
#               those bitmaps (goal: <= 2)
#   list0       a pass over empty dirty lists, ms (goal: <= 1)
#   overhead    a pass over 10,000 scattered dirty pages less its scan (per
#               worker) or wire time, whichever is longer (the model's per-pass
#               overhead), ms (goal: <= 5), bitmaps and lists
# A report, never a test: it fails only if a run fails (a page that landed
# wrong fails it), never on the figures.
#
#   perf/passcost-report.sh [RDMIG_PASSCOST [OLD_RDMIG_PASSCOST]]
#
# RDMIG_PASSCOST_SIZES (GiB, default "64 1024"), RDMIG_PASSCOST_RUNS (3),
# RDMIG_PASSCOST_ARGS (more arguments for every run, e.g. --fresh).
# A 1 TiB run needs about 1.5 GiB of memory (the source's per-page state)
# and takes about 20 s, mostly registering and looking at 1 TiB at connect.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
new=${1:-$root/build/perf/rdmig-passcost}
old=${2:-}
sizes=${RDMIG_PASSCOST_SIZES:-64 1024}
runs=${RDMIG_PASSCOST_RUNS:-3}
extra=${RDMIG_PASSCOST_ARGS:-}
export LC_ALL=C
[[ $runs =~ ^[1-9][0-9]*$ ]] || {
	echo "passcost-report: RDMIG_PASSCOST_RUNS must be a positive integer, not '$runs'" >&2
	exit 2
}
rc=0
json=()

field() { # json name
	sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p" <<<"$1"
}
median() { # numbers...
	printf '%s\n' "$@" | sort -g | sed -n "$((($# + 1) / 2))p"
}
ms() { awk -v n="$1" 'BEGIN { printf "%.3f", n / 1e6 }'; }

for size in $sizes; do
	declare -A v=()
	for ((i = 0; i < runs; i++)); do
		for which in new old; do
			bin=$new args=(--list)
			if [ "$which" = old ]; then
				[ -n "$old" ] || continue
				bin=$old args=()
			fi
			# shellcheck disable=SC2086
			out=$("$bin" --size-gib "$size" --reps 5 --json "${args[@]}" $extra 2>&1) || {
				echo "rdmig-passcost failed ($which, $size GiB):" >&2
				echo "$out" >&2
				rc=1
				continue
			}
			out=$(grep -m1 '^{' <<<"$out")
			for f in read_ns empty_ns sparse_overhead_ns list0_ns list_overhead_ns; do
				v[$which.$f]+="$(field "$out" $f) "
			done
		done
	done
	echo "guest ${size} GiB, 10000 scattered dirty pages, medians of ${runs} runs (5 passes each)"
	for which in old new; do
		[ -n "${v[$which.read_ns]:-}" ] || continue
		# shellcheck disable=SC2086
		{
			r=$(median ${v[$which.read_ns]})
			e=$(median ${v[$which.empty_ns]})
			o=$(median ${v[$which.sparse_overhead_ns]})
			l0=$(median ${v[$which.list0_ns]})
			lo=$(median ${v[$which.list_overhead_ns]})
		}
		printf '  %-4s read %8s ms  empty %8s ms  empty/read %7s  overhead %8s ms' "$which" \
			"$(ms "$r")" "$(ms "$e")" "$(awk -v e="$e" -v r="$r" 'BEGIN { printf "%.2f", e / r }')" \
			"$(ms "$o")"
		[ "$which" = new ] && printf '  list0 %7s ms  list overhead %8s ms' "$(ms "$l0")" "$(ms "$lo")"
		printf '\n'
		if [ "$which" = new ]; then
			json+=("{\"what\":\"pass over empty bitmaps / reading them, $size GiB\",\"value\":$(awk -v e="$e" -v r="$r" 'BEGIN { printf "%.3f", e / r }'),\"goal\":\"<= 2\"}")
			json+=("{\"what\":\"pass over empty dirty lists, ms, $size GiB\",\"value\":$(ms "$l0"),\"goal\":\"<= 1\"}")
			json+=("{\"what\":\"10k scattered pages: ms beyond scan and wire, bitmaps, $size GiB\",\"value\":$(ms "$o"),\"goal\":\"<= 5\"}")
			json+=("{\"what\":\"10k scattered pages: ms beyond scan and wire, lists, $size GiB\",\"value\":$(ms "$lo"),\"goal\":\"<= 5\"}")
		fi
		eval "${which}_e=$e ${which}_o=$o"
	done
	if [ -n "$old" ] && [ -n "${v[old.read_ns]:-}" ] && [ -n "${v[new.read_ns]:-}" ]; then
		printf '  old/new: empty pass %s x, sparse overhead %s x\n' \
			"$(awk -v a="$old_e" -v b="$new_e" 'BEGIN { printf "%.1f", a / b }')" \
			"$(awk -v a="$old_o" -v b="$new_o" 'BEGIN { printf "%.1f", (b ? a / b : 0) }')"
	fi
	unset v
done
# For ci/bench.sh summary: one JSON line.
(
	IFS=,
	echo "{\"bench\":\"passcost\",\"ratios\":[${json[*]}]}"
)
exit $rc
