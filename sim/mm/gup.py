"""arch/x86/mm/gup.c and mm/memory.c (2.6.33): get_user_pages_fast, get_user_pages.

The fast path walks the page tables with interrupts off and takes no mmap_sem: a present pte
(writable, for a write) gives its page with a reference. Anything else falls back to
get_user_pages under mmap_sem (read), which faults the page in. The fast walk is one step:
with interrupts off, a concurrent munmap's TLB-flush IPI cannot complete in the middle of it.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from sim.engine.kernel import kfunc
from sim.engine.locks import down_read, up_read
from sim.mm.objects import Mm, Page
from sim.engine.task import Task
from sim.mm import EFAULT, ksm
from sim.mm.memory import handle_mm_fault
from sim.mm.mmap import find_vma
from sim.mm.page_alloc import get_page
from sim.mm.pgtable import pte_present

if TYPE_CHECKING:
    from sim.mm.kernel import MmKernel

Gen = Generator[Any, Any, Any]
GUP_RETRIES = 8          # a bound on fault-and-retry (the kernel loops until it succeeds)


@kfunc
def get_user_pages(k: "MmKernel", task: Task, mm: Mm, start: int, write: bool) -> Gen:
    """__get_user_pages for one page (caller holds mmap_sem): -EFAULT without a vma or when
    the fault fails (VM_FAULT_HWPOISON included); else (1, page) with a reference."""
    vma = find_vma(mm, start)
    if vma is None:
        return EFAULT, None
    for _ in range(GUP_RETRIES):
        page = yield from ksm.follow_page(k, task, mm, start)      # FOLL_GET
        if page is not None:
            return 1, page
        ret = yield from handle_mm_fault(k, task, mm, vma, start, write)
        if ret:
            return EFAULT, None
    return EFAULT, None


@kfunc
def get_user_pages_fast(k: "MmKernel", task: Task, mm: Mm, start: int, write: bool) -> Gen:
    """One page: (1, page) with a reference, or (-errno, None)."""
    yield from k.step(task, k.costs.pte_op)                # local_irq_disable; gup_pte_range
    pte = mm.ptes.get(start)
    if pte_present(pte) and (pte.write or not write):
        page: Page = pte.page
        get_page(page)
        return 1, page
    yield from down_read(k, task, mm.mmap_sem)            # the slow path
    ret = yield from get_user_pages(k, task, mm, start, write)
    up_read(k, task, mm.mmap_sem)
    return ret
