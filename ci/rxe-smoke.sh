#!/usr/bin/env bash
# Smoke test of the soft-RoCE harness (ci/rxe-run.sh): in one run it checks
# the rxe device, RDMA CM (rping), RDMA writes (ib_write_bw), the locked-memory
# limit, MR accounting through `rdma resource show mr` and writes to the
# repository from inside; a second run checks that exit statuses come back.
# Takes about 15 s in VM mode. Usage: ci/rxe-smoke.sh
set -euo pipefail

script_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(git -C "$script_dir" rev-parse --show-toplevel 2>/dev/null) || repo=$(cd "$script_dir/.." && pwd -P)
run=$script_dir/rxe-run.sh

log() { printf 'rxe-smoke: %s\n' "$*" >&2; }
fail() { log "FAILED: $*"; exit 1; }

probe=$repo/.rxe-smoke-probe.$$
out=$(mktemp "${TMPDIR:-/tmp}/rxe-smoke.XXXXXX")
trap 'rm -f "$probe" "$out"' EXIT

mode=$("$run" --mode)
log "mode: $mode"

# Runs where the device is; every check prints a "check:" line when it passes.
# shellcheck disable=SC2016 # expanded where the checks run
checks='
set -euo pipefail
probe=$1
dev=$RDMIG_TEST_DEV ip=$RDMIG_TEST_IP gid=$RDMIG_TEST_GID_INDEX
echo "check: env dev=$dev ip=$ip gid_index=$gid"

ibv_devices | grep -qw "$dev" && echo "check: ibv_devices lists $dev"

[[ $(ulimit -l) == unlimited ]] && echo "check: ulimit -l unlimited"

rping -s -a "$ip" -C 3 -v >/dev/null & srv=$!
sleep 1
rping -c -a "$ip" -C 3 -v | grep -c "ping data" | grep -qx 3
wait "$srv" && echo "check: rping 3 round trips"

ib_write_bw -d "$dev" -x "$gid" -s 65536 -n 200 -F >/dev/null & srv=$!
sleep 1
bw=$(ib_write_bw -d "$dev" -x "$gid" -s 65536 -n 200 -F "$ip" | awk "\$1 == 65536 { print \$4 }")
wait "$srv"
[[ -n $bw ]] && echo "check: ib_write_bw average $bw MB/s"

ib_write_bw -d "$dev" -x "$gid" -F -D 3 >/dev/null & srv=$!
sleep 1
ib_write_bw -d "$dev" -x "$gid" -F -D 3 "$ip" >/dev/null & cli=$!
sleep 2
mrs=$(rdma resource show mr | grep -c "comm ib_write_bw" || true)
wait "$srv" "$cli"
left=$(rdma resource show mr | grep -c . || true)
[[ $mrs -ge 2 && $left -eq 0 ]] && echo "check: rdma resource show mr ($mrs MRs while running, $left after)"

echo ok >"$probe" && echo "check: wrote $probe"
'

log "running the checks"
"$run" bash -c "$checks" checks "$probe" | tee "$out" || fail "check script failed (status $?)"
for want in "check: env" "check: ibv_devices" "check: ulimit" "check: rping" \
    "check: ib_write_bw" "check: rdma resource" "check: wrote"; do
    grep -q "^$want" "$out" || fail "missing: $want"
done
[[ $(cat "$probe" 2>/dev/null) == ok ]] || fail "$probe not visible on the host"
log "repository write visible on the host"

log "checking exit status propagation"
status=0
"$run" sh -c 'exit 3' || status=$?
((status == 3)) || fail "sh -c 'exit 3' gave status $status"
log "exit status 3 propagated"

log "all checks passed ($mode mode)"
