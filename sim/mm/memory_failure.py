"""mm/memory-failure.c (2.6.33): soft_offline_page and __memory_failure (hwpoison).

Soft offline migrates a page that had corrected errors away and poisons the old one; it is
the second migration caller (after memory hot-remove) that holds no mmap_sem of the page's
owners: it finds the page by pfn (sysfs) or through get_user_pages_fast (madvise, before
sys_madvise takes mmap_sem), takes the page lock only to test PG_hwpoison and to try an
invalidation, drops its own reference, and then isolates and migrates the page through
migrate_pages(..., offlining=0), so a KSM page is refused by unmap_and_move.

__memory_failure poisons a page, takes a reference and the page lock, and holds both to the
end; under the lock, hwpoison_user_mappings refuses a KSM page (SWAP_FAIL: "cannot unmap page,
give up", -EBUSY), collects the processes to kill (collect_procs_anon: tasklist_lock ->
page_lock_anon_vma, which is NULL for a KSM page or an unmapped one), unmaps the page with
try_to_unmap (hwpoison entries) and kills the collected processes.

Sources: [v2.6.33 mm/memory-failure.c]: get_any_page, soft_offline_page, shake_page,
__memory_failure, hwpoison_user_mappings, collect_procs(_anon, _file), add_to_kill,
kill_procs_ao, page_action and the error_states table; line numbers in docs/kernel.md.

Simplifications (README "Model limits"): no swap cache, writeback, mlock, huge or slab pages,
so error_states reduces to its LRU rows and its catch-all; PG_dirty is PageAnon (every heap
page is written when it is first faulted, and try_to_unmap_one moves a dirty pte's bit to the
page); hwpoison_filter and unpoison_memory are not modelled (PG_hwpoison is never cleared);
lock_system_sleep is a no-op (no CONFIG_HIBERNATION) and set_migratetype_isolate, which takes
zone->lock, is one step; tasklist_lock (an rwlock, read side) is a spinlock stand-in: only
collect_procs takes it in the model, so no reader ever waits for another.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sim.engine.kernel import kfunc
from sim.engine.locks import lock_page, spin_lock, spin_unlock, unlock_page
from sim.mm.objects import Page, PageAnon, PageHWPoison, PageKsm, Vma, page_mapped, page_mapping
from sim.engine.task import Task
from sim.mm import (EBUSY, EIO, ENXIO, SWAP_FAIL, SWAP_SUCCESS, TTU_IGNORE_ACCESS,
               TTU_IGNORE_HWPOISON, TTU_IGNORE_MLOCK, TTU_UNMAP)
from sim.mm.migrate import migrate_pages
from sim.mm.page_alloc import alloc_page, get_page_unless_zero, is_free_buddy_page, put_page
from sim.mm.pgtable import pte_lockptr
from sim.mm.rmap import (page_address_in_vma, page_check_address, page_unlock_anon_vma,
                         try_to_unmap, vma_address)
from sim.mm.truncate import invalidate_inode_page
from sim.mm.vmscan import isolate_lru_page

if TYPE_CHECKING:
    from sim.mm.kernel import MmKernel

Gen = Generator[Any, Any, Any]

MF_COUNT_INCREASED = 1 << 0            # include/linux/mm.h
MPOL_MF_MOVE_ALL = 1 << 2              # soft_offline_page's `private` for new_page (ignored)
N_UNMAP_TRIES = 5
IGNORED, FAILED, DELAYED, RECOVERED = "Ignored", "Failed", "Delayed", "Recovered"


def PageDirty(page: Page) -> bool:
    """PG_dirty: anon pages are dirty (written when first faulted); the model's file pages
    are read-only text, never dirty."""
    return PageAnon(page)


def action_result(k: "MmKernel", pfn: int, msg: str, result: str) -> None:
    """printk "MCE %#lx: %s page recovery: %s": counted, as the result's counters."""
    k.count(f"memory_failure: {msg}: {result}")


def new_page(k: "MmKernel", task: Task, page: Page, private: int) -> Page | None:
    """alloc_pages_exact_node(page_to_nid(p), GFP_HIGHUSER_MOVABLE, 0): one node here."""
    return alloc_page(k, task)


