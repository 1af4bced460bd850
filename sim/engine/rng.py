"""Every random draw of a run comes from here.

One numpy Generator, seeded by the run's seed, owns all randomness. It is split (with
SeedSequence spawning, so the split itself is deterministic) into independent streams, one per
purpose, so that e.g. turning on preemption does not shift the workload's own choices. Draws are
taken in fixed-size blocks and handed out one by one: per-call numpy overhead would otherwise
dominate the simulator's hot path. The same seed and the same program give the same draws in any
process; nothing here touches global RNG state.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import numpy as np

T = TypeVar("T")

BLOCK = 4096
STREAMS = ("ties", "costs", "workload", "sched", "kernel")   # append only: each keeps its draws


class Stream:
    """A buffered view of one numpy Generator.

    Each kind of draw comes from its own blocks, drawn as they run out and each handed out
    last first. `uniform()` (U[0, 1)) and `jitter()` (a unit-mean gamma variate, shape set
    at construction, that multiplies step costs) are those C-level callables themselves: the
    simulator's hottest draws, with no Python frame.
    """

    __slots__ = ("gen", "uniform", "jitter", "_exp")

    def __init__(self, gen: np.random.Generator, gamma_shape: float = 4.0) -> None:
        self.gen = gen
        s = gamma_shape
        self.uniform: Callable[[], float] = _drawer(lambda: gen.random(BLOCK).tolist())
        self.jitter: Callable[[], float] = _drawer(
            lambda: (gen.standard_gamma(s, BLOCK) / s).tolist())
        self._exp = _drawer(lambda: gen.standard_exponential(BLOCK).tolist())

    def exponential(self, mean: float) -> float:
        return mean * self._exp()

    def below(self, n: int) -> int:
        """Uniform integer in [0, n)."""
        return min(int(self.uniform() * n), n - 1)

    def chance(self, p: float) -> bool:
        return p > 0.0 and self.uniform() < p

    def choice(self, seq: Sequence[T]) -> T:
        return seq[self.below(len(seq))]


def _drawer(block: Callable[[], list[float]]) -> Callable[[], float]:
    """A C-level callable returning the values of block(), block() again, and so on, each
    block last value first; a block is drawn on the call that needs it."""
    blocks = map(reversed, iter(block, None))     # block() never returns None: no end
    return functools.partial(next, itertools.chain.from_iterable(blocks))


class Rng:
    """The run's randomness: named streams derived from one seed."""

    def __init__(self, seed: int, gamma_shape: float = 4.0) -> None:
        if seed < 0:
            raise ValueError("seed must be >= 0")
        self.seed = seed
        root = np.random.default_rng(seed)
        children = root.spawn(len(STREAMS))
        self.streams = {name: Stream(g, gamma_shape) for name, g in zip(STREAMS, children)}
        self.costs = self.streams["costs"]
        self.workload = self.streams["workload"]
        self.sched = self.streams["sched"]
        self.kernel = self.streams["kernel"]        # kernel-internal chances (memcg reclaim)

    def tie_keys(self) -> Iterator[int]:
        """Unique keys that order simultaneous SimPy events at random rather than FIFO.

        SimPy orders its queue by (time, priority, key). Its key is a counter (FIFO); ours puts
        random bits above the counter, so the order of events at the same instant and priority
        is a seeded shuffle, and the low bits keep every key unique. Blocks are drawn as they
        are needed; the iterator is C (chain over map), as SimPy takes one key per event.
        """
        gen = self.streams["ties"].gen

        def block(i: int) -> list[int]:
            rs = gen.integers(0, 1 << 31, size=BLOCK).tolist()
            return [(r << 40) | n for n, r in enumerate(rs, i * BLOCK + 1)]

        return itertools.chain.from_iterable(map(block, itertools.count()))
