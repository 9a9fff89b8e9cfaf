#!/usr/bin/env python3
"""Auto-tuning's convergence against the best fixed setting found by hand.

For each server, every fixed setting of a grid (-C 1..16 by --request-size 256K..16M) copies
for HOLD seconds and its steady rate is read from --stats-json (the second half of the run);
the three best run twice more, and the best median of three is the setting "found by hand".
Then, ROUNDS times and interleaved, nbdtop with its defaults (auto) and nbdtop at that best
setting each copy for AUTO seconds. Per round, auto is compared with the best setting's run
of the same round over the same span of time, so that the machine's drift and the grid's
luck (its best is the highest of many noisy runs) cancel:

- "from 10 s": auto's rate from 10 s to the end over the best setting's (target ≥ 0.90:
  within 10% by 10 s into the copy, and staying there);
- "last 10 s": the same over the run's last 10 s (target ≥ 0.95);
- "stays ≥ 90% from": when the rate over 2 s came within 10% of the grid's best rate and
  stayed there to the end, for auto and, as the yardstick of the machine's noise, for the
  best setting's own run (a fixed setting that "never" gets there says the noise, not the
  tuner, is what that column measures);
- probes (a lane added or the request size grown to see if it pays; not a lane given back
  after a probe of fewer) auto made in the last 30 s (at most one); each is printed on
  stderr with its time and reason.

The verdict: medians over the rounds of both ratios at or above their targets, and at most
one late probe in every round.

The sources are endless (a 1 TiB image) and every run is stopped by SIGINT, so a run's
length is its time, not its size. Every compared run's --stats-json log is kept (its
folder is printed at the end), so what auto did in a round can be read afterwards.

usage: Benchmarks/convergence.py NBDTOP_BIN   env: SERVERS (serial python delay null),
       HOLD (seconds per fixed setting, default 8), AUTO (seconds per compared run, default
       60), ROUNDS (default 3), CONNS (default "1 2 4 8 16"), SIZES (default "256K 1M 4M 16M")
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

BIN = sys.argv[1]
SERVERS = os.environ.get("SERVERS", "serial python delay null").split()
HOLD = float(os.environ.get("HOLD", "8"))
AUTO = float(os.environ.get("AUTO", "60"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
CONNS = [int(c) for c in os.environ.get("CONNS", "1 2 4 8 16").split()]
SIZES = os.environ.get("SIZES", "256K 1M 4M 16M").split()
TIB = 1 << 40

work = tempfile.mkdtemp(prefix="nbdtop-convergence.")
os.chmod(work, 0o700)

PYTHON_PLUGIN = """import time
def open(readonly):
    return 1
def get_size(h):
    return %d
def pread(h, count, offset):
    time.sleep(0.002)
    return bytearray(count)
""" % TIB

SHAPES = {
    "serial": ("pattern, serialized + 5 ms delay",
               ["--filter=noextents", "--filter=noparallel", "--filter=delay", "pattern", str(TIB),
                "serialize=requests", "rdelay=5ms"]),
    "python": ("python, 2 ms per request", ["python", f"{work}/slow.py"]),
    "delay": ("pattern, parallel, 5 ms delay", ["--filter=noextents", "--filter=delay", "pattern", str(TIB), "rdelay=5ms"]),
    "null": ("null+noextents", ["--filter=noextents", "null", str(TIB)]),
}


def start_server(arguments):
    socket, pid = f"{work}/src.sock", f"{work}/src.pid"
    for stale in (socket, pid):
        if os.path.exists(stale):
            os.remove(stale)
    process = subprocess.Popen(["nbdkit", "-f", "--exit-with-parent", "-r", "-U", socket, "-P", pid, *arguments])
    for _ in range(400):
        if os.path.exists(socket) and os.path.exists(pid):
            return process, f"nbd+unix:///?socket={socket}"
        time.sleep(0.05)
    raise RuntimeError(f"nbdkit {' '.join(arguments)} did not start")


def run(uri, seconds, options, keep=None):
    """The --stats-json lines of a copy stopped by SIGINT after `seconds`; the log is kept
    in the work folder under the name `keep`, if given."""
    stats = f"{work}/{keep}" if keep else f"{work}/stats.jsonl"
    command = [BIN, "copy", "--no-tui", "--interval", "250ms", "--stats-json", stats, *options, uri, "null:"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(seconds)
    process.send_signal(signal.SIGINT)
    _, error = process.communicate(timeout=120)
    if process.returncode not in (0, 130):
        raise RuntimeError(f"{' '.join(command)}: exit {process.returncode}: {error.decode()[-300:]}")
    with open(stats) as lines:
        return [json.loads(line) for line in lines if line.strip()]


def multi_conn(uri):
    """Whether the export allows more than one connection (nbdtop info's words)."""
    info = subprocess.run([BIN, "info", "--json", uri], capture_output=True, text=True, check=True)
    return json.loads(info.stdout)["exports"][0].get("can_multi_conn", False)


def samples(log, seconds):
    """(t, bytes done) of the samples before the stop (a stopping copy's last rates are no pace)."""
    return [(event["t"], event["bytes_done"]) for event in log
            if event["event"] == "sample" and event["t"] <= seconds - 1]


def rate_between(points, start, end):
    inside = [(t, done) for t, done in points if start <= t <= end]
    if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
        return 0.0
    return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])


