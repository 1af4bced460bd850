"""The oracles of the mm model, in one list: each observes the kernel through events
(sim.mm.events) or periodic whole-machine checks, and never changes kernel state. Adding an
oracle is one module plus a line here."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .invariants import Invariants
from .kasan import AnonVmaChecker
from .migration import MigrationChecker
from .windows import MigrationWindows, PointerWindows

if TYPE_CHECKING:
    from ..mm.kernel import MmKernel

ORACLES: dict[str, Callable[["MmKernel", dict[str, Any]], Any]] = {
    "kasan": AnonVmaChecker,
    "migration": MigrationChecker,
    "windows": MigrationWindows,
    "pointer_windows": PointerWindows,
    "invariants": Invariants,
}


def install(k: "MmKernel", params: dict[str, Any]) -> None:
    for name, oracle in ORACLES.items():
        k.oracles[name] = oracle(k, params)