# --- taking the page ----------------------------------------------------------------------

@kfunc
def shake_page(k: "MmKernel", task: Task, p: Page, access: int) -> Gen:
    """Drain the per-CPU LRU and free lists hoping to make the page LRU or free; with
    `access`, shrink_slab too (one pass here)."""
    yield from k.spend(task, k.costs.migrate_prep)          # lru_add_drain_all
    if p.lru:
        return
    yield from k.step(task, k.costs.lru_op, p)              # drain_all_pages
    if p.lru or is_free_buddy_page(k, p):
        return
    if access:
        yield from k.step(task, k.costs.syscall)            # shrink_slab(1000, ...)


@kfunc
def get_any_page(k: "MmKernel", task: Task, p: Page, pfn: int, flags: int) -> Gen:
    """1 with a reference held; 0 for a free buddy page (poisoned here, while isolated);
    -EIO for a zero-count page that is not free. MF_COUNT_INCREASED (madvise: the reference
    of get_user_pages_fast): 1 at once."""
    if flags & MF_COUNT_INCREASED:
        return 1
    # lock_system_sleep(): pm_mutex, a no-op without CONFIG_HIBERNATION
    yield from k.step(task, k.costs.lru_op, p)              # set_migratetype_isolate
    if not get_page_unless_zero(p):
        if is_free_buddy_page(k, p):
            p.hwpoison = True                               # "while page is still isolated"
            ret = 0
        else:
            ret = EIO                                       # "unknown zero refcount page"
    else:
        ret = 1
    # unset_migratetype_isolate(p); unlock_system_sleep()
    return ret


# --- soft offline ---------------------------------------------------------------------------

@kfunc
def soft_offline_page(k: "MmKernel", task: Task, page: Page, flags: int) -> Gen:
    """Migrate the page away, then set PG_hwpoison on it. The page lock is held only for
    the PG_hwpoison test and invalidate_inode_page; the reference is dropped before
    isolate_lru_page; migrate_pages runs with offlining=0 and no mmap_sem."""
    pfn = page.pfn
    ret = yield from get_any_page(k, task, page, pfn, flags)
    if ret < 0:
        return ret
    if ret == 0:
        return _soft_offline_done(k, page, 0)
    if not page.lru:
        put_page(k, task, page)                             # try to free it
        yield from shake_page(k, task, page, 1)
        ret = yield from get_any_page(k, task, page, pfn, 0)   # did it turn free?
        if ret < 0:
            return ret
        if ret == 0:
            return _soft_offline_done(k, page, 0)
    if not page.lru:
        k.count("soft_offline: unknown non LRU page type")
        return EIO                                          # (the reference is kept)
    yield from lock_page(k, task, page)
    # wait_on_page_writeback(page): no writeback modelled
    if PageHWPoison(page):                                  # synchronised with memory_failure
        unlock_page(k, task, page)
        put_page(k, task, page)
        k.count("soft_offline: page already poisoned")
        return EBUSY
    ret = yield from invalidate_inode_page(k, task, page)
    unlock_page(k, task, page)
    # "Drop count because page migration doesn't like raised counts. The page could get
    # re-allocated, but if it becomes LRU the isolation will just fail."
    put_page(k, task, page)
    if ret == 1:
        k.count("soft_offline: invalidated")
        return _soft_offline_done(k, page, 0)
    ret = yield from isolate_lru_page(k, task, page)
    if not ret:
        pagelist = [page]
        ret = yield from migrate_pages(k, task, pagelist, new_page, MPOL_MF_MOVE_ALL, False)
        if ret:
            k.count(f"soft_offline: migration failed {ret}")
            if ret > 0:
                ret = EIO
    else:
        k.count("soft_offline: isolation failed")
    if ret:
        return ret
    return _soft_offline_done(k, page, ret)


def _soft_offline_done(k: "MmKernel", page: Page, ret: int) -> int:
    """done: atomic_long_add(1, &mce_bad_pages); SetPageHWPoison(page). After a migration
    the old page is already free: the allocator drops it when it comes round (bad_page)."""
    k.count("mce_bad_pages")
    k.count("soft offlined pages")
    page.hwpoison = True
    return ret