def convergence(points, best_rate, window=2.0):
    """When the rate over `window` seconds reached 90% of `best_rate` and stayed; None if never."""
    converged = None
    for t, _ in points:
        if t < window:
            continue
        if rate_between(points, t - window, t) >= 0.9 * best_rate:
            converged = converged if converged is not None else t
        else:
            converged = None
    return converged


def mb(rate):
    return f"{rate / 1e6:.0f} MB/s"


def ratios(compared):
    """The rounds' ratios as 'median (lowest–highest)'; the median."""
    values = sorted(compared)
    middle = values[len(values) // 2] if len(values) % 2 else (values[len(values) // 2 - 1] + values[len(values) // 2]) / 2
    spread = f" ({values[0]:.2f}–{values[-1]:.2f})" if len(values) > 1 else ""
    return f"{middle:.2f}{spread}", middle


def at(seconds):
    return "never" if seconds is None else f"{seconds:.0f} s"


def main():
    with open(f"{work}/slow.py", "w") as plugin:
        plugin.write(PYTHON_PLUGIN)
    print(f"{ROUNDS} rounds of {AUTO:.0f} s, auto and the best fixed setting interleaved")
    print("| server | best fixed (by hand) | its grid rate | auto × best, from 10 s | auto × best, last 10 s "
          "| stays ≥ 90% of grid best from: auto / best itself | probes, last 30 s | verdict |")
    print("|---|---|---|---|---|---|---|---|")
    for name in SERVERS:
        label, arguments = SHAPES[name]
        server, uri = start_server(arguments)
        try:
            def fixed(conns, size):
                log = run(uri, HOLD, ["-C", str(conns), "--request-size", size])
                rate = rate_between(samples(log, HOLD), HOLD / 2, HOLD)
                print(f"  {label}: -C {conns} --request-size {size}: {mb(rate)}", file=sys.stderr)
                return rate
            # A server without multi-conn keeps one lane whatever -C says: only -C 1 is tried.
            lanes = [1] if not multi_conn(uri) else CONNS
            grid = sorted(((fixed(conns, size), conns, size) for conns in lanes for size in SIZES), reverse=True)
            # One run's best is partly luck: the three best settings run twice more, and the
            # best median of three is the setting found by hand.
            medians = []
            for rate, conns, size in grid[:3]:
                runs = sorted([rate, fixed(conns, size), fixed(conns, size)])
                medians.append((runs[1], conns, size))
            best_rate, best_conns, best_size = max(medians)
            from_ten, last_ten, auto_at, best_at, late_counts = [], [], [], [], []
            for number in range(1, ROUNDS + 1):
                log = run(uri, AUTO, [], keep=f"{name}-auto-{number}.jsonl")
                auto_points = samples(log, AUTO)
                best_points = samples(run(uri, AUTO, ["-C", str(best_conns), "--request-size", best_size],
                                          keep=f"{name}-best-{number}.jsonl"), AUTO)
                end = min(auto_points[-1][0], best_points[-1][0]) if auto_points and best_points else 0
                from_ten.append(rate_between(auto_points, 10, end) / max(rate_between(best_points, 10, end), 1))
                last_ten.append(rate_between(auto_points, end - 10, end) / max(rate_between(best_points, end - 10, end), 1))
                auto_at.append(convergence(auto_points, best_rate))
                best_at.append(convergence(best_points, best_rate))
                converged = auto_at[-1]
                # A probe has no measured rate yet; lanes given back after a probe of fewer do.
                late = [e for e in log if e["event"] == "auto" and e["action"] in ("add_lane", "grow_request_size")
                        and e.get("measured_rate_bps") is None
                        and e["t"] >= max(end - 30, converged if converged is not None else end)]
                for event in late:
                    print(f"  {label}, round {number}: late probe at {event['t']:.1f} s: {event['reason']}", file=sys.stderr)
                late_counts.append(len(late))
            from_text, from_median = ratios(from_ten)
            last_text, last_median = ratios(last_ten)
            ok = from_median >= 0.90 and last_median >= 0.95 and max(late_counts) <= 1
            stays = " ".join(f"{at(a)} / {at(b)};" for a, b in zip(auto_at, best_at)).rstrip(";")
            print(f"| {label} | `-C {best_conns} --request-size {best_size}` | {mb(best_rate)} | {from_text} | {last_text} | "
                  f"{stays} | {' '.join(map(str, late_counts))} | {'met' if ok else 'missed'} |", flush=True)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait()
    print(f"event logs: {work}/<server>-auto-<round>.jsonl and <server>-best-<round>.jsonl")


if __name__ == "__main__":
    main()
