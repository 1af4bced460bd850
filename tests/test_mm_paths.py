"""Each kernel path's lock sequence, pinned as a structured log (kernel lock order)."""

import pytest
from mmkit import lock_log, mm_kernel, new_process, next_seq, run

from sim.engine.locks import mutex_lock, mutex_unlock
from sim.mm import EAGAIN
from sim.mm.events import AnonVmaFreed
from sim.mm.exit import exit_mm
from sim.mm.fault import do_page_fault
from sim.mm.fork import dup_mm
from sim.mm.ksm import ksm_do_scan
from sim.mm.memory_hotplug import do_migrate_range
from sim.mm.mempolicy import do_migrate_pages
from sim.mm.migrate import migrate_pages, new_page_any
from sim.mm.vmscan import isolate_lru_page
from sim.mm.objects import MIGRATION, PRESENT, PageKsm, Pte
from sim.mm.scenarios.mm import HEAP_START

# unmap_and_move of a mapped anon page (v2.6.33), lock by lock
UNMAP_AND_MOVE_ANON = [
    "trylock_page PG_locked",                  # the old page
    "rcu_read_lock",                           # unmap_and_move: PageAnon
    "rcu_read_lock",                           # page_lock_anon_vma
    "spin_lock &anon_vma->lock",
    "spin_lock &page->ptl",                    # try_to_unmap_one
    "spin_unlock &page->ptl",
    "spin_unlock &anon_vma->lock",             # page_unlock_anon_vma
    "rcu_read_unlock",
    "trylock_page PG_locked",                  # move_to_new_page: the new page
    "spin_lock &anon_vma->lock",               # rmap_walk_anon: no RCU, no page_mapped
    "spin_lock &page->ptl",                    # remove_migration_pte
    "spin_unlock &page->ptl",
    "spin_unlock &anon_vma->lock",
    "unlock_page PG_locked",                   # newpage
    "rcu_read_unlock",
    "unlock_page PG_locked",                   # old page
    "spin_lock &zone->lru_lock",               # putback_lru_page(page): freed
    "spin_unlock &zone->lru_lock",
    "spin_lock &zone->lru_lock",               # putback_lru_page(newpage)
    "spin_unlock &zone->lru_lock",
]


def test_unmap_and_move_anon_page_lock_sequence():
    k = mm_kernel()

    def body(k, t):
        proc = yield from new_process(k, t, "P", 1)
        page = proc.mm.ptes[HEAP_START].page
        assert (yield from isolate_lru_page(k, t, page)) == 0
        seq = next_seq(k)
        rc = yield from k.variant.unmap_and_move(k, t, new_page_any, 0, page, False, True, [page])
        return proc, page, rc, seq

    t, (proc, page, rc, seq) = run(k, "hotremove", body)
    assert rc == 0
    assert lock_log(t, seq) == UNMAP_AND_MOVE_ANON
    new = proc.mm.ptes[HEAP_START]
    assert new.kind == PRESENT and new.page is not page and new.page.mapcount == 0
    assert page.free and k.oracles["migration"].entries[page] == 0
    assert k.violations.counts == {}


