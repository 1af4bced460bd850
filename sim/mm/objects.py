"""Kernel state as plain data: page, anon_vma (+ its slab), vma, mm, ptes, KSM nodes and items.

Behaviour lives in sim/mm/, in functions named like the kernel's. These classes only hold
fields, and a few predicates that are macros in the kernel (PageAnon, page_mapped, ...).

Addresses are virtual page numbers (vpn). An anonymous vma has vm_pgoff == vm_start, so an
anon page's index is the vpn it was first mapped at and vma_address() is the identity within
the vma: the same as the kernel's arithmetic with PAGE_SHIFT divided out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sim.engine.locks import PageLock, RwSemaphore, SpinLock

VM_MERGEABLE = 0x1
VM_SHARED = 0x8          # (never set: the model maps nothing MAP_SHARED)
VM_MAYWRITE = 0x20       # every private mapping has it (do_mmap_pgoff)


def is_cow_mapping(flags: int) -> bool:
    """include/linux/mm.h (2.6.33): private and may be written, anon or file."""
    return (flags & (VM_SHARED | VM_MAYWRITE)) == VM_MAYWRITE

PTES_PER_TABLE = 512     # one page-table page (and one split pte lock) covers 512 ptes

# Pte.kind: a present pte maps its page; a migration entry (a non-present swap-type entry)
# names the page being migrated. An empty pte is absent from Mm.ptes.
PRESENT = 0
MIGRATION = 1
HWPOISON = 2             # make_hwpoison_entry: a poisoned page unmapped by memory_failure


class AnonVma:
    """struct anon_vma (2.6.33): one slab object of the SLAB_DESTROY_BY_RCU "anon_vma" cache.

    The object outlives its allocations: the ctor (lock init, empty list, zero refcounts) runs
    once when its slab page is created, not on each allocation, so a freed and reused
    anon_vma keeps a valid spinlock. `gen` counts allocations of this memory: a pointer
    remembers the gen it was taken at (AnonVmaPtr), which is how the oracle tells a stale
    pointer from a live one, as tag-based KASAN does.
    """

    __slots__ = ("oid", "label", "slab", "lock", "head", "ksm_refcount", "external_refcount",
                 "gen", "live", "owner", "history", "frees")

    def __init__(self, oid: int, slab: "SlabPage", lock: SpinLock) -> None:
        self.oid = oid
        self.label = f"anon_vma#{oid}"
        self.slab = slab
        self.lock = lock
        self.head: list[Vma] = []
        self.ksm_refcount = 0
        self.external_refcount = 0     # 2.6.35 (anon-vma-refcount variant)
        self.gen = 0
        self.live = False
        self.owner = ""                # the process that allocated the current incarnation
        self.history: list[dict[str, Any]] = []     # the last few events (KASAN report)
        # frees[g - 1]: the free of incarnation g (all of them: history is bounded)
        self.frees: list[AnonVmaFree] = []


class AnonVmaFree(NamedTuple):
    """kmem_cache_free of one incarnation of an anon_vma: when, by whom, from where."""

    at_us: float
    by: str
    tid: int
    where: str


class AnonVmaPtr:
    """A pointer to an anon_vma, with the allocation generation it was taken at."""

    __slots__ = ("av", "gen")

    def __init__(self, av: AnonVma, gen: int) -> None:
        self.av = av
        self.gen = gen

    @property
    def label(self) -> str:
        return self.av.label

    def valid(self) -> bool:
        return self.av.live and self.av.gen == self.gen


class SlabPage:
    __slots__ = ("sid", "objects", "freelist", "discarded", "discarded_at", "discard_seq",
                 "released", "released_at")

    def __init__(self, sid: int) -> None:
        self.sid = sid
        self.objects: list[AnonVma] = []
        self.freelist: list[AnonVma] = []      # LIFO, like SLUB's page->freelist
        self.discarded = False     # left the cache (empty); memory waits for a grace period
        self.discarded_at = -1.0   # discard_slab: when call_rcu(rcu_free_slab) was queued
        self.discard_seq = -1      # ... and its place in RCU's order of events (Rcu.seq)
        self.released = False      # back in the page allocator: touching it is use-after-free
        self.released_at = -1.0

    @property
    def label(self) -> str:
        return f"slab page {self.sid}"


class AddressSpace:
    """struct address_space of a file: i_mmap (vmas mapping it), page cache, its locks."""

    __slots__ = ("name", "label", "i_mmap", "i_mmap_lock", "tree_lock", "pages")

    def __init__(self, name: str, i_mmap_lock: SpinLock, tree_lock: SpinLock) -> None:
        self.name = name
        self.label = name
        self.i_mmap: list[Vma] = []
        self.i_mmap_lock = i_mmap_lock
        self.tree_lock = tree_lock
        self.pages: dict[int, Page] = {}   # index -> page (the radix tree)


class StableNode:
    """KSM stable_node: hlist of rmap_items, kpfn of the KSM page (no page reference)."""

    __slots__ = ("nid", "label", "hlist", "kpfn", "content", "freed", "history")

    def __init__(self, nid: int, kpfn: int, content: int) -> None:
        self.nid = nid
        self.label = f"stable_node#{nid}"
        self.hlist: list[RmapItem] = []
        self.kpfn = kpfn
        self.content = content
        self.freed = False
        self.history: list[dict[str, Any]] = []


class Page:
    """struct page. `mapping` is None, an AnonVmaPtr (PAGE_MAPPING_ANON), a StableNode
    (PAGE_MAPPING_ANON|PAGE_MAPPING_KSM) or an AddressSpace (file)."""

    __slots__ = ("pfn", "label", "block", "lock", "lru", "count", "mapcount", "mapping", "index",
                 "content", "free", "hwpoison")

    def __init__(self, pfn: int, block: int, lock: PageLock) -> None:
        self.pfn = pfn
        self.label = f"pfn {pfn}"
        self.block = block
        self.lock = lock
        self.lru = False
        self.count = 0
        self.mapcount = -1
        self.mapping: Any = None
        self.index = 0
        self.content = 0
        self.free = True
        self.hwpoison = False      # PG_hwpoison: never cleared (no unpoison_memory modelled)

    def __repr__(self) -> str:
        return f"<Page {self.pfn}>"


class Pte(NamedTuple):
    """A page-table entry (frozen: every change installs a new one with set_pte_at).

    `tag` is shadow state, not kernel state: the unmap_and_move call that installed a
    migration entry (copied along by fork), so that an entry leaked by one migration is
    reported once, not again by every later migration of the same (reused) pfn. 0 for
    present ptes."""

    kind: int
    page: Page
    write: bool
    tag: int = 0


def PageAnon(page: Page) -> bool:
    return isinstance(page.mapping, (AnonVmaPtr, StableNode))


def PageKsm(page: Page) -> bool:
    return isinstance(page.mapping, StableNode)


def PageHWPoison(page: Page) -> bool:
    return page.hwpoison


def page_mapped(page: Page) -> bool:
    return page.mapcount >= 0


def page_mapcount(page: Page) -> int:
    return page.mapcount + 1


def page_anon_vma(page: Page) -> AnonVmaPtr | None:
    """NULL unless the mapping tag is exactly PAGE_MAPPING_ANON (so NULL for KSM pages)."""
    m = page.mapping
    return m if isinstance(m, AnonVmaPtr) else None


def page_stable_node(page: Page) -> StableNode | None:
    """NULL for the Anon->Ksm upgrade's placeholder (KsmState.null_node), as in the kernel."""
    m = page.mapping
    return m if isinstance(m, StableNode) and m.nid >= 0 else None


