"""mm/ksm.c (2.6.33): ksmd, the stable and unstable trees, merging, rmap_walk_ksm (this
commit), ksm_migrate_page, fork/exit hooks and the memory-offline notifier.

Locks: ksm_thread_mutex (ksmd per batch, memory offlining) -> mmap_sem (read) -> page lock
(trylock) -> pte lock; ksm_mmlist_lock inside mmap_sem; a KSM page's lock protects its
stable_node's hlist. Trees are dicts keyed by page content (a red-black tree of memcmp order
in the kernel); a search costs log2(nodes) memcmps. rmap_item->address flag bits (STABLE_FLAG,
fixed only in 2018) are not modelled.

ksm.c and the core mm call each other (as through include/linux/ksm.h in the kernel): the
callers import this module object, and sim/mm/__init__.py says how the cycle resolves.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from sim.engine.kernel import kfunc
from sim.engine.locks import (down_read, down_write, lock_page, mutex_lock, mutex_unlock, spin_lock,
                     spin_unlock, trylock_page, unlock_page, up_read, up_write)
from sim.mm.objects import (VM_MERGEABLE, KsmState, MemBlock, Mm, MmSlot, Page, PageAnon,
                       PageKsm, Pte, RmapItem, StableNode, Vma, history, page_mapcount,
                       page_mapped, page_stable_node)
from sim.engine.rcu import rcu_read_lock, rcu_read_unlock
from sim.engine.task import Task
from sim.mm import EFAULT, SWAP_AGAIN, SWAP_FAIL
from sim.mm.events import AnonVmaAccess
from sim.mm.fork import mmdrop
from sim.mm.memory import handle_mm_fault
from sim.mm.mmap import find_vma
from sim.mm.page_alloc import get_page, get_page_unless_zero, put_page
from sim.mm.pgtable import mk_pte, pte_lockptr, pte_offset_map_lock, pte_present, set_pte_at
from sim.mm.rmap import (anon_vma_lock, anon_vma_unlock, page_add_anon_rmap, page_check_address,
                   page_address_in_vma, page_remove_rmap, put_anon_vma_ref, try_to_unmap_one)

if TYPE_CHECKING:
    from sim.mm.kernel import MmKernel

Gen = Generator[Any, Any, Any]


def _ksm(k: "MmKernel") -> KsmState:
    return k.machine.ksm


def ksm_test_exit(mm: Mm) -> bool:
    return mm.mm_users == 0


def _tree_depth(n: int) -> int:
    return max(1, math.ceil(math.log2(n + 1)))


# --- anon_vma references held by stable rmap_items ----------------------------------------

def hold_anon_vma(k: "MmKernel", task: Task, item: RmapItem, ptr: Any) -> None:
    k.hooks.emit(AnonVmaAccess(task, ptr, "atomic_inc(ksm_refcount)", "hold_anon_vma", None,
                               "ksm_refcount"))
    item.anon_vma = ptr
    ptr.av.ksm_refcount += 1


@kfunc
def drop_anon_vma(k: "MmKernel", task: Task, item: RmapItem) -> Gen:
    """Drop the rmap_item's ksm_refcount; the last one frees an anon_vma with an empty list."""
    if item.anon_vma is not None:
        yield from put_anon_vma_ref(k, task, item.anon_vma, "ksm_refcount", "drop_anon_vma")


# --- the stable tree ----------------------------------------------------------------------------

def free_stable_node(k: "MmKernel", task: Task, node: StableNode) -> None:
    node.freed = True
    history(node, k, task, "free")


@kfunc
def remove_node_from_stable_tree(k: "MmKernel", task: Task, node: StableNode) -> Gen:
    ksm = _ksm(k)
    for item in list(node.hlist):
        if len(node.hlist) > 1:
            ksm.pages_sharing -= 1
        else:
            ksm.pages_shared -= 1
        node.hlist.remove(item)
        yield from drop_anon_vma(k, task, item)
        item.stable = None
        yield from k.cond_resched(task)
    if ksm.stable.get(node.content) is node:
        del ksm.stable[node.content]
    free_stable_node(k, task, node)


