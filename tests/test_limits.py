"""Every run ends, within limits a user can see and set, and never loses what it computed:
one test per failure found by trying the simulator as a new user would."""

import gc
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import sim
from conftest import make_kernel, wait_cpu_seconds
from sim.engine.kernel import DEAD_RINGS
from sim.errors import InputError
from test_cli import cli

ZERO_COSTS = {k: 0 for k in sim.resolve_params("ksm-fork-migrate")[1] if k.startswith("costs.")}


def test_memory_size_costs_nothing_until_used():
    """A 4096-block machine of 1M-page blocks: struct pages exist only once allocated."""
    t = time.perf_counter()
    r = sim.simulate("hotremove-exit", block_pages=1 << 20, memory_blocks=4096, duration_ms=5)
    assert r.truncated is None and r.counters["migrations"] > 0
    assert time.perf_counter() - t < 60          # not a speed test: it used to take minutes
    assert r.extra["mm"]["struct_pages"] < 16 * 70 * 4      # of 4096 * 2**20


def test_a_run_too_big_for_memory_is_refused_before_it_starts(root):
    big = {"processes": 4096, "pages_per_process": 4096, "memory_blocks": 4096,
           "block_pages": 1 << 20}
    with pytest.raises(InputError, match=r"would need about \d+\.\d GiB.*\(--max-memory\)"):
        sim.simulate("hotremove-exit", **big)
    p = cli(root, "run", "hotremove-exit", *[a for k, v in big.items()
                                             for a in ("--set", f"{k}={v}")])
    assert p.returncode == 2 and len(p.stderr.splitlines()) == 1 and p.stdout == ""
    assert "Traceback" not in p.stderr
    # a smaller limit refuses a smaller run; a larger one lets it run
    with pytest.raises(InputError, match="the limit is 0.0 GiB"):
        sim.simulate("lock-calibration", max_memory=1000)


@pytest.mark.slow
def test_zero_cost_loops_end_as_a_livelock_with_the_actors_stacks():
    r = sim.simulate("ksm-fork-migrate", max_events=200_000, **ZERO_COSTS)
    assert (r.truncated, r.events) == ("livelock", 6323)
    (v,) = [v for v in r.violations if v.kind == "livelock"]
    # deterministic: exact values. The first ZERO_STEP_YIELD multiple past livelock_steps
    # (1,000,000 free steps), all hot-remove's, at one instant
    assert (v.detail["steps"], v.detail["instant_us"]) == (1_000_448, 119723.106)
    assert [(a["task"], a["steps"]) for a in v.detail["actors"]] == [("hotremove", 1_000_448)]
    assert v.actors[0] == "hotremove"
    assert v.detail["actors"][0]["stack"][0] == "offline_pages"   # retrying forever


def test_wall_clock_limit_truncates():
    r = sim.simulate("hotremove-exit", duration_ms=1e6, max_wall_s=0.2)
    assert r.truncated == "max_wall_s" and r.sim_time_us < 1e9


def test_resident_memory_limit_truncates(monkeypatch):
    monkeypatch.setattr("sim.engine.kernel.resident_bytes", lambda: 1 << 50)
    r = sim.simulate("hotremove-exit", duration_ms=1e6, max_wall_s=60)
    assert r.truncated == "max_memory" and r.events == 65536


def test_event_limit_truncates_and_says_so(root):
    p = cli(root, "run", "hotremove-exit", "--max-events", "1000")
    assert p.returncode == 0 and "1000 events (truncated: stopped at --max-events)" in p.stdout


def test_only_the_last_dead_tasks_keep_their_rings():
    k = make_kernel()

    def short(k, t, i):
        k.tracer.mark(t, "alive")
        yield from k.sleep(t, 1 + i)                      # they die in spawn order

    tasks = [k.spawn(f"t{i}", short, i) for i in range(DEAD_RINGS + 40)]
    k.run()
    kept = [t for t in tasks if t.ring]
    assert len(kept) == DEAD_RINGS and kept == tasks[-DEAD_RINGS:]
    assert k.tasks[:40] == [None] * 40 and k.tasks[40] is tasks[40]


def test_a_run_turns_automatic_gc_off_and_restores_it_after():
    """The run collects every GC_EVENTS events itself; the interpreter's collections are off
    while it runs (they cost 3-4% of a run) and come back as they were, even after a crash."""
    seen = []

    def body(k, t):
        seen.append(gc.isenabled())
        yield from k.sleep(t, 1)

    def crash(k, t):
        yield from k.sleep(t, 1)
        raise RuntimeError("a bug in a model path")

    assert gc.isenabled()
    k = make_kernel()
    k.spawn("t", body)
    k.run()
    assert seen == [False] and gc.isenabled()
    k = make_kernel()
    k.spawn("t", crash)
    with pytest.raises(RuntimeError, match="a bug in a model path"):
        k.run()
    assert gc.isenabled()
    gc.disable()
    try:
        k = make_kernel()
        k.spawn("t", body)
        k.run()
        assert seen == [False, False] and not gc.isenabled()    # off before: stays off
    finally:
        gc.enable()


def test_trace_path_errors_are_one_line_before_the_run(root, tmp_path):
    for bad, needle in ((str(tmp_path), "is a directory"), ("", "needs a file name"),
                        ("/proc/no/such.json", "cannot write")):
        p = cli(root, "run", "lock-calibration", "--trace", bad)
        assert p.returncode == 2 and p.stdout == "", bad
        assert len(p.stderr.splitlines()) == 1 and needle in p.stderr, p.stderr