def page_mapping(page: Page) -> AddressSpace | None:
    """NULL for anon pages not in swapcache (no swap modelled)."""
    m = page.mapping
    return m if isinstance(m, AddressSpace) else None


@dataclass(eq=False)
class Vma:
    mm: "Mm"
    start: int
    end: int
    pgoff: int
    flags: int = 0
    anon_vma: AnonVmaPtr | None = None
    file: AddressSpace | None = None
    linked: bool = False           # on its anon_vma's list
    label: str = ""

    def covers(self, vpn: int) -> bool:
        return self.start <= vpn < self.end


@dataclass(eq=False)
class Mm:
    mid: int
    name: str
    mmap_sem: RwSemaphore
    page_table_lock: SpinLock
    mm_users: int = 1
    mm_count: int = 1
    vmas: list[Vma] = field(default_factory=list)
    ptes: dict[int, Pte] = field(default_factory=dict)
    ptls: dict[int, SpinLock] = field(default_factory=dict)
    mergeable: bool = False        # MMF_VM_MERGEABLE
    owner: Any = None              # the Proc whose mm this is
    freed: bool = False

    @property
    def label(self) -> str:
        return f"mm {self.name}"


@dataclass(eq=False)
class RmapItem:
    """KSM rmap_item for (mm, address)."""

    mm: Mm
    address: int
    anon_vma: AnonVmaPtr | None = None
    stable: StableNode | None = None        # STABLE_FLAG + head
    unstable_seqnr: int = -1                # UNSTABLE_FLAG + seqnr when in the unstable tree
    unstable_key: int | None = None
    oldchecksum: int | None = None


