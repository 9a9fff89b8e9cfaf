#!/usr/bin/env python3
"""The multi-conn matrix of the qemu-devel cover letter "[PATCH nbd 0/4] Enable
multi-conn NBD" (March 2023), run on this machine: qemu-img convert and nbdcopy at 1, 2
and 4 connections, and nbdtop at 1, 2, 4 and with its defaults (auto), on each server.

Like the letter: 4 runs of each, the first dropped, the mean of the other 3; a row whose
runs spread (max - min) by more than 10% of the mean is flagged with "!". The markdown
table has the letter's columns (server, client, multi-conn, seconds, % better than one
connection) plus nbdtop's speed ratio to nbdcopy at the same count (auto: to nbdcopy's
default, 4 connections capped at the CPU count), and client CPU seconds
and peak RSS (from wait4 on the client alone).

usage: Benchmarks/seed.py NBDTOP_BIN     env: SIZE (bytes, default 1 GiB), RUNS (default 4),
       SERVERS (names to run, default all: integrity curl-local curl-file file qemu-file null qemu-null)
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

BIN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "../.build/release/nbdtop")
SIZE = int(os.environ.get("SIZE", str(1 << 30)))
RUNS = int(os.environ.get("RUNS", "4"))
SERVERS = os.environ.get("SERVERS", "integrity curl-local curl-file file qemu-file null qemu-null").split()
COUNTS = [1, 2, 4]

work = tempfile.mkdtemp(prefix="nbdtop-seed.")
os.chmod(work, 0o700)
children = []


def timed(command):
    """(wall seconds, client CPU seconds, peak RSS KiB) of one run; raises on failure."""
    start = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.monotonic() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {process.stderr.read().decode()[-500:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def wait_for(path):
    for _ in range(400):
        if os.path.exists(path):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{path} never appeared")


def nbdkit(name, *arguments):
    socket, pid = f"{work}/{name}.sock", f"{work}/{name}.pid"
    for stale in (socket, pid):  # a server before this one may have left them
        if os.path.exists(stale):
            os.remove(stale)
    process = subprocess.Popen(["nbdkit", "-f", "--exit-with-parent", "-U", socket, "-P", pid, *arguments])
    children.append(process)
    wait_for(pid)
    wait_for(socket)
    return process, f"nbd+unix:///?socket={socket}"


def qemu_nbd(name, *arguments):
    socket = f"{work}/{name}.sock"
    process = subprocess.Popen(["qemu-nbd", "-t", "-e", "8", "-k", socket, *arguments])
    children.append(process)
    wait_for(socket)
    return process, f"nbd+unix:///?socket={socket}"


def nginx():
    """nginx on loopback serving the image file; returns the process and the file's URL."""
    port = 18000 + os.getpid() % 1000
    config = f"{work}/nginx.conf"
    with open(config, "w") as out:
        # Workers run as root too: the image is in a folder only its owner may read.
        out.write(f"""daemon off; user root; pid {work}/nginx.pid; error_log {work}/nginx.err;
events {{}}
http {{ access_log off; sendfile on;
  server {{ listen 127.0.0.1:{port}; root {work}; }} }}
""")
    process = subprocess.Popen(["nginx", "-c", config, "-p", work])
    children.append(process)
    wait_for(f"{work}/nginx.pid")
    return process, f"http://127.0.0.1:{port}/disk.img"


def make_image():
    path = f"{work}/disk.img"
    if not os.path.exists(path):
        with open("/dev/urandom", "rb") as random, open(path, "wb") as out:
            left = SIZE
            while left:
                chunk = random.read(min(left, 16 << 20))
                out.write(chunk)
                left -= len(chunk)
    with open(path, "rb") as image:  # into the page cache
        while image.read(16 << 20):
            pass
    return path


