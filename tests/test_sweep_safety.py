"""Sweeps that lose nothing, mix nothing and cannot eat the machine (issue 17): a store knows
the definition it belongs to, a damaged or read-only store gives one line (or its report),
a second sweep on one directory is refused, and the size of a sweep is counted from its axes
and refused beyond a documented limit before anything is built."""

import os
import shutil
import subprocess

import pytest

import sim.cli as cli_main
from sim.errors import InputError
from sim.sweep import make_sweep, run_sweep
from sim.sweep.backends import usable_jobs
from sim.sweep.grid import MAX_RUNS
from sim.sweep.store import Store

MINI = "hotremove-exit-mini"
FAST = ["--max-events", "3000"]


def _main(argv, capsys):
    try:
        rc = cli_main.main(argv)
    except SystemExit as e:
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    """Two small stored sweeps of the same workload (A: 3 reps; B: 2 reps, another seed)."""
    base = tmp_path_factory.mktemp("sweeps")
    limits = {"max_events": 3000}
    run_sweep(make_sweep(MINI, reps=3, limits=limits), base / "a", backend="serial")
    run_sweep(make_sweep(MINI, reps=2, seed=4, limits=limits), base / "b", backend="serial")
    return base


def _one_line_2(rc, err):
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


def test_a_store_beside_another_sweeps_definition_is_refused(sweeps, tmp_path, capsys):
    """Copy sweep A's sweep.json beside sweep B's runs.sqlite: `report` showed "24/12 runs"
    and resuming said "36/12 runs stored"."""
    mix = tmp_path / "mix"
    mix.mkdir()
    shutil.copy(sweeps / "b" / "runs.sqlite", mix)
    shutil.copy(sweeps / "a" / "sweep.json", mix)
    for argv in (["report", str(mix)], ["export", str(mix), "--csv", str(tmp_path / "x.csv")],
                 ["sweep", MINI, "--out", str(mix), "--reps", "3", *FAST]):
        rc, out, err = _main(argv, capsys)
        _one_line_2(rc, err)
        assert "holds the runs of another sweep" in err and out == ""
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize("argv", [["report", "{d}"], ["export", "{d}", "--csv", "{d}/x.csv"],
                                  ["sweep", MINI, "--out", "{d}", "--reps", "3", *FAST]])
def test_a_damaged_store_is_one_line(sweeps, tmp_path, capsys, argv):
    """`head -c 5000 good/runs.sqlite > bad/runs.sqlite` beside a copied sweep.json:
    sqlite3.DatabaseError in report, export and a resumed sweep."""
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "runs.sqlite").write_bytes((sweeps / "a" / "runs.sqlite").read_bytes()[:5000])
    shutil.copy(sweeps / "a" / "sweep.json", bad)
    before = {p.name: p.read_bytes() for p in bad.iterdir()}
    rc, _, err = _main([a.format(d=bad) for a in argv], capsys)
    _one_line_2(rc, err)
    assert "is not a readable sweep store" in err
    after = {p.name: p.read_bytes() for p in bad.iterdir()       # (SQLite's own side files)
             if p.name not in ("sweep.lock", "runs.sqlite-wal", "runs.sqlite-shm")}
    assert after == before


def test_report_of_a_read_only_sweep_prints_and_names_the_plot(sweeps, tmp_path, capsys):
    """`report DIR` on a directory that cannot be written (chattr +i DIR): OperationalError;
    `mkdir DIR/rates.png; report DIR`: IsADirectoryError and no text report."""
    d = tmp_path / "d"
    shutil.copytree(sweeps / "a", d)
    (d / "rates.png").mkdir()
    rc, out, err = _main(["report", str(d)], capsys)
    assert rc == 2 and "3/3 runs" in out and "cannot write the plot" in err, err
    assert "rates.png" in err and len(err.strip().splitlines()) == 1
    assert (d / "rates.png").is_dir() and not any(p.name.endswith(".tmp") for p in d.iterdir())
    (d / "rates.png").rmdir()
    for name in ("rates.png", "lock_wait.png", "window_widths.png"):
        (d / name).unlink(missing_ok=True)
    immutable = subprocess.run(["chattr", "+i", str(d)], capture_output=True).returncode == 0
    if not immutable:
        os.chmod(d, 0o555)
    try:
        if not immutable and os.access(d, os.W_OK):
            pytest.skip("no way to make a directory read-only here (root without chattr)")
        store = Store(d)
        assert store.count() == 3
        store.close()
        rc, out, err = _main(["report", str(d)], capsys)
        assert rc == 2 and "3/3 runs" in out and "cannot write the plot" in err, err
        assert not [p for p in d.iterdir() if p.suffix in (".png", ".tmp")]
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(d)])
        os.chmod(d, 0o755)


