"""The oracles of the mm model, in one list: each observes the kernel through events
(sim.mm.events) or periodic whole-machine checks, and never changes kernel state. Adding an
oracle is one module plus a line here."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sim.mm.checks.invariants import Invariants
from sim.mm.checks.kasan import AnonVmaChecker
from sim.mm.checks.migration import MigrationChecker
from sim.mm.checks.windows import MigrationWindows, PointerWindows

if TYPE_CHECKING:
    from sim.mm.kernel import MmKernel

# The kinds the mm oracles report. Names are contract; extend, never rename.
MM_KINDS: dict[str, str] = {
    "anon_vma_stale": "an anon_vma touched through a pointer to a freed (maybe reused) one "
                      "while its memory is still an anon_vma; fields `reused`, "
                      "`rcu_protected`; harm benign (protected by RCU, only the lock word), "
                      "unprotected (its slab page discarded before the accessor's RCU section "
                      "began, or no section) or corrupting",
    "anon_vma_use_after_free": "an anon_vma was touched after its slab page went back to the "
                               "page allocator (no RCU reader protected it)",
    "migration_pte_leak": "migration finished with a migration entry left in some pte; a task "
                          "faulting on it would hang or BUG",
    "stale_stable_node": "a KSM page and its stable_node disagree (kpfn does not point back "
                         "at the page, or the node was freed under it)",
    "invariant": "kernel state inconsistent (mapcount vs present ptes, pte mapping a freed "
                 "page, anon_vma list vs vma->anon_vma), or a BUG_ON-like condition a kernel "
                 "path met",
}

ORACLES: dict[str, Callable[["MmKernel", dict[str, Any]], Any]] = {
    "kasan": AnonVmaChecker,
    "migration": MigrationChecker,
    "windows": MigrationWindows,
    "pointer_windows": PointerWindows,
    "invariants": Invariants,
}


def install(k: "MmKernel", params: dict[str, Any]) -> None:
    k.violations.kinds.update(MM_KINDS)
    for name, oracle in ORACLES.items():
        k.oracles[name] = oracle(k, params)