def test_unmap_and_move_variants_change_exactly_their_step():
    def log_for(variant):
        k = mm_kernel(variant=variant)

        def body(k, t):
            proc = yield from new_process(k, t, "P", 1)
            page = proc.mm.ptes[HEAP_START].page
            yield from isolate_lru_page(k, t, page)
            seq = next_seq(k)
            yield from k.variant.unmap_and_move(k, t, new_page_any, 0, page, False, True, [page])
            return seq

        t, seq = run(k, "hotremove", body)
        return lock_log(t, seq), k

    base, _ = log_for("v2.6.33")
    assert base == UNMAP_AND_MOVE_ANON
    walk = slice(9, 13)                      # rmap_walk_anon: anon_vma lock, pte lock
    assert base[walk] == ["spin_lock &anon_vma->lock", "spin_lock &page->ptl",
                          "spin_unlock &page->ptl", "spin_unlock &anon_vma->lock"]
    norcu, _ = log_for("no-rcu")              # no outer rcu_read_lock / rcu_read_unlock
    assert norcu == base[:1] + base[2:14] + base[15:]
    pla, k = log_for("walk-with-page-lock-anon-vma")
    # rmap_walk_anon through page_lock_anon_vma: rcu_read_lock, then page_mapped() fails
    assert pla == base[:9] + ["rcu_read_lock", "rcu_read_unlock"] + base[13:]
    assert "migration_pte_leak" in k.violations.counts
    get = ["rcu_read_lock", "spin_lock &anon_vma->lock",          # page_lock_anon_vma
           "spin_unlock &anon_vma->lock", "rcu_read_unlock"]      # get_anon_vma, unlock
    drop = ["spin_lock &anon_vma->lock", "spin_unlock &anon_vma->lock"]  # last reference
    ref, k = log_for("anon-vma-refcount")     # 2.6.35: rcu_read_lock kept; the drop
    assert ref == base[:14] + drop + base[14:]
    assert k.violations.counts == {}
    for variant in ("anon-vma-lock-get", "anon-vma-lock-get-no-recheck"):
        lg, k = log_for(variant)              # the 2011 repair: no outer RCU
        assert lg == base[:1] + get + base[2:14] + drop + base[15:], variant
        assert k.violations.counts == {}


def test_exit_mmap_zaps_then_unlinks_and_frees_the_anon_vma():
    k = mm_kernel()

    def body(k, t):
        proc = yield from new_process(k, t, "X", 10)
        av = proc.heap.anon_vma
        seq = next_seq(k)
        yield from exit_mm(k, t, proc)
        return av, seq

    t, (av, seq) = run(k, "X", body)
    assert lock_log(t, seq) == (
        ["down_read &mm->mmap_sem", "up_read &mm->mmap_sem"]        # exit_mm: task->mm = NULL
        + ["spin_lock &page->ptl", "spin_unlock &page->ptl"] * 2    # two zap blocks (8 + 2)
        + ["spin_lock &anon_vma->lock", "spin_unlock &anon_vma->lock"])   # anon_vma_unlink
    assert not av.valid() and av.av.history[-1]["event"] == "free"
    assert all(not pg.lru or pg.free for pg in k.machine.pages.values() if pg.count == 0)


@pytest.mark.parametrize("cpus,held", [(1, 0), (2, 2)])
def test_exit_mmap_gather_frees_at_once_only_on_one_cpu(cpus, held):
    """tlb_gather_mmu's fast mode (one CPU online) frees each zapped page at once; on SMP the
    last batch (the second zap block: 2 of the 10 pages) keeps its pages until
    tlb_finish_mmu, after free_pgtables' anon_vma_unlink."""
    k = mm_kernel(cpus=cpus)
    seen = []

    def body(k, t):
        proc = yield from new_process(k, t, "X", 10)
        pages = [pte.page for pte in proc.mm.ptes.values()]
        k.hooks.subscribe(AnonVmaFreed, lambda ev: seen.append(
            sum(1 for pg in pages if not pg.free)))
        yield from exit_mm(k, t, proc)
        return pages

    _, pages = run(k, "X", body)
    assert seen == [held] and all(pg.free for pg in pages)


def test_dup_mmap_lock_order_and_anon_vma_link_before_copy():
    k = mm_kernel()

    def body(k, t):
        proc = yield from new_process(k, t, "parent", 3, mergeable=True)
        seq = next_seq(k)
        child = yield from dup_mm(k, t, proc.mm, "child", None)
        return proc, child, seq

    t, (proc, child, seq) = run(k, "parent", body)
    assert lock_log(t, seq) == [
        "down_write &mm->mmap_sem", "down_write &mm->mmap_sem",  # parent, then child nested
        "spin_lock ksm_mmlist_lock", "spin_unlock ksm_mmlist_lock",  # ksm_fork
        "spin_lock &anon_vma->lock", "spin_unlock &anon_vma->lock",  # anon_vma_link
        "spin_lock &page->ptl", "spin_lock &page->ptl",          # copy_pte_range dst, src
        "spin_unlock &page->ptl", "spin_unlock &page->ptl",
        "up_write &mm->mmap_sem", "up_write &mm->mmap_sem",
    ]
    av = proc.heap.anon_vma.av
    assert [v.mm.name for v in av.head] == ["parent", "child"]    # list_add_tail
    for vpn in range(HEAP_START, HEAP_START + 3):
        p, c = proc.mm.ptes[vpn], child.ptes[vpn]
        assert p.page is c.page and not p.write and not c.write              # COW: both read-only
        assert p.page.mapcount == 1                                  # page_dup_rmap
    assert k.violations.counts == {}


