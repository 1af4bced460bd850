"""mm/rmap.c (2.6.33): anon_vma life cycle, page_lock_anon_vma, rmap_walk, try_to_unmap.

Lock order (the comment at the head of mm/rmap.c; sim/lockorder.py):
mmap_sem -> page lock -> i_mmap_lock -> anon_vma->lock -> pte lock.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from sim.engine.kernel import kfunc, kversion
from sim.engine.locks import spin_lock, spin_unlock
from sim.mm.objects import (AnonVmaFree, AnonVmaPtr, Page, PageAnon, PageHWPoison, PageKsm, Vma, history,
                       page_anon_vma, page_mapped, page_mapping)
from sim.engine.rcu import rcu_read_lock, rcu_read_unlock
from sim.engine.task import Task
from sim.mm import SWAP_AGAIN, SWAP_SUCCESS, TTU_IGNORE_HWPOISON, TTU_MIGRATION, ksm
from sim.mm.page_alloc import put_page
from sim.mm.pgtable import (make_hwpoison_entry, make_migration_entry, pte_clear, pte_lockptr,
                      pte_offset_map_lock, pte_present, set_pte_at)
from sim.mm.slab import kmem_cache_alloc, kmem_cache_free
from sim.mm.events import AnonVmaAccess, AnonVmaAllocated, AnonVmaFreed, PageMappedTest, VmBug
from sim.mm.vmscan import lru_cache_add

if TYPE_CHECKING:
    from sim.mm.kernel import MmKernel

Gen = Generator[Any, Any, Any]
RmapOne = Callable[..., Gen]


# --- anon_vma life cycle -------------------------------------------------------------------

def anon_vma_alloc(k: "MmKernel", task: Task, owner: str) -> AnonVmaPtr:
    av = kmem_cache_alloc(k, task)
    av.owner = owner
    av.head = []
    history(av, k, task, "alloc", gen=av.gen, owner=owner)
    ptr = AnonVmaPtr(av, av.gen)
    k.hooks.emit(AnonVmaAllocated(task, ptr))
    return ptr


def anon_vma_free(k: "MmKernel", task: Task, ptr: AnonVmaPtr) -> None:
    """kmem_cache_free of whatever the memory holds now.

    Freeing an object that is already free is a double free, which corrupts the slab
    freelist: reported (writes "slab freelist") and not performed, since the model cannot
    represent a corrupted freelist. Through a stale pointer to a reused object it frees the
    current incarnation: that is what the kernel does, and no second free (a migration that
    pinned a reused anon_vma makes its new family's anon_vma_unlink skip the free, so the
    migration's reference drop is that incarnation's only free)."""
    av = ptr.av
    if not av.live:
        k.hooks.emit(AnonVmaAccess(task, ptr, "kmem_cache_free", task.where(), None,
                                   "slab freelist"))
        return
    history(av, k, task, "free", gen=av.gen, owner=av.owner)
    av.frees.append(AnonVmaFree(k.clock(), task.name, task.tid, task.where()))
    k.tracer.mark(task, "anon_vma_free", av)
    k.hooks.emit(AnonVmaFreed(task, ptr if ptr.valid() else AnonVmaPtr(av, av.gen)))
    kmem_cache_free(k, task, av)


def anon_vma_lock(k: "MmKernel", task: Task, ptr: AnonVmaPtr, via: str,
                  page: Page | None = None, speculative: bool = False) -> Gen:
    """spin_lock(&anon_vma->lock) through a pointer that may be stale: an access before the
    spin and another once the lock is ours (it can be freed while we spin)."""
    k.hooks.emit(AnonVmaAccess(task, ptr, "spin_lock", via, page, "lock word", False,
                               speculative))
    yield from spin_lock(k, task, ptr.av.lock)
    k.hooks.emit(AnonVmaAccess(task, ptr, "spin_lock", via, page, "lock word", True,
                               speculative))


def anon_vma_unlock(k: "MmKernel", task: Task, ptr: AnonVmaPtr, via: str,
                    page: Page | None = None, speculative: bool = False) -> None:
    k.hooks.emit(AnonVmaAccess(task, ptr, "spin_unlock", via, page, "lock word", False,
                               speculative))
    spin_unlock(k, task, ptr.av.lock)


def anon_vma_unused(av: Any) -> bool:
    """Nothing keeps it: no vma on its list, no KSM rmap_item, no migration (2.6.35)."""
    return not av.head and av.ksm_refcount == 0 and av.external_refcount == 0


def atomic_dec_and_lock(k: "MmKernel", task: Task, ptr: AnonVmaPtr, counter: str,
                        via: str) -> Gen:
    """atomic_dec_and_lock(&anon_vma->counter, &anon_vma->lock): decrement, and if that
    reaches zero return True holding the lock. The last decrement happens under the lock
    (atomic_add_unless fast path for the others), so anon_vma_unlink, which tests the
    counter under the same lock, cannot see zero and free the anon_vma under us."""
    av = ptr.av
    k.hooks.emit(AnonVmaAccess(task, ptr, f"atomic_dec({counter})", via, None, counter))
    n = getattr(av, counter)
    if n != 1:
        setattr(av, counter, n - 1)
        return False
    yield from anon_vma_lock(k, task, ptr, via)
    n = getattr(av, counter) - 1
    setattr(av, counter, n)
    if n == 0:
        return True
    anon_vma_unlock(k, task, ptr, via)
    return False


@kfunc
def anon_vma_prepare(k: "MmKernel", task: Task, vma: Vma) -> Gen:
    """Give the vma an anon_vma on its first anonymous fault (find_mergeable_anon_vma, which
    can share a neighbour's, is not modelled: every vma gets its own or its parent's)."""
    if vma.anon_vma is not None:
        return 0
    mm = vma.mm
    yield from k.step(task, k.costs.anon_vma_alloc)
    ptr = anon_vma_alloc(k, task, mm.name)
    allocated: AnonVmaPtr | None = ptr
    yield from anon_vma_lock(k, task, ptr, "anon_vma_prepare")
    yield from spin_lock(k, task, mm.page_table_lock)     # against other threads
    if vma.anon_vma is None:
        vma.anon_vma = ptr
        ptr.av.head.append(vma)
        vma.linked = True
        allocated = None
    spin_unlock(k, task, mm.page_table_lock)
    anon_vma_unlock(k, task, ptr, "anon_vma_prepare")
    if allocated is not None:
        anon_vma_free(k, task, allocated)
    return 0


@kfunc
def anon_vma_link(k: "MmKernel", task: Task, vma: Vma) -> Gen:
    """fork: the child vma goes at the tail of the shared anon_vma's list, before any pte is
    copied, so a walker that holds the lock cannot miss a migration entry copied to it."""
    ptr = vma.anon_vma
    if ptr is None:
        return
    yield from anon_vma_lock(k, task, ptr, "anon_vma_link")
    yield from k.step(task, k.costs.pte_op)
    ptr.av.head.append(vma)
    vma.linked = True
    anon_vma_unlock(k, task, ptr, "anon_vma_link")


@kfunc
def anon_vma_unlink(k: "MmKernel", task: Task, vma: Vma) -> Gen:
    ptr = vma.anon_vma
    if ptr is None:
        return
    av = ptr.av
    yield from anon_vma_lock(k, task, ptr, "anon_vma_unlink")
    yield from k.step(task, k.costs.pte_op)
    if vma in av.head:
        av.head.remove(vma)
    vma.linked = False
    # garbage collect the anon_vma if it is empty (2.6.35's external_refcount stays 0 unless
    # the anon-vma-refcount variant's migration holds it)
    empty = anon_vma_unused(av)
    anon_vma_unlock(k, task, ptr, "anon_vma_unlink")
    if empty:
        anon_vma_free(k, task, ptr)


def put_anon_vma_ref(k: "MmKernel", task: Task, ptr: AnonVmaPtr, counter: str, via: str) -> Gen:
    """Drop a counted reference (KSM's ksm_refcount, or 2.6.35 migration's external_refcount);
    the last one frees the anon_vma if its list emptied meanwhile."""
    if (yield from atomic_dec_and_lock(k, task, ptr, counter, via)):
        empty = anon_vma_unused(ptr.av)
        anon_vma_unlock(k, task, ptr, via)
        if empty:
            anon_vma_free(k, task, ptr)


# --- page_lock_anon_vma ---------------------------------------------------------------------

@kversion("page_lock_anon_vma", "2.6.33")
def page_lock_anon_vma_v2633(k: "MmKernel", task: Task, page: Page) -> Gen:
    """mm/rmap.c (2.6.33): rcu_read_lock; the mapping tag must be exactly ANON and the page
    mapped; then spin_lock. Returns the anon_vma holding its lock and RCU, or None (having
    dropped RCU). The page can be unmapped and its anon_vma freed between the page_mapped()
    test and the spin_lock: the anon_vma returned is then a freed one (RCU keeps it typed)."""
    rcu_read_lock(k, task)
    yield from k.step(task, k.costs.pte_op, page)
    ptr = page_anon_vma(page)
    if ptr is None or not page_mapped(page):
        rcu_read_unlock(k, task)
        return None
    k.hooks.emit(PageMappedTest(task, page, ptr, "page_lock_anon_vma", True))
    yield from anon_vma_lock(k, task, ptr, "page_lock_anon_vma", page)
    return ptr


@kversion("page_lock_anon_vma", "2.6.36 (f18194275c3)")
def page_lock_anon_vma_v2636(k: "MmKernel", task: Task, page: Page) -> Gen:
    """mm/rmap.c (2.6.36, f18194275c3 "mm: fix hang on anon_vma->root->lock"), on 2.6.33's
    single anon_vma: as 2.6.33, then re-check page_mapped() under the lock and fail if the
    page was unmapped meanwhile. Locking a freed anon_vma before the re-check is safe by
    design (SLAB_DESTROY_BY_RCU): that lock and its unlock are speculative accesses."""
    rcu_read_lock(k, task)
    yield from k.step(task, k.costs.pte_op, page)
    ptr = page_anon_vma(page)
    if ptr is None or not page_mapped(page):
        rcu_read_unlock(k, task)
        return None
    k.hooks.emit(PageMappedTest(task, page, ptr, "page_lock_anon_vma", True))
    yield from anon_vma_lock(k, task, ptr, "page_lock_anon_vma", page, speculative=True)
    k.hooks.emit(PageMappedTest(task, page, ptr, "page_lock_anon_vma", page_mapped(page),
                                locked=True))
    if not page_mapped(page):
        # "if it has been unmapped, we have no security against the anon_vma structure
        # being freed and reused"
        anon_vma_unlock(k, task, ptr, "page_lock_anon_vma", page, speculative=True)
        rcu_read_unlock(k, task)
        return None
    return ptr


def page_unlock_anon_vma(k: "MmKernel", task: Task, ptr: AnonVmaPtr) -> None:
    anon_vma_unlock(k, task, ptr, "page_unlock_anon_vma")
    rcu_read_unlock(k, task)


# --- rmap counts ------------------------------------------------------------------------------

def vma_address(page: Page, vma: Vma) -> int | None:
    """None stands for -EFAULT: the page's index falls outside this vma."""
    address = vma.start + (page.index - vma.pgoff)
    return address if vma.start <= address < vma.end else None


