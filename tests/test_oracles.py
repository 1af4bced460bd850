"""Each oracle fires on a hand-built bad state and stays quiet on a good one."""

from mmkit import mm_kernel, new_process, run

from sim.mm.checks.invariants import check_invariants
from sim.mm.checks.migration import check_stable_node
from sim.mm.events import AnonVmaAccess
from sim.mm.mmap import mm_alloc
from sim.mm.page_alloc import alloc_page
from sim.mm.pgtable import make_migration_entry, set_pte_at
from sim.mm.rmap import anon_vma_alloc, anon_vma_free
from sim.mm.objects import StableNode
from sim.engine.rcu import rcu_read_lock, rcu_read_unlock
from sim.mm.scenarios.mm import HEAP_START


def _task(k, name="t"):
    return k.spawn(name, lambda k, t: iter(()))


def check_anon_vma(k, task, ptr, access, via, writes="lock word", **kw):
    """Emit one access through ptr; True if no report followed."""
    before = sum(k.violations.counts.values())
    k.hooks.emit(AnonVmaAccess(task, ptr, access, via, None, writes, **kw))
    return sum(k.violations.counts.values()) == before


def test_anon_vma_checks_live_freed_reused_and_released():
    k = mm_kernel(anon_vma_per_slab=1)
    walker, freer, reuser = _task(k, "walker"), _task(k, "freer"), _task(k, "reuser")
    k.run()
    for t in (walker, freer, reuser):
        t.cpu = 0
    ptr = anon_vma_alloc(k, freer, "X")
    assert check_anon_vma(k, walker, ptr, "spin_lock", "test")          # live: quiet
    assert k.violations.counts == {}
    rcu_read_lock(k, walker)                                            # before the free
    anon_vma_free(k, freer, ptr)
    assert not check_anon_vma(k, walker, ptr, "spin_lock", "test")
    v = k.violations.of("anon_vma_stale")[-1]
    assert v.detail["reused"] is False and v.detail["rcu_protected"] is True
    assert v.detail["race"] == ("slab page not discarded; accessor inside an RCU read-side "
                                "section")
    assert v.detail["freed_before_rcu"] is False and v.detail["slab_discarded_at_us"] is None
    assert v.actors == ["walker", "freer"] and v.history[-1]["event"] == "free"
    assert v.harm == "benign" and v.detail["written"] == "lock word"
    assert "<== stale (typed by SLAB_DESTROY_BY_RCU" in v.diagram and "BUG" not in v.diagram
    rcu_read_unlock(k, walker)
    # reused at once by another process (same CPU, LIFO freelist), still typed memory
    again = anon_vma_alloc(k, reuser, "Y")
    assert again.av is ptr.av and again.valid()
    walker2 = _task(k, "walker2")
    k.run()
    assert not check_anon_vma(k, walker2, ptr, "spin_lock", "test")
    v = k.violations.of("anon_vma_stale")[-1]
    assert v.detail["reused"] is True and v.detail["reused_by"] == "Y"
    assert v.detail["race"] == "accessor not in an RCU read-side section"
    assert v.detail["rcu_protected"] is False and v.detail["freed_before_rcu"] is None
    assert v.harm == "unprotected" and v.diagram.rstrip().endswith("<== BUG")
    assert v.actors == ["walker2", "freer", "reuser"]
    # the CPU moves on to a new slab page; then the object is freed again, its one-object
    # slab page empties, leaves the cache, and after a grace period goes back to the allocator
    filler = anon_vma_alloc(k, reuser, "Y")
    assert filler.av.slab is not again.av.slab
    anon_vma_free(k, reuser, again)
    k.run()
    assert again.av.slab.released
    walker3 = _task(k, "walker3")
    k.run()
    assert not check_anon_vma(k, walker3, again, "spin_unlock", "test")
    assert k.violations.counts["anon_vma_use_after_free"] == 1
    v = k.violations.of("anon_vma_use_after_free")[0]
    assert v.detail["slab_released"] is True and v.harm == "use_after_free"
    assert v.diagram.rstrip().endswith("<== BUG")
    assert k.violations.harm_counts == {"benign": 1, "unprotected": 1, "use_after_free": 1}


