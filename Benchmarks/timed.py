#!/usr/bin/env python3
"""Run a command and print 'wall_seconds cpu_seconds peak_rss_kib' for it alone.

CPU and peak RSS come from wait4() on the child, so they are the client's own figures,
not the server's. With --pty the command runs on a 120x40 pseudo-terminal (for the
dashboard) whose output this script reads and discards.
"""
import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
import time

args = sys.argv[1:]
use_pty = bool(args) and args[0] == "--pty"
if use_pty:
    args = args[1:]

start = time.monotonic()
if use_pty:
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["TERM"] = "xterm-256color"
        os.execvp(args[0], args)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    while True:
        try:
            if not os.read(fd, 65536):
                break
        except OSError:
            break
else:
    pid = subprocess.Popen(args, stdout=subprocess.DEVNULL).pid
_, status, usage = os.wait4(pid, 0)
wall = time.monotonic() - start
code = os.waitstatus_to_exitcode(status)
if code != 0:
    sys.exit(f"timed.py: {' '.join(args)} exited with {code}")
print(f"{wall:.4f} {usage.ru_utime + usage.ru_stime:.4f} {usage.ru_maxrss}")
