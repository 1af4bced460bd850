"""include/asm-generic/tlb.h: the mmu_gather that batches pages freed by unmapping.

tlb_gather_mmu takes a per-CPU structure with get_cpu_var (preemption off) until
tlb_finish_mmu; the batched pages keep their reference until the batch is flushed
(FREE_PTE_NR on SMP, or tlb_finish_mmu), so a zapped page's count drops a little later than
its mapcount. On a machine with one CPU the gather is in "fast mode" (tlb->nr = ~0U:
`num_online_cpus() > 1 ? 0U : ~0U` in 2.6.33's tlb_gather_mmu) and tlb_remove_page frees each
page at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sim.mm.objects import Mm, Page
from sim.engine.task import Task
from sim.mm.page_alloc import put_page

if TYPE_CHECKING:
    from sim.mm.kernel import MmKernel

FREE_PTE_NR = 506


@dataclass(eq=False)
class MmuGather:
    mm: Mm
    fast: bool = False                  # one CPU online: pages are freed at once
    pages: list[Page] = field(default_factory=list)


def tlb_gather_mmu(k: "MmKernel", task: Task, mm: Mm) -> MmuGather:
    task.preempt_count += 1
    return MmuGather(mm, fast=k.cpus.n == 1)


def tlb_flush_mmu(k: "MmKernel", task: Task, tlb: MmuGather) -> None:
    pages, tlb.pages = tlb.pages, []
    for page in pages:
        put_page(k, task, page)


def tlb_remove_page(k: "MmKernel", task: Task, tlb: MmuGather, page: Page) -> None:
    if tlb.fast:
        put_page(k, task, page)
        return
    tlb.pages.append(page)
    if len(tlb.pages) >= FREE_PTE_NR:
        tlb_flush_mmu(k, task, tlb)


def tlb_finish_mmu(k: "MmKernel", task: Task, tlb: MmuGather) -> None:
    tlb_flush_mmu(k, task, tlb)
    task.preempt_count -= 1