def test_a_trace_that_cannot_be_written_loses_no_result(root):
    p = cli(root, "run", "lock-calibration", "--set", "acquisitions=2000", "--json",
            "--trace", "/dev/full")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert json.loads(p.stdout)["workload"] == "lock-calibration"      # the result, whole
    assert "the result above is complete" in p.stderr


def test_a_capped_trace_is_well_formed_and_says_where_it_was_cut(root, tmp_path):
    out = tmp_path / "t.json"
    p = cli(root, "run", "hotremove-exit", "--set", "duration_ms=20", "--trace", str(out),
            "--trace-limit", "20000")
    assert p.returncode == 0, p.stderr
    assert "cut at t=" in p.stdout and "--trace-limit" in p.stdout
    t = json.loads(out.read_text())
    assert t["otherData"]["truncated"] is True and t["otherData"]["cut_at_us"] > 0
    stacks: dict = {}
    for e in t["traceEvents"]:
        key = (e.get("pid"), e.get("tid"))
        if e["ph"] == "B":
            stacks.setdefault(key, []).append(e["name"])
        elif e["ph"] == "E":
            assert stacks.get(key), e                     # no E without its B
            assert stacks[key].pop() == e["name"]         # and in order
    assert all(not s for s in stacks.values())            # nothing left open
    asyncs = [e for e in t["traceEvents"] if e["ph"] in "be"]
    assert len(asyncs) % 2 == 0
    assert len(t["traceEvents"]) < 20000 + 2000           # the cap, plus metadata and closers


@pytest.mark.slow
def test_ctrl_c_exits_130_with_one_line_and_the_result_so_far(root):
    proc = subprocess.Popen([sys.executable, str(root / "run.py"), "run", "hotremove-exit",
                             "--set", "duration_ms=1000000", "--json"], cwd=root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_cpu_seconds(proc.pid, 2.0)       # well into the run, however loaded the machine
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert err.strip().splitlines() == [
        "run.py: interrupted; the result above covers the run so far"]
    assert json.loads(out)["truncated"] == "interrupted"


def test_calibration_with_too_few_batches_gives_no_verdict(root):
    r = sim.simulate("lock-calibration", acquisitions=1500)
    (side,) = r.extra["calibration"]["sides"]
    assert side["ci95_half_width_us"] is None and side["within_ci"] is None
    p = cli(root, "run", "lock-calibration", "--set", "acquisitions=1500")
    assert "no confidence interval" in p.stdout and "OUTSIDE" not in p.stdout


@pytest.mark.parametrize("args,needle", [
    (("--set", "cpus=2_0"), "'cpus' must be an integer (decimal digits), got '2_0'"),
    (("--set", "cpus=\u0663"), "'cpus' must be an integer (decimal digits)"),
    (("--set", "cpus=2.0"), "'cpus' must be an integer (decimal digits), got '2.0'"),
    (("--set", "readers=2"), "'readers' applies only to lock = \"rwsem\""),
    (("--set", "think_us=1e300"), "must be in 1e-06 .. 1e+09, got 1e+300"),
    (("--set", "think_us=inf"), "'think_us' must be a decimal number"),
    (("--max-memory", "lots"), "expected a size such as 4G"),
    (("--max-wall-s", "0"), "expected a positive number of seconds"),
])
def test_strict_parsing_one_line(root, args, needle):
    p = cli(root, "run", "lock-calibration", *args)
    assert p.returncode == 2 and p.stdout == ""
    assert len(p.stderr.splitlines()) == 1 and needle in p.stderr, p.stderr


def test_toml_values_follow_the_same_rules(root, tmp_path):
    f = tmp_path / "w.toml"
    f.write_text('scenario = "lock-calibration"\n[params]\ncpus = 2.0\n')
    p = cli(root, "run", str(f))
    assert p.returncode == 2 and "'cpus' in w.toml must be an integer, got 2.0" in p.stderr
    f.write_text('\ufeffscenario = "lock-calibration"\n[params]\nacquisitions = 2000\n',
                 encoding="utf-8")
    assert cli(root, "run", str(f)).returncode == 0                 # a BOM is fine
    f.write_text("")
    p = cli(root, "run", str(f))
    assert p.returncode == 2 and "missing the key 'scenario'" in p.stderr
    p = cli(root, "run", str(tmp_path))
    assert p.returncode == 2 and "is a directory" in p.stderr


def test_list_json_params_is_json(root):
    p = cli(root, "list", "--json", "--params")
    d = json.loads(p.stdout)
    keys = {r["key"] for r in d["scenarios"]["mm"]["params"]}
    assert {"processes", "memcg_reclaim_prob", "costs.page_copy"} <= keys
    assert d["workloads"]["hotremove-exit"]["scenario"] == "mm"


def test_python_api_input_errors_are_value_errors():
    for kw, needle in ((dict(max_events="10"), "max_events must be an integer >= 1"),
                       (dict(max_events=1.5), "max_events must be an integer >= 1"),
                       (dict(params=[1]), "params must be a mapping"),
                       (dict(stop_on=("nosuch",)), "unknown violation kind 'nosuch'"),
                       (dict(seed=-1), "seed must be a non-negative integer"),
                       (dict(cpus="2_0"), "must be an integer (decimal digits)")):
        with pytest.raises(ValueError, match=needle.replace("(", r"\(").replace(")", r"\)")):
            sim.simulate("lock-calibration", **kw)
    r = sim.simulate("lock-calibration", seed=np.int64(3), acquisitions=1000,
                     cpus=np.int64(2), think_us=np.float64(5.0))
    assert r.seed == 3 and r.params["cpus"] == 2 and r.params["think_us"] == 5.0
    assert sim.simulate("lock-calibration", acquisitions="1000").params["acquisitions"] == 1000