@dataclass(eq=False)
class MmSlot:
    mm: Mm
    rmap_items: dict[int, RmapItem] = field(default_factory=dict)   # address -> item
    scanned_to: int = 0      # this round's position in the rmap_list (ksm_scan.rmap_list)


@dataclass(eq=False)
class MigrationContext:
    """One unmap_and_move call, as its task sees it (task.migration while it runs). `tag` is
    shadow state: it marks the migration entries this call installs (Pte.tag)."""

    tag: int
    page: Page
    start: float                    # when unmap_and_move began, in simulated us
    offlining: bool


@dataclass
class MemBlock:
    """A memory block (section). Its struct pages exist only once allocated (pfns
    [start_pfn, next_fresh)), so a block's size costs nothing until it is used; pages freed
    since go on `free`, which is reused first (LIFO), as a buddy free list hands back the
    page freed last."""

    bid: int
    start_pfn: int
    npages: int
    state: str = "online"          # online, isolated (offlining), offline
    free: list[int] = field(default_factory=list)   # freed pfns, LIFO
    next_fresh: int = -1           # the first never-allocated pfn

    def __post_init__(self) -> None:
        if self.next_fresh < 0:
            self.next_fresh = self.start_pfn

    def nr_free(self) -> int:
        return len(self.free) + self.start_pfn + self.npages - self.next_fresh

    def pfns(self) -> range:
        """The pfns of this block that have a struct page (were ever allocated)."""
        return range(self.start_pfn, self.next_fresh)


def history(obj: Any, k: Any, task: Any, event: str, **kw: Any) -> None:
    """KASAN-style: who did what to this object, when, from which kernel function."""
    h = {"event": event, "by": task.name if task is not None else "rcu",
         "tid": task.tid if task is not None else -1, "at_us": round(k.clock(), 3),
         "in": task.where() if task is not None else "rcu callback"}
    h.update(kw)
    obj.history.append(h)
    if len(obj.history) > 8:
        del obj.history[0]


@dataclass(eq=False)
class KsmState:
    """mm/ksm.c globals: the mm_slot list and scan cursor, the two trees, the locks."""

    thread_mutex: Any                       # ksm_thread_mutex
    mmlist_lock: SpinLock                   # ksm_mmlist_lock
    run: bool = True                        # /sys/kernel/mm/ksm/run (KSM_RUN_MERGE)
    pages_to_scan: int = 100
    sleep_us: float = 20_000.0
    slots: list[MmSlot] = field(default_factory=list)    # ksm_mm_head list, in scan order
    cursor: int | None = None               # ksm_scan.mm_slot: index in slots, None = head
    address: int = 0                        # ksm_scan.address
    seqnr: int = 0
    stable: dict[int, StableNode] = field(default_factory=dict)     # root_stable_tree
    unstable: dict[int, RmapItem] = field(default_factory=dict)     # root_unstable_tree
    next_nid: int = 0
    pages_shared: int = 0
    pages_sharing: int = 0
    # set_page_stable_node(page, NULL): PageKsm (both tag bits) but no stable_node yet,
    # between the Anon->Ksm upgrade in try_to_merge_one_page and stable_tree_insert
    null_node: StableNode = field(default_factory=lambda: StableNode(-1, -1, -1))


@dataclass(eq=False)
class Machine:
    """All mm state of one simulated machine (hangs off the Kernel: no globals)."""

    pages: dict[int, Page]                  # pfn -> struct page, created on first allocation
    blocks: list[MemBlock]
    lru_lock: SpinLock                      # zone->lru_lock (one zone)
    ksm: KsmState
    per_slab: int                           # anon_vma objects per slab page
    # what the workload writes into a page: a new anon page of (mm, vpn), a file page
    new_content: Callable[["Mm | None", int], int]
    file_content: Callable[[AddressSpace, int], int]
    alloc_block: int = 0
    slab_pages: list[SlabPage] = field(default_factory=list)   # in the cache or in RCU
    cpu_slab: dict[int, SlabPage] = field(default_factory=dict)
    anon_vmas: list[AnonVma] = field(default_factory=list)     # on those slab pages
    slab_pages_made: int = 0
    slab_pages_released: int = 0
    anon_vmas_made: int = 0
    anon_vmas_reused_gone: int = 0          # reused objects whose slab page was released
    files: list[AddressSpace] = field(default_factory=list)
    mms: list[Mm] = field(default_factory=list)
    next_mm: int = 0
    migration_serial: int = 0               # the last MigrationContext.tag handed out
    # for_each_process: pid -> the scenario's process (task_struct with its mm), which
    # memory_failure's collect_procs walks; tasklist_lock is made on first use
    tasklist: dict[int, Any] = field(default_factory=dict)
    tasklist_lock: Any = None
