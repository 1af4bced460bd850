"""mm/migrate.c (2.6.33): migrate_pages, unmap_and_move, move_to_new_page,
remove_migration_ptes (via rmap_walk since e9995ef978a), migration_entry_wait.

Lock order: old page lock -> newpage lock (trylock) -> mapping->tree_lock / anon_vma->lock
-> pte lock. Migration entries hold no _mapcount and no _count.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from sim.engine.kernel import kfunc, kversion
from sim.engine.locks import (lock_page, spin_lock, spin_unlock, trylock_page, unlock_page,
                     wait_on_page_locked)
from sim.mm.objects import (AddressSpace, AnonVmaPtr, MigrationContext, Page, PageAnon, PageKsm,
                       Vma, page_anon_vma, page_mapped, page_mapping)
from sim.engine.rcu import rcu_read_lock, rcu_read_unlock
from sim.engine.task import Task
from sim.mm import EAGAIN, EBUSY, ENOMEM, SWAP_AGAIN, TTU_MIGRATION, Oops, ksm
from sim.mm.events import AnonVmaAccess, MigrationBegin, MigrationEnd, PageMappedTest, VmBug
from sim.mm.memcontrol import mem_cgroup_prepare_migration
from sim.mm.page_alloc import alloc_page, get_page, get_page_unless_zero, put_page
from sim.mm.pgtable import is_migration_entry, mk_pte, pte_offset_map_lock, set_pte_at
from sim.mm.rmap import (anon_vma_lock, anon_vma_unlock, page_add_anon_rmap, page_add_file_rmap,
                   page_unlock_anon_vma, put_anon_vma_ref, rmap_walk,
                   try_to_unmap, vma_walk)
from sim.mm.vmscan import putback_lru_page

if TYPE_CHECKING:
    from sim.mm.kernel import MmKernel

Gen = Generator[Any, Any, Any]
NewPage = Callable[["MmKernel", Task, Page, int], Page | None]

MIGRATE_PASSES = 10


def new_page_any(k: "MmKernel", task: Task, page: Page, private: int) -> Page | None:
    """hotremove_migrate_alloc / new_node_page: any allocatable page (isolated blocks are
    excluded by the allocator, MIGRATE_ISOLATE)."""
    return alloc_page(k, task)


# --- remove_migration_ptes ------------------------------------------------------------------

@kfunc
def remove_migration_pte(k: "MmKernel", task: Task, new: Page, vma: Vma, addr: int,
                         old: Page) -> Gen:
    mm = vma.mm
    if not is_migration_entry(mm.ptes.get(addr)):      # unlocked peek
        return SWAP_AGAIN
    ptl = yield from pte_offset_map_lock(k, task, mm, addr)
    pte = mm.ptes.get(addr)
    if is_migration_entry(pte) and pte.page is old:
        get_page(new)
        set_pte_at(k, task, mm, addr, mk_pte(new, pte.write))
        if PageAnon(new):
            page_add_anon_rmap(new, vma, addr)
        else:
            page_add_file_rmap(new)
        k.tracer.mark(task, "restore pte", f"{mm.name}:{addr} -> {new.label}")
    spin_unlock(k, task, ptl)
    return SWAP_AGAIN


@kfunc
def remove_anon_migration_ptes(k: "MmKernel", task: Task, old: Page, new: Page) -> Gen:
    """Before e9995ef978a: "We hold the mmap_sem lock. So no need to call
    page_lock_anon_vma." page_anon_vma() is NULL for a KSM page, so its ptes stay."""
    ptr = page_anon_vma(new)
    if ptr is None:
        return
    yield from anon_vma_lock(k, task, ptr, "remove_anon_migration_ptes", new)
    yield from vma_walk(k, task, new, ptr.av.head,
                        lambda vma, a: remove_migration_pte(k, task, new, vma, a, old),
                        lambda ret: False)
    anon_vma_unlock(k, task, ptr, "remove_anon_migration_ptes", new)


@kfunc
def remove_file_migration_ptes(k: "MmKernel", task: Task, old: Page, new: Page) -> Gen:
    mapping = page_mapping(new)
    if mapping is None:
        return
    yield from spin_lock(k, task, mapping.i_mmap_lock)
    yield from vma_walk(k, task, new, mapping.i_mmap,
                        lambda vma, a: remove_migration_pte(k, task, new, vma, a, old),
                        lambda ret: False)
    spin_unlock(k, task, mapping.i_mmap_lock)


