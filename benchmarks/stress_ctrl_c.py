#!/usr/bin/env python3
"""How reliably Ctrl-C stops a search: SIGINT a command at random moments, many times.

Each trial starts `run.py <command> ...` in a fresh process, waits a random time
(uniform in --after, seeded), sends SIGINT to that process only (`kill -INT`, as the tests
do; with --jobs it passes the signal on to its workers), and checks what a user must see:
exit code 130, and no traceback and no "Exception ignored" on stderr. Prints each bad trial
and the count. Each trial runs in a fresh temporary directory (its default outputs land
there), removed afterwards.

    python benchmarks/stress_ctrl_c.py [--trials 40] [--after 1.5,4] [--seed 1] \
        [-- explore hotremove-exit-mini --jobs 2 --max-preemptions 3]
"""

from __future__ import annotations

import argparse
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ["explore", "hotremove-exit-mini", "--jobs", "2", "--max-preemptions", "3"]


def trial(cmd: list[str], after_s: float) -> tuple[bool, int, str]:
    with tempfile.TemporaryDirectory() as d:
        proc = subprocess.Popen([sys.executable, str(ROOT / "run.py"), *cmd],
                                cwd=d, text=True,        # its default outputs land in d
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(after_s)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=300)
    ok = proc.returncode == 130 and "Traceback" not in err and "Exception ignored" not in err
    return ok, proc.returncode, err


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--after", default="1.5,4", help="seconds before SIGINT: LOW,HIGH")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("cmd", nargs="*", help="run.py arguments (after --); default: "
                    + " ".join(DEFAULT))
    a = ap.parse_args()
    try:
        low, high = (float(x) for x in a.after.split(","))
    except ValueError:
        ap.error(f"--after must be LOW,HIGH in seconds, got {a.after!r}")
    if a.trials < 1 or not 0 <= low <= high:
        ap.error("--trials must be >= 1 and --after 0 <= LOW <= HIGH")
    rnd = random.Random(a.seed)
    cmd = a.cmd or DEFAULT
    bad = 0
    for i in range(a.trials):
        ok, rc, err = trial(cmd, rnd.uniform(low, high))
        if not ok:
            bad += 1
            lines = err.strip().splitlines()
            tail = " | ".join(lines[:3] + ["..."] + lines[-3:] if len(lines) > 6 else lines)
            print(f"trial {i}: exit {rc}: {tail}", flush=True)
    print(f"{bad}/{a.trials} trials mishandled Ctrl-C ({' '.join(cmd)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
