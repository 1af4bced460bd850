"""lock_stat aggregation and race-window measurement.

LockStat is one row of /proc/lock_stat (CONFIG_LOCK_STAT). Its definitions follow
kernel/lockdep.c:
- a *contention* is an acquisition that had to wait; waittime is measured from the moment it
  found the lock held to the moment it got it, and only for contentions;
- holdtime is measured for every acquisition, from acquisition to release;
- a *bounce* is counted when a lock is acquired (acq-bounces) or contended (con-bounces) on a
  different simulated CPU than the one that acquired it last (lockdep's lock->cpu test);
- rw_semaphores keep read and write sides apart, as lock_stat prints `-R` and `-W` rows.
All times are simulated microseconds.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

LOCK_STAT_KEYS = (
    "class", "con-bounces", "contentions", "waittime-min", "waittime-max", "waittime-total",
    "waittime-avg", "acq-bounces", "acquisitions", "holdtime-min", "holdtime-max",
    "holdtime-total", "holdtime-avg",
)


class LogHistogram:
    """Counts of positive values (simulated us) in log-spaced buckets, PER_DECADE per decade
    from 1 ns to 10 s (zero and below go in the first bucket, beyond in the last): quantiles
    to within a bucket (a factor of 10**(1/8), 33%) in constant memory."""

    PER_DECADE = 8
    LOW = -3                              # 10**-3 us = 1 ns
    SIZE = PER_DECADE * 10                # up to 10**7 us = 10 s

    __slots__ = ("counts", "n")

    def __init__(self) -> None:
        self.counts = [0] * self.SIZE
        self.n = 0

    def add(self, x: float) -> None:
        # bisect over the precomputed upper edges of buckets 0..SIZE-2: C speed, no log10
        self.counts[bisect_right(_LOG_EDGES, x)] += 1
        self.n += 1

    def add_many(self, xs: np.ndarray) -> None:
        """add() for each value (the same buckets: searchsorted right is bisect_right)."""
        idx = np.searchsorted(_LOG_EDGES_NP, xs, side="right")
        add = np.bincount(idx, minlength=self.SIZE).tolist()
        self.counts = [a + b for a, b in zip(self.counts, add)]
        self.n += int(xs.size)

    def edge(self, i: int) -> float:
        return 10 ** (self.LOW + i / self.PER_DECADE)

    def quantile(self, q: float) -> float | None:
        """The upper edge of the bucket holding the q-quantile (None if empty)."""
        if not self.n:
            return None
        need = q * self.n
        seen = 0
        for i, c in enumerate(self.counts):
            seen += c
            if seen >= need and c:
                return _r(self.edge(i + 1))
        return _r(self.edge(self.SIZE))

    def to_dict(self) -> dict[str, Any]:
        """Non-empty buckets as [lower edge us, count]."""
        return {"per_decade": self.PER_DECADE,
                "buckets": [[_r(self.edge(i)), c] for i, c in enumerate(self.counts) if c]}


# the upper edges of buckets 0..SIZE-2, exactly as LogHistogram.edge computes them
_LOG_EDGES = [10 ** (LogHistogram.LOW + i / LogHistogram.PER_DECADE)
              for i in range(1, LogHistogram.SIZE)]
_LOG_EDGES_NP = np.array(_LOG_EDGES)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval for a proportion k/n (95% for z = 1.96)."""
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


def _r(x: float) -> float:
    """Round to a nanosecond: enough resolution, and stable text in JSON."""
    return round(x, 3)


FOLD = 4096     # acquisitions between folds of a LockStat's raw samples into its figures


