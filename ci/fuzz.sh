#!/usr/bin/env bash
# Fuzzing (README.md "Fuzzing"): builds the libFuzzer targets of fuzz/ with
# clang in a build directory of their own, writes the seed corpora (built
# from real encoded messages, never stored in git), and runs every target
# for a fixed number of executions, failing on any crash, sanitizer report,
# leak, timeout or failed harness check. ci/test.sh runs the short form.
#
# Usage: ci/fuzz.sh [--long] [--runs N] [--time S] [--coverage] [TARGET...]
#   (none)      a fixed run from the seeds alone, libFuzzer seed 1 (the same
#               run every time): 200000 executions of decode and encode,
#               50000 of sealed and handshake; about a minute on 2 CPUs
#   --long      10^7 executions per target, continuing the corpus kept in
#               BUILD/fuzz-corpus/TARGET, then the coverage report
#   --runs N    N executions per target instead
#   --time S    stop each target after S seconds if its runs are not done
#               (--long --time 300: five minutes each, corpus kept)
#   --coverage  the source coverage of the library code by each target's
#               corpus (a second, coverage-instrumented build, llvm-cov)
#   TARGET      decode encode sealed handshake (default: all four)
# Every run prints executions per second and libFuzzer's cov: (edges) and
# ft: (features). Findings land in BUILD/fuzz-artifacts/ (crash-*, leak-*,
# timeout-*); rerun one with BUILD/fuzz/fuzz_TARGET FILE.
# Environment: RDMIG_FUZZ_BUILD_DIR (default build-fuzz), RDMIG_WERROR (ON).
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build=${RDMIG_FUZZ_BUILD_DIR:-$root/build-fuzz}
werror=${RDMIG_WERROR:-ON}
all_targets=(decode encode sealed handshake)
runs=
long=0
coverage=0
max_time=0
targets=()

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

while [ $# -gt 0 ]; do
	case "$1" in
	--long) long=1 coverage=1 runs=10000000 ;;
	--runs) runs=${2:?--runs needs a number}; shift ;;
	--time) max_time=${2:?--time needs seconds}; shift ;;
	--coverage) coverage=1 ;;
	-h | --help) usage; exit 0 ;;
	decode | encode | sealed | handshake) targets+=("$1") ;;
	*) echo "fuzz.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
	esac
	shift
done
[ ${#targets[@]} -eq 0 ] && targets=("${all_targets[@]}")

if ! command -v clang >/dev/null; then
	echo "fuzz.sh: clang is not installed (ci/deps.sh installs clang and libclang-rt-14-dev)" >&2
	exit 1
fi

configure() { # dir, extra cmake options...
	local dir=$1
	shift
	cmake -S . -B "$dir" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DRDMIG_FUZZ=ON -DRDMIG_BUILD_TESTS=OFF -DRDMIG_BUILD_PERF=OFF \
		-DRDMIG_WERROR="$werror" "$@" >/dev/null &&
		cmake --build "$dir" --target fuzz -j"$(nproc)"
}

echo "=== fuzz: build ($build, clang, ASan + UBSan + libFuzzer)"
configure "$build" -DRDMIG_FUZZ_COVERAGE=OFF || exit 1

seeds=$build/fuzz-seeds
rm -rf "$seeds"
"$build/fuzz/fuzz_make_corpus" "$seeds" || exit 1

mkdir -p "$build/fuzz-artifacts" "$build/fuzz-logs"
failed=()
for t in "${targets[@]}"; do
	corpus=$build/fuzz-corpus/$t
	log=$build/fuzz-logs/$t.log
	opts=(-runs= -print_final_stats=1 -timeout=10 -rss_limit_mb=2048
		-max_total_time="$max_time" -artifact_prefix="$build/fuzz-artifacts/$t-")
	if [ "$long" -eq 0 ]; then
		# The short run starts from the seeds alone, the same way each time.
		rm -rf "$corpus"
		opts+=(-seed=1)
	fi
	mkdir -p "$corpus"
	echo "=== fuzz_$t"
	n=${runs:-$(case $t in decode | encode) echo 200000 ;; *) echo 50000 ;; esac)}
	opts[0]=-runs=$n
	start=$(date +%s.%N)
	"$build/fuzz/fuzz_$t" "${opts[@]}" "$corpus" "$seeds/$t" >"$log" 2>&1
	rc=$?
	secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1)
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	# libFuzzer's own average divides by whole seconds: ours by the wall time.
	rate=$(awk -v n="${execs:-0}" -v s="$secs" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')
	cov=$(sed -n 's/.* cov: \([0-9]*\) .*/\1/p' <<<"$done_line")
	ft=$(sed -n 's/.* ft: \([0-9]*\) .*/\1/p' <<<"$done_line")
	corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\) .*/\1/p' <<<"$done_line")
	if [ "$rc" -ne 0 ] || [ -z "$done_line" ]; then
		echo "fuzz_$t FAILED (exit $rc) after ${secs}s; the end of $log:"
		tail -40 "$log"
		failed+=("$t")
		continue
	fi
	echo "fuzz_$t: ${execs:-?} executions in ${secs}s, ${rate:-?} exec/s, cov: ${cov:-?} ft: ${ft:-?}, corpus ${corp:-?}"