def page_address_in_vma(page: Page, vma: Vma) -> int | None:
    """vma_address, for a page that must belong to this vma: an anon page's anon_vma must be
    the vma's (pointer equality: NULL page_anon_vma for a KSM page never matches a vma that
    has one), a file page's mapping the vma's file. None stands for -EFAULT."""
    if PageAnon(page):
        ptr = page_anon_vma(page)
        if (vma.anon_vma.av if vma.anon_vma is not None else None) is not \
                (ptr.av if ptr is not None else None):
            return None
    elif page.mapping is None or vma.file is not page.mapping:
        return None
    return vma_address(page, vma)


def page_add_new_anon_rmap(page: Page, vma: Vma, vpn: int) -> None:
    page.mapcount = 0
    page.mapping = vma.anon_vma
    page.index = vpn
    lru_cache_add(page)


def page_add_anon_rmap(page: Page, vma: Vma, vpn: int) -> None:
    page.mapcount += 1
    if PageKsm(page):
        return
    if page.mapcount == 0:            # first mapping: __page_set_anon_rmap
        page.mapping = vma.anon_vma
        page.index = vpn


def page_add_file_rmap(page: Page) -> None:
    page.mapcount += 1


def page_dup_rmap(page: Page) -> None:
    page.mapcount += 1


