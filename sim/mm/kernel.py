"""The Kernel of an mm scenario: the generic engine plus one machine's mm state."""

from __future__ import annotations

from ..engine import Kernel
from ..objects import Machine


class MmKernel(Kernel):
    """`machine` holds what are globals in the kernel: mem_map and the memory blocks, the
    zone and its LRU lock, the KSM state, the anon_vma cache. sim.scenarios.mm's
    build_machine sets it."""

    machine: Machine
