"""Every violation kind a run can report, in the contract's order: the engine's validators'
(sim.engine.violations) and the mm oracles' (sim.mm.checks)."""

from __future__ import annotations

from sim.engine.violations import ENGINE_KINDS
from sim.mm.checks import MM_KINDS

_ORDER = ("anon_vma_stale", "anon_vma_use_after_free", "migration_pte_leak",
          "stale_stable_node", "lock_order_inversion", "deadlock", "invariant", "lock_misuse",
          "livelock", "oops")
_ALL = {**ENGINE_KINDS, **MM_KINDS}
assert set(_ORDER) == set(_ALL)

KINDS: dict[str, str] = {name: _ALL[name] for name in _ORDER}