def page_remove_rmap(page: Page) -> None:
    """The last unmap leaves page->mapping set: "only reliable while mapped"."""
    page.mapcount -= 1


# --- the walks ----------------------------------------------------------------------------------

def vma_walk(k: "MmKernel", task: Task, page: Page, vmas: list[Vma],
             visit: Callable[[Vma, int], Gen], stop: Callable[[int], bool]) -> Gen:
    """The loop every anon and file rmap walk shares (the caller holds the list's lock): visit
    each vma that can map the page's index, until stop(ret)."""
    ret = SWAP_AGAIN
    for vma in list(vmas):
        yield from k.step(task, k.costs.vma_visit, vma)
        address = vma_address(page, vma)
        if address is None:
            continue
        ret = yield from visit(vma, address)
        if stop(ret):
            break
    return ret


def _unmapped_or_failed(page: Page) -> Callable[[int], bool]:
    return lambda ret: ret != SWAP_AGAIN or not page_mapped(page)


def _failed(ret: int) -> bool:
    return ret != SWAP_AGAIN


# --- try_to_unmap -----------------------------------------------------------------------------

@kfunc
def page_check_address(k: "MmKernel", task: Task, page: Page, mm: Any, vpn: int,
                       sync: bool = False) -> Gen:
    """Take the pte lock if the pte at vpn maps page; True (lock held) or False. Without
    `sync`, an unlocked peek that finds the pte not present gives up before the lock."""
    if not sync and not pte_present(mm.ptes.get(vpn)):
        return False
    ptl = yield from pte_offset_map_lock(k, task, mm, vpn)
    pte = mm.ptes.get(vpn)
    if pte_present(pte) and pte.page is page:
        return True
    spin_unlock(k, task, ptl)
    return False


