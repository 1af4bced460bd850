"""Directed delays in the timed model (sim.engine.sched.delays), their legality, replay and shrink;
the coverage of race windows; PCT's change points; edited reproducers; controlled strategies
refused on sleep-driven workloads, and a yield() that lets time pass in controlled mode."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import sim
from sim.engine.cpu import may_preempt
from sim.errors import InputError
from sim.race import Reproducer, Target, hunt, replay, shrink
from sim.race.runs import run_spec
from sim.engine.sched import PCT, Delays, Replay
from sim.engine.task import Task

UAF = Target(kind="anon_vma_use_after_free")
# A small mm configuration: three processes of four pages for 30 ms.
SMALL = {"processes": 3, "pages_per_process": 4, "duration_ms": 30.0, "anon_vma_per_slab": 2}


def small(seed: int = 0) -> object:
    return sim.spec_for("hotremove-exit", seed=seed, params=SMALL)


@pytest.fixture(scope="module")
def found():
    """A delays hunt on the small configuration: execution 28 (seed 28) shows it."""
    out = hunt(small(), "delays", 60, target=UAF)
    assert out.found is not None and out.executions == 29
    return out


# Found by a delays hunt on SMALL (execution 28: seed 28) and shrunk (`shrink`): six delays,
# 15 ms, two memory blocks. Occurrence n is the n-th candidate choice point of the run.
PICKS = [[18, "irq", 42.987], [19, "irq", 46.806], [20, "irq", 42.38], [21, "irq", 80.118],
         [30, "preempt", 1942.349], [79, "preempt", 8855.334]]
# the generic sites of SMALL's profile run (sim.race.profile): they number occurrences too
GENERIC = ["anon_vma_link", "anon_vma_prepare", "anon_vma_unlink", "page_lock_anon_vma",
           "rmap_walk_anon"]


def test_scripted_delays_in_the_window_give_the_use_after_free():
    """Hot-remove preempted 8.9 ms inside its window (in mem_cgroup_prepare_migration,
    between lock_page and rcu_read_lock): the owner exits, the slab page goes back after a
    grace period, and the walk locks a freed anon_vma. Without that preemption, nothing."""
    spec = sim.spec_for("hotremove-exit", seed=28, params={
        **SMALL, "duration_ms": 15.0, "memory_blocks": 2})
    g = GENERIC
    r = run_spec(spec, strategy=Delays(picks=PICKS, generic=g))
    assert [p[:3] for p in r.schedule["picks"]] == PICKS
    assert r.schedule["picks"][5][3] == "migration_anon_vma@mem_cgroup_prepare_migration"
    v = next(v for v in r.violations if UAF.match(v))
    assert v.detail["via"] == "rmap_walk_anon" and v.detail["slab_released"]
    assert v.detail["race"] == ("slab page discarded before the accessor's RCU read-side "
                                "section began")
    r = run_spec(spec, strategy=Delays(picks=PICKS[:5], generic=g))
    assert not any(UAF.match(v) for v in r.violations)


def test_a_delays_reproducer_replays_exactly_and_shows_each_injected_delay(found, tmp_path):
    path = tmp_path / "r.json"
    found.found.save(path)
    rep = Reproducer.load(path)
    assert not rep.edited
    result, v = replay(rep)
    assert v is not None and result.events == found.found.events == found.result.events
    a, b = found.result.to_dict(), result.to_dict()
    assert a == b
    assert "(injected)" in json.dumps(b["violations"])


def test_preemption_is_legal_only_with_preemption_and_interrupts_on():
    t = Task(0, "t")
    assert may_preempt(t)
    t.preempt_count = 1                 # a spinlock, or non-preemptible RCU's reader
    assert not may_preempt(t)


def test_an_illegal_scripted_preemption_is_not_injected(found):
    """Picks name their kind; one the kernel cannot take where it lands (preemption inside
    the RCU read-side section of page_lock_anon_vma) is skipped, not injected."""
    spec = found.found.spec
    g = found.found.strategy["generic"]
    probe = run_spec(spec, strategy=Delays(rate=0.0, profile={}, generic=g))
    assert probe.schedule["coverage"]["occurrences"] > 0
    s = Delays(picks=[[n, "preempt", 500.0] for n in range(200)], generic=g)
    r = run_spec(spec, strategy=s)
    assert r.schedule["picks"] and all(
        not p[3].startswith("anon_vma_read_then_lock") for p in r.schedule["picks"])


@pytest.mark.slow
def test_shrinking_a_delays_reproducer_keeps_kind_and_site(found):
    out = shrink(found.found, max_tries=120)
    assert out.after["delays"] < out.before["delays"]
    _, v = replay(out.reproducer)
    assert v is not None and v.kind == "anon_vma_use_after_free"
    assert v.detail["via"] == found.found.violation["via"]


def test_the_coverage_of_a_hunt_counts_windows_and_sites(found):
    cov = found.coverage
    assert cov["windows_opened"] > cov["windows_exercised"] > 0
    assert "migration_anon_vma@mem_cgroup_prepare_migration" in cov["sites"]
    # controlled: the exhaustive search's 205 executions to the mini's use-after-free open 96
    # windows, 51 of them with hot-remove at a candidate site of a real choice
    out = hunt(sim.spec_for("hotremove-exit-mini"), "dfs", 5000, target=UAF, depth=2)
    assert out.executions == 205
    assert out.coverage == {"windows_opened": 96, "windows_exercised": 51, "sites": [
        "migration_anon_vma@mem_cgroup_prepare_migration", "migration_anon_vma@unmap_and_move"]}


def test_a_hunt_prints_its_coverage_line(root):
    p = subprocess.run([sys.executable, str(root / "run.py"), "hunt", "hotremove-exit-mini",
                        "--strategy", "random", "--budget", "3"], capture_output=True,
                       text=True, cwd=root, timeout=300)
    assert p.returncode == 0
    assert ("coverage: 0 race windows opened in 3 executions; 0 with another actor able to "
            "run or a delay injected; 0 distinct candidate sites exercised") in p.stdout


def test_controlled_strategies_are_refused_on_a_sleep_driven_workload():
    with pytest.raises(InputError, match="--strategy delays"):
        hunt(small(), "pct", 5)


def test_pct_change_points_land_on_real_choices_only():
    """On the mini about half the decisions are forced; with k = the real choices of the
    run, every change point drawn falls on a real choice and takes effect."""
    spec = sim.spec_for("hotremove-exit-mini")
    first = run_spec(spec, strategy=PCT(0, 4, 0))
    k = len(first.schedule["choices"])
    assert first.schedule["decisions"] > k
    for i in range(20):
        s = PCT(0, 4, k)
        s.start_at(i)
        run_spec(spec, strategy=s)
        assert s.applied == sum(1 for p in s.changes if p < len(s.choices)) == len(s.changes)


def test_pct_k_grows_with_the_longest_execution_seen():
    s = PCT(0, 3, 0)
    assert not s.changes                      # no execution seen: no change point
    run_spec(sim.spec_for("hotremove-exit-mini"), strategy=s)
    n = len(s.choices)
    s.new_execution()
    assert s.steps == n and len(s.changes) >= 1


def test_an_edited_reproducer_says_so_and_still_runs(found, tmp_path, root):
    d = found.found.to_dict()
    d["params"] = {**d["params"], "rcu_gp_us": 999.0}
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(d))
    assert Reproducer.load(path).edited
    p = subprocess.run([sys.executable, str(root / "run.py"), "replay", str(path)],
                       capture_output=True, text=True, cwd=root, timeout=300)
    assert p.stderr.count("was edited") == 1 and p.returncode in (0, 1)
    assert p.stdout.startswith("replay:")


def test_a_controlled_yield_with_nobody_else_runnable_lets_time_pass():
    """A poller in a yield() loop waits for a sleeper; in controlled mode steps take no
    time, so without letting the clock reach the sleeper's wake-up it spins to the livelock
    bound."""
    from sim.engine.kernel import Kernel
    from sim.params import KERNEL_PARAMS, resolve, schema_dict
    p = resolve(schema_dict(KERNEL_PARAMS), [], "test")
    k = Kernel(p, strategy=Replay(prefix=True))
    flag = []

    def sleeper(k, t):
        yield from k.sleep(t, 100.0)
        flag.append(1)

    def poller(k, t):
        while not flag:
            yield from k.yield_cpu(t)
    k.spawn("S", sleeper)
    k.spawn("P", poller)
    k.run(until=1000.0)
    assert flag and k.truncated is None and k.now == 100.0
