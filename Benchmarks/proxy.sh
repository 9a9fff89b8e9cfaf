#!/usr/bin/env bash
# nbdcopy and qemu-img through `nbdtop proxy` against the same tools connected directly to
# the same nbdkit, in the same run, interleaved (direct, proxied, direct, ...; the first
# round a warm-up that is dropped). Prints median seconds and MB/s of each, the ratio
# proxied/direct throughput (x speed; 1.00 = no cost), and the proxy's own CPU seconds per
# GB relayed, read from /proc/PID/stat around each proxied run.
#
# usage: Benchmarks/proxy.sh [NBDTOP_BIN]     (make bench-proxy: release build)
# env:   RUNS (measured rounds, default 3), CASES (default "rate delay null"),
#        SCALE (divides every image size, for a quick look)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-$here/../.build/release/nbdtop}
runs=${RUNS:-3}
scale=${SCALE:-1}
cases=${CASES:-"rate delay null"}
work=$(mktemp -d /tmp/nbdtop-bench-proxy.XXXXXX)
chmod 700 "$work"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

start_nbdkit() { # nbdkit-args...
  rm -f "$work/src.sock" "$work/src.pid"
  nbdkit -f --exit-with-parent -U "$work/src.sock" -P "$work/src.pid" "$@" &
  pids+=($!)
  for _ in $(seq 400); do [ -s "$work/src.pid" ] && [ -S "$work/src.sock" ] && return; sleep 0.05; done
  echo "nbdkit $* did not start" >&2; exit 1
}
stop_nbdkit() { kill "$(cat "$work/src.pid")" 2>/dev/null || true; sleep 0.2; }
start_proxy() {
  rm -f "$work/proxy.sock"
  "$bin" proxy --no-control "$work/proxy.sock" "nbd+unix:///?socket=$work/src.sock" &
  proxy_pid=$!
  pids+=($proxy_pid)
  for _ in $(seq 400); do [ -S "$work/proxy.sock" ] && return; sleep 0.05; done
  echo "the proxy did not start" >&2; exit 1
}
stop_proxy() { kill "$proxy_pid" 2>/dev/null || true; wait "$proxy_pid" 2>/dev/null || true; }
# CPU seconds (user + system) the proxy has used so far.
proxy_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$proxy_pid/stat"; }

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
direct="nbd+unix:///?socket=$work/src.sock"
proxied="nbd+unix:///?socket=$work/proxy.sock"

printf '%-34s %-9s %9s %9s %8s %8s %13s\n' case tool "direct s" "proxy s" "MB/s" "x speed" "proxy CPU s/GB"
# compare LABEL SIZE TOOL: interleaved runs of TOOL direct and through the proxy.
compare() {
  local label=$1 size=$2 tool=$3 ds=() ps=() cs=()
  for i in $(seq 0 "$runs"); do
    local d p before after
    d=$(run_tool "$tool" "$direct" "$size")
    before=$(proxy_cpu)
    p=$(run_tool "$tool" "$proxied" "$size")
    after=$(proxy_cpu)
    [ "$i" -eq 0 ] && continue
    ds+=("$d"); ps+=("$p"); cs+=("$(awk -v a="$after" -v b="$before" 'BEGIN { print a - b }')")
  done
  awk -v l="$label" -v t="$tool" -v s="$size" -v d="$(printf '%s\n' "${ds[@]}" | median)" \
      -v p="$(printf '%s\n' "${ps[@]}" | median)" -v c="$(printf '%s\n' "${cs[@]}" | median)" 'BEGIN {
    printf "%-34s %-9s %9.3f %9.3f %8.0f %8.2f %13.3f\n", l, t, d, p, s / p / 1e6, d / p, c / (s / 1e9) }'
}
run_tool() { # tool uri size; prints wall seconds
  local start end
  start=$(date +%s.%N)
  case $1 in
  nbdcopy) nbdcopy -C 4 -T 4 "$2" null: ;;
  qemu-img) qemu-img convert -n -W -m 16 -f raw "$2" --target-image-opts "driver=null-co,size=$3" ;;
  esac
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { print b - a }'
}

G=$((1 << 30)); M=$((1 << 20))
for case in $cases; do
  case $case in
  rate)
    size=$((256 * M / scale))
    start_nbdkit --filter=noextents --filter=rate pattern "$size" connection-rate=400M burstiness=0.1
    label="pattern, 50 MB/s per connection" ;;
  delay)
    # Long enough that the round trips, not the 2 cores, set the pace.
    size=$((1 * G / scale))
    start_nbdkit --filter=noextents --filter=delay pattern "$size" rdelay=100ms
    label="pattern, 100 ms read delay" ;;
  null)
    size=$((4 * G / scale))
    start_nbdkit --filter=noextents null "$size"
    label="nbdkit null+noextents" ;;
  *) echo "unknown case $case" >&2; exit 2 ;;
  esac
  start_proxy
  compare "$label" "$size" nbdcopy
  compare "" "$size" qemu-img
  stop_proxy
  stop_nbdkit
done
