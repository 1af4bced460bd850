"""Contention numbers against queueing theory (the lock-calibration workload)."""

import pytest

import sim
from sim.scenarios.queueing import finite_source_mm1, rwsem_ctmc

pytestmark = pytest.mark.slow     # long queueing-theory runs (not in `make check`)


def calib(seed=1, **kw):
    r = sim.simulate("lock-calibration", seed=seed, **kw)
    return {s["side"]: s for s in r.to_dict()["calibration"]["sides"]}, r


@pytest.mark.parametrize("lock", ["spinlock", "mutex"])
@pytest.mark.parametrize("cpus,think,hold", [(2, 10.0, 2.0), (4, 10.0, 2.0), (8, 20.0, 1.5),
                                              (4, 3.0, 2.0)])
def test_exclusive_lock_matches_finite_source_mm1(lock, cpus, think, hold):
    sides, r = calib(cpus=cpus, think_us=think, hold_us=hold, acquisitions=60_000, lock=lock)
    s = sides["exclusive"]
    theory = finite_source_mm1(cpus, think, hold)["wait"]
    assert s["theory_wait_us"] == pytest.approx(theory, rel=1e-5)
    half = s["ci95_half_width_us"]
    # tight: the 95% CI is within 5% of the value, and theory lies within 2 half-widths
    assert half < 0.05 * theory
    assert abs(s["measured_wait_us"] - theory) <= 2 * half
    # the run really contended (waits are not trivially zero)
    row = r.lock_stat[0]
    assert row["contentions"] > 0.1 * row["acquisitions"]


@pytest.mark.parametrize("readers,writers", [(3, 2), (5, 1), (2, 3)])
def test_rwsem_matches_its_markov_chain_and_not_a_reader_preferring_one(readers, writers):
    sides, _ = calib(cpus=readers + writers, lock="rwsem", readers=readers, think_us=10.0,
                     hold_us=2.0, acquisitions=80_000)
    fair = rwsem_ctmc(readers, writers, 10.0, 2.0)
    unfair = rwsem_ctmc(readers, writers, 10.0, 2.0, writer_fairness=False)
    for side, key in (("read", "read_wait"), ("write", "write_wait")):
        s = sides[side]
        half = s["ci95_half_width_us"]
        assert half < 0.08 * fair[key]
        assert abs(s["measured_wait_us"] - fair[key]) <= 2 * half
    # power: the readers' wait rules out a reader-preferring rwsem
    r = sides["read"]
    assert abs(r["measured_wait_us"] - unfair["read_wait"]) > 4 * r["ci95_half_width_us"]


def test_rwsem_readers_only_never_wait():
    sides, r = calib(cpus=4, lock="rwsem", readers=4, acquisitions=5_000)
    assert sides["read"]["measured_wait_us"] == 0.0
    assert r.lock_stat[0]["contentions"] == 0 and r.lock_stat[0]["acquisitions"] == 5_000


def test_rwsem_writers_only_is_the_exclusive_queue():
    sides, _ = calib(cpus=4, lock="rwsem", readers=0, acquisitions=60_000)
    theory = finite_source_mm1(4, 10.0, 2.0)["wait"]
    s = sides["write"]
    assert abs(s["measured_wait_us"] - theory) <= 2 * s["ci95_half_width_us"]


def test_ctmc_cross_checks_closed_form():
    for n in (1, 2, 5):
        assert rwsem_ctmc(0, n, 7.0, 3.0)["write_wait"] == pytest.approx(
            finite_source_mm1(n, 7.0, 3.0)["wait"], rel=1e-9)


def test_lock_stat_rows_are_self_consistent():
    _, r = calib(cpus=4, acquisitions=20_000)
    row = r.lock_stat[0]
    assert row["acquisitions"] == 20_000
    assert row["waittime-avg"] == pytest.approx(row["waittime-total"] / row["contentions"],
                                                abs=1e-3)
    assert row["holdtime-avg"] == pytest.approx(2.0, rel=0.05)
    assert row["waittime-min"] <= row["waittime-avg"] <= row["waittime-max"]
    assert row["con-bounces"] <= row["contentions"]
    assert row["acq-bounces"] <= row["acquisitions"]


def _mm1_exact(n, think, hold):
    """The closed form in exact rationals (no float until the end)."""
    from fractions import Fraction
    from math import perm
    r = Fraction(hold) / Fraction(think)
    terms = [perm(n, k) * r**k for k in range(n + 1)]
    p0 = 1 / sum(terms)
    busy = 1 - p0
    in_system = sum(k * t for k, t in enumerate(terms)) * p0
    return float(in_system / (busy / Fraction(hold)) - hold)


@pytest.mark.parametrize("n", [1, 4, 170, 171, 300, 512])
def test_finite_source_mm1_in_log_space_up_to_512_sources(n):
    """`run.py run lock-calibration --set cpus=171 --set acquisitions=2000` raised
    OverflowError in sim/queueing.py (N!/(N-k)! beyond a float from N = 171)."""
    assert finite_source_mm1(n, 7.0, 3.0)["wait"] == pytest.approx(_mm1_exact(n, 7, 3),
                                                                    rel=1e-9)


def test_lock_calibration_with_171_cpus_prints_its_theory(capsys):
    """`run.py run lock-calibration --set cpus=171 --set acquisitions=2000` (any cpus in
    171..512 with spinlock or mutex) ended in an OverflowError after the run."""
    import json
    import sim.cli as cli_main
    rc = cli_main.main(["run", "lock-calibration", "--set", "cpus=171", "--set",
                        "acquisitions=2000", "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert json.loads(out)["calibration"]
