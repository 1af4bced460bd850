"""mm/memory.c: page faults, zapping (exit/munmap) and copying (fork) page tables.

Simplifications: a first-touch read fault allocates a page like a write fault (the zero page
is not modelled); no swap, so the only non-present ptes are migration entries.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from sim.engine.kernel import kfunc
from sim.engine.locks import lock_page, spin_lock, spin_unlock, trylock_page, unlock_page
from sim.mm.objects import Mm, Page, PageAnon, PageKsm, Vma, is_cow_mapping, page_mapcount
from sim.engine.task import Task
from sim.mm.migrate import migration_entry_wait
from sim.mm.page_alloc import alloc_page, get_page, put_page
from sim.mm.pgtable import (is_hwpoison_entry, is_migration_entry, make_migration_entry, mk_pte,
                      pte_clear, pte_lockptr,
                      pte_offset_map_lock, pte_present, pte_tables, set_pte_at)
from sim.mm.rmap import (anon_vma_prepare, page_add_file_rmap, page_add_new_anon_rmap, page_dup_rmap,
                   page_remove_rmap)
from sim.mm.tlb import MmuGather, tlb_finish_mmu, tlb_gather_mmu, tlb_remove_page

if TYPE_CHECKING:
    from sim.mm.kernel import MmKernel

Gen = Generator[Any, Any, Any]

VM_FAULT_OOM = 1
VM_FAULT_HWPOISON = 0x0010   # include/linux/mm.h: the arch fault handler sends SIGBUS
ZAP_BLOCK_PAGES = 8          # ZAP_BLOCK_SIZE with CONFIG_PREEMPT: 8 pages of zap work
COPY_PROGRESS_BREAK = 32     # copy_pte_range checks for a lock break every 32 progress units


# --- faults -----------------------------------------------------------------------------------

@kfunc
def do_anonymous_page(k: "MmKernel", task: Task, mm: Mm, vma: Vma, vpn: int) -> Gen:
    yield from anon_vma_prepare(k, task, vma)
    yield from k.step(task, k.costs.page_alloc)
    page = alloc_page(k, task)
    if page is None:
        return VM_FAULT_OOM
    page.content = k.machine.new_content(mm, vpn)
    ptl = yield from pte_offset_map_lock(k, task, mm, vpn)
    if vpn in mm.ptes:
        spin_unlock(k, task, ptl)
        put_page(k, task, page)
        return 0
    page_add_new_anon_rmap(page, vma, vpn)
    set_pte_at(k, task, mm, vpn, mk_pte(page, True))
    spin_unlock(k, task, ptl)
    return 0


@kfunc
def do_linear_fault(k: "MmKernel", task: Task, mm: Mm, vma: Vma, vpn: int) -> Gen:
    """__do_fault for a read fault on a private file mapping: map the page-cache page."""
    mapping = vma.file
    assert mapping is not None
    index = vma.pgoff + (vpn - vma.start)
    page = mapping.pages.get(index)
    if page is None or page.free:
        yield from k.step(task, k.costs.page_alloc)
        page = alloc_page(k, task)
        if page is None:
            return VM_FAULT_OOM
        page.content = k.machine.file_content(mapping, index)
        page.index = index
        yield from spin_lock(k, task, mapping.tree_lock)       # add_to_page_cache_lru
        page.mapping = mapping
        mapping.pages[index] = page
        get_page(page)                                           # the page cache's reference
        spin_unlock(k, task, mapping.tree_lock)
        page.lru = True
        put_page(k, task, page)                                  # alloc ref -> cache ref only
    get_page(page)
    ptl = yield from pte_offset_map_lock(k, task, mm, vpn)
    if vpn in mm.ptes:
        spin_unlock(k, task, ptl)
        put_page(k, task, page)
        return 0
    page_add_file_rmap(page)
    set_pte_at(k, task, mm, vpn, mk_pte(page, False))
    spin_unlock(k, task, ptl)
    return 0


@kfunc
def do_wp_page(k: "MmKernel", task: Task, mm: Mm, vma: Vma, vpn: int) -> Gen:
    """Write to a write-protected present pte: reuse an exclusively mapped anon page, else
    break COW into a new copy (always for KSM pages)."""
    ptl = yield from pte_offset_map_lock(k, task, mm, vpn)
    orig = mm.ptes.get(vpn)
    if not pte_present(orig) or orig.write:
        spin_unlock(k, task, ptl)
        return 0
    old: Page = orig.page
    if PageAnon(old) and not PageKsm(old):
        if not trylock_page(k, task, old):
            get_page(old)
            spin_unlock(k, task, ptl)
            yield from lock_page(k, task, old)
            yield from spin_lock(k, task, ptl)
            if mm.ptes.get(vpn) != orig:
                unlock_page(k, task, old)
                put_page(k, task, old)
                spin_unlock(k, task, ptl)
                return 0
            put_page(k, task, old)
        reuse = page_mapcount(old) <= 1                 # reuse_swap_page
        unlock_page(k, task, old)
        if reuse:
            set_pte_at(k, task, mm, vpn, mk_pte(old, True))
            spin_unlock(k, task, ptl)
            return 0
    get_page(old)
    spin_unlock(k, task, ptl)
    yield from anon_vma_prepare(k, task, vma)
    yield from k.step(task, k.costs.page_alloc)
    new = alloc_page(k, task)
    if new is None:
        put_page(k, task, old)
        return VM_FAULT_OOM
    yield from k.step(task, k.costs.page_copy, new)            # cow_user_page
    new.content = old.content
    yield from spin_lock(k, task, ptl)
    yield from k.step(task, k.costs.pte_op, ptl)
    if mm.ptes.get(vpn) == orig:
        page_add_new_anon_rmap(new, vma, vpn)
        set_pte_at(k, task, mm, vpn, mk_pte(new, True))
        page_remove_rmap(old)
        put_page(k, task, old)                                 # the pte's reference
        new = None
    spin_unlock(k, task, ptl)
    if new is not None:
        put_page(k, task, new)
    put_page(k, task, old)
    return 0


@kfunc
def do_swap_page(k: "MmKernel", task: Task, mm: Mm, vma: Vma, vpn: int) -> Gen:
    """No swap: the non-present ptes are non_swap_entry()s. A migration entry: wait for the
    migration, then retry; a hwpoison entry: VM_FAULT_HWPOISON [v2.6.33 mm/memory.c
    do_swap_page]."""
    pte = mm.ptes.get(vpn)
    if is_migration_entry(pte):
        yield from migration_entry_wait(k, task, mm, vpn)
    elif is_hwpoison_entry(pte):
        return VM_FAULT_HWPOISON
    return 0


@kfunc
def handle_mm_fault(k: "MmKernel", task: Task, mm: Mm, vma: Vma, vpn: int, write: bool) -> Gen:
    pte = mm.ptes.get(vpn)                                     # unlocked peek, as the kernel
    if pte is None:
        if vma.file is not None:
            return (yield from do_linear_fault(k, task, mm, vma, vpn))
        return (yield from do_anonymous_page(k, task, mm, vma, vpn))
    if is_migration_entry(pte) or is_hwpoison_entry(pte):
        return (yield from do_swap_page(k, task, mm, vma, vpn))
    if write and not pte.write:
        return (yield from do_wp_page(k, task, mm, vma, vpn))
    ptl = yield from pte_offset_map_lock(k, task, mm, vpn)     # spurious: just mark young
    spin_unlock(k, task, ptl)
    return 0


# --- unmapping ------------------------------------------------------------------------------

@kfunc
def zap_pte_range(k: "MmKernel", task: Task, tlb: MmuGather, vma: Vma, vpns: list[int]) -> Gen:
    """Clear a run of ptes under their pte lock. Present: page_remove_rmap and into the
    mmu_gather. Migration entries: free_swap_and_cache returns 1 for them, the pte is just
    cleared, the migrating page untouched, and nobody waits for the migration."""
    mm = vma.mm
    ptl = pte_lockptr(k, mm, vpns[0])
    yield from spin_lock(k, task, ptl)
    for vpn in vpns:
        yield from k.step(task, k.costs.pte_op, ptl)
        pte = pte_clear(k, task, mm, vpn)
        if pte_present(pte):
            page_remove_rmap(pte.page)
            tlb_remove_page(k, task, tlb, pte.page)
        elif is_migration_entry(pte):
            k.tracer.mark(task, "zap migration entry", f"{mm.name}:{vpn} -> {pte.page.label}")
    spin_unlock(k, task, ptl)


@kfunc
def unmap_vmas(k: "MmKernel", task: Task, tlb: MmuGather, vmas: list[Vma]) -> Gen:
    """Zap in blocks of ZAP_BLOCK_PAGES present ptes; between blocks, tlb_finish_mmu,
    cond_resched (a preemption point) and tlb_gather_mmu again."""
    for vma in vmas:
        mm = vma.mm
        blocks = [vpns[i:i + ZAP_BLOCK_PAGES] for vpns in pte_tables(mm, vma.start, vma.end)
                  for i in range(0, len(vpns), ZAP_BLOCK_PAGES)]
        for n, block in enumerate(blocks, 1):
            yield from zap_pte_range(k, task, tlb, vma, block)
            if n < len(blocks):
                tlb_finish_mmu(k, task, tlb)
                yield from k.cond_resched(task)
                tlb.mm = mm
                task.preempt_count += 1                        # tlb_gather_mmu again


# --- fork ------------------------------------------------------------------------------------

@kfunc
def copy_one_pte(k: "MmKernel", task: Task, dst: Mm, src: Mm, vma: Vma, vpn: int) -> Gen:
    pte = src.ptes.get(vpn)
    if pte is None:
        return
    yield from k.step(task, k.costs.pte_op)
    cow = is_cow_mapping(vma.flags)
    if is_migration_entry(pte):
        # swap_duplicate() is 0 for a migration entry; a write entry in a COW mapping is made
        # read in the parent too; the child gets the same entry, with no ref and no mapcount.
        if pte.write and cow:
            pte = make_migration_entry(pte.page, False, pte.tag)
            set_pte_at(k, task, src, vpn, pte)
        set_pte_at(k, task, dst, vpn, pte)
        k.tracer.mark(task, "copy migration entry", f"{dst.name}:{vpn} -> {pte.page.label}")
        return
    if is_hwpoison_entry(pte):
        set_pte_at(k, task, dst, vpn, pte)          # a non_swap_entry: copied as it is
        return
    page = pte.page
    if cow and pte.write:
        pte = mk_pte(page, False)
        set_pte_at(k, task, src, vpn, pte)                        # ptep_set_wrprotect
    get_page(page)
    page_dup_rmap(page)
    set_pte_at(k, task, dst, vpn, pte)


@kfunc
def copy_pte_range(k: "MmKernel", task: Task, dst: Mm, src: Mm, vma: Vma,
                   vpns: list[int]) -> Gen:
    """dst pte lock, then src pte lock nested; lock break every 32 progress units when
    someone waits on either lock or a reschedule is due."""
    i = 0
    while i < len(vpns):
        dst_ptl = pte_lockptr(k, dst, vpns[i])
        src_ptl = pte_lockptr(k, src, vpns[i])
        yield from spin_lock(k, task, dst_ptl)
        yield from spin_lock(k, task, src_ptl, subclass=1)     # SINGLE_DEPTH_NESTING
        progress = 0
        while i < len(vpns):
            if progress >= COPY_PROGRESS_BREAK:
                progress = 0
                if task.need_resched or src_ptl.waiters or dst_ptl.waiters:
                    break
            yield from copy_one_pte(k, task, dst, src, vma, vpns[i])
            progress += 8
            i += 1
        spin_unlock(k, task, src_ptl)
        spin_unlock(k, task, dst_ptl)
        yield from k.cond_resched(task)


@kfunc
def copy_page_range(k: "MmKernel", task: Task, dst: Mm, src: Mm, vma: Vma) -> Gen:
    # "Don't copy ptes where a page fault will fill them correctly": a vma without an
    # anon_vma (none here is VM_HUGETLB, VM_NONLINEAR, VM_PFNMAP or VM_INSERTPAGE)
    if vma.anon_vma is None:
        return 0
    for vpns in pte_tables(src, vma.start, vma.end):
        yield from copy_pte_range(k, task, dst, src, vma, vpns)
    return 0


__all__ = ["handle_mm_fault", "do_anonymous_page", "do_wp_page", "do_linear_fault",
           "do_swap_page", "zap_pte_range", "unmap_vmas", "copy_page_range", "copy_pte_range",
           "copy_one_pte", "tlb_gather_mmu", "tlb_finish_mmu"]