def test_anon_vma_harm_classes_on_hand_built_states():
    """benign: only the lock word of freed, typed memory; corrupting: a refcount, the slab
    freelist or a pte written through it; a speculative (validating) access is no report;
    a live pointer none at all."""
    k = mm_kernel(anon_vma_per_slab=4)
    walker, freer = _task(k, "walker"), _task(k, "freer")
    k.run()
    for t in (walker, freer):
        t.cpu = 0
    live = anon_vma_alloc(k, freer, "L")
    for writes in ("lock word", "external_refcount", "slab freelist", None):
        assert check_anon_vma(k, walker, live, "access", "test", writes)
    ptr = anon_vma_alloc(k, freer, "X")
    anon_vma_free(k, freer, ptr)
    assert check_anon_vma(k, walker, ptr, "spin_lock", "page_lock_anon_vma", speculative=True)
    assert k.violations.counts == {}
    assert not check_anon_vma(k, walker, ptr, "spin_lock", "test")     # outside RCU
    rcu_read_lock(k, walker)
    assert not check_anon_vma(k, walker, ptr, "spin_lock", "test2")    # inside RCU
    assert not check_anon_vma(k, walker, ptr, "atomic_inc(external_refcount)", "test",
                              "external_refcount")
    anon_vma_free(k, walker, ptr)                  # a second free: the slab freelist
    rcu_read_unlock(k, walker)
    harms = [(v.harm, v.detail["written"]) for v in k.violations.of("anon_vma_stale")]
    assert harms == [("unprotected", "lock word"), ("benign", "lock word"),
                     ("corrupting", "external_refcount"), ("corrupting", "slab freelist")]
    assert not ptr.av.live and ptr.av.slab.freelist.count(ptr.av) == 1   # not freed twice
    assert k.violations.of("anon_vma_stale")[0].diagram.rstrip().endswith("<== BUG")
    assert k.violations.of("anon_vma_stale")[2].diagram.rstrip().endswith("<== BUG")
    # a pte written while the stale anon_vma's lock is held was found through it
    mm = mm_alloc(k, "Y", None)
    page = alloc_page(k, walker)
    k.hooks.emit(AnonVmaAccess(walker, ptr, "spin_lock", "rmap_walk_anon", None, "lock word",
                               True))
    set_pte_at(k, walker, mm, HEAP_START, make_migration_entry(page, True, 1))
    k.hooks.emit(AnonVmaAccess(walker, ptr, "spin_unlock", "rmap_walk_anon", None,
                               "lock word"))
    set_pte_at(k, walker, mm, HEAP_START + 1, make_migration_entry(page, True, 1))
    pte_reports = [v for v in k.violations.of("anon_vma_stale")
                   if v.detail["access"] == "set_pte_at"]
    assert [(v.harm, v.detail["written"]) for v in pte_reports] == [
        ("corrupting", f"pte Y:{HEAP_START}")]


def _discard_then_walk(gp_us: float, reader_first: bool, access_at: float = 40.0):
    """A fixed interleaving, by the clock: a one-object slab page is discarded at t=10
    (its object freed), and a reader's rcu_read_lock comes at t=0 (before the discard) or at
    t=20 (after it); the reader touches the lock word at `access_at`. Returns its report."""
    k = mm_kernel(anon_vma_per_slab=1, rcu_gp_us=gp_us)
    got = {}

    def reader(k, t):
        yield from k.spend(t, 0.0 if reader_first else 20.0)
        rcu_read_lock(k, t)
        yield from k.spend(t, access_at - k.now)
        got["ok"] = check_anon_vma(k, t, got["ptr"], "spin_lock", "rmap_walk_anon")
        rcu_read_unlock(k, t)

    def freer(k, t):
        got["ptr"] = ptr = anon_vma_alloc(k, t, "X")
        anon_vma_alloc(k, t, "X")            # the CPU's current slab moves on
        k.spawn("reader", reader)
        yield from k.spend(t, 10.0)
        anon_vma_free(k, t, ptr)             # the slab page empties: discard_slab

    k.spawn("freer", freer)
    k.run()
    assert got["ok"] is False
    reports = [v for kind in ("anon_vma_stale", "anon_vma_use_after_free")
               for v in k.violations.of(kind)]
    assert len(reports) == 1
    return reports[0]


def test_harm_follows_rcu_protection_not_grace_period_length():
    """The slab page discarded before the reader's section began: unprotected while the grace
    period runs, use_after_free once it has ended; a bug at every rcu_gp_us. Discarded inside
    the reader's section: benign at every rcu_gp_us (RCU holds the page for the reader)."""
    late = {gp: _discard_then_walk(gp, reader_first=False) for gp in (1.0, 15.0, 1000.0)}
    assert {gp: v.harm for gp, v in late.items()} == {
        1.0: "use_after_free", 15.0: "use_after_free", 1000.0: "unprotected"}
    for v in late.values():
        d = v.detail
        assert (d["rcu_protected"], d["freed_before_rcu"]) == (False, True)
        assert (d["slab_discarded_at_us"], d["accessor_rcu_since_us"]) == (10.0, 20.0)
        assert d["race"] == ("slab page discarded before the accessor's RCU read-side "
                             "section began")
        assert v.diagram.rstrip().endswith("<== BUG")
    assert late[1000.0].kind == "anon_vma_stale" and late[1.0].kind == "anon_vma_use_after_free"
    early = {gp: _discard_then_walk(gp, reader_first=True) for gp in (1.0, 15.0, 1000.0)}
    for v in early.values():
        d = v.detail
        assert (v.kind, v.harm, d["rcu_protected"], d["freed_before_rcu"]) == (
            "anon_vma_stale", "benign", True, False)
        assert d["slab_discarded_at_us"] == 10.0 and d["slab_released_at_us"] is None
        assert d["race"] == "slab page discarded inside the accessor's RCU read-side section"