@kfunc
def get_ksm_page(k: "MmKernel", task: Task, node: StableNode) -> Gen:
    """The "keyhole reference": the node holds no page reference; check under RCU that the
    page at kpfn is still this node's KSM page, else the node is stale and removed."""
    page = k.machine.pages[node.kpfn]
    rcu_read_lock(k, task)
    yield from k.step(task, k.costs.pte_op, page)
    if page.mapping is node and get_page_unless_zero(page):
        if page.mapping is node:
            rcu_read_unlock(k, task)
            return page
        put_page(k, task, page)
    rcu_read_unlock(k, task)
    yield from remove_node_from_stable_tree(k, task, node)
    return None


@kfunc
def stable_tree_search(k: "MmKernel", task: Task, page: Page) -> Gen:
    ksm = _ksm(k)
    if page_stable_node(page) is not None:          # ksm page forked
        get_page(page)
        return page
    yield from k.step(task, k.costs.memcmp * _tree_depth(len(ksm.stable)), page)
    node = ksm.stable.get(page.content)
    if node is None:
        return None
    tree_page = yield from get_ksm_page(k, task, node)
    if tree_page is None:
        return None
    if tree_page.content != page.content:
        put_page(k, task, tree_page)
        return None
    return tree_page


def stable_tree_insert(k: "MmKernel", task: Task, kpage: Page) -> StableNode | None:
    ksm = _ksm(k)
    if kpage.content in ksm.stable:
        return None          # another node with these contents: our page changed meanwhile
    node = StableNode(ksm.next_nid, kpage.pfn, kpage.content)
    ksm.next_nid += 1
    history(node, k, task, "alloc", kpfn=kpage.pfn)
    ksm.stable[kpage.content] = node
    kpage.mapping = node                                           # set_page_stable_node
    return node


def stable_tree_append(k: "MmKernel", item: RmapItem, node: StableNode) -> None:
    ksm = _ksm(k)
    item.stable = node
    item.unstable_seqnr = -1
    node.hlist.insert(0, item)                                     # hlist_add_head
    if len(node.hlist) > 1:
        ksm.pages_sharing += 1
    else:
        ksm.pages_shared += 1


# --- the unstable tree ------------------------------------------------------------------------

@kfunc
def follow_page(k: "MmKernel", task: Task, mm: Mm, addr: int) -> Gen:
    """follow_page(FOLL_GET): the present page at addr with a reference, or None."""
    ptl = yield from pte_offset_map_lock(k, task, mm, addr)
    pte = mm.ptes.get(addr)
    page = None
    if pte_present(pte):
        page = pte.page
        get_page(page)
    spin_unlock(k, task, ptl)
    return page


@kfunc
def get_mergeable_page(k: "MmKernel", task: Task, item: RmapItem) -> Gen:
    mm = item.mm
    page = None
    yield from down_read(k, task, mm.mmap_sem)
    if not ksm_test_exit(mm):
        vma = find_vma(mm, item.address)
        if vma is not None and vma.anon_vma is not None:
            page = yield from follow_page(k, task, mm, item.address)
            if page is not None and not PageAnon(page):
                put_page(k, task, page)
                page = None
    up_read(k, task, mm.mmap_sem)
    return page


@kfunc
def unstable_tree_search_insert(k: "MmKernel", task: Task, item: RmapItem, page: Page) -> Gen:
    ksm = _ksm(k)
    yield from k.step(task, k.costs.memcmp * _tree_depth(len(ksm.unstable)), page)
    tree_item = ksm.unstable.get(page.content)
    if tree_item is not None and tree_item is not item:
        tree_page = yield from get_mergeable_page(k, task, tree_item)
        if tree_page is None:
            return None
        if tree_page is page:              # don't substitute a ksm page for a forked page
            put_page(k, task, tree_page)
            return None
        if tree_page.content == page.content:
            return tree_item, tree_page
        put_page(k, task, tree_page)
    item.unstable_seqnr = ksm.seqnr
    item.unstable_key = page.content
    ksm.unstable[page.content] = item
    return None


@kfunc
def remove_rmap_item_from_tree(k: "MmKernel", task: Task, item: RmapItem) -> Gen:
    ksm = _ksm(k)
    node = item.stable
    if node is not None:
        page = yield from get_ksm_page(k, task, node)
        if page is not None:
            yield from lock_page(k, task, page)     # the KSM page's lock guards the hlist
            if item in node.hlist:
                node.hlist.remove(item)
            unlock_page(k, task, page)
            put_page(k, task, page)
            if node.hlist:
                ksm.pages_sharing -= 1
            else:
                ksm.pages_shared -= 1
            yield from drop_anon_vma(k, task, item)
            item.stable = None
    elif item.unstable_seqnr >= 0:
        if ksm.seqnr == item.unstable_seqnr and ksm.unstable.get(item.unstable_key) is item:
            del ksm.unstable[item.unstable_key]
        item.unstable_seqnr = -1
    yield from k.cond_resched(task)


