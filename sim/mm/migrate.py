"""mm/migrate.c (2.6.33): migrate_pages, unmap_and_move, move_to_new_page,
remove_migration_ptes (via rmap_walk since this commit), migration_entry_wait.

Lock order: old page lock -> newpage lock (trylock) -> mapping->tree_lock / anon_vma->lock
-> pte lock. Migration entries hold no _mapcount and no _count.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from ..engine import kfunc
from ..locks import (lock_page, spin_lock, spin_unlock, trylock_page, unlock_page,
                     wait_on_page_locked)
from ..objects import (AddressSpace, AnonVmaPtr, MigrationContext, Page, PageAnon, PageKsm,
                       Vma, page_anon_vma, page_mapped, page_mapping)
from ..rcu import rcu_read_lock, rcu_read_unlock
from ..task import Task
from . import EAGAIN, EBUSY, ENOMEM, SWAP_AGAIN, TTU_MIGRATION, Oops, ksm
from .events import AnonVmaAccess, MigrationBegin, MigrationEnd, PageMappedTest
from .memcontrol import mem_cgroup_prepare_migration
from .page_alloc import alloc_page, get_page, get_page_unless_zero, put_page
from .pgtable import is_migration_entry, mk_pte, pte_offset_map_lock, set_pte_at
from .rmap import (anon_vma_lock, anon_vma_unlock, page_add_anon_rmap, page_add_file_rmap,
                   page_lock_anon_vma, page_unlock_anon_vma, put_anon_vma_ref, rmap_walk,
                   try_to_unmap, vma_walk)
from .vmscan import putback_lru_page

if TYPE_CHECKING:
    from .kernel import MmKernel

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
    """Before this commit: "We hold the mmap_sem lock. So no need to call
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


@kfunc
def remove_migration_ptes(k: "MmKernel", task: Task, old: Page, new: Page) -> Gen:
    if k.variant.remove_migration_ptes == "rmap_walk":
        yield from rmap_walk(k, task, new, remove_migration_pte, old)
    elif PageAnon(new):
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


@kfunc
def migrate_page_copy(k: "MmKernel", task: Task, newpage: Page, page: Page) -> Gen:
    yield from k.step(task, k.costs.page_copy, newpage)      # copy_highpage
    newpage.content = page.content
    if k.variant.ksm_migrate_page:
        ksm.ksm_migrate_page(k, task, newpage, page)
    page.mapping = None


@kfunc
def migrate_page(k: "MmKernel", task: Task, mapping: AddressSpace | None, newpage: Page,
                 page: Page) -> Gen:
    rc = yield from migrate_page_move_mapping(k, task, mapping, newpage, page)
    if rc:
        return rc
    yield from migrate_page_copy(k, task, newpage, page)
    return 0


@kfunc
def move_to_new_page(k: "MmKernel", task: Task, newpage: Page, page: Page) -> Gen:
    if not trylock_page(k, task, newpage):
        k.violations.report("invariant", [task], {"what": "BUG: newpage already locked",
                                                  "page": newpage.label})
        return EAGAIN
    newpage.index = page.index
    newpage.mapping = page.mapping                  # anon_vma+1 (maybe stale) or stable_node+3
    rc = yield from migrate_page(k, task, page_mapping(page), newpage, page)
    if rc == 0:
        yield from remove_migration_ptes(k, task, page, newpage)
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

@kfunc
def unmap_and_move(k: "MmKernel", task: Task, get_new_page: NewPage, private: int, page: Page,
                   force: bool, offlining: bool, pagelist: list[Page]) -> Gen:
    """mm/migrate.c unmap_and_move. How it keeps the page's anon_vma usable until
    remove_migration_ptes is the variant's migrate_anon_vma_pin (sim.variants)."""
    m = k.machine
    m.migration_serial += 1
    mig = MigrationContext(m.migration_serial, page, k.clock(), offlining)
    task.migration = mig
    k.hooks.emit(MigrationBegin(task, mig))
    newpage = get_new_page(k, task, page, private)
    if newpage is None:
        _migration_over(k, task, mig, ENOMEM, None)
        return ENOMEM
    yield from k.step(task, k.costs.page_alloc, newpage)
    rc = 0
    if page.count == 1:
        # "page was freed from under us. So we are done."
        _migration_over(k, task, mig, rc, newpage)
        yield from putback_lru_page(k, task, newpage)
        return rc
    rc = EAGAIN
    if not trylock_page(k, task, page):
        if not force:
            _migration_over(k, task, mig, rc, newpage)
            yield from putback_lru_page(k, task, newpage)
            return rc
        yield from lock_page(k, task, page)
    if (PageKsm(page) and not offlining and k.variant.ksm_migration_hotremove_only):
        # only memory hotremove, holding ksm_thread_mutex, may migrate KSM pages
        rc = EBUSY
    else:
        yield from mem_cgroup_prepare_migration(k, task, page)
        pin = k.variant.migrate_anon_vma_pin
        rcu_locked = False
        anon_vma: AnonVmaPtr | None = None
        skip = False                    # goto rcu_unlock / uncharge: rc stays -EAGAIN
        if PageAnon(page):
            if pin in ("rcu", "refcount"):
                # 2.6.33: "This rcu_read_lock() delays freeing anon_vma pointer until the
                # end of migration" (dc386d4d1e9, 989f89c57e6)
                rcu_read_lock(k, task)
                rcu_locked = True
            if pin == "refcount":
                # 2.6.35: unmapped anon pages (no swap here) are not migrated; a mapped one's
                # anon_vma is pinned, but it can be unmapped and freed between the
                # page_mapped() test and the atomic_inc
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
            elif pin == "lock_get":
                # 1ce82b69e96c: "Only page_lock_anon_vma() understands the subtleties of
                # getting a hold on an anon_vma from outside one of its mms." NULL for an
                # unmapped page and for a KSM page: not migrated (goto uncharge)
                anon_vma = yield from page_lock_anon_vma(k, task, page)
                if anon_vma is not None:
                    get_anon_vma(k, task, anon_vma, page)
                    page_unlock_anon_vma(k, task, anon_vma)
                else:
                    skip = True
        if not skip:
            if page.mapping is not None:
                yield from try_to_unmap(k, task, page, TTU_MIGRATION)
            if not page_mapped(page):
                rc = yield from move_to_new_page(k, task, newpage, page)
            if rc:
                yield from remove_migration_ptes(k, task, page, page)
        if anon_vma is not None:                    # drop the reference we took
            yield from drop_anon_vma(k, task, anon_vma)
        if rcu_locked:
            rcu_read_unlock(k, task)
    unlock_page(k, task, page)
    _migration_over(k, task, mig, rc, newpage)
    if rc != EAGAIN:
        if page in pagelist:
            pagelist.remove(page)
        yield from putback_lru_page(k, task, page)
    # a migrated newpage goes on the LRU; an unused one is freed
    yield from putback_lru_page(k, task, newpage)
    k.count("migrations" if rc == 0 else f"migration rc {rc}")
    return rc


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
            r = yield from unmap_and_move(k, task, get_new_page, private, page, npass > 2,
                                          offlining, pagelist)
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
