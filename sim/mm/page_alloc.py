"""mm/page_alloc.c and the page reference helpers of include/linux/mm.h.

Simplified buddy allocator: each memory block hands out the pages freed last first (LIFO),
then its never-used pages in pfn order; allocation keeps taking from one block while it has
free pages (pages of one process cluster, as pcp batches from the buddy lists do), then moves
to the online block with the most free pages. Pages in isolated (being offlined) or offline
blocks are never handed out (MIGRATE_ISOLATE). A struct page is created when its pfn is first
handed out, so memory size costs nothing until it is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim.mm.events import VmBug
from sim.mm.objects import Machine, Page
from sim.engine.task import Task

if TYPE_CHECKING:
    from sim.mm.kernel import MmKernel


def alloc_page(k: "MmKernel", task: Task) -> Page | None:
    """__rmqueue, then prep_new_page's check_new_page: a page that was poisoned while free
    (soft offline sets PG_hwpoison on the page it just migrated away from, and on a free
    page) fails the check, and bad_page ("Don't complain about poisoned pages") drops it for
    good [v2.6.33 mm/page_alloc.c bad_page, check_new_page]; take the next one."""
    while True:
        page = _rmqueue(k)
        if page is None or not page.hwpoison:
            break
        k.count("hwpoisoned pages dropped by the allocator")
    if page is None:
        return None
    page.free = False
    page.count = 1
    page.mapcount = -1
    page.mapping = None
    page.content = 0
    page.lru = False
    return page


def _rmqueue(k: "MmKernel") -> Page | None:
    m: Machine = k.machine
    blk = m.blocks[m.alloc_block]
    if blk.state != "online" or not blk.nr_free():
        best, most = None, 0
        for b in m.blocks:
            n = b.nr_free() if b.state == "online" else 0
            if n > most:
                best, most = b, n
        if best is None:
            k.count("alloc_page failed")
            return None
        m.alloc_block = best.bid
        blk = best
    if blk.free:
        page = m.pages[blk.free.pop()]
    else:
        pfn = blk.next_fresh
        blk.next_fresh += 1
        page = m.pages[pfn] = Page(pfn, blk.bid, k.page_lock(f"pfn {pfn}"))
    return page


def get_page(page: Page) -> None:
    page.count += 1


def get_page_unless_zero(page: Page) -> bool:
    if page.count == 0:
        return False
    page.count += 1
    return True


def put_page(k: "MmKernel", task: Task | None, page: Page) -> None:
    page.count -= 1
    if page.count == 0:
        __free_page(k, task, page)
    elif page.count < 0:
        k.hooks.emit(VmBug(task, {"what": "page refcount below zero", "page": page.label},
                           ("negative count", page.pfn)))


def __free_page(k: "MmKernel", task: Task | None, page: Page) -> None:
    """free_hot_cold_page: off the LRU (without zone->lru_lock in this model), mapping of an
    anon page cleared, back on its block's free list."""
    m: Machine = k.machine
    if page.mapcount >= 0:
        k.hooks.emit(VmBug(task, {"what": "freeing a page that is still mapped",
                                  "page": page.label, "mapcount": page.mapcount + 1},
                           ("free mapped", page.pfn)))
    page.lru = False
    page.mapping = None
    page.free = True
    if page.hwpoison:
        # free_pages_check -> bad_page: a poisoned page is not given back to the buddy lists
        k.count("hwpoisoned pages dropped by the allocator")
        return
    m.blocks[page.block].free.append(page.pfn)


def is_free_buddy_page(k: "MmKernel", page: Page) -> bool:
    """mm/page_alloc.c is_free_buddy_page: on the buddy free lists (here: its block's)."""
    return page.free and page.pfn in k.machine.blocks[page.block].free