# --- merging -----------------------------------------------------------------------------------

@kfunc
def write_protect_page(k: "MmKernel", task: Task, vma: Vma, page: Page) -> Gen:
    """Make the pte read-only; give up if someone else holds a reference (e.g. the page is
    isolated for migration): mapcount + 1 (ours) must equal page_count."""
    addr = page_address_in_vma(page, vma)
    if addr is None:
        return None
    mm = vma.mm
    if not (yield from page_check_address(k, task, page, mm, addr)):
        return None
    ptl = pte_lockptr(k, mm, addr)
    pte = mm.ptes[addr]
    if pte.write:
        yield from k.step(task, k.costs.tlb_flush, page)          # ptep_clear_flush
        if page_mapcount(page) + 1 != page.count:
            spin_unlock(k, task, ptl)
            return None
        set_pte_at(k, task, mm, addr, mk_pte(page, False))
    orig = mm.ptes[addr]
    spin_unlock(k, task, ptl)
    return orig


@kfunc
def replace_page(k: "MmKernel", task: Task, vma: Vma, page: Page, kpage: Page,
                 orig: Pte) -> Gen:
    mm = vma.mm
    addr = page_address_in_vma(page, vma)
    if addr is None:
        return EFAULT
    ptl = yield from pte_offset_map_lock(k, task, mm, addr)
    if mm.ptes.get(addr) != orig:
        spin_unlock(k, task, ptl)
        return EFAULT
    yield from k.step(task, k.costs.tlb_flush, page)              # ptep_clear_flush
    get_page(kpage)
    page_add_anon_rmap(kpage, vma, addr)
    set_pte_at(k, task, mm, addr, mk_pte(kpage, False))
    page_remove_rmap(page)
    put_page(k, task, page)
    spin_unlock(k, task, ptl)
    return 0


@kfunc
def try_to_merge_one_page(k: "MmKernel", task: Task, vma: Vma, page: Page,
                          kpage: Page | None) -> Gen:
    if page is kpage:                                              # ksm page forked
        return 0
    if not (vma.flags & VM_MERGEABLE) or not PageAnon(page):
        return EFAULT
    if not trylock_page(k, task, page):                            # never wait for it
        return EFAULT
    err = EFAULT
    orig = yield from write_protect_page(k, task, vma, page)
    if orig is not None:
        if kpage is None:
            page.mapping = _ksm(k).null_node  # set_page_stable_node(page, NULL): Anon -> Ksm
            err = 0
        elif page.content == kpage.content:                        # pages_identical
            yield from k.step(task, k.costs.memcmp, page)
            err = yield from replace_page(k, task, vma, page, kpage, orig)
    unlock_page(k, task, page)
    return err


@kfunc
def try_to_merge_with_ksm_page(k: "MmKernel", task: Task, item: RmapItem, page: Page,
                               kpage: Page | None) -> Gen:
    mm = item.mm
    err = EFAULT
    yield from down_read(k, task, mm.mmap_sem)
    if not ksm_test_exit(mm):
        vma = find_vma(mm, item.address)
        if vma is not None:
            err = yield from try_to_merge_one_page(k, task, vma, page, kpage)
            if not err:
                hold_anon_vma(k, task, item, vma.anon_vma)         # under mmap_sem
    up_read(k, task, mm.mmap_sem)
    return err


@kfunc
def break_ksm(k: "MmKernel", task: Task, vma: Vma, addr: int) -> Gen:
    """Write-fault until the pte no longer maps a KSM page (caller holds mmap_sem read)."""
    for _ in range(8):
        page = yield from follow_page(k, task, vma.mm, addr)
        if page is None:
            return
        ksm_page = PageKsm(page)
        put_page(k, task, page)
        if not ksm_page:
            return
        yield from handle_mm_fault(k, task, vma.mm, vma, addr, True)