def start(server):
    """(label, processes, source URI, destination for nbdcopy/nbdtop, qemu-img target arguments)"""
    null_target = ["--target-image-opts", f"driver=null-co,size={SIZE}"]
    if server == "integrity":
        process, uri = nbdkit("sr", "sparse-random", str(SIZE), "seed=1", "percent=50", "runlength=4194304")
        return "nbdkit sparse-random (integrity, into itself)", [process], uri, uri, ["-O", "raw", uri]
    if server == "curl-local":
        image = make_image()
        web, url = nginx()
        process, uri = nbdkit("curl", "-r", "--filter=multi-conn", "curl", url, "multi-conn-mode=unsafe")
        return "nbdkit curl, nginx on loopback (multi-conn forced)", [web, process], uri, "null:", null_target
    if server == "curl-file":
        image = make_image()
        process, uri = nbdkit("curl", "-r", "curl", f"file://{image}")
        return "nbdkit curl, file:// URI", [process], uri, "null:", null_target
    if server == "file":
        image = make_image()
        process, uri = nbdkit("file", "-r", "file", image)
        return "nbdkit file", [process], uri, "null:", null_target
    if server == "qemu-file":
        image = make_image()
        process, uri = qemu_nbd("qf", "-r", "-f", "raw", image)
        return "qemu-nbd file (-e 8)", [process], uri, "null:", null_target
    if server == "null":
        process, uri = nbdkit("null", "--filter=noextents", "null", str(SIZE))
        return "nbdkit null + noextents", [process], uri, "null:", null_target
    if server == "qemu-null":
        process, uri = qemu_nbd("qn", "-r", "--image-opts",
                                f"driver=raw,file.driver=null-co,file.size={SIZE},file.read-zeroes=on")
        return "qemu-nbd null-co", [process], uri, "null:", null_target
    raise SystemExit(f"unknown server {server}")


def multi_conn(uri):
    return subprocess.run(["nbdinfo", "--can", "multi-conn", uri]).returncode == 0


def clients(uri, destination, qemu_target):
    rows = [("qemu-img", "-", ["qemu-img", "convert", "-n", "-f", "raw", uri, *qemu_target])]
    rows += [("nbdcopy", str(n), ["nbdcopy", "-C", str(n), "-T", str(n), uri, destination]) for n in COUNTS]
    rows += [("nbdtop", str(n), [BIN, "copy", "--no-tui", "--no-control", "-C", str(n), uri, destination])
             for n in COUNTS]
    rows += [("nbdtop", "auto", [BIN, "copy", "--no-tui", "--no-control", uri, destination])]
    return rows


def main():
    table = []
    for server in SERVERS:
        label, processes, uri, destination, qemu_target = start(server)
        advertised = "yes" if multi_conn(uri) else "no"
        rounds = {}
        commands = clients(uri, destination, qemu_target)
        for run in range(RUNS):  # interleaved: every client once per round
            for client, count, command in commands:
                result = timed(command)
                if run > 0:
                    rounds.setdefault((client, count), []).append(result)
        for process in processes:
            process.send_signal(signal.SIGTERM)
            process.wait()
        means = {key: [sum(r[i] for r in results) / len(results) for i in range(2)] + [max(r[2] for r in results)]
                 for key, results in rounds.items()}
        for client, count, _ in commands:
            results = rounds[(client, count)]
            walls = [r[0] for r in results]
            wall, cpu, rss = means[(client, count)]
            spread = (max(walls) - min(walls)) / wall > 0.10
            one = means.get((client, "1"))
            better = f"{(one[0] / wall - 1) * 100:+.0f}%" if one and count not in ("1", "-") else ""
            versus = ""
            if client == "nbdtop":
                # auto against nbdcopy's default: 4 connections capped at the CPU count.
                peer = means.get(("nbdcopy", count if count != "auto" else str(min(4, os.cpu_count() or 1))))
                versus = f"{peer[0] / wall:.2f}" if peer else ""
            table.append((label, client, count, advertised, f"{wall:.3f}{' !' if spread else ''}", better, versus,
                          f"{cpu:.2f}", f"{rss / 1024:.0f}"))
            print(" | ".join(table[-1]), file=sys.stderr, flush=True)
    print(f"{SIZE >> 20} MiB per copy, {RUNS} runs each, first dropped, mean of the rest; ! = runs spread over 10%.\n")
    print("| server | client | connections | multi-conn | seconds | % better than 1 conn | x nbdcopy (same count) | client CPU s | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in table:
        print("| " + " | ".join(row) + " |")


try:
    main()
finally:
    for child in children:
        if child.poll() is None:
            child.kill()
    shutil.rmtree(work, ignore_errors=True)
