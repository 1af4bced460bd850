"""mm/mempolicy.c: sys_migrate_pages -> do_migrate_pages, the NUMA path that holds the mm's
mmap_sem (read) and an mm_users reference throughout, and skips KSM pages (62b61f611eb)."""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from sim.engine.kernel import kfunc
from sim.engine.locks import down_read, spin_lock, spin_unlock, up_read
from sim.mm.objects import Mm, Page, Vma, page_mapcount
from sim.engine.task import Task
from sim.mm.migrate import ksm_page_migratable, migrate_pages, migrate_prep, new_page_any
from sim.mm.pgtable import pte_lockptr, pte_present, pte_tables
from sim.mm.vmscan import isolate_lru_page

if TYPE_CHECKING:
    from sim.mm.kernel import MmKernel

Gen = Generator[Any, Any, Any]


@kfunc
def migrate_page_add(k: "MmKernel", task: Task, page: Page, pagelist: list[Page],
                     move_all: bool) -> Gen:
    """Only pages mapped once, unless MPOL_MF_MOVE_ALL."""
    if move_all or page_mapcount(page) == 1:
        if (yield from isolate_lru_page(k, task, page)) == 0:
            pagelist.append(page)


@kfunc
def check_pte_range(k: "MmKernel", task: Task, vma: Vma, vpns: list[int], pagelist: list[Page],
                    move_all: bool) -> Gen:
    mm = vma.mm
    ptl = pte_lockptr(k, mm, vpns[0])
    yield from spin_lock(k, task, ptl)
    for vpn in vpns:
        yield from k.step(task, k.costs.pte_op, ptl)
        pte = mm.ptes.get(vpn)
        if not pte_present(pte):
            continue
        page = pte.page
        if not ksm_page_migratable(k, page, False):
            continue
        yield from migrate_page_add(k, task, page, pagelist, move_all)
    spin_unlock(k, task, ptl)


@kfunc
def check_range(k: "MmKernel", task: Task, mm: Mm, pagelist: list[Page], move_all: bool) -> Gen:
    for vma in list(mm.vmas):
        for vpns in pte_tables(mm, vma.start, vma.end):
            yield from check_pte_range(k, task, vma, vpns, pagelist, move_all)


@kfunc
def do_migrate_pages(k: "MmKernel", task: Task, mm: Mm, move_all: bool) -> Gen:
    yield from migrate_prep(k, task)
    yield from down_read(k, task, mm.mmap_sem)
    pagelist: list[Page] = []
    yield from check_range(k, task, mm, pagelist, move_all)
    err = 0
    if pagelist:
        err = yield from migrate_pages(k, task, pagelist, new_page_any, 0, False)
    up_read(k, task, mm.mmap_sem)
    return err