@kfunc
def break_cow(k: "MmKernel", task: Task, item: RmapItem) -> Gen:
    mm = item.mm
    yield from drop_anon_vma(k, task, item)
    item.anon_vma = None
    yield from down_read(k, task, mm.mmap_sem)
    if not ksm_test_exit(mm):
        vma = find_vma(mm, item.address)
        if vma is not None and vma.flags & VM_MERGEABLE and vma.anon_vma is not None:
            yield from break_ksm(k, task, vma, item.address)
    up_read(k, task, mm.mmap_sem)


@kfunc
def try_to_merge_two_pages(k: "MmKernel", task: Task, item: RmapItem, page: Page,
                           tree_item: RmapItem, tree_page: Page) -> Gen:
    err = yield from try_to_merge_with_ksm_page(k, task, item, page, None)
    if not err:
        err = yield from try_to_merge_with_ksm_page(k, task, tree_item, tree_page, page)
        if err:
            yield from break_cow(k, task, item)
    return None if err else page


@kfunc
def cmp_and_merge_page(k: "MmKernel", task: Task, page: Page, item: RmapItem) -> Gen:
    yield from remove_rmap_item_from_tree(k, task, item)
    kpage = yield from stable_tree_search(k, task, page)
    if kpage is not None:
        err = yield from try_to_merge_with_ksm_page(k, task, item, page, kpage)
        if not err:
            yield from lock_page(k, task, kpage)
            node = page_stable_node(kpage)
            if node is not None:
                stable_tree_append(k, item, node)
            unlock_page(k, task, kpage)
            k.count("ksm merges into stable")
        put_page(k, task, kpage)
        return
    yield from k.step(task, k.costs.checksum, page)               # calc_checksum
    if item.oldchecksum != page.content:
        item.oldchecksum = page.content
        return
    found = yield from unstable_tree_search_insert(k, task, item, page)
    if found is None:
        return
    tree_item, tree_page = found
    kpage = yield from try_to_merge_two_pages(k, task, item, page, tree_item, tree_page)
    put_page(k, task, tree_page)
    if kpage is None:
        return
    yield from remove_rmap_item_from_tree(k, task, tree_item)
    yield from lock_page(k, task, kpage)
    node = stable_tree_insert(k, task, kpage)
    if node is not None:
        stable_tree_append(k, tree_item, node)
        stable_tree_append(k, item, node)
        k.count("ksm stable nodes created")
    unlock_page(k, task, kpage)
    if node is None:
        yield from break_cow(k, task, tree_item)
        yield from break_cow(k, task, item)


# --- the scan --------------------------------------------------------------------------------

def _slot_of(ksm: KsmState, mm: Mm) -> MmSlot | None:
    for s in ksm.slots:
        if s.mm is mm:
            return s
    return None


@kfunc
def remove_trailing_rmap_items(k: "MmKernel", task: Task, slot: MmSlot, from_addr: int) -> Gen:
    for addr in sorted(a for a in slot.rmap_items if a >= from_addr):
        item = slot.rmap_items.pop(addr)
        yield from remove_rmap_item_from_tree(k, task, item)


@kfunc
def get_next_rmap_item(k: "MmKernel", task: Task, slot: MmSlot, addr: int) -> Gen:
    """The rmap_item for addr; items for addresses passed over since the last one (their
    ptes are gone) are removed from the trees and freed."""
    for a in sorted(a for a in slot.rmap_items if slot.scanned_to <= a < addr):
        item = slot.rmap_items.pop(a)
        yield from remove_rmap_item_from_tree(k, task, item)
    slot.scanned_to = addr + 1
    item = slot.rmap_items.get(addr)
    if item is None:
        item = slot.rmap_items[addr] = RmapItem(slot.mm, addr)
    return item