def test_fork_copies_a_migration_entry_and_makes_the_parent_entry_read():
    k = mm_kernel()

    def body(k, t):
        proc = yield from new_process(k, t, "parent", 1)
        page = proc.mm.ptes[HEAP_START].page
        from sim.mm.pgtable import make_migration_entry, set_pte_at
        from sim.mm.rmap import page_remove_rmap
        yield from isolate_lru_page(k, t, page)       # as migration does, then unmap by hand
        set_pte_at(k, t, proc.mm, HEAP_START, make_migration_entry(page, True))
        page_remove_rmap(page)
        page.count -= 1
        child = yield from dup_mm(k, t, proc.mm, "child", None)
        return proc, child, page

    _, (proc, child, page) = run(k, "parent", body)
    assert proc.mm.ptes[HEAP_START] == Pte(MIGRATION, page, False, 0)
    assert child.ptes[HEAP_START] == Pte(MIGRATION, page, False, 0)
    assert page.mapcount == -1 and page.count == 1
    assert k.oracles["migration"].entries[page] == 2


def test_nested_pte_locks_are_annotated_not_reported():
    k = mm_kernel()

    def body(k, t):
        proc = yield from new_process(k, t, "parent", 2)
        yield from dup_mm(k, t, proc.mm, "child", None)

    run(k, "parent", body)
    assert "lock_misuse" not in k.violations.counts
    assert "lock_order_inversion" not in k.violations.counts


def test_numa_migrate_pages_holds_mmap_sem_and_takes_lru_lock_under_ptl():
    k = mm_kernel()

    def body(k, t):
        proc = yield from new_process(k, t, "P", 2)
        seq = next_seq(k)
        err = yield from do_migrate_pages(k, t, proc.mm, False)
        return err, seq

    t, (err, seq) = run(k, "numad", body)
    assert err == 0
    assert lock_log(t, seq) == [
        "down_read &mm->mmap_sem",                  # do_migrate_pages, held throughout
        "spin_lock &page->ptl",                     # check_pte_range
        "spin_lock &zone->lru_lock", "spin_unlock &zone->lru_lock",   # isolate_lru_page x2
        "spin_lock &zone->lru_lock", "spin_unlock &zone->lru_lock",
        "spin_unlock &page->ptl",
        *UNMAP_AND_MOVE_ANON, *UNMAP_AND_MOVE_ANON,                   # migrate_pages
        "up_read &mm->mmap_sem",
    ]
    assert k.counters["migrations"] == 2


def _merged_pair(k, t, n=1):
    """Two processes with identical contents, merged by ksmd: returns (p1, p2)."""
    p1 = yield from new_process(k, t, "A", n, mergeable=True, contents=[7] * n)
    p2 = yield from new_process(k, t, "B", n, mergeable=True, contents=[7] * n)
    for _ in range(4):                     # checksum, then unstable tree, then merge
        yield from mutex_lock(k, t, k.machine.ksm.thread_mutex)
        yield from ksm_do_scan(k, t, 100)
        mutex_unlock(k, t, k.machine.ksm.thread_mutex)
    return p1, p2


