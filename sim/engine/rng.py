"""Every random draw of a run comes from here.

One numpy Generator, seeded by the run's seed, owns all randomness. It is split (with
SeedSequence spawning, so the split itself is deterministic) into independent streams, one per
purpose, so that e.g. turning on preemption does not shift the workload's own choices. Draws are
taken in fixed-size blocks and handed out one by one: per-call numpy overhead would otherwise
dominate the simulator's hot path. The same seed and the same program give the same draws in any
process; nothing here touches global RNG state.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import TypeVar

import numpy as np

T = TypeVar("T")

BLOCK = 4096
STREAMS = ("ties", "costs", "workload", "sched", "kernel")   # append only: each keeps its draws


class Stream:
    """A buffered view of one numpy Generator."""

    __slots__ = ("gen", "_u", "_e", "_g", "_g_shape")

    def __init__(self, gen: np.random.Generator, gamma_shape: float = 4.0) -> None:
        self.gen = gen
        self._u: list[float] = []
        self._e: list[float] = []
        self._g: list[float] = []
        self._g_shape = gamma_shape

    def uniform(self) -> float:
        """U[0, 1)."""
        u = self._u
        if not u:
            u.extend(self.gen.random(BLOCK).tolist())
        return u.pop()

    def exponential(self, mean: float) -> float:
        e = self._e
        if not e:
            e.extend(self.gen.standard_exponential(BLOCK).tolist())
        return mean * e.pop()

    def jitter(self) -> float:
        """A unit-mean gamma variate (shape set at construction): multiplies step costs."""
        g = self._g
        if not g:
            s = self._g_shape
            g.extend((self.gen.standard_gamma(s, BLOCK) / s).tolist())
        return g.pop()

    def below(self, n: int) -> int:
        """Uniform integer in [0, n)."""
        return min(int(self.uniform() * n), n - 1)

    def chance(self, p: float) -> bool:
        return p > 0.0 and self.uniform() < p

    def choice(self, seq: Sequence[T]) -> T:
        return seq[self.below(len(seq))]


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
