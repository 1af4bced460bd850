"""A small fixed program for finding, replaying, shrinking and exhaustively exploring races:
a few processes that each map and write a few anon pages, compute a while and exit, one
migrator that migrates their pages once (memory hot-remove offlining the first memory block,
or the NUMA path holding the first process's mm), and optionally a process that starts later
and may reuse a freed anon_vma. No ksmd, no forks, no loops, no sleeps: every actor ends, so
every schedule ends, and in controlled mode every ordering is a choice (waiting here is CPU
work, a step, not a sleep, which would order the actors by time instead).

With one CPU and one anon_vma per slab page, the first process's anon_vma has a slab page of
its own, which is no longer the CPU's current slab once another process has allocated on that
CPU: when it is freed, the slab page is discarded and returns to the page allocator at the end
of a grace period. In controlled mode task i runs on CPU i mod cpus (P0, P1, ..., then R, then
the migrator), a task with preemption off keeps its CPU, and the end of a grace period is a
choice like any step (sim.engine.sched.controlled).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Generator
from typing import Any

from sim.mm.checks import install as install_oracles
from sim.errors import InputError
from sim.mm.exit import do_exit
from sim.mm.fault import do_page_fault
from sim.mm.fork import get_task_mm, mmput
from sim.mm.kernel import MmKernel
from sim.mm.memory_hotplug import offline_pages
from sim.mm.mempolicy import do_migrate_pages
from sim.mm.mmap import mm_alloc, mmap_region
from sim.params import Param
from sim.engine.task import Task
from sim.mm.scenarios.mm import HEAP_START, PARAMS as MM_PARAMS, Proc, build_machine

PARAMS: tuple[Param, ...] = (
    Param("migration", str, "hotremove", "who migrates: memory hot-remove (offline_pages of "
          "the first block, no mmap_sem) or the NUMA path (do_migrate_pages on the first "
          "process's mm, mmap_sem and an mm reference held)", "", choices=("hotremove", "numa")),
    Param("processes", int, 1, "processes that map, write and exit", "", 1, 8),
    Param("pages_per_process", int, 1, "anon pages each process maps and writes", "pages", 1,
          64),
    Param("process_life_us", float, 0.0, "CPU work of each process between writing its "
          "pages and exiting (one step)", "us", 0, 1e9),
    Param("reuser", bool, True, "one more process, after `reuser_delay_us` of CPU work, whose "
          "anon_vma may reuse a freed one"),
    Param("reuser_delay_us", float, 0.0, "CPU work before the reuser starts", "us", 0, 1e9),
    Param("migrator_delay_us", float, 0.0, "CPU work before the migrator starts", "us", 0,
          1e9),
    Param("memory_blocks", int, 4, "memory blocks", "", 2, 64),
    Param("block_pages", int, 64, "pages per memory block", "pages", 8, 4096),
    Param("anon_vma_per_slab", int, 1, "anon_vma objects per slab page", "", 1, 4096),
    Param("memcg_reclaim_prob", float, 0.0, "as in the mm scenario: the chance that "
          "mem_cgroup_prepare_migration reclaims and sleeps", "", 0, 1),
    Param("memcg_reclaim_us", float, 200.0, "mean sleep of a reclaiming memcg charge", "us",
          0, 1e7),
    Param("invariant_every_events", int, 0, "whole-machine invariant checks every N events "
          "(0: never)", "", 0, 10**12),
    # the step costs the mini's paths use, as the mm scenario documents them
    *(prm for prm in MM_PARAMS if prm.name in (
        "costs.page_copy", "costs.pte_op", "costs.vma_visit", "costs.page_alloc",
        "costs.anon_vma_alloc", "costs.lru_op", "costs.tlb_flush", "costs.fault_entry",
        "costs.syscall", "costs.migrate_prep", "costs.vma_copy", "costs.mm_setup")),
)

# What shrinking may make smaller, smallest first.
SHRINK: dict[str, Callable[[Any], list[Any]]] = {
    "processes": lambda v: list(range(1, v)),
    "pages_per_process": lambda v: list(range(1, v)),
    "reuser": lambda v: [False] if v else [],
    "memory_blocks": lambda v: [2] if v > 2 else [],
}


def validate(p: dict[str, Any]) -> None:
    need = p["processes"] * (p["pages_per_process"] + 1) + 2
    if need > (p["memory_blocks"] - 1) * p["block_pages"]:
        raise InputError(f"memory too small: the processes need {need} pages outside one "
                         "block")


class MiniModel:
    def __init__(self, k: MmKernel, p: dict[str, Any]) -> None:
        self.k = k
        self.p = p
        self.until_us = p["duration_ms"] * 1000.0
        self._unique = 0
        self.m = build_machine(k, p, self.new_content)
        install_oracles(k, p)
        self.procs = [Proc(i + 1, f"P{i}", i, False) for i in range(p["processes"])]
        life = p["process_life_us"]
        for proc in self.procs:
            proc.task = k.spawn(proc.name, self.process, proc, p["pages_per_process"], 0.0,
                                life, kind="process")
        if p["reuser"]:
            r = Proc(len(self.procs) + 1, "R", -1, False)
            r.task = k.spawn("R", self.process, r, 1, p["reuser_delay_us"], life,
                             kind="process")
        if p["migration"] == "hotremove":
            k.spawn("hotremove", self.hotremove, kind="hotremove")
        else:
            k.spawn("numad", self.numad, kind="numa")

    def new_content(self, mm: Any = None, vpn: int = 0) -> int:
        self._unique += 1
        return self._unique

    def process(self, k: MmKernel, task: Task, proc: Proc, pages: int, delay: float,
                life: float) -> Generator[Any, Any, None]:
        """exec: an anon heap of `pages` pages, each written once; compute; exit."""
        yield from k.step(task, delay)
        yield from k.step(task, k.costs.mm_setup)
        mm = proc.mm = mm_alloc(k, proc.name, proc)
        proc.heap = yield from mmap_region(k, task, mm, HEAP_START, pages)
        for vpn in range(HEAP_START, HEAP_START + pages):
            yield from do_page_fault(k, task, mm, vpn, True)
        yield from k.step(task, life)
        yield from do_exit(k, task, proc)

    def hotremove(self, k: MmKernel, task: Task) -> Generator[Any, Any, None]:
        """echo offline > memory0/state, once."""
        yield from k.step(task, self.p["migrator_delay_us"])
        yield from offline_pages(k, task, self.m.blocks[0], 120e6)

    def numad(self, k: MmKernel, task: Task) -> Generator[Any, Any, None]:
        """sys_migrate_pages(P0), once."""
        yield from k.step(task, self.p["migrator_delay_us"])
        mm = get_task_mm(self.procs[0])
        if mm is None:
            return
        yield from do_migrate_pages(k, task, mm, True)
        yield from mmput(k, task, mm)

    def digest(self) -> str:
        """The machine's end state, for counting distinct terminal states of a search."""
        m = self.m
        parts = [sorted((mm.name, v, p.kind, p.page.pfn) for mm in m.mms
                        for v, p in mm.ptes.items()),
                 sorted((pg.pfn, pg.free, pg.mapcount, pg.count) for pg in m.pages.values()),
                 sorted((a.oid, a.gen, a.live) for a in m.anon_vmas),
                 sorted((s.sid, s.released) for s in m.slab_pages),
                 sorted(self.k.violations.counts.items())]
        return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]

    def extra(self) -> dict[str, Any]:
        return {"mm": {"pages_in_use": sum(1 for pg in self.m.pages.values() if not pg.free),
                       "anon_vma_slab_pages_released": self.m.slab_pages_released,
                       "rcu_grace_periods": self.k.rcu.completed,
                       "digest": self.digest()}}


def build(k: MmKernel, p: dict[str, Any]) -> MiniModel:
    return MiniModel(k, p)