class LockStat:
    """One lock_stat row, plus batch means of the wait (including zero waits) for CIs.

    The lock path records raw samples only (it runs for every acquisition): `waits` gets one
    entry per acquisition, the wait of a contended one or UNCONTENDED, and `hold_buf` one hold
    time per release. `fold()` turns them into the figures (histograms, min, max, totals in
    acquisition order, batch means) with numpy, every FOLD acquisitions and whenever a figure
    is read, so memory stays flat and the figures are exactly those of adding one by one.
    """

    UNCONTENDED = -1.0

    __slots__ = ("name", "con_bounces", "contentions", "acq_bounces", "acquisitions",
                 "points", "contending", "batch_size", "batches", "waits", "hold_buf",
                 "fold_at", "_wmin", "_wmax", "_wtotal", "_hmin", "_hmax", "_htotal", "_holds",
                 "_bsum", "_bn", "_wait_hist", "_hold_hist")

    def __init__(self, name: str, batch_size: int = 1000) -> None:
        self.name = name
        self.con_bounces = self.contentions = self.acq_bounces = self.acquisitions = 0
        self.points: dict[str, int] = {}       # call sites that waited (lock_stat "contentions")
        self.contending: dict[str, int] = {}   # where the holder took it ("contending")
        self.batch_size = batch_size
        self.batches: list[float] = []
        self.waits = array("d")                # raw, since the last fold (see the class doc)
        self.hold_buf = array("d")
        self.fold_at = FOLD                    # the lock path calls fold() at this count
        self._wmin = self._hmin = math.inf
        self._wmax = self._wtotal = self._hmax = self._htotal = 0.0
        self._holds = 0
        self._bsum = 0.0
        self._bn = 0
        self._wait_hist = LogHistogram()       # waits of contended acquisitions
        self._hold_hist = LogHistogram()

    def fold(self) -> None:
        """Fold the raw samples into the figures (exact: sums stay sequential)."""
        self.fold_at = self.acquisitions + FOLD
        if self.waits:
            a = np.array(self.waits, dtype=np.float64)
            self.waits = array("d")
            waited = a >= 0.0
            c = a[waited]
            if c.size:
                self._wait_hist.add_many(c)
                self._wtotal = _seqsum(self._wtotal, c)
                self._wmin = min(self._wmin, float(c.min()))
                self._wmax = max(self._wmax, float(c.max()))
            z = np.where(waited, a, 0.0)       # batch means count zero waits (x + 0.0 == x)
            b, pos = self.batch_size, 0
            while pos < z.size:
                take = min(b - self._bn, z.size - pos)
                self._bsum = _seqsum(self._bsum, z[pos:pos + take])
                self._bn += take
                pos += take
                if self._bn == b:
                    self.batches.append(self._bsum / self._bn)
                    self._bsum = 0.0
                    self._bn = 0
        if self.hold_buf:
            h = np.array(self.hold_buf, dtype=np.float64)
            self.hold_buf = array("d")
            self._hold_hist.add_many(h)
            self._htotal = _seqsum(self._htotal, h)
            self._hmin = min(self._hmin, float(h.min()))
            self._hmax = max(self._hmax, float(h.max()))
            self._holds += h.size

    @property
    def wait_hist(self) -> LogHistogram:
        self.fold()
        return self._wait_hist

    @property
    def hold_hist(self) -> LogHistogram:
        self.fold()
        return self._hold_hist

    @property
    def wait_min(self) -> float:
        self.fold()
        return self._wmin

    @property
    def wait_max(self) -> float:
        self.fold()
        return self._wmax

    @property
    def wait_total(self) -> float:
        self.fold()
        return self._wtotal

    @property
    def hold_min(self) -> float:
        self.fold()
        return self._hmin

    @property
    def hold_max(self) -> float:
        self.fold()
        return self._hmax

    @property
    def hold_total(self) -> float:
        self.fold()
        return self._htotal

    @property
    def holds(self) -> int:
        self.fold()
        return self._holds

    def percentiles(self) -> dict[str, float | None]:
        self.fold()
        return {"wait_p50": self._wait_hist.quantile(0.5),
                "wait_p99": self._wait_hist.quantile(0.99),
                "hold_p50": self._hold_hist.quantile(0.5),
                "hold_p99": self._hold_hist.quantile(0.99)}

    # The lock path (sim/locks.py) does what these three do, inline; they are the reference.
    def contended(self, site: str, holder_site: str | None, bounce: bool) -> None:
        self.contentions += 1
        if bounce:
            self.con_bounces += 1
        self.points[site] = self.points.get(site, 0) + 1
        if holder_site is not None:
            self.contending[holder_site] = self.contending.get(holder_site, 0) + 1

    def acquired(self, wait: float | None, bounce: bool) -> None:
        """wait is None for an uncontended acquisition."""
        self.acquisitions += 1
        if bounce:
            self.acq_bounces += 1
        self.waits.append(self.UNCONTENDED if wait is None else wait)
        if self.acquisitions >= self.fold_at:
            self.fold()

    def released(self, hold: float) -> None:
        self.hold_buf.append(hold)

    def mean_wait(self) -> float:
        """Mean wait over all acquisitions (zero for uncontended ones), as queueing theory
        gives it."""
        return self.wait_total / self.acquisitions if self.acquisitions else 0.0

    def mean_wait_ci(self, skip: int = 1, z: float = 1.96) -> tuple[float, float, int]:
        """(mean, half-width, batches) of the all-acquisitions mean wait by batch means.

        The first `skip` batches are dropped as warm-up. Half-width is nan with < 2 batches.
        """
        self.fold()
        b = self.batches[skip:]
        n = len(b)
        if n == 0:
            return self.mean_wait(), math.nan, 0
        m = sum(b) / n
        if n < 2:
            return m, math.nan, n
        var = sum((x - m) ** 2 for x in b) / (n - 1)
        return m, z * math.sqrt(var / n), n

    def row(self) -> dict[str, Any]:
        self.fold()
        c, h = self.contentions, self._holds
        return {
            "class": self.name,
            "con-bounces": self.con_bounces,
            "contentions": c,
            "waittime-min": _r(self._wmin) if c else 0.0,
            "waittime-max": _r(self._wmax),
            "waittime-total": _r(self._wtotal),
            "waittime-avg": _r(self._wtotal / c) if c else 0.0,
            "acq-bounces": self.acq_bounces,
            "acquisitions": self.acquisitions,
            "holdtime-min": _r(self._hmin) if h else 0.0,
            "holdtime-max": _r(self._hmax),
            "holdtime-total": _r(self._htotal),
            "holdtime-avg": _r(self._htotal / h) if h else 0.0,
        }


