"""mm/memory_hotplug.c (2.6.33): offline_pages / do_migrate_range, and onlining.

Offlining finds pages by pfn and holds neither mmap_sem nor an mm reference: only the page
lock and the isolation reference, which do not stop the owner from unmapping or exiting.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from sim.engine.kernel import kfunc
from sim.mm.objects import Machine, MemBlock
from sim.engine.task import Task
from sim.mm import EAGAIN, EBUSY
from sim.mm.migrate import migrate_pages, migrate_prep, new_page_any
from sim.mm.vmscan import isolate_lru_page, putback_lru_page

if TYPE_CHECKING:
    from sim.mm.kernel import MmKernel

Gen = Generator[Any, Any, Any]

NR_OFFLINE_AT_ONCE_PAGES = 256
MEM_GOING_OFFLINE, MEM_OFFLINE, MEM_CANCEL_OFFLINE = "MEM_GOING_OFFLINE", "MEM_OFFLINE", \
    "MEM_CANCEL_OFFLINE"


def scan_lru_pages(k: "MmKernel", blk: MemBlock) -> int | None:
    pages = k.machine.pages
    for pfn in blk.pfns():
        if pages[pfn].lru:
            return pfn
    return None


@kfunc
def do_migrate_range(k: "MmKernel", task: Task, start_pfn: int, blk: MemBlock) -> Gen:
    """Isolate up to 256 LRU pages (isolate_lru_page without a reference of its own, against
    its documented precondition, as 2.6.33 does), then migrate_pages(..., offlining=1)."""
    m: Machine = k.machine
    source: list = []
    not_managed = 0
    for pfn in range(start_pfn, blk.next_fresh):    # pages never allocated are free
        if len(source) >= NR_OFFLINE_AT_ONCE_PAGES:
            break
        page = m.pages[pfn]
        if page.count == 0:
            continue
        ret = yield from isolate_lru_page(k, task, page)
        if ret == 0:
            source.append(page)
        elif page.count:
            not_managed += 1
    if not_managed:
        for page in source:
            yield from putback_lru_page(k, task, page)
        return EBUSY
    if not source:
        return 0
    return (yield from migrate_pages(k, task, source, new_page_any, 0, True))


@kfunc
def memory_notify(k: "MmKernel", task: Task, action: str, blk: MemBlock) -> Gen:
    """The hotplug memory notifier chain: the callbacks the variant's kernel registers."""
    for callback in k.variant.memory_notifiers:
        yield from callback(k, task, action, blk)


def check_pages_isolated(k: "MmKernel", blk: MemBlock) -> int:
    pages = k.machine.pages
    return -1 if any(not pages[pfn].free for pfn in blk.pfns()) else blk.npages


@kfunc
def offline_pages(k: "MmKernel", task: Task, blk: MemBlock, timeout_us: float) -> Gen:
    yield from k.step(task, k.costs.syscall)                    # lock_system_sleep etc.
    blk.state = "isolated"                                      # start_isolate_page_range
    yield from memory_notify(k, task, MEM_GOING_OFFLINE, blk)   # KSM: ksm_thread_mutex
    expire = k.env.now + timeout_us
    drain = False
    retry_max = 5
    ret = 0
    while True:
        if k.env.now > expire:
            ret = EAGAIN
            break
        if drain:
            yield from migrate_prep(k, task)                    # lru_add_drain_all
        pfn = scan_lru_pages(k, blk)
        if pfn is None:
            ret = 0
            break
        ret = yield from do_migrate_range(k, task, pfn, blk)
        if ret < 0:
            retry_max -= 1
            if retry_max == 0:
                break
        if ret:
            yield from k.yield_cpu(task)                        # yield()
        drain = True
    if ret == 0 and check_pages_isolated(k, blk) < 0:
        ret = EBUSY
    if ret:
        yield from memory_notify(k, task, MEM_CANCEL_OFFLINE, blk)
        blk.state = "online"                                    # undo_isolate_page_range
        k.count("offline failed")
        return ret
    blk.state = "offline"                                       # offline_isolated_pages
    yield from memory_notify(k, task, MEM_OFFLINE, blk)
    k.count("blocks offlined")
    return 0


@kfunc
def online_pages(k: "MmKernel", task: Task, blk: MemBlock) -> Gen:
    yield from k.step(task, k.costs.syscall)
    blk.state = "online"
    k.count("blocks onlined")
