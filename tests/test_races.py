"""Race windows reached by scripted schedules (controlled mode): the owner of a page exits
and frees its anon_vma at exactly the moment a hot-remove migration is in a window."""

from mmkit import exiting_owner, mm_kernel

from sim.mm import EAGAIN
from sim.mm.migrate import new_page_any
from sim.mm.vmscan import isolate_lru_page
from sim.engine.sched import Controlled


class FreeInTheGap(Controlled):
    """Run the migrator alone until it parks where `gap(task, obj)` says; then let every other
    actor run (the default: lowest id) until the migrator is alone again."""

    name = "scripted"

    def __init__(self, migrator: str, gap) -> None:
        super().__init__()
        self.migrator = migrator
        self.gap = gap
        self.hits = 0

    def choose(self, runnable, current):
        mig = next((r for r in runnable if r.tid >= 0 and
                    self.k.tasks[r.tid].name == self.migrator), None)
        others = [r.tid for r in runnable if r is not mig]
        if mig is None:
            return others[0]
        if self.gap(self.k.tasks[mig.tid], mig.obj):
            self.hits += 1
            return others[0]
        return mig.tid


def in_2635_gap(task, obj):
    """unmap_and_move between 2.6.35's page_mapped() and atomic_inc (its step on the page,
    inside the rcu_read_lock section)."""
    return bool(task.stack) and task.stack[-1] == "unmap_and_move" and task.rcu_nesting > 0 \
        and obj is not None and getattr(obj, "pfn", None) == task.migration.page.pfn


def in_page_lock_anon_vma_gap(task, obj):
    """page_lock_anon_vma between its page_mapped() test and its spin_lock."""
    return bool(task.stack) and task.stack[-1] == "page_lock_anon_vma" and \
        getattr(getattr(obj, "cls", None), "name", "") == "&anon_vma->lock"


def owner_exits_in_the_gap(variant, gap):
    """X maps one anon page; hot-remove isolates it and migrates it; X exits in the gap."""
    strat = FreeInTheGap("hotremove", gap)
    k = mm_kernel(variant=variant, strategy=strat)
    box = {}

    def hotremove(k, t):
        yield from k.sleep(t, 5)
        page = box["page"]
        yield from isolate_lru_page(k, t, page)
        box["rc"] = yield from k.variant.unmap_and_move(k, t, new_page_any, 0, page, True, True, [page])

    k.spawn("X", exiting_owner(box))
    k.spawn("hotremove", hotremove)
    k.run(until=1_000)
    return k, strat, box


def test_2635_check_then_increment_gap_increments_a_freed_anon_vma():
    k, strat, box = owner_exits_in_the_gap("anon-vma-refcount", in_2635_gap)
    assert strat.hits >= 1
    stale = k.violations.of("anon_vma_stale")
    first = stale[0]
    assert first.harm == "corrupting" and first.actors[:2] == ["hotremove", "X"]
    assert first.detail["access"] == "atomic_inc(external_refcount)"
    assert first.detail["written"] == "external_refcount"
    assert first.detail["freed_in"] == "anon_vma_unlink"
    # and then: the walk locks it (benign), and the reference drop frees it a second time
    written = [(v.harm, v.detail["written"], v.detail["via"]) for v in stale]
    assert ("corrupting", "slab freelist", "drop_anon_vma") in written
    assert ("benign", "lock word", "rmap_walk_anon") in written


def test_the_2011_repair_is_clean_on_the_same_schedule():
    """anon-vma-lock-get: the owner frees the anon_vma between page_lock_anon_vma's
    page_mapped() test and its spin_lock; the re-check under the lock sees the page unmapped
    and gives up, so nothing stale is used and the page is not migrated."""
    k, strat, box = owner_exits_in_the_gap("anon-vma-lock-get", in_page_lock_anon_vma_gap)
    assert strat.hits >= 1
    assert k.violations.counts == {}
    assert box["rc"] == EAGAIN                 # goto uncharge: left for a later pass


def test_without_the_recheck_the_repair_pins_a_freed_anon_vma():
    k, strat, box = owner_exits_in_the_gap("anon-vma-lock-get-no-recheck",
                                           in_page_lock_anon_vma_gap)
    assert strat.hits >= 1
    written = [(v.harm, v.detail["access"], v.detail["written"])
               for v in k.violations.of("anon_vma_stale")]
    assert written[0] == ("benign", "spin_lock", "lock word")        # page_lock_anon_vma
    assert ("corrupting", "atomic_inc(external_refcount)", "external_refcount") in written
    assert ("corrupting", "kmem_cache_free", "slab freelist") in written   # a double free


def test_v2633_has_no_such_gap():
    k, strat, box = owner_exits_in_the_gap("v2.6.33", in_2635_gap)
    assert strat.hits == 0 and box["rc"] == 0 and k.violations.counts == {}
