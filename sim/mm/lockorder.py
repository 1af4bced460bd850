"""The kernel's lock ordering rule, in one place.

The order is the comment at the head of mm/rmap.c in 2.6.33, with the KSM and migration
additions derived from the code (docs/kernel.md section 5). A lock may be taken while holding
locks of a lower or equal rank, never while holding one of a higher rank. Equal rank means
"never nested" or nested only with a lockdep subclass (down_write_nested, spin_lock_nested).
Trylocks cannot deadlock and are exempt, as in lockdep. Classes not listed (e.g. the
calibration lock) are not checked against this table; lockdep's learned graph still sees them.
"""

from __future__ import annotations

LOCK_ORDER: tuple[tuple[str, ...], ...] = (
    ("&inode->i_mutex",),
    ("&inode->i_alloc_sem",),
    ("ksm_thread_mutex",),            # ksmd and MEM_GOING_OFFLINE take it first
    ("&mm->mmap_sem",),
    ("ksm_mmlist_lock",),             # taken inside mmap_sem (read) by ksmd
    ("PG_locked",),
    ("tasklist_lock",),               # memory_failure: collect_procs, under the page lock
    ("&mapping->i_mmap_lock",),
    ("&anon_vma->lock",),
    ("&mm->page_table_lock", "&page->ptl"),
    ("&zone->lru_lock", "swap_lock", "&mapping->tree_lock"),
)

RANK: dict[str, int] = {name: i for i, names in enumerate(LOCK_ORDER) for name in names}


def rank(class_name: str) -> int | None:
    return RANK.get(class_name)


def describe() -> list[str]:
    return [" / ".join(names) for names in LOCK_ORDER]