# --- collecting the processes to kill ------------------------------------------------------

@dataclass(eq=False)
class ToKill:
    """struct to_kill: a process to signal and the page's address in it."""

    tsk: Any
    addr: int | None
    addr_valid: bool


def tasklist_lock(k: "MmKernel") -> Any:
    """The tasklist_lock stand-in, made on first use (runs without memory_failure have no
    such lock class)."""
    m = k.machine
    if m.tasklist_lock is None:
        m.tasklist_lock = k.spinlock("tasklist_lock", "tasklist_lock")
    return m.tasklist_lock


def task_early_kill(k: "MmKernel", tsk: Any) -> bool:
    """No mm: no; PF_MCE_PROCESS (prctl) is not modelled; else vm.memory_failure_early_kill
    (default 0: processes are killed late, when they touch the hwpoison entry)."""
    if tsk.mm is None:
        return False
    return bool(k.params.get("memory_failure_early_kill", False))


def add_to_kill(k: "MmKernel", tsk: Any, p: Page, vma: Vma, to_kill: list[ToKill]) -> None:
    """tk->addr = page_address_in_vma(p, vma); -EFAULT: kill anyway, with SIGKILL."""
    addr = page_address_in_vma(p, vma)
    to_kill.append(ToKill(tsk, addr, addr is not None))


@kfunc
def page_mapped_in_vma(k: "MmKernel", task: Task, page: Page, vma: Vma) -> Gen:
    """[v2.6.33 mm/rmap.c] vma_address, then page_check_address(..., sync=1) under the pte
    lock, which it drops at once."""
    address = vma_address(page, vma)
    if address is None:
        return False
    if not (yield from page_check_address(k, task, page, vma.mm, address, sync=True)):
        return False
    spin_unlock(k, task, pte_lockptr(k, vma.mm, address))
    return True


@kfunc
def collect_procs_anon(k: "MmKernel", task: Task, page: Page, to_kill: list[ToKill]) -> Gen:
    """read_lock(&tasklist_lock) -> page_lock_anon_vma (RCU, anon_vma->lock) -> pte lock.
    page_lock_anon_vma is NULL for a page that is no longer mapped or whose mapping is not
    exactly ANON (a KSM page): "Not actually mapped anymore", nothing is collected."""
    m = k.machine
    yield from spin_lock(k, task, tasklist_lock(k))         # read_lock
    av = yield from k.variant.page_lock_anon_vma(k, task, page)
    if av is None:
        k.count("collect_procs_anon: page_lock_anon_vma NULL")
    else:
        for tsk in list(m.tasklist.values()):               # for_each_process
            if not task_early_kill(k, tsk):
                continue
            for vma in list(av.av.head):
                yield from k.step(task, k.costs.vma_visit, vma)
                if not (yield from page_mapped_in_vma(k, task, page, vma)):
                    continue
                if vma.mm is tsk.mm:
                    add_to_kill(k, tsk, page, vma, to_kill)
        page_unlock_anon_vma(k, task, av)
    spin_unlock(k, task, tasklist_lock(k))                  # read_unlock


@kfunc
def collect_procs_file(k: "MmKernel", task: Task, page: Page, to_kill: list[ToKill]) -> Gen:
    """read_lock(&tasklist_lock) -> i_mmap_lock: every vma of the file covering the page."""
    m = k.machine
    mapping = page.mapping
    yield from spin_lock(k, task, tasklist_lock(k))
    yield from spin_lock(k, task, mapping.i_mmap_lock)
    for tsk in list(m.tasklist.values()):
        if not task_early_kill(k, tsk):
            continue
        for vma in list(mapping.i_mmap):
            yield from k.step(task, k.costs.vma_visit, vma)
            if vma_address(page, vma) is not None and vma.mm is tsk.mm:
                add_to_kill(k, tsk, page, vma, to_kill)
    spin_unlock(k, task, mapping.i_mmap_lock)
    spin_unlock(k, task, tasklist_lock(k))


