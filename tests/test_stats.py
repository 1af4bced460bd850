"""Log-bucket histograms (lock_stat p50/p99, window widths): bucket edges and quantiles."""

import math

from sim.engine.stats import LogHistogram


def test_values_land_in_the_bucket_whose_edges_hold_them():
    h = LogHistogram()
    for i in (1, 8, 24, 40, 79):
        lo = h.edge(i)
        h.add(lo)                             # a lower edge belongs to its own bucket
        h.add(math.nextafter(lo, 0))          # just below it, to the one before
    got = {i: c for i, c in enumerate(h.counts) if c}
    assert got == {0: 1, 1: 1, 7: 1, 8: 1, 23: 1, 24: 1, 39: 1, 40: 1, 78: 1, 79: 1}
    h.add(0.0)
    h.add(1e12)                               # out of range: the first and last buckets
    assert h.counts[0] == 2 and h.counts[-1] == 2 and h.n == 12


def test_quantiles_are_upper_bucket_edges_within_a_bucket():
    h = LogHistogram()
    for x in range(1, 1001):                  # 1 .. 1000 us
        h.add(float(x))
    for q, exact in ((0.5, 500), (0.99, 990)):
        got = h.quantile(q)
        assert exact <= got <= exact * 10 ** (1 / h.PER_DECADE) * 1.001
    assert LogHistogram().quantile(0.5) is None
