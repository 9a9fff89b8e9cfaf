#!/usr/bin/env bash
# Times nbdtop against nbdcopy (and qemu-img convert where it applies) on the same
# servers, in the same run, interleaved: A B A B ..., the first round a warm-up that is
# dropped. Prints median seconds, MB/s, client CPU seconds per GB, peak RSS, and ratios
# to nbdcopy (x speed > 1: faster than nbdcopy; x CPU < 1: cheaper). The memory case
# checks peak RSS against lanes × max(queue size, request size) × 1.5 + 40 MiB.
#
# The auto-* cases compare the tools as people run them: no tuning flags on any of them
# (nbdtop tunes lanes and request size itself; nbdcopy caps connections at the CPU count;
# qemu-img convert with its defaults), with the ratio of each round and the lowest, and
# the servers' CPU per GB while each tool copied (on 2 cores, a server that takes most of
# them caps every client). nbdtop's event logs there are kept (the folder is printed last;
# round 0 is the warm-up).
#
# usage: Benchmarks/compare.sh [NBDTOP_BIN]       (make bench: release build)
# env:   RUNS (measured rounds, default 3), CASES (names to run, default all),
#        CONNS (default "1 2 4"), SCALE (divides every image size, for a quick look)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-$here/../.build/release/nbdtop}
runs=${RUNS:-3}
conns_list=${CONNS:-"1 2 4"}
scale=${SCALE:-1}
cases=${CASES:-"null file sparse delay serial rate memory dashboard tls auto-serial auto-python auto-delay auto-null auto-file auto-sparse auto-qemu auto-equal"}
work=$(mktemp -d /tmp/nbdtop-bench.XXXXXX)
chmod 700 "$work"
# The auto cases' event logs (--stats-json of each nbdtop run), kept: what auto decided in
# a round that stands out can be read afterwards.
logs=$(mktemp -d /tmp/nbdtop-bench-logs.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

start_nbdkit() { # name nbdkit-args...
  local name=$1; shift
  nbdkit -f --exit-with-parent -U "$work/$name.sock" -P "$work/$name.pid" "$@" &
  pids+=($!)
  for _ in $(seq 400); do [ -s "$work/$name.pid" ] && [ -S "$work/$name.sock" ] && return; sleep 0.05; done
  echo "nbdkit $* did not start" >&2; exit 1
}
uri() { echo "nbd+unix:///?socket=$work/$1.sock"; }
tls_uri() { echo "nbds+unix:///?socket=$work/$1.sock&tls-certificates=$work/pki"; }

# A CA and a server certificate for localhost in $work/pki, as nbdkit and libnbd want them.
make_certificates() {
  local pki=$work/pki ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  mkdir -p "$pki"
  openssl req -x509 "${ec[@]}" -keyout "$work/ca-key.pem" -out "$pki/ca-cert.pem" -days 2 \
    -subj "/CN=nbdtop bench CA" -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
  openssl req "${ec[@]}" -keyout "$pki/server-key.pem" -out "$work/server.csr" -subj /CN=localhost 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > "$work/server.ext"
  openssl x509 -req -in "$work/server.csr" -CA "$pki/ca-cert.pem" -CAkey "$work/ca-key.pem" -set_serial 1 -days 2 \
    -extfile "$work/server.ext" -out "$pki/server-cert.pem" 2>/dev/null
}
stop_nbdkit() { kill "$(cat "$work/$1.pid")" 2>/dev/null || true; rm -f "$work/$1.sock" "$work/$1.pid"; }

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
clock_ticks=$(getconf CLK_TCK)
# CPU seconds the case's servers (every $work/*.pid still running) have used so far: a
# row where the server takes most of the machine's two cores cannot go much faster.
servers_cpu() {
  local total=0 file
  for file in "$work"/*.pid; do
    [ -s "$file" ] || continue
    total=$(awk -v t="$total" -v hz="$clock_ticks" '{ printf "%.3f", t + ($14 + $15) / hz }' \
      "/proc/$(cat "$file")/stat" 2>/dev/null || echo "$total")
  done
  echo "$total"
}
field() { printf '%s\n' "${@:2}" | cut -d' ' -f"$1"; }

printf '%-36s %5s %-9s %8s %8s %9s %8s %7s %7s\n' case conns tool "median s" "MB/s" "CPU s/GB" "RSS MiB" "x speed" "x CPU"
report() { # label conns tool size results... ; prints one row, sets REF_* for nbdcopy
  local label=$1 conns=$2 tool=$3 size=$4; shift 4
  local wall cpu rss
  wall=$(field 1 "$@" | median); cpu=$(field 2 "$@" | median); rss=$(field 3 "$@" | sort -n | tail -1)
  if [ "$tool" = nbdcopy ]; then REF_WALL=$wall; REF_CPU=$cpu; fi
  awk -v l="$label" -v c="$conns" -v t="$tool" -v s="$size" -v w="$wall" -v u="$cpu" -v r="$rss" \
      -v rw="$REF_WALL" -v ru="$REF_CPU" 'BEGIN {
    gb = s / 1e9
    printf "%-36s %5s %-9s %8.3f %8.0f %9.3f %8.1f %7.2f %7.2f\n", l, c, t, w, s/w/1e6, u/gb, r/1024, rw/w, (u/gb)/(ru/gb)
  }'
}

# run_case LABEL SIZE SRC_URI DST_NBDTOP DST_NBDCOPY [QEMU_TARGET_OPTS]
run_case() {
  local label=$1 size=$2 src=$3 dst=$4 dst_nbdcopy=$5 qemu=${6:-}
  for conns in $conns_list; do
    local ours=() theirs=() qemus=()
    for i in $(seq 0 "$runs"); do
      local a b q=""
      a=$("$here/timed.py" "$bin" copy --no-tui -C "$conns" "$src" "$dst")
      b=$("$here/timed.py" nbdcopy -C "$conns" -T "$conns" "$src" "$dst_nbdcopy")
      if [ -n "$qemu" ] && [ "$conns" = 1 ]; then
        q=$("$here/timed.py" qemu-img convert -n -W -m 16 -f raw "$src" --target-image-opts "$qemu")
      fi
      [ "$i" -eq 0 ] && continue
      ours+=("$a"); theirs+=("$b"); [ -n "$q" ] && qemus+=("$q")
    done
    report "$label" "$conns" nbdcopy "$size" "${theirs[@]}" >/dev/null
    report "$label" "$conns" nbdtop "$size" "${ours[@]}"
    OUR_WALL[$conns]=$(field 1 "${ours[@]}" | median)
    report "" "$conns" nbdcopy "$size" "${theirs[@]}"
    if [ "${#qemus[@]}" -gt 0 ]; then report "" "$conns" qemu-img "$size" "${qemus[@]}"; fi
  done
}

# defaults_case LABEL SIZE SRC_URI DST [QEMU_TARGET] [FIXED_FLAGS]: nbdtop, nbdcopy and
# qemu-img convert without tuning flags, interleaved; QEMU_TARGET is target image options
# (null-co) or an NBD URI. Prints the medians, then each round's speed ratio to nbdcopy
# and the lowest. FIXED_FLAGS, a fixed nbdtop setting (the best of the convergence grid on
# that server), runs in the same interleave as a yardstick: what auto could reach there at
# that moment.
defaults_case() {
  local label=$1 size=$2 src=$3 dst=$4 qemu=${5:-} fixed_flags=()
  read -ra fixed_flags <<< "${6:-}"
  local ours=() theirs=() qemus=() ratios=() fixeds=() a b q f slug
  slug=$(printf '%s' "${label#auto: }" | tr -cs 'a-zA-Z0-9' '-')
  local server=() c0 c1 c2 c3
  for i in $(seq 0 "$runs"); do
    c0=$(servers_cpu)
    a=$("$here/timed.py" "$bin" copy --no-tui --stats-json "$logs/$slug-$i.jsonl" "$src" "$dst")
    c1=$(servers_cpu)
    b=$("$here/timed.py" nbdcopy "$src" "$dst")
    c2=$(servers_cpu)
    q=""
    case $qemu in
    "") ;;
    nbd*) q=$("$here/timed.py" qemu-img convert -n -f raw "$src" -O raw "$qemu") ;;
    *) q=$("$here/timed.py" qemu-img convert -n -f raw "$src" --target-image-opts "$qemu") ;;
    esac
    c3=$(servers_cpu)
    f=""
    if [ "${#fixed_flags[@]}" -gt 0 ]; then f=$("$here/timed.py" "$bin" copy --no-tui "${fixed_flags[@]}" "$src" "$dst"); fi
    [ "$i" -eq 0 ] && continue
    ours+=("$a"); theirs+=("$b"); [ -n "$q" ] && qemus+=("$q"); [ -n "$f" ] && fixeds+=("$f")
    server+=("$(awk -v a="$c0" -v b="$c1" -v c="$c2" -v d="$c3" 'BEGIN { print b - a, c - b, d - c }')")
    ratios+=("$(awk -v a="${a%% *}" -v b="${b%% *}" 'BEGIN { printf "%.2f", b / a }')")
  done
  report "$label" auto nbdcopy "$size" "${theirs[@]}" >/dev/null
  report "$label" auto nbdtop "$size" "${ours[@]}"
  report "" auto nbdcopy "$size" "${theirs[@]}"
  if [ "${#qemus[@]}" -gt 0 ]; then
    report "" auto qemu-img "$size" "${qemus[@]}"
    awk -v l="$label" -v o="$(field 1 "${ours[@]}" | median)" -v q="$(field 1 "${qemus[@]}" | median)" \
      'BEGIN { printf "%-36s nbdtop vs qemu-img: x %.2f\n", l, q / o }'
  fi
  if [ "${#fixeds[@]}" -gt 0 ]; then
    report "" fixed nbdtop "$size" "${fixeds[@]}"
    awk -v l="$label" -v o="$(field 1 "${ours[@]}" | median)" -v f="$(field 1 "${fixeds[@]}" | median)" \
        -v flags="${fixed_flags[*]}" 'BEGIN { printf "%-36s auto vs fixed %s: x %.2f\n", l, flags, f / o }'
  fi
  printf '%-36s rounds x speed: %s (lowest %s)\n' "$label" "${ratios[*]}" "$(printf '%s\n' "${ratios[@]}" | sort -n | head -1)"
  awk -v l="$label" -v gb="$(awk -v s="$size" 'BEGIN { print s / 1e9 }')" -v a="$(field 1 "${server[@]}" | median)" \
      -v b="$(field 2 "${server[@]}" | median)" -v c="$(field 3 "${server[@]}" | median)" -v q="${#qemus[@]}" 'BEGIN {
    printf "%-36s server CPU s/GB (median): with nbdtop %.3f, nbdcopy %.3f", l, a / gb, b / gb
    if (q > 0) printf ", qemu-img %.3f", c / gb
    printf "\n" }'
  # Auto may open up to AUTO_LANES lanes of requests up to the queue size.
  awk -v l="$label" -v n="$AUTO_LANES" -v q="$QUEUE_BYTES" -v ours="$(field 3 "${ours[@]}" | sort -n | tail -1)" 'BEGIN {
    limit = n * q * 1.5 / 1048576 + 40
    printf "%-36s peak RSS %.1f MiB, limit %d lanes: %.1f MiB: %s\n", l, ours / 1024, n, limit, (ours / 1024 <= limit ? "PASS" : "FAIL") }'
}

# A Python plugin that answers one request at a time (the default thread model of
# nbdkit's Python plugins) and sleeps 2 ms per request, like remote or scripted plugins.
python_plugin() { # size
  cat > "$work/slow.py" <<PY
import time
def open(readonly):
    return 1
def get_size(h):
    return $1
def pread(h, count, offset):
    time.sleep(0.002)
    return bytearray(count)
PY
}

# memory_case LABEL SIZE SRC_URI LANES REQUEST_BYTES "NBDTOP_ARGS" "NBDCOPY_ARGS"
# Interleaved runs into null: at the same settings; nbdtop's peak RSS against the limit
# lanes × max(queue size, request size) × 1.5 + 40 MiB, with nbdcopy's for comparison.
memory_case() {
  local label=$1 size=$2 src=$3 lanes=$4 request=$5 ours_flags theirs_flags
  read -ra ours_flags <<< "$6"; read -ra theirs_flags <<< "$7"
  local ours=() theirs=() a b
  for i in $(seq 0 "$runs"); do
    a=$("$here/timed.py" "$bin" copy --no-tui "${ours_flags[@]}" "$src" null:)
    b=$("$here/timed.py" nbdcopy "${theirs_flags[@]}" "$src" null:)
    [ "$i" -eq 0 ] && continue
    ours+=("$a"); theirs+=("$b")
  done
  report "$label" "$lanes" nbdcopy "$size" "${theirs[@]}" >/dev/null
  report "$label" "$lanes" nbdtop "$size" "${ours[@]}"
  report "" "$lanes" nbdcopy "$size" "${theirs[@]}"
  awk -v l="$label" -v n="$lanes" -v q="$QUEUE_BYTES" -v r="$request" \
      -v ours="$(field 3 "${ours[@]}" | sort -n | tail -1)" -v theirs="$(field 3 "${theirs[@]}" | sort -n | tail -1)" \
      -v ow="$(field 1 "${ours[@]}" | median)" -v tw="$(field 1 "${theirs[@]}" | median)" 'BEGIN {
    limit = n * (q > r ? q : r) * 1.5 / 1048576 + 40
    printf "%-36s peak RSS %.1f MiB, limit %.1f MiB: %s (nbdcopy %.1f MiB); x speed %.2f\n",
      l " memory", ours / 1024, limit, (ours / 1024 <= limit ? "PASS" : "FAIL"), theirs / 1024, tw / ow }'
}

# Throughput with N lanes divided by N times the throughput with 1 lane (1.00 = linear).
scaling() { # label
  if [ -n "${OUR_WALL[1]:-}" ]; then
    for conns in $conns_list; do
      [ "$conns" = 1 ] && continue
      awk -v l="$1" -v c="$conns" -v w1="${OUR_WALL[1]}" -v wn="${OUR_WALL[$conns]}" \
        'BEGIN { printf "%-36s %5s scaling from 1 lane: %.2f of linear\n", l, c, (w1 / wn) / c }'
    done
  fi
}

declare -A OUR_WALL
G=$((1 << 30)); M=$((1 << 20))
QUEUE_BYTES=$((16 * M)) # nbdtop's default --queue-size
AUTO_LANES=16 # nbdtop's default --max-connections
for case in $cases; do
  case $case in
  null)
    size=$((4 * G / scale))
    start_nbdkit src --filter=noextents null "$size"
    run_case "nbdkit null+noextents" "$size" "$(uri src)" null: null: "driver=null-co,size=$size"
    stop_nbdkit src ;;
  file)
    size=$((2 * G / scale))
    head -c "$size" /dev/urandom > "$work/disk.img"
    cat "$work/disk.img" > /dev/null
    start_nbdkit src file "$work/disk.img"
    run_case "nbdkit file (page-cached)" "$size" "$(uri src)" null: null: "driver=null-co,size=$size"
    stop_nbdkit src; rm -f "$work/disk.img" ;;
  sparse)
    size=$((8 * G / scale))
    start_nbdkit src sparse-random "$size" seed=42 percent=25 runlength=$((4 * M))
    start_nbdkit dst sparse-random "$size" seed=42 percent=25 runlength=$((4 * M))
    run_case "sparse-random -> sparse-random" "$size" "$(uri src)" "$(uri dst)" "$(uri dst)"
    stop_nbdkit src; stop_nbdkit dst ;;
  delay)
    size=$((1 * G / scale))
    start_nbdkit src --filter=noextents --filter=delay pattern "$size" rdelay=5ms
    run_case "pattern, 5 ms read delay" "$size" "$(uri src)" null: null:
    stop_nbdkit src ;;
  serial)
    size=$((256 * M / scale))
    start_nbdkit src --filter=noextents --filter=noparallel --filter=delay pattern "$size" serialize=requests rdelay=2ms
    run_case "pattern, serialized + 2 ms delay" "$size" "$(uri src)" null: null:
    stop_nbdkit src ;;
  rate)
    size=$((256 * M / scale))
    # 400 Mbit/s per connection: 4 lanes should copy 4 times as fast as 1.
    start_nbdkit src --filter=noextents --filter=rate pattern "$size" connection-rate=400M burstiness=0.1
    run_case "pattern, 50 MB/s per connection" "$size" "$(uri src)" null: null:
    scaling "pattern, 50 MB/s per connection"
    stop_nbdkit src ;;
  memory)
    # Peak memory and speed for the defaults (4 lanes, 256 KiB requests) and for 8 lanes
    # of 32 MiB requests; noextents, so every byte really moves.
    size=$((8 * G / scale))
    start_nbdkit src --filter=noextents null "$size"
    memory_case "defaults, null+noextents" "$size" "$(uri src)" 4 $((256 * 1024)) "" "-C 4 -T 4"
    memory_case "32M requests, null+noextents" "$size" "$(uri src)" 8 $((32 * M)) \
      "-C 8 --request-size 32M" "-C 8 -T 8 --request-size=$((32 * M))" # nbdcopy 1.14 takes no suffix here
    stop_nbdkit src ;;
  dashboard)
    # The same rate-capped copy with and without the dashboard (on a pseudo-terminal,
    # default 4 Hz refresh): the extra client CPU as a share of one core.
    size=$((512 * M / scale))
    start_nbdkit src --filter=noextents --filter=rate pattern "$size" connection-rate=400M burstiness=0.1
    tui=() plain=()
    for i in $(seq 0 "$runs"); do
      a=$("$here/timed.py" --pty "$bin" copy --tui -C 2 "$(uri src)" null:)
      b=$("$here/timed.py" "$bin" copy --no-tui -C 2 "$(uri src)" null:)
      [ "$i" -eq 0 ] && continue
      tui+=("$a"); plain+=("$b")
    done
    awk -v tw="$(field 1 "${tui[@]}" | median)" -v tc="$(field 2 "${tui[@]}" | median)" \
        -v pw="$(field 1 "${plain[@]}" | median)" -v pc="$(field 2 "${plain[@]}" | median)" 'BEGIN {
      printf "%-36s dashboard %.3f s CPU in %.2f s, --no-tui %.3f s CPU in %.2f s: +%.1f%% of one core\n",
        "dashboard overhead (2 lanes)", tc, tw, pc, pw, (tc - pc) / tw * 100 }'
    stop_nbdkit src ;;
  tls)
    # Every byte through TLS (noextents): nbdkit --tls=require on a Unix socket.
    size=$((2 * G / scale))
    make_certificates
    start_nbdkit src --tls=require --tls-certificates="$work/pki" --filter=noextents null "$size"
    run_case "TLS, nbdkit null+noextents" "$size" "$(tls_uri src)" null: null:
    stop_nbdkit src ;;
  auto-serial)
    size=$((1 * G / scale))
    start_nbdkit src --filter=noextents --filter=noparallel --filter=delay pattern "$size" serialize=requests rdelay=5ms
    defaults_case "auto: serialized + 5 ms delay" "$size" "$(uri src)" null: "driver=null-co,size=$size"
    stop_nbdkit src ;;
  auto-python)
    size=$((1 * G / scale))
    python_plugin "$size"
    start_nbdkit src python "$work/slow.py"
    defaults_case "auto: python, 2 ms per request" "$size" "$(uri src)" null: "driver=null-co,size=$size"
    stop_nbdkit src ;;
  auto-delay)
    size=$((1 * G / scale))
    start_nbdkit src --filter=noextents --filter=delay pattern "$size" rdelay=5ms
    # The convergence grid's best on this server, as the yardstick of what the machine allows.
    defaults_case "auto: parallel, 5 ms delay" "$size" "$(uri src)" null: "driver=null-co,size=$size" "-C 2 --request-size 1M"
    stop_nbdkit src ;;
  auto-null)
    size=$((4 * G / scale))
    start_nbdkit src --filter=noextents null "$size"
    defaults_case "auto: null+noextents" "$size" "$(uri src)" null: "driver=null-co,size=$size"
    stop_nbdkit src ;;
  auto-file)
    size=$((2 * G / scale))
    head -c "$size" /dev/urandom > "$work/disk.img"
    cat "$work/disk.img" > /dev/null
    start_nbdkit src file "$work/disk.img"
    defaults_case "auto: file (page-cached)" "$size" "$(uri src)" null: "driver=null-co,size=$size"
    stop_nbdkit src; rm -f "$work/disk.img" ;;
  auto-sparse)
    size=$((8 * G / scale))
    start_nbdkit src sparse-random "$size" seed=42 percent=25 runlength=$((4 * M))
    start_nbdkit dst sparse-random "$size" seed=42 percent=25 runlength=$((4 * M))
    defaults_case "auto: sparse-random -> sparse-random" "$size" "$(uri src)" "$(uri dst)" "$(uri dst)"
    stop_nbdkit src; stop_nbdkit dst ;;
  auto-qemu)
    # qemu-nbd with -e 8, so that it advertises multi-conn.
    size=$((2 * G / scale))
    head -c "$size" /dev/urandom > "$work/disk.img"
    cat "$work/disk.img" > /dev/null
    qemu-nbd -t -e 8 -k "$work/q.sock" --pid-file="$work/q.pid" -f raw -r "$work/disk.img" &
    pids+=($!)
    for _ in $(seq 400); do [ -S "$work/q.sock" ] && break; sleep 0.05; done
    defaults_case "auto: qemu-nbd file" "$size" "$(uri q)" null: "driver=null-co,size=$size"
    kill "$(cat "$work/q.pid")" 2>/dev/null || true; rm -f "$work/disk.img" ;;
  auto-equal)
    # Equal explicit settings: 2 connections, 256 KiB requests, into null:.
    size=$((4 * G / scale))
    start_nbdkit src --filter=noextents null "$size"
    memory_case "equal: -C 2, 256K, null+noextents" "$size" "$(uri src)" 2 $((256 * 1024)) \
      "-C 2 --request-size 256K" "-C 2 -T 2 --request-size=262144"
    stop_nbdkit src ;;
  *) echo "unknown case $case" >&2; exit 2 ;;
  esac
done
if [ -n "$(ls -A "$logs")" ]; then echo "auto event logs: $logs"; else rmdir "$logs"; fi
