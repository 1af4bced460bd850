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
