"""Sweeps: grid and range expansion, stable seeds, identical rows on every backend, a store
that survives SIGKILL and refuses another sweep, CSV export, Wilson intervals, reports."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

import sim
from sim.errors import InputError
from sim.engine.stats import wilson
from sim.sweep import make_sweep, run_sweep
from sim.sweep.grid import derive_seed
from test_cli import cli

pytestmark = pytest.mark.slow     # sweeps on process pools and Dask (not in `make check`)

SHORT = {"duration_ms": 15}


def test_grid_and_range_expansion(tmp_path):
    s = make_sweep("hotremove-exit", variants=["v2.6.33", "no-rcu"],
                   grid=[("cpus", ["2", "4"]),
                         ("exit_rate", {"from": 5, "to": 500, "steps": 3, "scale": "log"})],
                   reps=2, overrides=SHORT)
    assert s.axes == (("cpus", (2, 4)), ("exit_rate", (5.0, 50.0, 500.0)))
    cells = s.cells()
    assert len(cells) == 2 * 2 * 3 and len(s.specs()) == 24
    assert cells[0].label == "v2.6.33 cpus=2 exit_rate=5"
    assert cells[-1].label == "no-rcu cpus=4 exit_rate=500"
    lin = make_sweep("hotremove-exit", grid=[("cpus", {"from": 1, "to": 4, "steps": 7})])
    assert lin.axes == (("cpus", (1, 2, 3, 4)),)                 # rounded, deduplicated
    # the same as a [sweep] table in a workload file
    f = tmp_path / "w.toml"
    f.write_text('scenario = "mm"\n[params]\nduration_ms = 15\n[sweep]\n'
                 'variants = ["v2.6.33", "no-rcu"]\nreps = 2\ncpus = [2, 4]\n'
                 'exit_rate = {from = 5, to = 500, steps = 3, scale = "log"}\n')
    t = make_sweep(str(f))
    assert t.axes == s.axes and t.variants == s.variants and t.reps == 2


@pytest.mark.parametrize("grid,needle", [
    ([("nokey", ["1"])], "unknown parameter 'nokey' to sweep"),
    ([("cpus", [])], "has no values"),
    ([("cpus", ["two"])], "must be an integer"),
    ([("exit_rate", {"from": 1, "to": 9, "steps": 0})], "steps must be an integer >= 1"),
    ([("busy_frac", {"from": 0, "to": 1, "steps": 3, "scale": "log"})], "log range"),
    ([("processes", ["4000"])], "memory too small"),
])
def test_bad_sweeps_are_refused(grid, needle):
    with pytest.raises(InputError, match=needle):
        make_sweep("hotremove-exit", grid=grid)


def test_seeds_do_not_change_when_the_grid_grows():
    small = make_sweep("hotremove-exit", grid=[("cpus", ["4"])], reps=3, seed=7)
    big = make_sweep("hotremove-exit", variants=["v2.6.33", "no-rcu"],
                     grid=[("cpus", ["2", "4", "8"])], reps=4, seed=7)
    seeds = {(c.key, r): spec.seed for c, r, spec in big.specs()}
    for c, r, spec in small.specs():
        assert seeds[(c.key, r)] == spec.seed
    assert len(set(seeds.values())) == len(seeds)                # all different
    assert derive_seed(7, small.cells()[0].key, 0) != derive_seed(8, small.cells()[0].key, 0)


def test_rows_are_identical_on_every_backend():
    s = make_sweep("hotremove-exit", variants=["v2.6.33", "no-rcu"], grid=[("cpus", ["2"])],
                   reps=2, overrides=SHORT)
    serial = run_sweep(s, backend="serial").rows
    pool = run_sweep(s, backend="local", jobs=2, batch=1).rows
    dask = run_sweep(s, backend="dask", jobs=2).rows
    assert json.dumps(serial) == json.dumps(pool) == json.dumps(dask)
    assert [(r["cell"], r["rep"]) for r in serial] == [(0, 0), (0, 1), (1, 0), (1, 1)]


def test_sigkill_loses_nothing_and_resume_duplicates_nothing(root, tmp_path):
    out = tmp_path / "sweep"
    args = [sys.executable, str(root / "run.py"), "sweep", "hotremove-exit", "--out", str(out),
            "--variant", "v2.6.33,no-rcu", "--reps", "12", "--set", "duration_ms=10",
            "--jobs", "2", "--batch", "1"]
    proc = subprocess.Popen(args, cwd=root, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    db = out / "runs.sqlite"
    deadline = time.time() + 120
    stored = 0
    while time.time() < deadline and stored < 3:
        time.sleep(0.1)
        if db.exists():
            try:
                with sqlite3.connect(db, timeout=5) as c:
                    stored = c.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
            except sqlite3.OperationalError:
                pass
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with sqlite3.connect(db) as c:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        before = c.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    assert 3 <= before < 24
    p = subprocess.run(args, cwd=root, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert f"24/24 runs stored ({24 - before} now, {before} already there)" in p.stdout
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT COUNT(*), COUNT(DISTINCT run_key) FROM runs").fetchone() \
            == (24, 24)
    # and the resumed store holds what an uninterrupted sweep gives
    whole = run_sweep(make_sweep("hotremove-exit", variants=["v2.6.33", "no-rcu"], reps=12,
                                 overrides={"duration_ms": 10}), backend="serial").rows
    assert json.dumps(sim.sweep.stored_rows(out)) == json.dumps(whole)


def test_a_different_sweep_is_refused_and_nothing_written(root, tmp_path):
    out = tmp_path / "s"
    base = ["sweep", "hotremove-exit", "--out", str(out), "--set", "duration_ms=10",
            "--reps", "2", "--jobs", "1"]
    assert cli(root, *base).returncode == 0
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    p = cli(root, *base[:-4], "--reps", "3", "--jobs", "1")
    assert p.returncode == 2 and "holds another sweep (its reps differ)" in p.stderr
    assert len(p.stderr.splitlines()) == 1
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    p = cli(root, *base)                                   # the same one: nothing to do
    assert p.returncode == 0 and "(0 now, 2 already there)" in p.stdout
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    p = cli(root, "sweep", "hotremove-exit", "--out", str(foreign))
    assert p.returncode == 2 and "not empty and holds no rmapsim sweep" in p.stderr
    assert sorted(x.name for x in foreign.iterdir()) == ["notes.txt"]


def test_unreachable_dask_scheduler_is_one_line(root, tmp_path):
    out = tmp_path / "d"
    p = cli(root, "sweep", "hotremove-exit", "--out", str(out), "--set", "duration_ms=5",
            "--backend", "dask", "--address", "tcp://127.0.0.1:9")
    assert p.returncode == 2 and "no Dask scheduler answers at tcp://127.0.0.1:9" in p.stderr
    assert len(p.stderr.splitlines()) == 1 and not out.exists()


def test_export_csv_and_load_results(root, tmp_path):
    out = tmp_path / "s"
    s = make_sweep("hotremove-exit", variants=["v2.6.33", "no-rcu"], grid=[("cpus", ["2", "4"])],
                   reps=2, overrides=SHORT)
    run_sweep(s, out, jobs=2)
    df = sim.load_results(out)
    assert len(df) == 8 and list(df["cell"]) == [0, 0, 1, 1, 2, 2, 3, 3]
    for col in ("variant", "seed", "params.cpus", "v.anon_vma_stale", "harm.use_after_free",
                "lock.&anon_vma->lock.wait_mean_us", "win.migration_anon_vma.hits",
                "win.migration_anon_vma.width_p99_us"):
        assert col in df.columns, col
    assert set(df["params.cpus"]) == {2, 4}
    csv = tmp_path / "runs.csv"
    p = cli(root, "export", str(out), "--csv", str(csv))
    assert p.returncode == 0 and "8 runs written" in p.stdout
    import pandas
    back = pandas.read_csv(csv)
    assert list(back["seed"]) == list(df["seed"]) and list(back.columns) == list(df.columns)


def test_wilson_intervals_against_known_values():
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I,
    # method 3 (Wilson score, no continuity correction), to the 4 decimals it gives
    for (k, n), (lo, hi) in (((81, 263), (0.2553, 0.3662)), ((15, 148), (0.0624, 0.1605)),
                             ((0, 20), (0.0, 0.1611)), ((1, 29), (0.0061, 0.1718))):
        assert wilson(k, n) == pytest.approx((lo, hi), abs=6e-5), (k, n)
    assert wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)       # symmetric


def test_replication_intervals_are_student_t():
    from sim.sweep.report import mean_ci
    # 1..5: mean 3, sd sqrt(2.5), t(0.975, 4) = 2.776
    assert mean_ci([1, 2, 3, 4, 5]) == pytest.approx(
        {"mean": 3.0, "lo": 3 - 2.776 * 2.5 ** 0.5 / 5 ** 0.5,
         "hi": 3 + 2.776 * 2.5 ** 0.5 / 5 ** 0.5, "n": 5}, abs=1e-3)
    assert mean_ci([2.0]) == {"mean": 2.0, "lo": None, "hi": None, "n": 1}
    assert mean_ci([None]) == {"mean": None, "lo": None, "hi": None, "n": 0}
    assert mean_ci([0, 0, 10])["lo"] == 0.0            # non-negative figures: clipped at 0


def test_report_writes_its_plots_and_json(root, tmp_path):
    out = tmp_path / "s"
    s = make_sweep("hotremove-exit", variants=["v2.6.33", "no-rcu"],
                   grid=[("exit_rate", ["50", "200"])], reps=3, overrides=SHORT)
    run_sweep(s, out, jobs=2)
    p = cli(root, "report", str(out), "--json")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["runs"] == 12 and len(d["cells"]) == 4
    c = d["cells"][0]
    assert c["label"] == "v2.6.33 exit_rate=50" and c["runs"] == 3
    assert {"benign", "unprotected", "corrupting", "use_after_free"} == set(c["harm"])
    assert set(c["harm"]["benign"]) == {"k", "n", "rate", "lo", "hi"}
    lock = c["locks"]["&anon_vma->lock"]
    assert set(lock) >= {"wait_mean_us", "wait_p99_us", "hold_avg_us", "hold_p99_us"}
    w = c["windows"]["migration_anon_vma"]
    assert w["closed"] > 0 and w["estimated_hit_rate"]["mean"] > 0
    for name in ("rates.png", "lock_wait.png", "window_widths.png"):
        png = out / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    text = cli(root, "report", str(out))
    assert "cell 3: no-rcu exit_rate=200" in text.stdout and "plot written to" in text.stdout