def _seqsum(start: float, values: np.ndarray) -> float:
    """start + v0 + v1 + ... added left to right, as a Python loop would (cumsum is
    sequential; np.sum is pairwise and rounds differently)."""
    return float(np.concatenate(([start], values)).cumsum()[-1])


class OpenWindow:
    __slots__ = ("t0", "obj", "hit", "classes")

    def __init__(self, t0: float, obj: Any) -> None:
        self.t0 = t0
        self.obj = obj
        self.hit = False
        self.classes: set[str] = set()    # what else happened to a hit window (oracle words)


@dataclass
class Window:
    """One kind of race window: an interval in which a hazard can strike (see windows docs)."""

    name: str
    doc: str
    count: int = 0
    hits: int = 0
    widths: array = field(default_factory=lambda: array("d"))   # 8 bytes a sample
    hit_widths: list[float] = field(default_factory=list)
    width_hist: LogHistogram = field(default_factory=LogHistogram)
    extra: dict[str, Any] = field(default_factory=dict)           # an oracle's own figures
    hit_classes: dict[str, int] = field(default_factory=dict)
    open: dict[Any, OpenWindow] = field(default_factory=dict)
    # candidate sites: the kernel functions in which a choice point of an actor holding this
    # window open is a place to delay it (sim.engine.sched.delays); keys are task ids then
    sites: tuple[str, ...] = ()

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"count": self.count, "closed": len(self.widths),
                               "hits": self.hits, "doc": self.doc,
                               "hit_classes": dict(sorted(self.hit_classes.items()))}
        if self.widths:
            out["width_us"] = _dist(self.widths)
            out["width_hist"] = self.width_hist.to_dict()
        if self.hit_widths:
            out["hit_width_us"] = _dist(self.hit_widths)
        out.update(self.extra)
        return out


def _dist(values: Sequence[float]) -> dict[str, float]:
    w = sorted(values)
    return {"min": _r(w[0]), "mean": _r(sum(w) / len(w)), "p50": _r(_pct(w, 0.5)),
            "p99": _r(_pct(w, 0.99)), "max": _r(w[-1])}


def _pct(sorted_vals: list[float], q: float) -> float:
    i = min(len(sorted_vals) - 1, max(0, math.ceil(q * len(sorted_vals)) - 1))
    return sorted_vals[i]


class Windows:
    """Race-window bookkeeping: open at the first unprotected moment, close at the use.

    A window is *hit* when the hazard it guards against happens while it is open (e.g. the
    anon_vma is freed between the migration's last proof that it is live and rmap_walk_anon
    locking it); an oracle may add classes to a hit (e.g. how unprotected it was). Hits and
    classes count when the window closes. Keys identify the actor (one open window per actor
    and kind).
    """

    def __init__(self) -> None:
        self.kinds: dict[str, Window] = {}

    def declare(self, name: str, doc: str, sites: tuple[str, ...] = ()) -> None:
        """A kind of window; `sites` names its candidate sites (Window.sites)."""
        self.kinds.setdefault(name, Window(name, doc, sites=tuple(sites)))

    def open(self, name: str, key: Any, now: float, obj: Any = None) -> None:
        w = self.kinds.get(name)
        if w is None:
            return
        w.count += 1
        w.open[key] = OpenWindow(now, obj)

    def opened(self, name: str) -> dict[Any, OpenWindow]:
        """The windows of this kind open now, by key (to mark hits)."""
        w = self.kinds.get(name)
        return w.open if w is not None else {}

    def close(self, name: str, key: Any, now: float, classes: tuple[str, ...] = ()
              ) -> float | None:
        w = self.kinds.get(name)
        if w is None:
            return None
        ow = w.open.pop(key, None)
        if ow is None:
            return None
        width = now - ow.t0
        w.widths.append(width)
        w.width_hist.add(width)
        if ow.hit:
            w.hits += 1
            w.hit_widths.append(width)
            for c in ow.classes.union(classes):
                w.hit_classes[c] = w.hit_classes.get(c, 0) + 1
        return width

    def discard(self, name: str, key: Any) -> None:
        """Forget an open window that ended without reaching its use (not a width sample)."""
        w = self.kinds.get(name)
        if w is not None:
            w.open.pop(key, None)

    def to_dict(self) -> dict[str, Any]:
        return {name: w.summary() for name, w in self.kinds.items()}
