"""Typed events from kernel paths to the observers that subscribe to them.

A kernel path says what happened (`k.hooks.emit(AnonVmaAccess(...))`) and carries no checker
code; oracles and statistics subscribe to the event types they need. Events are small
immutable records (NamedTuples); an observer must not change kernel state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

E = TypeVar("E")


class RunEnd(NamedTuple):
    """The run is over (at `now`, simulated us): observers finish their figures."""

    now: float


class Hooks:
    def __init__(self) -> None:
        self._subs: dict[type, list[Callable[[Any], None]]] = {}

    def subscribe(self, etype: type[E], fn: Callable[[E], None]) -> None:
        self._subs.setdefault(etype, []).append(fn)

    def wants(self, etype: type) -> bool:
        """Whether anyone listens (lets a hot path skip building an event nobody reads)."""
        return etype in self._subs

    def emit(self, ev: Any) -> None:
        for fn in self._subs.get(type(ev), ()):
            fn(ev)