def test_ksm_merges_identical_pages_under_the_kernel_locks():
    k = mm_kernel()

    def body(k, t):
        p1, p2 = yield from _merged_pair(k, t)
        return p1, p2

    t, (p1, p2) = run(k, "ksmd", body)
    a, b = p1.mm.ptes[HEAP_START].page, p2.mm.ptes[HEAP_START].page
    assert a is b and PageKsm(a) and a.mapcount == 1
    node = a.mapping
    assert node.kpfn == a.pfn and len(node.hlist) == 2
    assert p1.heap.anon_vma.av.ksm_refcount == 1 and p2.heap.anon_vma.av.ksm_refcount == 1
    log = lock_log(t)
    i = log.index("trylock_page PG_locked")
    assert log[i - 1] == "down_read &mm->mmap_sem" and log[i + 1] == "spin_lock &page->ptl"
    assert k.violations.counts == {}


def test_hotremove_migrates_a_ksm_page_with_both_rmap_walk_ksm_passes():
    for variant, leaks in (("v2.6.33", False), ("no-new-forks-pass", True)):
        k = mm_kernel(variant=variant)

        def body(k, t):
            p1, p2 = yield from _merged_pair(k, t)
            child = yield from dup_mm(k, t, p1.mm, "A-child", None)    # forked after merge
            kpage = p1.mm.ptes[HEAP_START].page
            yield from mutex_lock(k, t, k.machine.ksm.thread_mutex)  # MEM_GOING_OFFLINE
            blk = k.machine.blocks[kpage.block]
            blk.state = "isolated"
            rc = yield from do_migrate_range(k, t, kpage.pfn, blk)
            mutex_unlock(k, t, k.machine.ksm.thread_mutex)
            return p1, p2, child, kpage, rc

        _, (p1, p2, child, kpage, rc) = run(k, "hotremove", body)
        new = p1.mm.ptes[HEAP_START].page
        assert new is not kpage and PageKsm(new) and new.mapping.kpfn == new.pfn
        if leaks:
            pte = child.ptes[HEAP_START]
            assert (pte.kind, pte.page, pte.write) == (MIGRATION, kpage, False)
            v = k.violations.of("migration_pte_leak")[0]
            assert v.detail["left_in"] == [{"mm": "A-child", "vpn": HEAP_START,
                                            "write": False}]
        else:
            assert child.ptes[HEAP_START].page is new
            assert p2.mm.ptes[HEAP_START].page is new and new.mapcount == 2
            assert k.violations.counts == {}


def test_migrate_pages_retries_a_locked_page_and_forces_from_pass_three():
    """Passes 0-2 only trylock (a locked page is -EAGAIN, retried); pass 3 (force) sleeps in
    lock_page until the holder unlocks."""
    k = mm_kernel()
    from sim.engine.locks import trylock_page, unlock_page
    from sim.mm.events import MigrationEnd
    rcs = []
    k.hooks.subscribe(MigrationEnd, lambda ev: rcs.append(ev.rc))

    def holder(k, t, page):
        assert trylock_page(k, t, page)
        yield from k.sleep(t, 50)
        unlock_page(k, t, page)

    def body(k, t):
        proc = yield from new_process(k, t, "P", 1)
        page = proc.mm.ptes[HEAP_START].page
        k.spawn("holder", holder, page)
        yield from k.sleep(t, 1)
        yield from isolate_lru_page(k, t, page)
        lst = [page]
        left = yield from migrate_pages(k, t, lst, new_page_any, 0, True)
        return left, k.now

    t, (left, now) = run(k, "hotremove", body)
    assert left == 0 and now > 50       # waited in lock_page once force was on
    assert rcs == [EAGAIN, EAGAIN, EAGAIN, 0]
    waits = [e for e in t.ring if e[3] == "wait"]
    assert [w[4].cls.name for w in waits] == ["PG_locked"]


def test_last_refcount_drop_waits_for_anon_vma_unlink_and_frees_once():
    """atomic_dec_and_lock takes the final reference down under anon_vma->lock, so an
    anon_vma_unlink holding that lock sees it still pinned and leaves the free to us."""
    from sim.mm.migrate import drop_anon_vma
    from sim.mm.rmap import anon_vma_unlink
    k = mm_kernel(costs__pte_op=5.0, cost_shape=1e6)
    box = {}

    def dropper(k, t, ptr):
        yield from k.spend(t, 1.0)
        yield from drop_anon_vma(k, t, ptr)

    def body(k, t):
        proc = yield from new_process(k, t, "X", 1)
        ptr = proc.heap.anon_vma
        ptr.av.external_refcount = 1                   # as unmap_and_move's get_anon_vma
        box["ptr"] = ptr
        box["h"] = k.spawn("hotremove", dropper, ptr)
        yield from anon_vma_unlink(k, t, proc.heap)    # holds the lock ~5 us

    run(k, "X", body)
    av = box["ptr"].av
    frees = [h for h in av.history if h["event"] == "free"]
    assert [f["by"] for f in frees] == ["hotremove"]
    assert av.lock.cls.stat.contentions == 1 and k.violations.counts == {}