@kfunc
def scan_get_next_rmap_item(k: "MmKernel", task: Task) -> Gen:
    ksm = _ksm(k)
    if not ksm.slots:
        return None
    if ksm.cursor is None:                                         # a new full scan
        ksm.unstable = {}
        yield from spin_lock(k, task, ksm.mmlist_lock)
        ksm.cursor = 0
        ksm.address = 0
        for s in ksm.slots:
            s.scanned_to = 0
        spin_unlock(k, task, ksm.mmlist_lock)
    while True:
        if ksm.cursor is None or ksm.cursor >= len(ksm.slots):
            ksm.cursor = None
            ksm.seqnr += 1
            return None
        slot = ksm.slots[ksm.cursor]
        mm = slot.mm
        yield from down_read(k, task, mm.mmap_sem)
        if not ksm_test_exit(mm):
            for vma in list(mm.vmas):
                if vma.end <= ksm.address or not vma.flags & VM_MERGEABLE:
                    continue
                if ksm.address < vma.start:
                    ksm.address = vma.start
                if vma.anon_vma is None:
                    ksm.address = vma.end
                    continue
                while ksm.address < vma.end:
                    if ksm_test_exit(mm):
                        break
                    addr = ksm.address
                    ksm.address += 1
                    if addr not in mm.ptes:
                        continue
                    page = yield from follow_page(k, task, mm, addr)
                    if page is not None and PageAnon(page):
                        item = yield from get_next_rmap_item(k, task, slot, addr)
                        up_read(k, task, mm.mmap_sem)
                        return item, page
                    if page is not None:
                        put_page(k, task, page)
        if ksm_test_exit(mm):
            ksm.address = 0
            slot.scanned_to = 0
        yield from remove_trailing_rmap_items(k, task, slot, slot.scanned_to)
        yield from spin_lock(k, task, ksm.mmlist_lock)
        if ksm.address == 0:
            # nothing mergeable left (or the mm exited): drop the slot and its mm reference
            ksm.slots.pop(ksm.cursor)
            spin_unlock(k, task, ksm.mmlist_lock)
            mm.mergeable = False
            up_read(k, task, mm.mmap_sem)
            mmdrop(k, mm)
        else:
            ksm.cursor += 1
            spin_unlock(k, task, ksm.mmlist_lock)
            up_read(k, task, mm.mmap_sem)
        ksm.address = 0


@kfunc
def ksm_do_scan(k: "MmKernel", task: Task, scan_npages: int) -> Gen:
    for _ in range(scan_npages):
        yield from k.cond_resched(task)
        res = yield from scan_get_next_rmap_item(k, task)
        if res is None:
            return
        item, page = res
        if not PageKsm(page) or item.stable is None:
            yield from cmp_and_merge_page(k, task, page, item)
        put_page(k, task, page)


@kfunc
def ksm_scan_thread(k: "MmKernel", task: Task) -> Gen:
    """ksmd: a batch of pages_to_scan under ksm_thread_mutex, then sleep_millisecs."""
    ksm = _ksm(k)
    while True:
        yield from mutex_lock(k, task, ksm.thread_mutex)
        if ksm.run and ksm.slots:
            yield from ksm_do_scan(k, task, ksm.pages_to_scan)
        mutex_unlock(k, task, ksm.thread_mutex)
        yield from k.sleep(task, ksm.sleep_us)


# --- rmap walks over a KSM page -------------------------------------------------------------

RmapOne = Callable[..., Gen]


def _ksm_walk(k: "MmKernel", task: Task, page: Page, passes: tuple[int, ...], visit: RmapOne,
              stop: Callable[[int], bool], via: str) -> Gen:
    node = page_stable_node(page)
    ret = SWAP_AGAIN
    for search_new_forks in passes:
        for item in list(node.hlist):
            ptr = item.anon_vma
            yield from anon_vma_lock(k, task, ptr, via, page)
            for vma in list(ptr.av.head):
                yield from k.step(task, k.costs.vma_visit, vma)
                if not vma.start <= item.address < vma.end:
                    continue
                # pass 0: the vma of the rmap_item's own mm; pass 1: other mms covering the
                # address, i.e. children forked since ksmd merged (they have no rmap_item)
                if (item.mm is vma.mm) == bool(search_new_forks):
                    continue
                ret = yield from visit(vma, item.address)
                if stop(ret):
                    anon_vma_unlock(k, task, ptr, via, page)
                    return ret
            anon_vma_unlock(k, task, ptr, via, page)
    return ret


@kfunc
def rmap_walk_ksm(k: "MmKernel", task: Task, page: Page, rmap_one: RmapOne, arg: Any) -> Gen:
    if page_stable_node(page) is None:
        return SWAP_AGAIN
    return (yield from _ksm_walk(
        k, task, page, k.variant.rmap_walk_ksm_passes,
        lambda vma, addr: rmap_one(k, task, page, vma, addr, arg),
        lambda ret: ret != SWAP_AGAIN, "rmap_walk_ksm"))