@kfunc
def try_to_unmap_one(k: "MmKernel", task: Task, page: Page, vma: Vma, vpn: int,
                     flags: int) -> Gen:
    mm = vma.mm
    if not (yield from page_check_address(k, task, page, mm, vpn)):
        return SWAP_AGAIN
    yield from k.step(task, k.costs.tlb_flush, page)       # ptep_clear_flush
    write = mm.ptes[vpn].write
    if PageHWPoison(page) and not flags & TTU_IGNORE_HWPOISON:
        # memory_failure (or a migration of a page poisoned meanwhile): a hwpoison entry
        set_pte_at(k, task, mm, vpn, make_hwpoison_entry(page))
        k.tracer.mark(task, "set hwpoison entry", f"{mm.name}:{vpn} -> {page.label}")
    elif flags & TTU_MIGRATION:
        set_pte_at(k, task, mm, vpn, make_migration_entry(page, write, task.migration.tag))
        k.tracer.mark(task, "set migration entry", f"{mm.name}:{vpn} -> {page.label}")
    else:
        pte_clear(k, task, mm, vpn)                        # a file page: just unmapped
    page_remove_rmap(page)
    put_page(k, task, page)                                # page_cache_release
    spin_unlock(k, task, pte_lockptr(k, mm, vpn))
    return SWAP_AGAIN


@kfunc
def try_to_unmap_anon(k: "MmKernel", task: Task, page: Page, flags: int) -> Gen:
    ptr = yield from k.variant.page_lock_anon_vma(k, task, page)
    if ptr is None:
        return SWAP_AGAIN
    ret = yield from vma_walk(k, task, page, ptr.av.head,
                              lambda vma, a: try_to_unmap_one(k, task, page, vma, a, flags),
                              _unmapped_or_failed(page))
    page_unlock_anon_vma(k, task, ptr)
    return ret