@kversion("remove_migration_ptes", "2.6.33")
def remove_migration_ptes_v2633(k: "MmKernel", task: Task, old: Page, new: Page) -> Gen:
    """e9995ef978a: "Get rid of all migration entries and replace them by references to the
    indicated page": rmap_walk(new, remove_migration_pte, old), KSM pages included."""
    yield from rmap_walk(k, task, new, remove_migration_pte, old)


@kversion("remove_migration_ptes", "before e9995ef978a")
def remove_migration_ptes_split(k: "MmKernel", task: Task, old: Page, new: Page) -> Gen:
    """Before e9995ef978a: split anon / file, the anon half through page_anon_vma (NULL for
    a KSM page, whose migration entries then stay)."""
    if PageAnon(new):
        yield from remove_anon_migration_ptes(k, task, old, new)
    else:
        yield from remove_file_migration_ptes(k, task, old, new)


# --- moving the page --------------------------------------------------------------------------

@kfunc
def migrate_page_move_mapping(k: "MmKernel", task: Task, mapping: AddressSpace | None,
                              newpage: Page, page: Page) -> Gen:
    if mapping is None:
        # anonymous page without swapcache: only our isolation reference may remain
        return 0 if page.count == 1 else EAGAIN
    yield from spin_lock(k, task, mapping.tree_lock)
    yield from k.step(task, k.costs.pte_op, mapping.tree_lock)
    expected = 2                                    # page cache + our isolation reference
    if page.count != expected or mapping.pages.get(page.index) is not page:
        spin_unlock(k, task, mapping.tree_lock)
        return EAGAIN
    # page_freeze_refs .. radix_tree_replace_slot .. page_unfreeze_refs, all under tree_lock
    get_page(newpage)
    mapping.pages[page.index] = newpage
    page.count = expected - 1
    spin_unlock(k, task, mapping.tree_lock)
    return 0


@kversion("migrate_page_copy", "2.6.33")
def migrate_page_copy_v2633(k: "MmKernel", task: Task, newpage: Page, page: Page) -> Gen:
    """e9995ef978a added ksm_migrate_page: the stable_node follows the page to its new pfn."""
    yield from k.step(task, k.costs.page_copy, newpage)      # copy_highpage
    newpage.content = page.content
    ksm.ksm_migrate_page(k, task, newpage, page)
    page.mapping = None


@kversion("migrate_page_copy", "before e9995ef978a")
def migrate_page_copy_no_ksm(k: "MmKernel", task: Task, newpage: Page, page: Page) -> Gen:
    """Without ksm_migrate_page: a KSM page's stable_node keeps the old pfn."""
    yield from k.step(task, k.costs.page_copy, newpage)      # copy_highpage
    newpage.content = page.content
    page.mapping = None


@kfunc
def migrate_page(k: "MmKernel", task: Task, mapping: AddressSpace | None, newpage: Page,
                 page: Page) -> Gen:
    rc = yield from migrate_page_move_mapping(k, task, mapping, newpage, page)
    if rc:
        return rc
    yield from k.variant.migrate_page_copy(k, task, newpage, page)
    return 0


@kfunc
def move_to_new_page(k: "MmKernel", task: Task, newpage: Page, page: Page) -> Gen:
    if not trylock_page(k, task, newpage):
        k.hooks.emit(VmBug(task, {"what": "BUG: newpage already locked",
                                 "page": newpage.label}))
        return EAGAIN
    newpage.index = page.index
    newpage.mapping = page.mapping                  # anon_vma+1 (maybe stale) or stable_node+3
    rc = yield from migrate_page(k, task, page_mapping(page), newpage, page)
    if rc == 0:
        yield from k.variant.remove_migration_ptes(k, task, page, newpage)
    else:
        newpage.mapping = None
    unlock_page(k, task, newpage)
    return rc


# --- the anon_vma reference of 2.6.35 and of the 2011 repair ------------------------------

def get_anon_vma(k: "MmKernel", task: Task, ptr: AnonVmaPtr, page: Page) -> None:
    """atomic_inc(&anon_vma->external_refcount) (get_anon_vma from 2.6.36 on): through a
    pointer that may be stale."""
    k.hooks.emit(AnonVmaAccess(task, ptr, "atomic_inc(external_refcount)", "unmap_and_move",
                               page, "external_refcount"))
    ptr.av.external_refcount += 1


