#!/bin/sh
# Runs rdmig-vmm-example the way CI does. Usage: run-example.sh EXAMPLE MODE [ADDR]
#   local    both ends in one process; the images must be identical
#   split    destination and source as two processes (ADDR: the rxe address)
#   cancel   SIGINT during pre-copy: exit 130 within 5 s, "cancelled" said
# ADDR defaults to RDMIG_TEST_IP, else 127.0.0.1 (the loopback transport).
set -u
ex=$1 mode=$2 addr=${3:-${RDMIG_TEST_IP:-127.0.0.1}}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
key=$tmp/key

case $mode in
local)
	"$ex" --make-key "$key" --size 32 local "$addr" || exit 1
	;;
split)
	port=${RDMIG_EXAMPLE_PORT:-18533}
	"$ex" --make-key "$key" --size 32 dst "$addr" "$port" >"$tmp/dst.log" 2>&1 &
	dpid=$!
	for _ in $(seq 100); do grep -q listening "$tmp/dst.log" && break; sleep 0.1; done
	"$ex" --make-key "$key" --size 32 src "$addr" "$port"
	src_rc=$?
	wait $dpid
	dst_rc=$?
	cat "$tmp/dst.log"
	[ $src_rc -eq 0 ] && [ $dst_rc -eq 0 ] || exit 1
	;;
cancel)
	# A capped wire makes the first pass take ~10 s: the signal lands in it.
	RDMIG_LOOPBACK_RATE_MBPS=${RDMIG_LOOPBACK_RATE_MBPS:-50} \
		"$ex" --make-key "$key" --size 64 local "$addr" >"$tmp/out" 2>&1 &
	pid=$!
	sleep 2
	t0=$(date +%s%N)
	kill -INT $pid
	wait $pid
	rc=$?
	ms=$((($(date +%s%N) - t0) / 1000000))
	cat "$tmp/out"
	echo "exit $rc, $ms ms after SIGINT"
	[ $rc -eq 130 ] || { echo "expected exit 130 (cancelled)"; exit 1; }
	[ $ms -lt 5000 ] || { echo "took too long to cancel"; exit 1; }
	grep -q "cancelled" "$tmp/out" || { echo "no 'cancelled' message"; exit 1; }
	;;
*)
	echo "unknown mode $mode" >&2
	exit 2
	;;
esac
