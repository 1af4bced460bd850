import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sim.engine.kernel import Kernel  # noqa: E402
from sim.params import KERNEL_PARAMS  # noqa: E402


def make_kernel(seed: int = 0, **over: Any) -> Kernel:
    """A kernel with free lock ops, no wake-up latency and no wake-up preemption, so unit
    tests can pin exact times; keyword names use __ for dots (costs__lock_op)."""
    p = {prm.name: prm.default for prm in KERNEL_PARAMS}
    p.update({"costs.lock_op": 0.0, "costs.context_switch": 0.0, "wakeup_preempt_prob": 0.0})
    p.update({k.replace("__", "."): v for k, v in over.items()})
    return Kernel(p, seed=seed)


def wait_cpu_seconds(pid: int, seconds: float, workers: bool = False,
                     timeout: float = 120.0) -> None:
    """Until process `pid` (with `workers`: its children, its pool's workers, between them)
    has used `seconds` of CPU, utime + stime from /proc/PID/stat: a point well into its
    work however loaded the machine. Without /proc/PID/task/PID/children, 3x the time."""
    listing = f"/proc/{pid}/task/{pid}/children"
    if workers and not os.path.exists(listing):
        time.sleep(3 * seconds)
        return
    tick = os.sysconf("SC_CLK_TCK")
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        used = 0
        try:
            for p in open(listing).read().split() if workers else [pid]:
                fields = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
                used += int(fields[11]) + int(fields[12])
        except OSError:                          # a worker just ended: look again
            used = 0
        if used / tick >= seconds:
            return
        time.sleep(0.1)


@pytest.fixture
def kernel():
    return make_kernel


@pytest.fixture
def root() -> Path:
    return ROOT


# Hypothesis: the same examples on every run (CI must be reproducible); set
# HYPOTHESIS_PROFILE=explore to search with fresh random examples.
from hypothesis import settings  # noqa: E402

settings.register_profile("default", derandomize=True)
settings.register_profile("explore", derandomize=False, max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def run_controlled(strategy: Any, program: Any, seed: int = 0, cpus: int | None = None
                   ) -> tuple[Kernel, list]:
    """One controlled execution of `program(k, log)` (which spawns tasks) under `strategy`,
    with the kernel's default parameters; returns (kernel, log)."""
    p = {prm.name: prm.default for prm in KERNEL_PARAMS}
    if cpus is not None:
        p["cpus"] = cpus
    k = Kernel(p, seed=seed, strategy=strategy)
    log: list = []
    program(k, log)
    k.run(until=1e6)
    strategy.finished()
    return k, log


def main_in_process(argv: list[str], capsys: Any) -> tuple[Any, str, str]:
    """Run the command line in this process: (exit code, stdout, stderr)."""
    import sim.cli
    try:
        rc = sim.cli.main(argv)
    except SystemExit as e:
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err
