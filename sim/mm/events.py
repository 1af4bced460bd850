"""The events the mm model emits (sim.engine.hooks): what oracles and race-window statistics see.

- AnonVmaAccess: an access to an anon_vma through a pointer that may be stale: its lock
  word, a refcount, its list, its freeing. `writes` names what the access writes through the
  pointer (None for a read); `held` is True once a spin_lock has been granted;
  `speculative` marks an access made only to validate the pointer.
- AnonVmaAllocated / AnonVmaFreed: an anon_vma's allocation begins (anon_vma_alloc), and
  ends (anon_vma_free of a live pointer).
- MigrationBegin / MigrationEnd: unmap_and_move starts with a page, and is over with it
  (the old page unlocked, or given up before it was locked).
- PteChange: a pte was written (set_pte_at) or cleared (pte_clear).
- VmBug: a kernel path met a BUG_ON-like condition (kernel paths report nothing themselves).
- PageMappedTest: a page_mapped() test that is all that proves a page's anon_vma live (no
  reference is held on it): 2.6.35's unmap_and_move before its atomic_inc, and
  page_lock_anon_vma before its spin_lock (`locked` False) and at 2.6.36's re-check under
  the lock (`locked` True).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from sim.mm.objects import AnonVmaPtr, MigrationContext, Mm, Page, Pte
from sim.engine.task import Task


class AnonVmaAccess(NamedTuple):
    task: Task
    ptr: AnonVmaPtr
    access: str             # e.g. "spin_lock", "atomic_inc(external_refcount)"
    via: str                # the kernel function that made it
    page: Page | None
    writes: str | None      # what is written through the pointer; None for a read
    held: bool = False      # spin_lock: the lock is ours now
    # made only to validate the pointer, under RCU (page_lock_anon_vma's lock before its
    # page_mapped() re-check, and the unlock when the re-check fails): SLAB_DESTROY_BY_RCU
    # makes that safe by design, so a stale one is no violation unless the pointer is used
    speculative: bool = False


class VmBug(NamedTuple):
    """A BUG_ON / VM_BUG_ON / bad_page condition a kernel path met (the model goes on; the
    invariants oracle reports it): what, on which page, and a key to count it once."""

    task: Task | None
    detail: dict[str, Any]
    key: Any = None


class AnonVmaAllocated(NamedTuple):
    task: Task
    ptr: AnonVmaPtr


class AnonVmaFreed(NamedTuple):
    task: Task
    ptr: AnonVmaPtr


class MigrationBegin(NamedTuple):
    task: Task
    mig: MigrationContext


class MigrationEnd(NamedTuple):
    task: Task
    mig: MigrationContext
    rc: int
    newpage: Page | None


class PteChange(NamedTuple):
    task: Task | None
    mm: Mm
    vpn: int
    old: Pte | None
    new: Pte | None


class PageMappedTest(NamedTuple):
    task: Task
    page: Page
    ptr: AnonVmaPtr | None   # page_anon_vma(page) as read with the test
    via: str
    mapped: bool
    locked: bool = False     # the re-check, made holding the anon_vma's lock
