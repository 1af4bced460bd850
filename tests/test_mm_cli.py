"""The race demo end to end: text report with diagram, contract JSON, Perfetto trace."""

import json
import re

import pytest

from test_cli import CONTRACT_KEYS, cli

from sim.engine.stats import LOCK_STAT_KEYS

DEMO_SEED = "179"    # README's race demo (make demo) uses this seed


def test_demo_seed_shows_the_slab_destroyed_before_the_walk(root):
    """The commit's hazard end to end: the anon_vma freed before unmap_and_move's
    rcu_read_lock, its slab page released after a grace period, rmap_walk_anon locking it."""
    p = cli(root, "run", "hotremove-exit", "--seed", DEMO_SEED)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "violations: anon_vma_use_after_free x1" in out
    assert "race: slab page discarded before the accessor's RCU read-side section began" in out
    assert "freed_before_rcu: True" in out
    assert "slab_released: True" in out and "rcu_protected: False" in out
    # the interleaving diagram: hot-remove, the exiting task, and the RCU callback
    header = next(line for line in out.splitlines() if line.strip().startswith("time_us |"))
    assert "hotremove" in header and re.search(r"\| proc\d+\.\d+", header)
    assert header.rstrip().endswith("| rcu")
    steps = ("trylock_page", "preempted", "exit_mmap", "anon_vma_unlink", "anon_vma_free",
             "call_rcu(rcu_free_slab)", "rcu_free_slab: slab page", "runs again",
             "rcu_read_lock", "move_to_new_page", "rmap_walk_anon", "<== BUG")
    pos = out.index(header)
    for step in steps:                       # in this order, in the diagram
        pos = out.index(step, pos + 1)
    assert "lock_stat version" in out and "&anon_vma->lock:" in out


@pytest.mark.slow
def test_mm_run_json_contract_and_trace(root, tmp_path):
    trace = tmp_path / "trace.json"
    p = cli(root, "run", "hotremove-exit", "--seed", DEMO_SEED, "--json", "--trace", str(trace))
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert CONTRACT_KEYS <= set(d)
    assert d["violation_counts"] == {"anon_vma_use_after_free": 1}
    assert d["harm_counts"] == {"use_after_free": 1}
    assert d["violations"][0]["harm"] == "use_after_free"
    for v in d["violations"]:
        assert {"kind", "time_us", "actors", "detail"} <= set(v)
    assert all(tuple(r) == LOCK_STAT_KEYS for r in d["lock_stat"])
    classes = {r["class"] for r in d["lock_stat"]}
    assert {"&anon_vma->lock", "&page->ptl", "PG_locked", "&mm->mmap_sem-R",
            "&mm->mmap_sem-W", "&zone->lru_lock", "ksm_thread_mutex"} <= classes
    w = d["windows"]["migration_anon_vma"]
    assert w["count"] > 0 and w["hits"] == 1 and w["width_us"]["p50"] > 0
    assert w["hit_classes"] == {"freed_outside_rcu": 1, "slab_released": 1}
    t = json.loads(trace.read_text())
    evs = t["traceEvents"]
    actors = {e["args"]["name"] for e in evs if e["ph"] == "M" and e["name"] == "process_name"}
    assert {"hotremove", "ksmd", "CPUs"} <= actors
    assert sum(1 for a in actors if a.startswith("proc")) > 50
    depth: dict = {}
    for e in evs:                         # every function slice closes, none closes twice
        if e["ph"] in "BE":
            key = (e["pid"], e["tid"])
            depth[key] = depth.get(key, 0) + (1 if e["ph"] == "B" else -1)
            assert depth[key] >= 0
    assert all(v == 0 for v in depth.values())


def test_mm_bad_input(root):
    p = cli(root, "run", "hotremove-exit", "--set", "migration=swap")
    assert p.returncode == 2 and "must be one of hotremove, numa, none" in p.stderr
    p = cli(root, "run", "hotremove-exit", "--set", "processes=4000")
    assert p.returncode == 2 and "memory too small" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
