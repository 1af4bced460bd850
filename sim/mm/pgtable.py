"""Page-table entries and split pte locks (include/asm-generic/pgtable.h, swapops.h).

A pte is a tuple (PRESENT, page, write) or (MIGRATION, old_page, write, tag); an empty pte
is absent from mm.ptes. The tag names the unmap_and_move call that installed the entry (copied
along by fork): shadow state for the leak oracle, so an entry leaked by one migration is
reported once, not again by every later migration of the same (reused) pfn. Every write goes
through set_pte_at / pte_clear, which also keep a shadow count of the migration entries
naming each page (for the leak oracle; not kernel state). There is one pte lock per page-table
page (PTES_PER_TABLE ptes), as with split ptlocks.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from ..locks import SpinLock, spin_lock
from ..objects import MIGRATION, PRESENT, PTES_PER_TABLE, Mm, Page

if TYPE_CHECKING:
    from ..engine import Kernel


def pte_lockptr(k: "Kernel", mm: Mm, vpn: int) -> SpinLock:
    t = vpn // PTES_PER_TABLE
    lock = mm.ptls.get(t)
    if lock is None:
        lock = mm.ptls[t] = k.spinlock("&page->ptl", f"ptl {mm.name}:{t}")
    return lock


def pte_offset_map_lock(k: "Kernel", task: Any, mm: Mm, vpn: int
                        ) -> Generator[Any, Any, SpinLock]:
    """Lock the pte's page-table lock and read the pte (one pte step): returns the lock."""
    ptl = pte_lockptr(k, mm, vpn)
    yield from spin_lock(k, task, ptl)
    yield from k.step(task, k.costs.pte_op, ptl)
    return ptl


def set_pte_at(mm: Mm, vpn: int, pte: tuple) -> None:
    old = mm.ptes.get(vpn)
    if old is not None and old[0] == MIGRATION:
        old[1].mig_entries -= 1
    if pte[0] == MIGRATION:
        pte[1].mig_entries += 1
    mm.ptes[vpn] = pte


def pte_clear(mm: Mm, vpn: int) -> tuple | None:
    old = mm.ptes.pop(vpn, None)
    if old is not None and old[0] == MIGRATION:
        old[1].mig_entries -= 1
    return old


def mk_pte(page: Page, write: bool) -> tuple[int, Page, bool]:
    return (PRESENT, page, write)


def make_migration_entry(page: Page, write: bool, tag: int = 0) -> tuple:
    return (MIGRATION, page, write, tag)


def pte_present(pte: Any) -> bool:
    return pte is not None and pte[0] == PRESENT


def is_migration_entry(pte: Any) -> bool:
    return pte is not None and pte[0] == MIGRATION
