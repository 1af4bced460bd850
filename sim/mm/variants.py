"""Kernel variants: the kernel as merged in 2.6.33, the states around it, and the later fix.

A variant is a table: the version of each kernel function that differs between the trees it
stands for (kernel paths call `k.variant.<function>`, never test a flag), plus the few data
settings that are not a function of their own. Adding a variant is one entry here, plus only
the function versions it changes. Names are contract: scripts and sweeps rely on them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from sim.errors import InputError
from sim.mm.ksm import ksm_memory_callback
from sim.mm.migrate import (migrate_page_copy_no_ksm, migrate_page_copy_v2633,
                      remove_migration_ptes_split, remove_migration_ptes_v2633,
                      unmap_and_move_1ce82b69e96c, unmap_and_move_no_rcu, unmap_and_move_v2633,
                      unmap_and_move_v2635)
from sim.mm.rmap import (page_lock_anon_vma_v2633, page_lock_anon_vma_v2636,
                   rmap_walk_anon_page_lock_anon_vma, rmap_walk_anon_v2633)

KernelFunction = Callable[..., Any]


@dataclass(frozen=True)
class Variant:
    name: str
    doc: str
    surfaces: str
    # mm/migrate.c unmap_and_move: how an anon page's anon_vma is kept usable until
    # remove_migration_ptes (2.6.33: rcu_read_lock; 2.6.35: a counted reference; 2011: a
    # reference taken through page_lock_anon_vma)
    unmap_and_move: KernelFunction = unmap_and_move_v2633
    # mm/rmap.c page_lock_anon_vma: 2.6.36 re-checks page_mapped() under the lock
    page_lock_anon_vma: KernelFunction = page_lock_anon_vma_v2633
    # mm/rmap.c rmap_walk_anon (e9995ef978a): without page_lock_anon_vma
    rmap_walk_anon: KernelFunction = rmap_walk_anon_v2633
    # mm/migrate.c remove_migration_ptes: rmap_walk since e9995ef978a, split anon/file before
    remove_migration_ptes: KernelFunction = remove_migration_ptes_v2633
    # mm/migrate.c migrate_page_copy: calls ksm_migrate_page since e9995ef978a
    migrate_page_copy: KernelFunction = migrate_page_copy_v2633
    # the hotplug memory notifier chain (memory_hotplug.memory_notify): 62b61f611eb's
    # ksm_init registers ksm_memory_callback (ksm_thread_mutex held from MEM_GOING_OFFLINE to
    # MEM_OFFLINE or MEM_CANCEL_OFFLINE, stable_nodes left in the block pruned)
    memory_notifiers: tuple[KernelFunction, ...] = (ksm_memory_callback,)
    # data: 62b61f611eb's rule that only memory hotremove (offlining) migrates KSM pages:
    # unmap_and_move's PageKsm test and the NUMA paths' skip (read by
    # migrate.ksm_page_migratable)
    ksm_migration_hotremove_only: bool = True
    # data: ksm.c rmap_walk_ksm's passes (search_new_forks = 0, then 1)
    rmap_walk_ksm_passes: tuple[int, ...] = (0, 1)

    def describe(self) -> dict[str, Any]:
        out = {"name": self.name, "doc": self.doc, "surfaces": self.surfaces}
        base = VARIANTS["v2.6.33"]
        out["changes"] = {f.name: _shown(getattr(self, f.name)) for f in fields(self)
                          if f.name not in ("name", "doc", "surfaces")
                          and getattr(self, f.name) != getattr(base, f.name)}
        return out


def _shown(value: Any) -> Any:
    """A field as JSON: a kernel function as its name and version."""
    if callable(value):
        version = getattr(value, "kernel_version", None)
        return f"{value.kernel_name} of {version}" if version else value.__name__
    if isinstance(value, tuple):
        return [_shown(v) for v in value]
    return value


VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("v2.6.33",
            "the kernel as merged: rmap_walk_{anon,file,ksm} for remove_migration_ptes "
            "(e9995ef978a), rcu_read_lock in unmap_and_move, KSM pages migrated only by "
            "hot-remove (62b61f611eb)",
            "anon_vma_stale under hot-remove + exit; nothing under NUMA migration"),
    Variant("ksm-lru-no-walk",
            "the parent of e9995ef978a (\"ksm: mem cgroup charge swapin copy\"): KSM pages "
            "on the LRU since 5ad6468801d (\"ksm: let shared pages be swappable\") and so "
            "migratable by any path; remove_migration_ptes still split anon/file; no "
            "ksm_migrate_page (added by e9995ef978a); and none of 62b61f611eb (\"ksm: memory "
            "hotremove migration only\", the next commit): no PageKsm test in unmap_and_move "
            "or the NUMA paths, no KSM memory-hotplug notifier, so ksmd runs concurrently "
            "with hot-remove's migrations",
            "migration_pte_leak and stale_stable_node on KSM pages",
            ksm_migration_hotremove_only=False, memory_notifiers=(),
            remove_migration_ptes=remove_migration_ptes_split,
            migrate_page_copy=migrate_page_copy_no_ksm),
    Variant("no-new-forks-pass",
            "rmap_walk_ksm without its search_new_forks pass: children forked after the merge "
            "have the KSM pte but no rmap_item",
            "migration_pte_leak in children forked after the merge",
            rmap_walk_ksm_passes=(0,)),
    Variant("no-ksm-migrate-page",
            "migrate_page_copy without ksm_migrate_page: the stable_node keeps the old pfn",
            "stale_stable_node",
            migrate_page_copy=migrate_page_copy_no_ksm),
    Variant("walk-with-page-lock-anon-vma",
            "rmap_walk_anon goes through page_lock_anon_vma, whose page_mapped() test fails "
            "once every pte is a migration entry (why the commit avoids it)",
            "migration_pte_leak",
            rmap_walk_anon=rmap_walk_anon_page_lock_anon_vma),
    Variant("no-rcu",
            "unmap_and_move without rcu_read_lock (before dc386d4d1e9 / 989f89c57e6): nothing "
            "keeps the anon_vma's slab page typed until remove_migration_ptes",
            "anon_vma_use_after_free",
            unmap_and_move=unmap_and_move_no_rcu),
    Variant("anon-vma-refcount",
            "2.6.35's unmap_and_move on 2.6.33's anon_vma (3f6c82728f4, 7f60c214fd3, "
            "67b9509b2c6): rcu_read_lock, skip unmapped anon pages, else page_mapped() and "
            "then atomic_inc(&page_anon_vma(page)->external_refcount), with a window between "
            "the two; the reference keeps anon_vma_unlink from freeing it until the ptes are "
            "restored",
            "anon_vma_stale (corrupting: the refcount of a freed anon_vma) when the owner "
            "frees it between page_mapped() and atomic_inc; an oops (NULL page_anon_vma) on a "
            "mapped KSM page under hot-remove",
            unmap_and_move=unmap_and_move_v2635),
    Variant("anon-vma-lock-get",
            "the 2011 unmap_and_move on 2.6.33's anon_vma: Hugh Dickins' repair (1ce82b69e96c, "
            "\"mm: fix migration hangs on anon_vma lock\", stable 2.6.36.4): page_lock_anon_vma "
            "+ get_anon_vma, no rcu_read_lock, unmapped anon pages (and KSM pages) skipped; "
            "with 2.6.36's page_lock_anon_vma, which re-checks page_mapped() under the lock "
            "(f18194275c3)",
            "nothing",
            unmap_and_move=unmap_and_move_1ce82b69e96c,
            page_lock_anon_vma=page_lock_anon_vma_v2636),
    Variant("anon-vma-lock-get-no-recheck",
            "the 2011 repair (anon-vma-lock-get) on 2.6.33's page_lock_anon_vma, which does "
            "not re-check page_mapped() once it holds the lock: why f18194275c3 matters",
            "anon_vma_stale (corrupting) when the owner frees the anon_vma between "
            "page_lock_anon_vma's page_mapped() test and its spin_lock: get_anon_vma pins a "
            "freed object",
            unmap_and_move=unmap_and_move_1ce82b69e96c),
)}


def get(name: str) -> Variant:
    v = VARIANTS.get(name)
    if v is None:
        raise InputError(f"unknown variant '{name}'; valid: " + ", ".join(VARIANTS))
    return v