def test_fork_copies_no_ptes_of_a_vma_without_an_anon_vma():
    """copy_page_range returns early for a vma with no anon_vma (a page fault will fill the
    ptes): the child of a process that mapped private file pages has none of them mapped."""
    from sim.mm.mmap import mmap_region
    from sim.mm.scenarios.mm import FILE_START
    k = mm_kernel()

    def body(k, t):
        proc = yield from new_process(k, t, "parent", 2)
        libc = k.machine.files[0]
        filevma = yield from mmap_region(k, t, proc.mm, FILE_START, 4, file=libc, pgoff=0)
        for i in range(4):
            yield from do_page_fault(k, t, proc.mm, FILE_START + i, False)
        child = yield from dup_mm(k, t, proc.mm, "child", None)
        return proc, filevma, child

    _, (proc, filevma, child) = run(k, "parent", body)
    assert filevma.anon_vma is None and len(proc.mm.ptes) == 6
    assert sorted(child.ptes) == [HEAP_START, HEAP_START + 1]      # the anon heap only
    assert all(proc.mm.ptes[FILE_START + i].page.mapcount == 0 for i in range(4))
    childvma = next(v for v in child.vmas if v.start == FILE_START)
    assert childvma in k.machine.files[0].i_mmap                   # the vma itself is copied


def test_page_check_address_peeks_before_taking_the_pte_lock():
    """Without sync, a pte that is not present is given up on before the lock (try_to_unmap
    and KSM's write_protect_page); with sync the lock is taken first."""
    from sim.mm.rmap import page_check_address
    k = mm_kernel()

    def body(k, t):
        proc = yield from new_process(k, t, "P", 1)
        page = proc.mm.ptes[HEAP_START].page
        seq = next_seq(k)
        a = yield from page_check_address(k, t, page, proc.mm, HEAP_START + 7)
        mid = next_seq(k)
        b = yield from page_check_address(k, t, page, proc.mm, HEAP_START + 7, sync=True)
        return a, b, seq, mid

    t, (a, b, seq, mid) = run(k, "P", body)
    assert a is False and b is False
    assert lock_log(t, seq) == ["spin_lock &page->ptl", "spin_unlock &page->ptl"]
    assert lock_log(t, mid) == lock_log(t, seq)             # only the sync call locked


def test_2635_refcount_oopses_on_a_mapped_ksm_page_under_hotremove():
    """2.6.35's unmap_and_move takes page_anon_vma(page), NULL for a KSM page, and
    atomic_incs its external_refcount: hot-remove (offlining, so KSM pages pass the PageKsm
    test) oopses, and dies holding the page lock and ksm_thread_mutex."""
    k = mm_kernel(variant="anon-vma-refcount")

    def body(k, t):
        p1, p2 = yield from _merged_pair(k, t)
        kpage = p1.mm.ptes[HEAP_START].page
        yield from mutex_lock(k, t, k.machine.ksm.thread_mutex)  # MEM_GOING_OFFLINE
        blk = k.machine.blocks[kpage.block]
        blk.state = "isolated"
        yield from do_migrate_range(k, t, kpage.pfn, blk)
        mutex_unlock(k, t, k.machine.ksm.thread_mutex)
        return "returned"

    box = {}

    def main(k, t):
        box["value"] = yield from body(k, t)

    t = k.spawn("hotremove", main)
    k.run(until=10_000_000)
    assert "value" not in box and t.state == "dead"
    (v,) = k.violations.of("oops")
    assert v.actors == ["hotremove"]
    assert v.detail["source"].startswith("mm/migrate.c (2.6.35) unmap_and_move")
    assert v.detail["stack"][-2:] == ["migrate_pages", "unmap_and_move"]
    assert v.detail["held"] == ["ksm_thread_mutex", "PG_locked"]
    assert "lock_misuse" not in k.violations.counts       # the oops is the report
    # v2.6.33 migrates the same page through rmap_walk_ksm
    k2 = mm_kernel()
    t2 = k2.spawn("hotremove", lambda k, t: body(k, t))
    k2.run(until=10_000_000)
    assert k2.violations.counts == {} and k2.counters["migrations"] == 1


