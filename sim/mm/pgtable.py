"""Page-table entries and split pte locks (include/asm-generic/pgtable.h, swapops.h).

A pte is a Pte (sim.mm.objects): present, or a migration entry naming the old page; an empty
pte is absent from mm.ptes. Every write goes through set_pte_at / pte_clear, which emit a
PteChange event. There is one pte lock per page-table page (PTES_PER_TABLE ptes), as with
split ptlocks.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from sim.engine.locks import SpinLock, spin_lock
from sim.mm.objects import HWPOISON, MIGRATION, PRESENT, PTES_PER_TABLE, Mm, Page, Pte
from sim.engine.task import Task
from sim.mm.events import PteChange

if TYPE_CHECKING:
    from sim.mm.kernel import MmKernel

# Ptes and PteChanges are built as tuple.__new__(cls, fields) would be by Pte(...): the same
# object, without the Python frame of a NamedTuple's __new__ (tens of thousands per run)
_new = tuple.__new__


def pte_lockptr(k: "MmKernel", mm: Mm, vpn: int) -> SpinLock:
    t = vpn // PTES_PER_TABLE
    lock = mm.ptls.get(t)
    if lock is None:
        lock = mm.ptls[t] = k.spinlock("&page->ptl", f"ptl {mm.name}:{t}")
    return lock


def pte_offset_map_lock(k: "MmKernel", task: Any, mm: Mm, vpn: int
                        ) -> Generator[Any, Any, SpinLock]:
    """Lock the pte's page-table lock and read the pte (one pte step): returns the lock."""
    ptl = pte_lockptr(k, mm, vpn)
    yield from spin_lock(k, task, ptl)
    yield from k.step(task, k.costs.pte_op, ptl)
    return ptl


def set_pte_at(k: "MmKernel", task: Task | None, mm: Mm, vpn: int, pte: Pte) -> None:
    old = mm.ptes.get(vpn)
    mm.ptes[vpn] = pte
    k.hooks.emit(_new(PteChange, (task, mm, vpn, old, pte)))


def pte_clear(k: "MmKernel", task: Task | None, mm: Mm, vpn: int) -> Pte | None:
    old = mm.ptes.pop(vpn, None)
    k.hooks.emit(_new(PteChange, (task, mm, vpn, old, None)))
    return old


def mk_pte(page: Page, write: bool) -> Pte:
    return _new(Pte, (PRESENT, page, write, 0))


def make_migration_entry(page: Page, write: bool, tag: int = 0) -> Pte:
    return _new(Pte, (MIGRATION, page, write, tag))


def make_hwpoison_entry(page: Page) -> Pte:
    """include/linux/swapops.h make_hwpoison_entry: a non-present swap-type entry naming the
    poisoned page; a fault on it is VM_FAULT_HWPOISON, zap just clears it, fork copies it."""
    return _new(Pte, (HWPOISON, page, False, 0))


def is_hwpoison_entry(pte: Pte | None) -> bool:
    return pte is not None and pte.kind == HWPOISON


def pte_present(pte: Pte | None) -> bool:
    return pte is not None and pte.kind == PRESENT


def is_migration_entry(pte: Pte | None) -> bool:
    return pte is not None and pte.kind == MIGRATION


def pte_tables(mm: Mm, start: int, end: int) -> list[list[int]]:
    """The addresses in [start, end) with a pte, in order, one list per page-table page
    (the pmd-by-pmd loop of copy_page_range, zap and check_range)."""
    out: list[list[int]] = []
    table = -1
    for vpn in sorted(v for v in mm.ptes if start <= v < end):
        t = vpn // PTES_PER_TABLE
        if t != table:
            out.append([])
            table = t
        out[-1].append(vpn)
    return out
