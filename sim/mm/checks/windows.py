"""Race-window measurement for the page_lock_anon_vma race (`windows.migration_anon_vma`).

Every unmap_and_move of an anon (not KSM) page opens a window when it starts with the page:
from then on it holds page->mapping's anon_vma pointer and nothing proves that anon_vma live
until remove_migration_ptes' walk locks it (rmap_walk_anon, or before e9995ef978a
remove_anon_migration_ptes). The window closes when that walk has the lock; it is *hit* if
the anon_vma was freed while it was open (or already when it opened). A migration that ends without the walk (the page
was not migrated, or another path restored it) is discarded, not a width sample.

The summary adds `hit_rate` (hits over closed windows) and, beside it, what a memoryless
model predicts: each anon_vma is freed at rate `free_rate_per_us` (frees over anon_vma-
lifetime, i.e. over the time integral of live anon_vmas), so a window of the mean width w
is hit with probability `estimated_hit_rate` = 1 - exp(-free_rate_per_us * w).

Hit classes: `freed_before_start`, the anon_vma was already freed when unmap_and_move began
(the owner exited after the page was isolated); `freed_outside_rcu`, the anon_vma was freed
while the migrating task was in no RCU read-side section (in 2.6.33: before unmap_and_move's rcu_read_lock, Mel Gorman's case;
nothing keeps its slab page from being destroyed); `slab_released`, by the time the walk
locked it, its slab page had gone back to the page allocator (the bug the commit warns of).

Three narrower windows (PointerWindows), each from a page_mapped() test that is all that
proves a page's anon_vma live to the use of the pointer it read: 2.6.35's check-then-increment
in unmap_and_move (`anon_vma_check_then_inc`, to its atomic_inc), page_lock_anon_vma's
read-then-lock (`anon_vma_read_then_lock`, to its spin_lock being granted) and 2.6.36's
lock-then-recheck (`anon_vma_lock_then_recheck`, from the lock to the re-check). Hit = the
anon_vma was freed while open.

Each window names its *candidate sites* (Windows.declare): the kernel functions in which a
choice point of the actor holding it open is a place where delaying that actor can let
another free the object (sim.engine.sched.delays injects delays there; the coverage line counts
them). The strategies know no kernel function by name: these declarations are the list.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from sim.engine.hooks import RunEnd
from sim.mm.events import (AnonVmaAccess, AnonVmaAllocated, AnonVmaFreed, MigrationBegin,
                         MigrationEnd, PageMappedTest)
from sim.mm.objects import PageAnon, PageKsm, page_anon_vma

if TYPE_CHECKING:
    from sim.mm.kernel import MmKernel

NAME = "migration_anon_vma"
WALKS = frozenset(("rmap_walk_anon", "remove_anon_migration_ptes"))
# hot-remove's window: from unmap_and_move's start (its page lock) to the walk; delays in
# unmap_and_move itself and in the memcg charge between lock_page and rcu_read_lock, and in
# the page move before the walk
SITES = ("mem_cgroup_prepare_migration", "unmap_and_move", "move_to_new_page")
CHECK_THEN_INC = "anon_vma_check_then_inc"
READ_THEN_LOCK = "anon_vma_read_then_lock"
LOCK_THEN_RECHECK = "anon_vma_lock_then_recheck"


class MigrationWindows:
    def __init__(self, k: "MmKernel", params: dict[str, Any]) -> None:
        self.k = k
        self.w = k.windows
        self.w.declare(NAME, "unmap_and_move of an anon page: from its start to the anon_vma "
                             "lock of remove_migration_ptes' walk; hit = that anon_vma was "
                             "freed meanwhile (or before)", SITES)
        self.live = 0                     # anon_vmas allocated now
        self.live_area = 0.0              # time integral of `live` (anon_vma-us)
        self.frees = 0
        self.since = 0.0
        k.hooks.subscribe(MigrationBegin, self.on_begin)
        k.hooks.subscribe(AnonVmaAllocated, self.on_alloc)
        k.hooks.subscribe(AnonVmaFreed, self.on_freed)
        k.hooks.subscribe(RunEnd, self.on_end_of_run)
        k.hooks.subscribe(AnonVmaAccess, self.on_access)
        k.hooks.subscribe(MigrationEnd, self.on_end)

    def on_begin(self, ev: MigrationBegin) -> None:
        page = ev.mig.page
        if PageAnon(page) and not PageKsm(page):
            ptr = page_anon_vma(page)
            self.w.open(NAME, ev.task.tid, self.k.now, ptr)
            if ptr is not None and not ptr.valid():
                # freed already: the owner exited after isolation (its mmu_gather still
                # held the page, so page_count was not 1)
                ow = self.w.opened(NAME)[ev.task.tid]
                ow.hit = True
                ow.classes.update(("freed_outside_rcu", "freed_before_start"))

    def _tick(self) -> None:
        now = self.k.now
        self.live_area += self.live * (now - self.since)
        self.since = now

    def on_alloc(self, ev: AnonVmaAllocated) -> None:
        self._tick()
        self.live += 1

    def on_end_of_run(self, ev: RunEnd) -> None:
        self._tick()
        w = self.w.kinds[NAME]
        rate = self.frees / self.live_area if self.live_area > 0 else 0.0
        closed = len(w.widths)
        mean = sum(w.widths) / closed if closed else 0.0
        w.extra.update({
            "hit_rate": round(w.hits / closed, 9) if closed else None,
            "free_rate_per_us": round(rate, 12),
            "estimated_hit_rate": round(1 - math.exp(-rate * mean), 9) if closed else None})

    def on_freed(self, ev: AnonVmaFreed) -> None:
        self._tick()
        self.live -= 1
        self.frees += 1
        av, gen = ev.ptr.av, ev.ptr.gen
        for tid, ow in self.w.opened(NAME).items():
            p = ow.obj
            if p is not None and p.av is av and p.gen == gen and not ow.hit:
                ow.hit = True
                if not self.k.tasks[tid].rcu_nesting:
                    ow.classes.add("freed_outside_rcu")

    def on_access(self, ev: AnonVmaAccess) -> None:
        if ev.held and ev.via in WALKS:
            released = ev.ptr.av.slab.released
            self.w.close(NAME, ev.task.tid, self.k.now, ("slab_released",) if released else ())

    def on_end(self, ev: MigrationEnd) -> None:
        self.w.discard(NAME, ev.task.tid)


class PointerWindows:
    """The check-then-increment, read-then-lock and lock-then-recheck windows (module doc),
    keyed by task id, hit when their anon_vma is freed while open."""

    def __init__(self, k: "MmKernel", params: dict[str, Any]) -> None:
        self.k = k
        w = self.w = k.windows
        w.declare(CHECK_THEN_INC, "2.6.35 unmap_and_move: from page_mapped() to "
                  "atomic_inc(&page_anon_vma(page)->external_refcount); hit = that anon_vma "
                  "was freed meanwhile", ("unmap_and_move",))
        w.declare(READ_THEN_LOCK, "page_lock_anon_vma: from reading page_anon_vma() of a "
                  "mapped page to holding its lock; hit = that anon_vma was freed meanwhile",
                  ("page_lock_anon_vma",))
        w.declare(LOCK_THEN_RECHECK, "2.6.36 page_lock_anon_vma: from holding the lock to "
                  "re-checking page_mapped(); hit = that anon_vma was freed meanwhile",
                  ("page_lock_anon_vma",))
        k.hooks.subscribe(PageMappedTest, self.on_test)
        k.hooks.subscribe(AnonVmaAccess, self.on_access)
        k.hooks.subscribe(AnonVmaFreed, self.on_freed)

    def on_test(self, ev: PageMappedTest) -> None:
        tid, now = ev.task.tid, self.k.now
        if ev.locked:
            self.w.close(LOCK_THEN_RECHECK, tid, now)
        elif ev.mapped and ev.ptr is not None:
            name = CHECK_THEN_INC if ev.via == "unmap_and_move" else READ_THEN_LOCK
            self.w.open(name, tid, now, ev.ptr)

    def on_access(self, ev: AnonVmaAccess) -> None:
        tid, now = ev.task.tid, self.k.now
        if ev.access.startswith("atomic_inc"):
            self.w.close(CHECK_THEN_INC, tid, now)
        elif ev.access == "spin_lock" and ev.held and ev.via == "page_lock_anon_vma":
            self.w.close(READ_THEN_LOCK, tid, now)
            if ev.speculative:
                self.w.open(LOCK_THEN_RECHECK, tid, now, ev.ptr)

    def on_freed(self, ev: AnonVmaFreed) -> None:
        av, gen = ev.ptr.av, ev.ptr.gen
        for name in (CHECK_THEN_INC, READ_THEN_LOCK, LOCK_THEN_RECHECK):
            for ow in self.w.opened(name).values():
                p = ow.obj
                if p is not None and p.av is av and p.gen == gen:
                    ow.hit = True