def test_a_second_sweep_on_the_same_directory_is_refused(tmp_path):
    """Two sweeps at once on one directory did the same work twice."""
    sweep = make_sweep(MINI, reps=2, limits={"max_events": 3000})
    first = Store(tmp_path / "s", sweep)
    try:
        with pytest.raises(InputError, match="another sweep is running on"):
            run_sweep(sweep, tmp_path / "s", backend="serial")
    finally:
        first.close()
    assert len(run_sweep(sweep, tmp_path / "s", backend="serial").rows) == 2


def test_a_tampered_definition_is_refused(sweeps, tmp_path, capsys):
    """A tampered sweep.json with reps=-1 reported "12/-4 runs"."""
    import json
    d = tmp_path / "t"
    shutil.copytree(sweeps / "a", d)
    for change, needle in (({"reps": -1}, "reps must be an integer >= 1"),
                           ({"variants": ["nope"]}, "variants must be known"),
                           ({"axes": [["cpus", [0]]]}, "'cpus'"),
                           ({"reps": "3"}, "reps must be")):
        raw = json.loads((sweeps / "a" / "sweep.json").read_text())
        (d / "sweep.json").write_text(json.dumps({**raw, **change}))
        rc, out, err = _main(["report", str(d)], capsys)
        _one_line_2(rc, err)
        assert needle in err and out == ""


@pytest.mark.parametrize("argv,needle", [
    (["--reps", "1000000000000"], "would be 1,000,000,000,000 runs (1 cells); the limit is "
     f"{MAX_RUNS:,}"),
    (["--grid", "cpus=1,2,3", "--reps", "40000"], "would be 120,000 runs (3 cells)"),
    (["--max-runs", "2", "--reps", "3"], "would be 3 runs (1 cells); the limit is 2"),
])
def test_a_sweep_too_big_is_refused_before_anything_is_built(tmp_path, capsys, argv, needle):
    """`sweep --reps 1000000000000` reached 8.6 GB in 120 s before running anything."""
    rc, out, err = _main(["sweep", MINI, "--out", str(tmp_path / "s"), *argv], capsys)
    _one_line_2(rc, err)
    assert needle in err and "--max-runs N" in err and out == ""
    assert not (tmp_path / "s").exists()


def test_a_huge_range_is_refused_before_its_values_are_made(tmp_path):
    """`[sweep] exit_rate = {from=5, to=500, steps=1000000000}` reached 24 GB (OOM-killed)."""
    f = tmp_path / "big.toml"
    f.write_text('scenario = "mm"\n[sweep]\n'
                 'exit_rate = {from = 5, to = 500, steps = 1000000000}\n')
    with pytest.raises(InputError, match="would be 1,000,000,000 runs"):
        make_sweep(str(f))
    f.write_text(f.read_text().replace("1000000000", "3"))
    assert make_sweep(str(f)).n_runs() == 3


def test_sweeps_are_made_lazily():
    s = make_sweep(MINI, grid=[("cpus", ["1", "2", "3"])], reps=4)
    it = s.iter_specs()
    assert next(it)[0].index == 0 and s.n_runs() == 12 and len(s.specs()) == 12


def test_jobs_beyond_the_machines_cpus_are_capped(tmp_path, capsys):
    """64 workers for 4 runs took 1.8 GB."""
    cpus = usable_jobs(None)
    assert usable_jobs(cpus + 62) == cpus and usable_jobs(1) == 1
    assert usable_jobs(64, "dask") == 64             # a cluster elsewhere is not capped
    rc, out, err = _main(["sweep", MINI, "--out", str(tmp_path / "s"), "--jobs",
                          str(cpus + 62), *FAST], capsys)
    assert rc == 0 and f"running {cpus} worker processes" in err


@pytest.mark.parametrize("argv,needle", [
    (["--out", "/proc/nope/x"], "cannot write the sweep"),
    (["--backend", "dask", "--address", "notaurl"], "is not a scheduler address"),
    (["--address", "tcp://127.0.0.1:9"], "--address is for --backend dask"),
    (["--out", ""], "--out needs a directory name"),
    (["--max-memory", "1M"], "would need about"),
])
def test_sweep_refusals_are_one_line(tmp_path, capsys, argv, needle):
    """`sweep hotremove-exit-mini --out /proc/nope/x` (FileNotFoundError), `--backend dask
    --address notaurl` (ValueError), `--address` with the local backend (ignored), `--out ''`
    ("'.' is not empty"), a --max-memory refusal (after a "0/1 runs" line)."""
    full = ["sweep", MINI, "--out", str(tmp_path / "s"), *FAST, *argv]
    rc, out, err = _main(full, capsys)
    _one_line_2(rc, err)
    assert needle in err and out == ""
    assert os.listdir(tmp_path) == []


def test_the_command_line_does_not_read_a_whole_store_back(tmp_path):
    """`sweep` kept every stored row in memory to print their count."""
    sweep = make_sweep(MINI, reps=3, limits={"max_events": 3000})
    out = run_sweep(sweep, tmp_path / "s", backend="serial", keep_rows=False)
    assert out.rows == [] and out.stored == 3 and out.total == 3
    assert run_sweep(sweep, tmp_path / "s", backend="serial").stored == 3