@kfunc
def drop_anon_vma(k: "MmKernel", task: Task, ptr: AnonVmaPtr) -> Gen:
    """Drop the migration's external_refcount (atomic_dec_and_lock); the last one frees an
    anon_vma whose list emptied meanwhile."""
    yield from put_anon_vma_ref(k, task, ptr, "external_refcount", "drop_anon_vma")


# --- unmap_and_move / migrate_pages -----------------------------------------------------------

def ksm_page_migratable(k: "MmKernel", page: Page, offlining: bool) -> bool:
    """62b61f611eb: only memory hotremove (offlining, holding ksm_thread_mutex) migrates KSM
    pages; unmap_and_move tests it under the page lock, the NUMA paths skip them. Before it
    (the variant's ksm_migration_hotremove_only off), any path migrates them."""
    return not (PageKsm(page) and not offlining and k.variant.ksm_migration_hotremove_only)


# Each version of unmap_and_move is the kernel's function of that tree, line for line where
# the model has the state: a variant's table (sim.mm.variants) names the one it runs. They share
# the kernel's own head (allocate, "freed from under us", lock the page, the KSM test) and
# tail (unlock, put back), which no version changes.

def _unmap_and_move_head(k: "MmKernel", task: Task, get_new_page: NewPage, private: int,
                         page: Page, force: bool, offlining: bool
                         ) -> Generator[Any, Any, tuple[MigrationContext, Page | None, int]]:
    """Up to `lock_page`: (mig, newpage, rc); newpage None when it is over (rc returned)."""
    m = k.machine
    m.migration_serial += 1
    mig = MigrationContext(m.migration_serial, page, k.clock(), offlining)
    task.migration = mig
    k.hooks.emit(MigrationBegin(task, mig))
    newpage = get_new_page(k, task, page, private)
    if newpage is None:
        _migration_over(k, task, mig, ENOMEM, None)
        return mig, None, ENOMEM
    yield from k.step(task, k.costs.page_alloc, newpage)
    if page.count == 1:
        # "page was freed from under us. So we are done."
        _migration_over(k, task, mig, 0, newpage)
        yield from putback_lru_page(k, task, newpage)
        return mig, None, 0
    if not trylock_page(k, task, page):
        if not force:
            _migration_over(k, task, mig, EAGAIN, newpage)
            yield from putback_lru_page(k, task, newpage)
            return mig, None, EAGAIN
        yield from lock_page(k, task, page)
    return mig, newpage, EAGAIN


def _unmap_and_move_tail(k: "MmKernel", task: Task, mig: MigrationContext, page: Page,
                         newpage: Page, rc: int, pagelist: list[Page]) -> Gen:
    """From `unlock:`: the old page back on the LRU unless -EAGAIN (retried), the new one
    on the LRU if it was used, freed if not."""
    unlock_page(k, task, page)
    _migration_over(k, task, mig, rc, newpage)
    if rc != EAGAIN:
        if page in pagelist:
            pagelist.remove(page)
        yield from putback_lru_page(k, task, page)
    yield from putback_lru_page(k, task, newpage)
    k.count("migrations" if rc == 0 else f"migration rc {rc}")
    return rc


def _unmap_and_move_page(k: "MmKernel", task: Task, page: Page, newpage: Page) -> Gen:
    """The part every version shares once it may go on: unmap (migration entries), move,
    and on failure put the old page back in the ptes. -EAGAIN if it stayed mapped."""
    rc = EAGAIN
    if page.mapping is not None:
        yield from try_to_unmap(k, task, page, TTU_MIGRATION)
    if not page_mapped(page):
        rc = yield from move_to_new_page(k, task, newpage, page)
    if rc:
        yield from k.variant.remove_migration_ptes(k, task, page, page)
    return rc


