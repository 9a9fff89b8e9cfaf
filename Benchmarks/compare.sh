#!/usr/bin/env bash
# Times nbdtop's NBD client against nbdcopy on the same servers, in the same run.
#
# usage: Benchmarks/compare.sh [NBDTOP_BIN]    (run by `make bench` on a release build)
#
# Until `nbdtop copy` exists this measures the client's read path: nbd-read-bench reads
# the whole export to nowhere, nbdcopy copies it to null:. Runs are interleaved
# (A B A B ...), the first pair is a warm-up and dropped, and the table reports medians
# and ratios to nbdcopy (throughput: >1 is faster; CPU: <1 is cheaper).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-$here/../.build/release/nbdtop}
bench=$(dirname "$bin")/nbd-read-bench
runs=${RUNS:-5}
work=$(mktemp -d /tmp/nbdtop-bench.XXXXXX)
chmod 700 "$work"
servers=()
cleanup() {
  for pid in "${servers[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

start_server() { # name args...
  local name=$1; shift
  nbdkit -f --exit-with-parent -U "$work/$name.sock" -P "$work/$name.pid" "$@" &
  servers+=($!)
  for _ in $(seq 200); do [ -e "$work/$name.pid" ] && [ -S "$work/$name.sock" ] && return; sleep 0.05; done
  echo "nbdkit $* did not start" >&2; exit 1
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

printf '%-34s %5s %-8s %8s %9s %9s %9s %8s %8s\n' case conns tool "median s" "MB/s" "CPU s/GB" "RSS MiB" "x speed" "x CPU"
run_case() { # label size_bytes conns uri
  local label=$1 size=$2 conns=$3 uri=$4
  local ours=() theirs=()
  for i in $(seq 0 "$runs"); do
    local a b
    a=$("$here/timed.py" "$bench" "$uri" "$conns" 64 262144)
    b=$("$here/timed.py" nbdcopy -C "$conns" -T "$conns" -R 64 "$uri" null:)
    [ "$i" -eq 0 ] && continue
    ours+=("$a"); theirs+=("$b")
  done
  local ow oc orss tw tc trss
  ow=$(printf '%s\n' "${ours[@]}" | cut -d' ' -f1 | median)
  oc=$(printf '%s\n' "${ours[@]}" | cut -d' ' -f2 | median)
  orss=$(printf '%s\n' "${ours[@]}" | cut -d' ' -f3 | sort -n | tail -1)
  tw=$(printf '%s\n' "${theirs[@]}" | cut -d' ' -f1 | median)
  tc=$(printf '%s\n' "${theirs[@]}" | cut -d' ' -f2 | median)
  trss=$(printf '%s\n' "${theirs[@]}" | cut -d' ' -f3 | sort -n | tail -1)
  awk -v l="$label" -v c="$conns" -v s="$size" -v ow="$ow" -v oc="$oc" -v orss="$orss" \
      -v tw="$tw" -v tc="$tc" -v trss="$trss" 'BEGIN {
    gb = s / 1e9
    printf "%-34s %5d %-8s %8.3f %9.0f %9.3f %9.1f %8.2f %8.2f\n", l, c, "nbdtop", ow, s/ow/1e6, oc/gb, orss/1024, tw/ow, (oc/gb)/(tc/gb)
    printf "%-34s %5d %-8s %8.3f %9.0f %9.3f %9.1f %8s %8s\n", "", c, "nbdcopy", tw, s/tw/1e6, tc/gb, trss/1024, "1.00", "1.00"
  }'
}

start_server null --filter=noextents null 4G
start_server delay --filter=noextents --filter=delay pattern 512M rdelay=5ms
for conns in 1 2 4; do
  run_case "nbdkit null+noextents 4G" $((4 << 30)) "$conns" "nbd+unix:///?socket=$work/null.sock"
done
for conns in 1 2 4; do
  run_case "pattern 512M, 5 ms read delay" $((512 << 20)) "$conns" "nbd+unix:///?socket=$work/delay.sock"
done
