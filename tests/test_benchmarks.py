"""The benchmark scripts that README quotes still run and still measure what they say."""

import subprocess
import sys

import pytest


@pytest.mark.slow
def test_the_ceiling_benchmark_switches_each_kind_of_observability_off_on_the_same_schedule(root):
    p = subprocess.run([sys.executable, str(root / "benchmarks" / "bench_ceiling.py"),
                        "--workload", "hotremove-exit-mini", "--rounds", "1", "--runs", "1"],
                       capture_output=True, text=True, cwd=root)
    assert p.returncode == 0, p.stderr[-2000:]
    rows = p.stdout.splitlines()[1:]
    assert [r.split(" s a run")[0].rsplit(None, 1)[0].strip() for r in rows] == [
        "as is", "rings off", "stacks off", "lockdep off", "hooks off", "all off"]
    # the same schedule each time: only bookkeeping is left out
    assert all(r.endswith("   54 events") for r in rows), rows


@pytest.mark.slow
def test_the_ctrl_c_stress_counts_a_trial_that_is_mishandled(root, tmp_path):
    """One trial that is handled (a run, SIGINT a second in) and one that is not (a command
    that exits 2 on bad input before any SIGINT can matter): 0/1, then 1/1."""
    def stress(*cmd):
        return subprocess.run([sys.executable, str(root / "benchmarks" / "stress_ctrl_c.py"),
                               "--trials", "1", "--after", "1,1", "--", *cmd],
                              capture_output=True, text=True, cwd=tmp_path, timeout=300)
    p = stress("run", "hotremove-exit", "--set", "duration_ms=1000000")
    assert p.returncode == 0 and p.stdout.splitlines()[-1].startswith("0/1 trials"), p.stdout
    p = stress("run", "hotremove-exit", "--set", "no_such=1")
    assert p.stdout.splitlines()[-1].startswith("1/1 trials"), p.stdout
    assert p.stdout.startswith("trial 0: exit 2: "), p.stdout
