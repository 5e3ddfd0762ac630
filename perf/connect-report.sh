#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# What connecting costs over a real device (soft-RoCE: run it inside
# ci/rxe-run.sh), issue 14's "fast connect":
#
#   perf/connect-report.sh BUILD [ROUNDS] [SIZES_MIB] [OTHER_LIB_DIR...]
#   perf/connect-report.sh --summarize FILE   (the medians of a saved run)
#
# Each round runs, one fresh process pair each, in an interleaved order:
# rdmig-connbench bare (one rdma_cm RC connect plus ibv_reg_mr of the
# guest's size at both ends) and rdmig-connbench rdmig (rdmig_src_connect(),
# handshake included) against BUILD's librdmig and against every
# OTHER_LIB_DIR's (e.g. a build of main, for before/after in one boot).
# Prints every run, then medians per (mode, library, size), the ratio
# rdmig/bare per size and the cost per extra GiB (slope between the
# smallest and largest size).
#
# Example, from the worktree root:
#   flock /tmp/rdmig-vm.lock ci/rxe-run.sh perf/connect-report.sh build 7 "256 1024 2048" \
#       ../wt-connect-base/build-main
set -euo pipefail

out=$(mktemp)
trap 'rm -f "$out"' EXIT
if [[ ${1-} == --summarize ]]; then # only the medians of an earlier run's output
    grep '^round ' "${2:?--summarize FILE}" >"$out"
    rounds=$(awk '{ r = $2 } END { print r }' "$out")
else
    build=${1:?usage: connect-report.sh BUILD [ROUNDS] [SIZES_MIB] [OTHER_LIB_DIR...]}
    rounds=${2:-5}
    sizes=${3:-256 1024}
    shift $(($# < 3 ? $# : 3))
    libs=("$build" "$@")
    bench=$build/perf/rdmig-connbench
    ip=${RDMIG_TEST_IP:?RDMIG_TEST_IP: run inside ci/rxe-run.sh}
    port=19700
    export RDMIG_LOG_LEVEL=info
    for ((r = 1; r <= rounds; r++)); do
        for s in $sizes; do
            port=$((port + 1))
            line=$("$bench" bare "$ip" "$port" "$s") || line="bare $s FAILED"
            echo "round $r bare - $line" | tee -a "$out"
            for l in "${libs[@]}"; do
                port=$((port + 1))
                line=$(LD_LIBRARY_PATH=$l "$bench" rdmig "$ip" "$port" "$s") ||
                    line="rdmig $s FAILED"
                echo "round $r rdmig $l $line" | tee -a "$out"
            done
        done
    done
fi

echo
echo "medians over $rounds rounds (ms):"
awk '
function median(k,   n, i, j, t, a) {
    n = split(vals[k], a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++)
        if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function field(name,   i) {
    for (i = 1; i <= NF; i++) if (index($i, name "=") == 1) return substr($i, length(name) + 2)
    return ""
}
# "round R MODE LIB MODE MIB total_ms=..."
$1 == "round" && $6 ~ /^[0-9]+$/ && !/FAILED/ {
    key = $3 " " $4 " " $6
    keys[key] = 1
    vals[key] = vals[key] " " field("total_ms")
    if ($3 == "bare") {
        sreg[$6] = sreg[$6] " " field("src_reg_ms"); dreg[$6] = dreg[$6] " " field("dst_reg_ms")
    } else if (index($0, "connect took")) {
        # the breakdown rdmig logs (builds that have it): "... NAME VALUE," pairs
        line = $0; sub(/.*connect took /, "", line)
        split(line, w, /[ ,()]+/)
        ctl[key] = ctl[key] " " w[8]; sr[key] = sr[key] " " w[12]
        hs[key] = hs[key] " " w[16]; rtt[key] = rtt[key] " " w[20]
        dc[key] = dc[key] " " w[24]
        line = $0; sub(/.* in /, "", line); split(line, w, " "); dr[key] = dr[key] " " w[1]
    }
}
END {
    for (k in keys) { med[k] = median(k); printf "  %-60s %8.1f\n", k, med[k] }
    for (s in sreg) {
        vals["s"] = sreg[s]; vals["d"] = dreg[s]
        printf "  bare registration at %s MiB: source %.1f ms, destination %.1f ms\n", s,
            median("s"), median("d")
    }
    for (k in ctl) {
        vals["a"] = ctl[k]; vals["b"] = sr[k]; vals["c"] = hs[k]; vals["d"] = rtt[k]
        vals["e"] = dc[k]; vals["f"] = dr[k]
        printf "  breakdown %s: control connection %.1f (source registration %.1f), " \
            "handshake %.1f (HELLO round trip %.1f, destination registration %.1f), " \
            "data connections %.1f\n", k, median("a"), median("b"), median("c"), median("d"),
            median("f"), median("e")
    }
    # cost per extra GiB: slope between the smallest and the largest size
    for (k in keys) {
        split(k, p, " "); ml = p[1] " " p[2]; sz = p[3] + 0
        if (!(ml in lo) || sz < lo[ml]) lo[ml] = sz
        if (!(ml in hi) || sz > hi[ml]) hi[ml] = sz
    }
    for (ml in lo)
        if (hi[ml] > lo[ml])
            printf "  per extra GiB     %-40s %.1f ms (%d to %d MiB)\n", ml,
                (med[ml " " hi[ml]] - med[ml " " lo[ml]]) * 1024 / (hi[ml] - lo[ml]),
                lo[ml], hi[ml]
    for (k in keys) {
        split(k, p, " ")
        if (p[1] != "rdmig") continue
        b = "bare - " p[3]
        if (b in med && med[b] > 0) {
            printf "  ratio rdmig/bare  %-40s %s MiB: %.2f\n", p[2], p[3], med[k] / med[b]
            json = json (json ? "," : "") sprintf("{\"what\":\"connect %s MiB rdmig/bare (%s)\",\"value\":%.3f,\"goal\":\"<= 1.3\"}", p[3], p[2], med[k] / med[b])
        }
    }
    for (ml in lo)
        if (hi[ml] > lo[ml] && ml ~ /^rdmig/)
            json = json (json ? "," : "") sprintf("{\"what\":\"connect: ms per extra GiB (%s)\",\"value\":%.1f,\"goal\":\"report\"}", ml, (med[ml " " hi[ml]] - med[ml " " lo[ml]]) * 1024 / (hi[ml] - lo[ml]))
    # For ci/bench.sh summary: one JSON line.
    printf "{\"bench\":\"connect\",\"ratios\":[%s]}\n", json
}' "$out"
