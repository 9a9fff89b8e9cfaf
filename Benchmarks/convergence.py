#!/usr/bin/env python3
"""Auto-tuning's convergence against the best fixed setting found by hand.

For each server, every fixed setting of a grid (-C 1..16 by --request-size 256K..16M) copies
for HOLD seconds and its steady rate is read from --stats-json (the second half of the run);
the three best run twice more, and the best median of three is the setting "found by hand". Then nbdtop with its defaults (auto) copies
for AUTO seconds. Reported per server: the best fixed setting and its rate, auto's rate at
the end, when auto's rate (over 2 s) came within 10% of the best and stayed there, against
the allowance (10 s, or 5% of the run, whichever is longer), and the probes (a lane added
or the request size grown) auto made in the run's last 30 s, once converged (target: at
most one every 30 s).

The sources are endless (a 1 TiB image) and every run is stopped by SIGINT, so a run's
length is its time, not its size.

usage: Benchmarks/convergence.py NBDTOP_BIN   env: SERVERS (serial python delay null),
       HOLD (seconds per fixed setting, default 8), AUTO (seconds for auto, default 60),
       CONNS (default "1 2 4 8 16"), SIZES (default "256K 1M 4M 16M")
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


def run(uri, seconds, options):
    """The --stats-json lines of a copy stopped by SIGINT after `seconds`."""
    stats = f"{work}/stats.jsonl"
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


def main():
    with open(f"{work}/slow.py", "w") as plugin:
        plugin.write(PYTHON_PLUGIN)
    print("| server | best fixed (by hand) | its rate | auto's final rate | × best | converged at | allowed | probes, last 30 s | verdict |")
    print("|---|---|---|---|---|---|---|---|---|")
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
                medians.append((runs[1], f"-C {conns} --request-size {size}"))
            best = max(medians)
            log = run(uri, AUTO, [])
            points = samples(log, AUTO)
            end = points[-1][0] if points else 0
            final = rate_between(points, end - 10, end)
            converged = convergence(points, best[0])
            allowed = max(10.0, 0.05 * end)
            late = [e for e in log if e["event"] == "auto" and e["action"] in ("add_lane", "grow_request_size")
                    and e["t"] >= max(end - 30, converged if converged is not None else end)]
            ok = converged is not None and converged <= allowed and len(late) <= 1
            print(f"| {label} | `{best[1]}` | {mb(best[0])} | {mb(final)} | {final / best[0]:.2f} | "
                  f"{'never' if converged is None else f'{converged:.1f} s'} | {allowed:.0f} s | "
                  f"{len(late)} | {'met' if ok else 'missed'} |", flush=True)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait()


if __name__ == "__main__":
    main()
