"""The Kernel of an mm scenario: the generic engine plus one machine's mm state."""

from __future__ import annotations

from typing import Any

from sim.engine.kernel import Kernel
from sim.mm.lockorder import RANK
from sim.mm.objects import Machine


class MmKernel(Kernel):
    """`machine` holds what are globals in the kernel: mem_map and the memory blocks, the
    zone and its LRU lock, the KSM state, the anon_vma cache. sim.mm.scenarios.mm's
    build_machine sets it. Lockdep checks the documented mm lock order (sim.mm.lockorder)."""

    machine: Machine

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.lockdep.order = RANK