@kfunc
def try_to_unmap_ksm(k: "MmKernel", task: Task, page: Page, flags: int) -> Gen:
    if page_stable_node(page) is None:
        return SWAP_FAIL
    return (yield from _ksm_walk(
        k, task, page, (0, 1),
        lambda vma, addr: try_to_unmap_one(k, task, page, vma, addr, flags),
        lambda ret: ret != SWAP_AGAIN or not page_mapped(page), "try_to_unmap_ksm"))


def ksm_migrate_page(k: "MmKernel", task: Task, newpage: Page, oldpage: Page) -> None:
    """Both pages locked: the stable_node follows its page to the new pfn."""
    node = page_stable_node(newpage)
    if node is not None:
        node.kpfn = newpage.pfn
        history(node, k, task, "ksm_migrate_page", kpfn=newpage.pfn, old=oldpage.pfn)


# --- mm life cycle hooks -------------------------------------------------------------------

@kfunc
def __ksm_enter(k: "MmKernel", task: Task, mm: Mm) -> Gen:
    """New mm_slot just behind the scan cursor ("let the area settle down")."""
    ksm = _ksm(k)
    slot = MmSlot(mm)
    yield from spin_lock(k, task, ksm.mmlist_lock)
    if ksm.cursor is None:
        ksm.slots.append(slot)
    else:
        ksm.slots.insert(ksm.cursor, slot)
        ksm.cursor += 1
    spin_unlock(k, task, ksm.mmlist_lock)
    mm.mergeable = True
    mm.mm_count += 1


@kfunc
def ksm_madvise(k: "MmKernel", task: Task, mm: Mm, vma: Vma) -> Gen:
    """MADV_MERGEABLE (caller holds mmap_sem)."""
    vma.flags |= VM_MERGEABLE
    if not mm.mergeable:
        yield from __ksm_enter(k, task, mm)


@kfunc
def ksm_fork(k: "MmKernel", task: Task, mm: Mm, oldmm: Mm) -> Gen:
    if oldmm.mergeable:
        yield from __ksm_enter(k, task, mm)


@kfunc
def __ksm_exit(k: "MmKernel", task: Task, mm: Mm) -> Gen:
    ksm = _ksm(k)
    easy_to_free = False
    yield from spin_lock(k, task, ksm.mmlist_lock)
    slot = _slot_of(ksm, mm)
    if slot is not None and (ksm.cursor is None or ksm.slots[ksm.cursor] is not slot):
        i = ksm.slots.index(slot)
        if not slot.rmap_items:
            ksm.slots.pop(i)
            if ksm.cursor is not None and i < ksm.cursor:
                ksm.cursor -= 1
            easy_to_free = True
        else:
            # list_move behind the cursor: ksmd visits it next and frees its rmap_items
            ksm.slots.pop(i)
            if ksm.cursor is None:
                ksm.slots.insert(0, slot)
            else:
                if i < ksm.cursor:
                    ksm.cursor -= 1
                ksm.slots.insert(ksm.cursor + 1, slot)
    spin_unlock(k, task, ksm.mmlist_lock)
    if easy_to_free:
        mm.mergeable = False
        mmdrop(k, mm)
    elif slot is not None:
        # synchronise with any break_cow before the page tables go
        yield from down_write(k, task, mm.mmap_sem)
        up_write(k, task, mm.mmap_sem)


@kfunc
def ksm_exit(k: "MmKernel", task: Task, mm: Mm) -> Gen:
    if mm.mergeable:
        yield from __ksm_exit(k, task, mm)


@kfunc
def ksm_memory_callback(k: "MmKernel", task: Task, action: str, blk: MemBlock) -> Gen:
    """Going offline: lock out ksmd (and sysfs run=2) with ksm_thread_mutex until the block
    is offline or the offlining is cancelled; prune stable_nodes left pointing into it."""
    ksm = _ksm(k)
    if action == "MEM_GOING_OFFLINE":
        yield from mutex_lock(k, task, ksm.thread_mutex)
        return
    if action == "MEM_OFFLINE":
        lo, hi = blk.start_pfn, blk.start_pfn + blk.npages
        while True:
            node = next((n for n in ksm.stable.values() if lo <= n.kpfn < hi), None)
            if node is None:                                       # ksm_check_stable_tree
                break
            yield from remove_node_from_stable_tree(k, task, node)
    mutex_unlock(k, task, ksm.thread_mutex)
