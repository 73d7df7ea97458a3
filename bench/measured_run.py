"""Runs commands for the benchmark and reports what each whole process cost, from a small process of its own.

Linux keeps a process's peak RSS across fork and exec, so a command started by the (larger)
benchmark driver would report at least the driver's size. Started first, this stays small:
stdlib only. One JSON request a line on stdin ({"command", "env", "log"}), one JSON answer a
line on stdout ({"wall", "cpu", "rss_mib", "returncode"}).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time


def main() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        with open(request["log"], "w") as output:
            started = time.perf_counter()
            process = subprocess.Popen(request["command"], env=request["env"], stdout=output, stderr=subprocess.STDOUT)
            _, status, usage = os.wait4(process.pid, 0)
            wall = time.perf_counter() - started
        answer = {
            "wall": wall,
            "cpu": usage.ru_utime + usage.ru_stime,
            "rss_mib": usage.ru_maxrss / 1024,
            "returncode": os.waitstatus_to_exitcode(status),
        }
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