@kfunc
def collect_procs(k: "MmKernel", task: Task, page: Page, tokill: list[ToKill]) -> Gen:
    if page.mapping is None:
        return
    yield from k.step(task, k.costs.anon_vma_alloc)         # kmalloc(to_kill, GFP_NOIO)
    if PageAnon(page):
        yield from collect_procs_anon(k, task, page, tokill)
    else:
        yield from collect_procs_file(k, task, page, tokill)


def kill_procs_ao(k: "MmKernel", task: Task, to_kill: list[ToKill], doit: bool, trapno: int,
                  fail: bool, pfn: int) -> None:
    """Only if the page was dirty: SIGKILL if the unmap failed or the address is unknown,
    else SIGBUS (BUS_MCEERR_AO) by send_sig_info. Neither is handled by the model's
    processes: either ends the process at its next return to user mode."""
    for tk in to_kill:
        if not doit:
            continue
        if fail or not tk.addr_valid:
            force_sig(k, "SIGKILL", tk.tsk)
        else:
            kill_proc_ao(k, tk.tsk, tk.addr, trapno, pfn)


def kill_proc_ao(k: "MmKernel", t: Any, addr: int | None, trapno: int, pfn: int) -> int:
    """SIGBUS, si_code BUS_MCEERR_AO, si_addr the page's address in t."""
    force_sig(k, "SIGBUS", t)
    return 0


def force_sig(k: "MmKernel", sig: str, t: Any) -> None:
    """Make the signal pending (SIGKILL wins over SIGBUS)."""
    if getattr(t, "sigpending", None) != "SIGKILL":
        t.sigpending = sig
    k.count(f"memory_failure: {sig} sent")


# --- memory_failure -------------------------------------------------------------------------

@kfunc
def hwpoison_user_mappings(k: "MmKernel", task: Task, p: Page, pfn: int, trapno: int) -> Gen:
    """Under the page lock (the caller's): a KSM page is SWAP_FAIL, before any process is
    collected or any pte touched; else collect the processes, try_to_unmap up to
    N_UNMAP_TRIES times (hwpoison entries), and kill the collected ones if the page was
    dirty."""
    ttu = TTU_UNMAP | TTU_IGNORE_MLOCK | TTU_IGNORE_ACCESS
    kill = True
    # PageReserved || PageSlab: none in the model
    # "This check implies we don't kill processes if their pages are in the swap cache
    # early. Those are always late kills."
    if not page_mapped(p):
        return SWAP_SUCCESS
    if PageKsm(p):                                          # (PageCompound: none here)
        return SWAP_FAIL
    # PageSwapCache: no swap
    mapping = page_mapping(p)
    if not PageDirty(p) and mapping is not None:            # mapping_cap_writeback_dirty
        # page_mkclean finds no dirty pte on read-only text: "corrupted page was clean:
        # dropped without side effects"
        yield from k.step(task, k.costs.pte_op, p)
        kill = False
        ttu |= TTU_IGNORE_HWPOISON
    tokill: list[ToKill] = []
    if kill:
        yield from collect_procs(k, task, p, tokill)
    ret = SWAP_FAIL
    for _ in range(N_UNMAP_TRIES):
        ret = yield from try_to_unmap(k, task, p, ttu)
        if ret == SWAP_SUCCESS:
            break
    if ret != SWAP_SUCCESS:
        k.count("memory_failure: failed to unmap page")
    kill_procs_ao(k, task, tokill, PageDirty(p), trapno, ret != SWAP_SUCCESS, pfn)
    return ret


@kfunc
def delete_from_lru_cache(k: "MmKernel", task: Task, p: Page) -> Gen:
    if not (yield from isolate_lru_page(k, task, p)):
        put_page(k, task, p)                    # the count isolate_lru_page elevated
        return 0
    return EIO


@kfunc
def me_pagecache_clean(k: "MmKernel", task: Task, p: Page, pfn: int) -> Gen:
    yield from delete_from_lru_cache(k, task, p)
    if PageAnon(p):
        # "For anonymous pages we're done the only reference left should be the one m_f()
        # holds."
        return RECOVERED
    if page_mapping(p) is None:                 # torn down meanwhile
        return FAILED
    # no error_remove_page in the model's file system: invalidate
    return RECOVERED if (yield from invalidate_inode_page(k, task, p)) else FAILED