@kversion("unmap_and_move", "2.6.33")
def unmap_and_move_v2633(k: "MmKernel", task: Task, get_new_page: NewPage, private: int,
                         page: Page, force: bool, offlining: bool,
                         pagelist: list[Page]) -> Gen:
    """mm/migrate.c (2.6.33) unmap_and_move: an anon page's anon_vma is kept from going back
    to the page allocator by rcu_read_lock alone ("This rcu_read_lock() delays freeing
    anon_vma pointer until the end of migration", dc386d4d1e9, 989f89c57e6)."""
    mig, newpage, rc = yield from _unmap_and_move_head(k, task, get_new_page, private, page,
                                                       force, offlining)
    if newpage is None:
        return rc
    if not ksm_page_migratable(k, page, offlining):
        rc = EBUSY
    else:
        yield from mem_cgroup_prepare_migration(k, task, page)
        rcu_locked = False
        if PageAnon(page):
            rcu_read_lock(k, task)
            rcu_locked = True
        rc = yield from _unmap_and_move_page(k, task, page, newpage)
        if rcu_locked:
            rcu_read_unlock(k, task)
    return (yield from _unmap_and_move_tail(k, task, mig, page, newpage, rc, pagelist))


@kversion("unmap_and_move", "2.6.33 without rcu_read_lock")
def unmap_and_move_no_rcu(k: "MmKernel", task: Task, get_new_page: NewPage, private: int,
                          page: Page, force: bool, offlining: bool,
                          pagelist: list[Page]) -> Gen:
    """2.6.33's unmap_and_move without its rcu_read_lock (as before dc386d4d1e9 and
    989f89c57e6): nothing keeps the anon_vma's slab page until remove_migration_ptes."""
    mig, newpage, rc = yield from _unmap_and_move_head(k, task, get_new_page, private, page,
                                                       force, offlining)
    if newpage is None:
        return rc
    if not ksm_page_migratable(k, page, offlining):
        rc = EBUSY
    else:
        yield from mem_cgroup_prepare_migration(k, task, page)
        rc = yield from _unmap_and_move_page(k, task, page, newpage)
    return (yield from _unmap_and_move_tail(k, task, mig, page, newpage, rc, pagelist))


@kversion("unmap_and_move", "2.6.35")
def unmap_and_move_v2635(k: "MmKernel", task: Task, get_new_page: NewPage, private: int,
                         page: Page, force: bool, offlining: bool,
                         pagelist: list[Page]) -> Gen:
    """mm/migrate.c (2.6.35) unmap_and_move on 2.6.33's anon_vma (3f6c82728f4, 7f60c214fd3,
    67b9509b2c6): rcu_read_lock; an unmapped anon page (no swap here) is not migrated; a
    mapped one's anon_vma is pinned by atomic_inc(&anon_vma->external_refcount), but the page
    can be unmapped and the anon_vma freed between the page_mapped() test and the increment,
    and page_anon_vma() is NULL for a KSM page."""
    mig, newpage, rc = yield from _unmap_and_move_head(k, task, get_new_page, private, page,
                                                       force, offlining)
    if newpage is None:
        return rc
    if not ksm_page_migratable(k, page, offlining):
        rc = EBUSY
    else:
        yield from mem_cgroup_prepare_migration(k, task, page)
        rcu_locked = False
        anon_vma: AnonVmaPtr | None = None
        skip = False                                # goto rcu_unlock: rc stays -EAGAIN
        if PageAnon(page):
            rcu_read_lock(k, task)
            rcu_locked = True
            mapped = page_mapped(page)
            k.hooks.emit(PageMappedTest(task, page, page_anon_vma(page), "unmap_and_move",
                                        mapped))
            if not mapped:
                skip = True
            else:
                yield from k.step(task, k.costs.lock_op, page)
                anon_vma = page_anon_vma(page)
                if anon_vma is None:
                    raise Oops(
                        "BUG: unable to handle kernel NULL pointer dereference "
                        "(atomic_inc of NULL->external_refcount)",
                        "mm/migrate.c (2.6.35) unmap_and_move: anon_vma = "
                        "page_anon_vma(page); atomic_inc(&anon_vma->external_refcount); "
                        "page_anon_vma() is NULL for a KSM page, and hot-remove migrates "
                        "mapped KSM pages")
                get_anon_vma(k, task, anon_vma, page)
        if not skip:
            rc = yield from _unmap_and_move_page(k, task, page, newpage)
        if anon_vma is not None:                    # drop_anon_vma
            yield from drop_anon_vma(k, task, anon_vma)
        if rcu_locked:
            rcu_read_unlock(k, task)
    return (yield from _unmap_and_move_tail(k, task, mig, page, newpage, rc, pagelist))


