"""Race-window measurement for the page_lock_anon_vma race (`windows.migration_anon_vma`).

Every unmap_and_move of an anon (not KSM) page opens a window when it starts with the page:
from then on it holds page->mapping's anon_vma pointer and nothing proves that anon_vma live
until remove_migration_ptes' walk locks it (rmap_walk_anon, or before this commit
remove_anon_migration_ptes). The window closes when that walk has the lock; it is *hit* if
the anon_vma was freed while it was open. A migration that ends without the walk (the page
was not migrated, or another path restored it) is discarded, not a width sample.

Hit classes: `freed_outside_rcu`, the anon_vma was freed while the migrating task was in no
RCU read-side section (in 2.6.33: before unmap_and_move's rcu_read_lock, Mel Gorman's case;
nothing keeps its slab page from being destroyed); `slab_released`, by the time the walk
locked it, its slab page had gone back to the page allocator (the bug the commit warns of).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..mm.events import AnonVmaAccess, AnonVmaFreed, MigrationBegin, MigrationEnd
from ..objects import PageAnon, PageKsm, page_anon_vma

if TYPE_CHECKING:
    from ..mm.kernel import MmKernel

NAME = "migration_anon_vma"
WALKS = frozenset(("rmap_walk_anon", "remove_anon_migration_ptes"))


class MigrationWindows:
    def __init__(self, k: "MmKernel", params: dict[str, Any]) -> None:
        self.k = k
        self.w = k.windows
        self.w.declare(NAME, "unmap_and_move of an anon page: from its start to the anon_vma "
                             "lock of remove_migration_ptes' walk; hit = that anon_vma was "
                             "freed meanwhile")
        k.hooks.subscribe(MigrationBegin, self.on_begin)
        k.hooks.subscribe(AnonVmaFreed, self.on_freed)
        k.hooks.subscribe(AnonVmaAccess, self.on_access)
        k.hooks.subscribe(MigrationEnd, self.on_end)

    def on_begin(self, ev: MigrationBegin) -> None:
        page = ev.mig.page
        if PageAnon(page) and not PageKsm(page):
            self.w.open(NAME, ev.task.tid, self.k.now, page_anon_vma(page))

    def on_freed(self, ev: AnonVmaFreed) -> None:
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
