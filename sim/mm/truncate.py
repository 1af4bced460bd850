"""mm/truncate.c (2.6.33): invalidate_inode_page, which soft offline and memory_failure try
before anything else: it drops a clean, unmapped page-cache page and nothing else."""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from sim.engine.kernel import kfunc
from sim.mm.objects import AddressSpace, Page, page_mapped, page_mapping
from sim.engine.task import Task
from sim.mm.vmscan import remove_mapping

if TYPE_CHECKING:
    from sim.mm.kernel import MmKernel


@kfunc
def invalidate_complete_page(k: "MmKernel", task: Task, mapping: AddressSpace, page: Page
                             ) -> Generator[Any, Any, int]:
    if page.mapping is not mapping:
        return 0
    # page_has_private: no buffer heads modelled
    return (yield from remove_mapping(k, task, mapping, page))


@kfunc
def invalidate_inode_page(k: "MmKernel", task: Task, page: Page) -> Generator[Any, Any, int]:
    """The page is locked. 1 if it was dropped from its page cache; 0 for an anon or KSM
    page (no page_mapping: no swap cache here), a dirty or writeback page (none here) or a
    mapped one."""
    mapping = page_mapping(page)
    if mapping is None:
        return 0
    if page_mapped(page):
        return 0
    return (yield from invalidate_complete_page(k, task, mapping, page))
