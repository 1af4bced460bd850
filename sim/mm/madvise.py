"""mm/madvise.c (2.6.33): sys_madvise's MADV_HWPOISON and MADV_SOFT_OFFLINE, which it hands to
madvise_hwpoison *before* taking current->mm->mmap_sem. No other behaviour is modelled
(MADV_MERGEABLE is the mm scenario's exec-time flag)."""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from sim.engine.kernel import kfunc
from sim.mm.objects import Mm
from sim.engine.task import Task
from sim.mm.gup import get_user_pages_fast
from sim.mm.memory_failure import MF_COUNT_INCREASED, __memory_failure, soft_offline_page

if TYPE_CHECKING:
    from sim.mm.kernel import MmKernel

Gen = Generator[Any, Any, Any]

EINVAL = -22
MADV_HWPOISON = 100
MADV_SOFT_OFFLINE = 101          # new in 2.6.33 (include/asm-generic/mman-common.h)


@kfunc
def madvise_hwpoison(k: "MmKernel", task: Task, mm: Mm, bhv: int, start: int,
                     end: int) -> Gen:
    """Per page: get_user_pages_fast, then soft_offline_page(p, MF_COUNT_INCREASED) (stop at
    the first failure) or __memory_failure(pfn, 0, MF_COUNT_INCREASED) (result ignored).
    The loop's own `int ret` shadows the function's `ret = 0`, so a soft offline failure
    breaks the loop and madvise returns 0; only a get_user_pages_fast failure is returned."""
    ret = 0
    # capable(CAP_SYS_ADMIN): the model's callers have it
    for addr in range(start, end):
        inner_ret, p = yield from get_user_pages_fast(k, task, mm, addr, False)
        if inner_ret != 1:
            return inner_ret
        if bhv == MADV_SOFT_OFFLINE:
            inner_ret = yield from soft_offline_page(k, task, p, MF_COUNT_INCREASED)
            if inner_ret:
                k.count(f"madvise soft offline failed {inner_ret}, returned {ret}")
                break
            continue
        yield from __memory_failure(k, task, p.pfn, 0, MF_COUNT_INCREASED)
    return ret


@kfunc
def sys_madvise(k: "MmKernel", task: Task, mm: Mm, start: int, len_in: int,
                behavior: int) -> Gen:
    """`mm` is current->mm (the calling thread's). Addresses are page numbers."""
    yield from k.step(task, k.costs.syscall)
    if behavior in (MADV_HWPOISON, MADV_SOFT_OFFLINE):
        return (yield from madvise_hwpoison(k, task, mm, behavior, start, start + len_in))
    return EINVAL