def test_harm_classes_in_order():
    """harm_of decides use_after_free, then corrupting, then unprotected, then benign."""
    from sim.mm.checks.kasan import harm_of
    table = {(rel, w, prot): harm_of(rel, w, prot) for rel in (True, False)
             for w in ("lock word", "external_refcount") for prot in (True, False)}
    assert table == {
        (True, "lock word", True): "use_after_free", (True, "lock word", False): "use_after_free",
        (True, "external_refcount", True): "use_after_free",
        (True, "external_refcount", False): "use_after_free",
        (False, "external_refcount", True): "corrupting",
        (False, "external_refcount", False): "corrupting",
        (False, "lock word", False): "unprotected", (False, "lock word", True): "benign"}


def test_slab_page_is_not_released_while_an_rcu_reader_that_saw_it_runs():
    k = mm_kernel(anon_vma_per_slab=1, rcu_gp_us=10.0)
    holder = {}

    def reader(k, t):
        rcu_read_lock(k, t)
        yield from k.spend(t, 100)
        holder["released_inside"] = holder["ptr"].av.slab.released
        rcu_read_unlock(k, t)

    def freer(k, t):
        holder["ptr"] = ptr = anon_vma_alloc(k, t, "X")
        anon_vma_alloc(k, t, "X")            # the CPU's current slab moves on
        k.spawn("reader", reader)
        yield from k.spend(t, 5)
        anon_vma_free(k, t, ptr)

    k.spawn("freer", freer)
    k.run()
    assert holder["released_inside"] is False and holder["ptr"].av.slab.released


def test_migration_leak_check():
    k = mm_kernel()

    def body(k, t):
        proc = yield from new_process(k, t, "P", 2)
        return proc

    t, proc = run(k, "P", body)
    page = proc.mm.ptes[HEAP_START].page
    other = proc.mm.ptes[HEAP_START + 1].page
    check_migration_ptes = k.oracles["migration"].check_migration_ptes
    check_migration_ptes(t, page, other, 0, "anon", 1)
    assert k.violations.counts == {}
    set_pte_at(k, t, proc.mm, HEAP_START, make_migration_entry(page, True, 1))
    check_migration_ptes(t, page, other, 0, "anon", 2)      # another migration's entry
    assert k.violations.counts == {}
    check_migration_ptes(t, page, other, 0, "anon", 1)
    v = k.violations.of("migration_pte_leak")[0]
    assert v.detail["left_in"] == [{"mm": "P", "vpn": HEAP_START, "write": True}]
    assert v.detail["entries_left"] == 1


def test_stable_node_check():
    k = mm_kernel()

    def body(k, t):
        return (yield from new_process(k, t, "P", 1))

    t, proc = run(k, "P", body)
    page = proc.mm.ptes[HEAP_START].page
    node = StableNode(0, page.pfn, page.content)
    page.mapping = node
    assert check_stable_node(k, t, page) and k.violations.counts == {}
    node.kpfn = page.pfn + 1
    assert not check_stable_node(k, t, page)
    node2 = StableNode(1, page.pfn, page.content)
    node2.freed = True
    page.mapping = node2
    assert not check_stable_node(k, t, page)
    problems = [v.detail["problem"] for v in k.violations.of("stale_stable_node")]
    assert problems == [f"kpfn {page.pfn + 1} does not point at pfn {page.pfn}",
                        "stable_node freed under its KSM page"]


def test_invariants_quiet_on_a_good_machine_and_firing_on_bad_ones():
    k = mm_kernel()

    def body(k, t):
        a = yield from new_process(k, t, "A", 4)
        b = yield from new_process(k, t, "B", 4)
        return a, b

    _, (a, b) = run(k, "P", body)
    check_invariants(k)
    assert k.violations.counts == {}
    page = a.mm.ptes[HEAP_START].page
    page.mapcount += 1                                       # mapcount without a pte
    check_invariants(k)
    page.mapcount -= 1
    freed = b.mm.ptes[HEAP_START].page
    freed.free = True                                        # pte mapping a freed page
    check_invariants(k)
    freed.free = False
    a.heap.anon_vma.av.head.append(b.heap)                   # a foreign vma on A's list
    check_invariants(k)
    whats = sorted(v.detail["what"] for v in k.violations.of("invariant"))
    assert whats == ["anon_vma list holds a vma not pointing to it",
                     "mapcount disagrees with present ptes",
                     "pte maps a freed page"]