@pytest.mark.parametrize("reused", [True, False])
def test_reference_drop_through_a_stale_pointer_frees_once_or_reports_a_double_free(reused):
    """The no-recheck repair pinned a freed anon_vma (get_anon_vma through a stale pointer).
    If the memory was reused and its new family exits first, that family's anon_vma_unlink
    sees the inherited refcount and skips the free, so the migration's drop is the only free
    of that incarnation: performed, no double free reported. If the memory is still free,
    the drop's free is a second free: reported (slab freelist) and not performed."""
    from sim.mm.migrate import drop_anon_vma, get_anon_vma
    from sim.mm.rmap import anon_vma_unlink
    k = mm_kernel(cpus=1)
    box = {}

    def body(k, t):
        x = yield from new_process(k, t, "X", 1)
        stale = x.heap.anon_vma
        yield from anon_vma_unlink(k, t, x.heap)           # X's last vma goes: freed
        if reused:
            y = yield from new_process(k, t, "Y", 1)       # same CPU slab, LIFO: reused
            assert y.heap.anon_vma.av is stale.av
        get_anon_vma(k, t, stale, None)                    # the no-recheck pin
        if reused:
            yield from anon_vma_unlink(k, t, y.heap)       # sees external_refcount 1
            assert stale.av.live
        yield from drop_anon_vma(k, t, stale)
        box["av"] = stale.av

    run(k, "hotremove", body)
    av = box["av"]
    written = [(v.detail["access"], v.detail["written"])
               for v in k.violations.of("anon_vma_stale")]
    assert written[0] == ("atomic_inc(external_refcount)", "external_refcount")
    assert not av.live and av.slab.freelist.count(av) == 1
    if reused:
        assert [f.by for f in av.frees] == ["hotremove", "hotremove"] and av.gen == 2
        assert ("kmem_cache_free", "slab freelist") not in written
        assert [h["gen"] for h in av.history if h["event"] == "free"] == [1, 2]
    else:
        assert len(av.frees) == 1 and av.gen == 1
        assert written[-1] == ("kmem_cache_free", "slab freelist")


def test_fork_write_protects_a_private_file_mapping_too():
    """copy_one_pte's COW test is is_cow_mapping(vm_flags): a writable pte of a MAP_PRIVATE
    file mapping is made read in the parent and the child, as an anon one is."""
    from sim.mm.fault import do_page_fault
    from sim.mm.mmap import mmap_region
    from sim.mm.pgtable import mk_pte, set_pte_at
    from sim.mm.scenarios.mm import FILE_START
    k = mm_kernel()

    def body(k, t):
        proc = yield from new_process(k, t, "parent", 1)
        vma = yield from mmap_region(k, t, proc.mm, FILE_START, 1, file=k.machine.files[0])
        yield from do_page_fault(k, t, proc.mm, FILE_START, False)
        page = proc.mm.ptes[FILE_START].page
        set_pte_at(k, t, proc.mm, FILE_START, mk_pte(page, True))   # as if it were written
        vma.anon_vma = proc.heap.anon_vma     # copy_page_range copies only with an anon_vma
        child = yield from dup_mm(k, t, proc.mm, "child", None)
        return proc, child, page

    _, (proc, child, page) = run(k, "parent", body)
    assert proc.mm.ptes[FILE_START] == Pte(PRESENT, page, False, 0)
    assert child.ptes[FILE_START] == Pte(PRESENT, page, False, 0)
