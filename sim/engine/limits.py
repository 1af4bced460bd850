"""What bounds a run, besides its simulated duration.

Every run ends: at its simulated time limit, or at the first of these, with the result's
`truncated` saying which (`max_events`, `max_wall_s`, `max_memory`, `livelock`,
`interrupted`). Memory is the process's resident set, read from /proc every
MEMORY_CHECK_EVENTS events (where /proc is missing, only the footprint estimate made before
the run applies).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

MEMORY_CHECK_EVENTS = 65536
GC_EVENTS = MEMORY_CHECK_EVENTS * 4    # a full collection every ~260k events
WALL_CHECK_EVENTS = 4096
ZERO_STEP_YIELD = 1024       # zero-cost steps in a row before the run loop gets control


def physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def default_max_memory() -> int:
    """Half the machine's RAM (4 GiB where it cannot be read)."""
    ram = physical_memory()
    return ram // 2 if ram else 4 << 30


def resident_bytes() -> int | None:
    """This process's resident set size now (Linux), or None."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


@dataclass(frozen=True)
class Limits:
    """max_events: simulation events; max_wall_s: wall-clock seconds; max_memory: resident
    bytes (also the bound for the footprint estimated before the run); livelock_steps: steps
    that take no simulated time at one instant before the run is declared livelocked."""

    max_events: int = 500_000_000
    max_wall_s: float = 3600.0
    max_memory: int = 0                  # 0: default_max_memory()
    livelock_steps: int = 1_000_000

    def memory(self) -> int:
        return self.max_memory or default_max_memory()

    def describe(self) -> dict[str, float]:
        return {"max_events": self.max_events, "max_wall_s": self.max_wall_s,
                "max_memory": self.memory(), "livelock_steps": self.livelock_steps}
