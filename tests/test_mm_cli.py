"""The race demo end to end: text report with diagram, contract JSON, Perfetto trace."""

import json
import re

from test_cli import CONTRACT_KEYS, cli

from sim.stats import LOCK_STAT_KEYS

DEMO_SEED = "17"     # README's race demo (make demo) uses this seed


def test_demo_seed_hits_hughs_race_with_a_readable_report(root):
    p = cli(root, "run", "hotremove-exit", "--seed", DEMO_SEED)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "VIOLATION anon_vma_stale" in out
    assert "race: freed inside the accessor's RCU read-side section" in out
    # the interleaving diagram: hot-remove in one column, the exiting task in another
    header = next(line for line in out.splitlines() if line.strip().startswith("time_us |"))
    assert "hotremove" in header and re.search(r"\| proc\d+\.\d+", header)
    for step in ("unmap_and_move", "try_to_unmap", "set migration entry", "exit_mmap",
                 "zap migration entry", "anon_vma_unlink", "anon_vma_free",
                 "rmap_walk_anon", "<== BUG"):
        assert step in out, step
    assert out.index("anon_vma_free(anon_vma#") < out.index("<== BUG")
    assert "lock_stat version" in out and "&anon_vma->lock:" in out


def test_mm_run_json_contract_and_trace(root, tmp_path):
    trace = tmp_path / "trace.json"
    p = cli(root, "run", "hotremove-exit", "--seed", DEMO_SEED, "--json", "--trace", str(trace))
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert CONTRACT_KEYS <= set(d)
    assert d["violation_counts"]["anon_vma_stale"] >= 1
    for v in d["violations"]:
        assert {"kind", "time_us", "actors", "detail"} <= set(v)
    assert all(tuple(r) == LOCK_STAT_KEYS for r in d["lock_stat"])
    classes = {r["class"] for r in d["lock_stat"]}
    assert {"&anon_vma->lock", "&page->ptl", "PG_locked", "&mm->mmap_sem-R",
            "&mm->mmap_sem-W", "&zone->lru_lock", "ksm_thread_mutex"} <= classes
    w = d["windows"]["migration_anon_vma"]
    assert w["count"] > 0 and w["hits"] >= 1 and w["width_us"]["p50"] > 0
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
