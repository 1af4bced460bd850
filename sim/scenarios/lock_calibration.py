"""N simulated CPUs contending for one lock, to calibrate contention numbers against theory.

Each CPU repeatedly thinks for Exp(think_us) and then holds the lock for Exp(hold_us), until
`acquisitions` acquisitions have completed in total. With a spinlock or a mutex this is the
finite-source M/M/1//N queue; with an rw_semaphore (the first `readers` CPUs read, the rest
write) it is a small Markov chain. The result's `calibration` section puts the measured mean
wait (batch-means 95% CI, first batch dropped as warm-up) beside the exact value.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import Any

from simpy.events import Event

from sim.engine import locks
from sim.engine.kernel import Kernel
from sim.errors import InputError
from sim.params import Param
from sim.scenarios.queueing import finite_source_mm1, rwsem_ctmc
from sim.engine.task import Task

PARAMS: tuple[Param, ...] = (
    Param("think_us", float, 10.0, "mean of the exponential think time between holds", "us",
          1e-6, 1e9),
    Param("hold_us", float, 2.0, "mean of the exponential hold time", "us", 1e-6, 1e9),
    Param("acquisitions", int, 200_000, "total acquisitions, then the run stops", "", 1, 10**9),
    Param("lock", str, "spinlock", "which lock the CPUs contend for", "",
          choices=("spinlock", "mutex", "rwsem")),
    Param("readers", int, 0, "with lock=rwsem: how many of the CPUs take it for read", "",
          0, 512),
)


class Calibration:
    def __init__(self, k: Kernel, p: dict[str, Any]) -> None:
        self.k = k
        self.p = p
        self.left = p["acquisitions"]
        self.done = 0
        self.until_us = None
        kind = p["lock"]
        name = {"spinlock": "calibration_lock", "mutex": "calibration_mutex",
                "rwsem": "calibration_rwsem"}[kind]
        self.lock = {"spinlock": k.spinlock, "mutex": k.mutex, "rwsem": k.rwsem}[kind](name, "0")
        for c in range(p["cpus"]):
            read = kind == "rwsem" and c < p["readers"]
            k.spawn(f"cpu{c}", self.cpu_loop, read, kind="cpu")

    def cpu_loop(self, k: Kernel, task: Task, read: bool) -> Generator[Event, Any, None]:
        exp, spend = k.rng.workload.exponential, k.spend
        think, hold, lock, kind = self.p["think_us"], self.p["hold_us"], self.lock, self.p["lock"]
        total = self.p["acquisitions"]
        if kind == "spinlock":
            take, drop = locks.spin_lock, locks.spin_unlock
        elif kind == "mutex":
            take, drop = locks.mutex_lock, locks.mutex_unlock
        elif read:
            take, drop = locks.down_read, locks.up_read
        else:
            take, drop = locks.down_write, locks.up_write
        while self.left > 0:
            yield from spend(task, exp(think))
            if self.left <= 0:
                break
            self.left -= 1
            yield from take(k, task, lock)
            yield from spend(task, exp(hold))
            drop(k, task, lock)
            self.done += 1
            if self.done == total:
                k.stop = True

    def extra(self) -> dict[str, Any]:
        p = self.p
        n, think, hold = p["cpus"], p["think_us"], p["hold_us"]
        cls = self.lock.cls
        if p["lock"] == "rwsem":
            theory = rwsem_ctmc(p["readers"], n - p["readers"], think, hold)
            sides = [("write", cls.stat, theory["write_wait"], n - p["readers"])]
            assert cls.rstat is not None
            sides.append(("read", cls.rstat, theory["read_wait"], p["readers"]))
            model = "rw_semaphore CTMC (FIFO, writer fairness, leading readers granted together)"
        else:
            theory = finite_source_mm1(n, think, hold)
            sides = [("exclusive", cls.stat, theory["wait"], n)]
            model = "finite-source M/M/1//N"
        out: dict[str, Any] = {"model": model, "sides": []}
        for side, stat, expect, users in sides:
            if users == 0:
                continue
            mean, half, batches = stat.mean_wait_ci()
            out["sides"].append({
                "side": side, "class": stat.name, "acquisitions": stat.acquisitions,
                "theory_wait_us": round(expect, 6), "measured_wait_us": round(mean, 6),
                "ci95_half_width_us": None if math.isnan(half) else round(half, 6),
                "batches": batches,
                # no verdict without an interval (fewer than 2 batches after the warm-up)
                "within_ci": None if math.isnan(half) else abs(mean - expect) <= half,
            })
        return {"calibration": out}


def validate(p: dict[str, Any]) -> None:
    if p["readers"] and p["lock"] != "rwsem":
        raise InputError(f"parameter 'readers' applies only to lock = \"rwsem\" (lock is "
                         f"\"{p['lock']}\"); leave it 0")
    if p["readers"] > p["cpus"]:
        raise InputError(f"parameter 'readers' must be at most cpus ({p['cpus']}), "
                         f"got {p['readers']}")


def build(k: Kernel, p: dict[str, Any]) -> Calibration:
    return Calibration(k, p)
