#!/usr/bin/env python3
"""Run a command and print 'wall_seconds cpu_seconds peak_rss_kib' for it alone.

CPU and peak RSS come from wait4() on the child, so they are the client's own figures,
not the server's.
"""
import os
import subprocess
import sys
import time

start = time.monotonic()
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
wall = time.monotonic() - start
code = os.waitstatus_to_exitcode(status)
if code != 0:
    sys.exit(f"timed.py: {' '.join(sys.argv[1:])} exited with {code}")
print(f"{wall:.4f} {usage.ru_utime + usage.ru_stime:.4f} {usage.ru_maxrss}")
