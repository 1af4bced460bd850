"""mm/memcontrol.c (2.6.33), only what migration does: mem_cgroup_prepare_migration.

unmap_and_move charges the new page to the old page's memory cgroup after lock_page and
before rcu_read_lock. It charges with GFP_KERNEL (__mem_cgroup_try_charge): a cgroup at its
limit reclaims (mem_cgroup_hierarchical_reclaim -> try_to_free_mem_cgroup_pages) and can
sleep, which widens the window in which the page's anon_vma can be freed with nothing
protecting it. The model has no memcg accounting: with probability `memcg_reclaim_prob` a
charge reclaims, sleeping for an exponential time of mean `memcg_reclaim_us`.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from sim.engine.kernel import kfunc
from sim.mm.objects import Page
from sim.engine.task import Task

if TYPE_CHECKING:
    from sim.mm.kernel import MmKernel


@kfunc
def mem_cgroup_prepare_migration(k: "MmKernel", task: Task, page: Page
                                 ) -> Generator[Any, Any, None]:
    yield from k.step(task, k.costs.syscall, page)
    rng = k.rng.kernel
    if rng.chance(k.params["memcg_reclaim_prob"]):
        yield from mem_cgroup_hierarchical_reclaim(k, task)


@kfunc
def mem_cgroup_hierarchical_reclaim(k: "MmKernel", task: Task) -> Generator[Any, Any, None]:
    """Reclaim from the cgroup until the charge fits: here, a sleep (I/O, congestion)."""
    k.count("memcg reclaims in migration")
    yield from k.sleep(task, k.rng.kernel.exponential(k.params["memcg_reclaim_us"]))