done

# llvm-cov and llvm-profdata: Debian's llvm (unversioned) or llvm-14.
llvm_tool() { command -v "$1" || command -v "$1-14"; }
if [ "$coverage" -eq 1 ] && { ! llvm_tool llvm-cov >/dev/null || ! llvm_tool llvm-profdata >/dev/null; }; then
	echo "fuzz: no llvm-cov or llvm-profdata for the coverage report (apt-get install llvm)" >&2
	failed+=(coverage-tools)
fi
if [ "$coverage" -eq 1 ] && [ ${#failed[@]} -eq 0 ]; then
	cbuild=$build-cov
	echo "=== fuzz: source coverage ($cbuild: the same targets, clang -fprofile-instr-generate)"
	if configure "$cbuild" -DRDMIG_FUZZ_COVERAGE=ON; then
		rm -rf "$cbuild/profiles"
		mkdir -p "$cbuild/profiles"
		bins=()
		for t in "${targets[@]}"; do
			# -runs=0: run every corpus input once, mutate nothing.
			LLVM_PROFILE_FILE="$cbuild/profiles/$t.profraw" "$cbuild/fuzz/fuzz_$t" -runs=0 \
				"$build/fuzz-corpus/$t" "$seeds/$t" >"$build/fuzz-logs/$t-cov.log" 2>&1 ||
				failed+=("coverage-$t")
			bins+=(-object "$cbuild/fuzz/fuzz_$t")
		done
		# The library files the chosen targets drive.
		files=("$root/common/proto.c")
		[[ " ${targets[*]} " =~ " sealed " || " ${targets[*]} " =~ " handshake " ]] &&
			files+=("$root/common/seal.c")
		[[ " ${targets[*]} " =~ " sealed " ]] && files+=("$root/common/conn.c")
		[[ " ${targets[*]} " =~ " handshake " ]] && files+=("$root/ctrl/handshake.c")
		"$(llvm_tool llvm-profdata)" merge -sparse "$cbuild"/profiles/*.profraw -o "$cbuild/profiles/all.profdata" &&
			"$(llvm_tool llvm-cov)" report "${bins[@]:1}" -instr-profile="$cbuild/profiles/all.profdata" \
				"${files[@]}" ||
			failed+=(coverage)
		[[ " ${targets[*]} " =~ " sealed " ]] &&
			echo "(conn.c: only rdmig__ep_open is fuzzed; the rest drives a transport)"
		echo "per line: llvm-cov show ${bins[*]:1} -instr-profile=$cbuild/profiles/all.profdata FILE"
	else
		failed+=(coverage-build)
	fi
fi

if [ ${#failed[@]} -ne 0 ]; then
	echo "fuzz: FAILED: ${failed[*]} (inputs in $build/fuzz-artifacts/)"
	exit 1
fi
echo "fuzz: ok (${targets[*]})"