@kfunc
def me_pagecache_dirty(k: "MmKernel", task: Task, p: Page, pfn: int) -> Gen:
    # SetPageError; a file mapping would get AS_EIO: the model's dirty pages are anon
    return (yield from me_pagecache_clean(k, task, p, pfn))


def me_unknown(k: "MmKernel", task: Task, p: Page, pfn: int) -> Gen:
    yield from ()
    return FAILED


@kfunc
def page_action(k: "MmKernel", task: Task, p: Page, pfn: int) -> Gen:
    """The first matching row of error_states (its LRU rows; the reserved, slab, huge,
    swapcache, unevictable and mlocked rows match nothing here), then: still referenced by
    anyone but us -> FAILED. 0 for RECOVERED or DELAYED, else -EBUSY."""
    if p.lru and PageDirty(p):
        msg, action = "LRU", me_pagecache_dirty
    elif p.lru:
        msg, action = "clean LRU", me_pagecache_clean
    else:
        msg, action = "unknown page state", me_unknown
    result = yield from action(k, task, p, pfn)
    action_result(k, pfn, msg, result)
    count = p.count - 1
    if count != 0:
        result = FAILED
        action_result(k, pfn, f"{msg} page still referenced", result)
    return 0 if result in (RECOVERED, DELAYED) else EBUSY


@kfunc
def __memory_failure(k: "MmKernel", task: Task, pfn: int, trapno: int, flags: int) -> Gen:
    """Poison the page; take a reference (unless MF_COUNT_INCREASED) and the page lock and
    keep both to the end; unmap and kill; then the page's error_states action. A mapped KSM
    page: -EBUSY ("cannot unmap page, give up"), still mapped, poisoned, reference kept."""
    # sysctl_memory_failure_recovery is 1: no panic
    p = k.machine.pages.get(pfn)
    if p is None:                                           # !pfn_valid
        return ENXIO
    yield from k.step(task, k.costs.pte_op, p)
    if p.hwpoison:                                          # TestSetPageHWPoison
        k.count("memory_failure: already hardware poisoned")
        return 0
    p.hwpoison = True
    k.count("mce_bad_pages")
    if not flags & MF_COUNT_INCREASED and not get_page_unless_zero(p):
        if is_free_buddy_page(k, p):
            action_result(k, pfn, "free buddy", DELAYED)
            return 0
        action_result(k, pfn, "high order kernel", IGNORED)
        return EBUSY
    # "We ignore non-LRU pages for good reasons."
    if not p.lru:
        yield from shake_page(k, task, p, 0)
    if not p.lru:
        if is_free_buddy_page(k, p):
            action_result(k, pfn, "free buddy, 2nd try", DELAYED)
            return 0
        action_result(k, pfn, "non LRU", IGNORED)
        put_page(k, task, p)
        return EBUSY
    yield from lock_page(k, task, p)                        # lock_page_nosync
    # !PageHWPoison ("just unpoisoned") and hwpoison_filter: no unpoison, no filter here;
    # wait_on_page_writeback: no writeback
    if (yield from hwpoison_user_mappings(k, task, p, pfn, trapno)) != SWAP_SUCCESS:
        k.count("memory_failure: cannot unmap page, give up")
        res = EBUSY
    elif p.lru and p.mapping is None:                       # "Torn down by someone else?"
        action_result(k, pfn, "already truncated LRU", IGNORED)
        res = EBUSY
    else:
        res = yield from page_action(k, task, p, pfn)
    unlock_page(k, task, p)                                 # out:
    k.count(f"memory_failure rc {res}")
    return res


@kfunc
def memory_failure(k: "MmKernel", task: Task, pfn: int, trapno: int) -> Gen:
    """The machine-check handler's entry (a work queue): __memory_failure(pfn, trapno, 0)."""
    return (yield from __memory_failure(k, task, pfn, trapno, 0))
