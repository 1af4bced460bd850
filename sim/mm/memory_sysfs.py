"""drivers/base/memory.c (2.6.33, CONFIG_MEMORY_FAILURE): the files
/sys/devices/system/memory/soft_offline_page and hard_offline_page. Each takes a *physical
address* (Documentation/ABI/testing/sysfs-memory-page-offline), shifted to a pfn here, and
needs CAP_SYS_ADMIN (the model's daemons have it)."""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from sim.engine.kernel import kfunc
from sim.engine.task import Task
from sim.mm import ENXIO
from sim.mm.memory_failure import __memory_failure, soft_offline_page

if TYPE_CHECKING:
    from sim.mm.kernel import MmKernel

PAGE_SHIFT = 12


def pfn_valid(k: "MmKernel", pfn: int) -> bool:
    """The pfn has a struct page. The model creates struct pages when first allocated, so a
    pfn never allocated is invalid here (no actor writes one)."""
    return pfn in k.machine.pages


@kfunc
def store_soft_offline_page(k: "MmKernel", task: Task, addr: int
                            ) -> Generator[Any, Any, int]:
    """strict_strtoull, pfn = addr >> PAGE_SHIFT, pfn_valid, soft_offline_page(page, 0).
    Returns 0 for success (the kernel returns the byte count) or the error."""
    yield from k.step(task, k.costs.syscall)
    pfn = addr >> PAGE_SHIFT
    if not pfn_valid(k, pfn):
        return ENXIO
    return (yield from soft_offline_page(k, task, k.machine.pages[pfn], 0))


@kfunc
def store_hard_offline_page(k: "MmKernel", task: Task, addr: int
                            ) -> Generator[Any, Any, int]:
    """pfn = addr >> PAGE_SHIFT; __memory_failure(pfn, 0, 0) (which checks pfn_valid)."""
    yield from k.step(task, k.costs.syscall)
    return (yield from __memory_failure(k, task, addr >> PAGE_SHIFT, 0, 0))