@kfunc
def try_to_unmap_file(k: "MmKernel", task: Task, page: Page, flags: int) -> Gen:
    mapping = page_mapping(page)
    assert mapping is not None
    yield from spin_lock(k, task, mapping.i_mmap_lock)
    ret = yield from vma_walk(k, task, page, mapping.i_mmap,
                              lambda vma, a: try_to_unmap_one(k, task, page, vma, a, flags),
                              _unmapped_or_failed(page))
    spin_unlock(k, task, mapping.i_mmap_lock)
    return ret


@kfunc
def try_to_unmap(k: "MmKernel", task: Task, page: Page, flags: int) -> Gen:
    if PageKsm(page):
        ret = yield from ksm.try_to_unmap_ksm(k, task, page, flags)
    elif PageAnon(page):
        ret = yield from try_to_unmap_anon(k, task, page, flags)
    else:
        ret = yield from try_to_unmap_file(k, task, page, flags)
    if not page_mapped(page):
        ret = SWAP_SUCCESS
    return ret


# --- rmap_walk (e9995ef978a) ----------------------------------------------------------------

@kversion("rmap_walk_anon", "2.6.33")
def rmap_walk_anon_v2633(k: "MmKernel", task: Task, page: Page, rmap_one: RmapOne,
                         arg: Any) -> Gen:
    """e9995ef978a: no page_lock_anon_vma (its page_mapped test fails once every pte is a
    migration entry) and no RCU of its own: "risky", relying on callers' mmap_sem, which
    hot-remove does not hold."""
    ptr = page_anon_vma(page)
    if ptr is None:
        return SWAP_AGAIN
    yield from anon_vma_lock(k, task, ptr, "rmap_walk_anon", page)
    ret = yield from vma_walk(k, task, page, ptr.av.head,
                              lambda vma, a: rmap_one(k, task, page, vma, a, arg), _failed)
    anon_vma_unlock(k, task, ptr, "rmap_walk_anon", page)
    return ret


@kversion("rmap_walk_anon", "through page_lock_anon_vma")
def rmap_walk_anon_page_lock_anon_vma(k: "MmKernel", task: Task, page: Page,
                                      rmap_one: RmapOne, arg: Any) -> Gen:
    """What e9995ef978a avoids: the walk through page_lock_anon_vma, which returns NULL once
    every pte is a migration entry (page_mapped fails), so no entry is restored."""
    ptr = yield from k.variant.page_lock_anon_vma(k, task, page)
    if ptr is None:
        return SWAP_AGAIN
    ret = yield from vma_walk(k, task, page, ptr.av.head,
                              lambda vma, a: rmap_one(k, task, page, vma, a, arg), _failed)
    page_unlock_anon_vma(k, task, ptr)
    return ret


@kfunc
def rmap_walk_file(k: "MmKernel", task: Task, page: Page, rmap_one: RmapOne, arg: Any) -> Gen:
    mapping = page_mapping(page)
    if mapping is None:
        return SWAP_AGAIN
    yield from spin_lock(k, task, mapping.i_mmap_lock)
    ret = yield from vma_walk(k, task, page, mapping.i_mmap,
                              lambda vma, a: rmap_one(k, task, page, vma, a, arg), _failed)
    spin_unlock(k, task, mapping.i_mmap_lock)
    return ret


@kfunc
def rmap_walk(k: "MmKernel", task: Task, page: Page, rmap_one: RmapOne, arg: Any) -> Gen:
    """Needs the page locked: dispatch on the mapping's tag."""
    if page.lock.owner is not task:
        k.hooks.emit(VmBug(task, {"what": "rmap_walk on an unlocked page", "page": page.label},
                           ("rmap_walk unlocked", task.tid)))
    if PageKsm(page):
        return (yield from ksm.rmap_walk_ksm(k, task, page, rmap_one, arg))
    if PageAnon(page):
        return (yield from k.variant.rmap_walk_anon(k, task, page, rmap_one, arg))
    return (yield from rmap_walk_file(k, task, page, rmap_one, arg))