@kversion("unmap_and_move", "2.6.36.4 (1ce82b69e96c)")
def unmap_and_move_1ce82b69e96c(k: "MmKernel", task: Task, get_new_page: NewPage,
                                private: int, page: Page, force: bool, offlining: bool,
                                pagelist: list[Page]) -> Gen:
    """Hugh Dickins' repair, "mm: fix migration hangs on anon_vma lock" (1ce82b69e96c,
    stable 2.6.36.4), on 2.6.33's anon_vma: no rcu_read_lock; "Only page_lock_anon_vma()
    understands the subtleties of getting a hold on an anon_vma from outside one of its
    mms": page_lock_anon_vma + get_anon_vma; NULL for an unmapped page and for a KSM page,
    which are then not migrated (goto uncharge)."""
    mig, newpage, rc = yield from _unmap_and_move_head(k, task, get_new_page, private, page,
                                                       force, offlining)
    if newpage is None:
        return rc
    if not ksm_page_migratable(k, page, offlining):
        rc = EBUSY
    else:
        yield from mem_cgroup_prepare_migration(k, task, page)
        anon_vma: AnonVmaPtr | None = None
        skip = False                                # goto uncharge: rc stays -EAGAIN
        if PageAnon(page):
            anon_vma = yield from k.variant.page_lock_anon_vma(k, task, page)
            if anon_vma is not None:
                get_anon_vma(k, task, anon_vma, page)
                page_unlock_anon_vma(k, task, anon_vma)
            else:
                skip = True
        if not skip:
            rc = yield from _unmap_and_move_page(k, task, page, newpage)
        if anon_vma is not None:                    # drop_anon_vma
            yield from drop_anon_vma(k, task, anon_vma)
    return (yield from _unmap_and_move_tail(k, task, mig, page, newpage, rc, pagelist))


def _migration_over(k: "MmKernel", task: Task, mig: MigrationContext, rc: int,
                    newpage: Page | None) -> None:
    """The old page is done with (unlocked, or never locked): its ptes are final."""
    task.migration = None
    k.hooks.emit(MigrationEnd(task, mig, rc, newpage))


@kfunc
def migrate_pages(k: "MmKernel", task: Task, pagelist: list[Page], get_new_page: NewPage,
                  private: int, offlining: bool) -> Gen:
    """Up to 10 passes; from the third on, wait for page locks (force). Returns the number of
    pages not migrated, or -ENOMEM. Leftovers go back on the LRU."""
    nr_failed = 0
    retry = 1
    rc = 0
    for npass in range(MIGRATE_PASSES):
        if not retry:
            break
        retry = 0
        for page in list(pagelist):
            yield from k.cond_resched(task)
            r = yield from k.variant.unmap_and_move(k, task, get_new_page, private, page,
                                                    npass > 2, offlining, pagelist)
            if r == ENOMEM:
                rc = ENOMEM
                break
            if r == EAGAIN:
                retry += 1
            elif r != 0:
                nr_failed += 1
        if rc:
            break
    for page in list(pagelist):
        pagelist.remove(page)
        yield from putback_lru_page(k, task, page)
    return rc if rc else nr_failed + retry


@kfunc
def migrate_prep(k: "MmKernel", task: Task) -> Gen:
    """lru_add_drain_all: ~72 us on a 16-core machine (35282a2de4e)."""
    yield from k.spend(task, k.costs.migrate_prep)


# --- faulting on a migration entry ------------------------------------------------------------

@kfunc
def migration_entry_wait(k: "MmKernel", task: Task, mm: Any, vpn: int) -> Gen:
    ptl = yield from pte_offset_map_lock(k, task, mm, vpn)
    pte = mm.ptes.get(vpn)
    if not is_migration_entry(pte):
        spin_unlock(k, task, ptl)
        return
    page: Page = pte.page
    if page.lock.owner is None:
        # migration_entry_to_page: BUG_ON(!PageLocked(p)): a leftover migration entry
        spin_unlock(k, task, ptl)
        raise Oops(f"kernel BUG: migration entry for unlocked {page.label} at {mm.name}:{vpn}",
                   "include/linux/swapops.h (2.6.33) migration_entry_to_page: "
                   "BUG_ON(!PageLocked(p))")
    if not get_page_unless_zero(page):
        spin_unlock(k, task, ptl)
        return
    spin_unlock(k, task, ptl)
    yield from wait_on_page_locked(k, task, page)
    put_page(k, task, page)
