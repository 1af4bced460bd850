"""mm/vmscan.c: taking pages off the LRU for migration, and putting them back."""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from sim.engine.kernel import kfunc
from sim.engine.locks import spin_lock, spin_unlock
from sim.mm.objects import Machine, Page
from sim.engine.task import Task
from sim.mm import EBUSY
from sim.mm.page_alloc import get_page, put_page

if TYPE_CHECKING:
    from sim.mm.kernel import MmKernel


@kfunc
def isolate_lru_page(k: "MmKernel", task: Task, page: Page) -> Generator[Any, Any, int]:
    """Clear PG_lru under zone->lru_lock and take a reference; -EBUSY if not on the LRU."""
    m: Machine = k.machine
    yield from spin_lock(k, task, m.lru_lock)
    yield from k.step(task, k.costs.lru_op, page)
    ret = EBUSY
    if page.lru and page.count > 0:
        page.lru = False
        get_page(page)
        ret = 0
    spin_unlock(k, task, m.lru_lock)
    return ret


@kfunc
def putback_lru_page(k: "MmKernel", task: Task, page: Page) -> Generator[Any, Any, None]:
    """Back on the LRU, then drop the isolation reference (a migrated old page is freed)."""
    m: Machine = k.machine
    yield from spin_lock(k, task, m.lru_lock)
    yield from k.step(task, k.costs.lru_op, page)
    page.lru = True
    spin_unlock(k, task, m.lru_lock)
    put_page(k, task, page)


def lru_cache_add(page: Page) -> None:
    """New pages go straight onto the LRU (the per-CPU pagevec is not modelled)."""
    page.lru = True


@kfunc
def remove_mapping(k: "MmKernel", task: Task, mapping: Any, page: Page
                   ) -> Generator[Any, Any, int]:
    """__remove_mapping under mapping->tree_lock: page_freeze_refs(page, 2) (the page cache's
    reference and the caller's) or give up; __remove_from_page_cache; then
    page_unfreeze_refs(page, 1): the caller's reference is the only one left."""
    yield from spin_lock(k, task, mapping.tree_lock)
    yield from k.step(task, k.costs.pte_op, mapping.tree_lock)
    if page.count != 2 or mapping.pages.get(page.index) is not page:
        spin_unlock(k, task, mapping.tree_lock)
        return 0
    del mapping.pages[page.index]
    page.mapping = None
    page.count = 1
    spin_unlock(k, task, mapping.tree_lock)
    return 1
