"""The command line: contract JSON, byte-identical determinism, traces, one-line errors."""

import json
import os
import subprocess
import sys

import pytest

from sim.engine.stats import LOCK_STAT_KEYS

CONTRACT_KEYS = {"workload", "variant", "seed", "params", "sim_time_us", "events", "violations",
                 "lock_stat", "windows"}


def cli(root, *args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([sys.executable, str(root / "run.py"), *args], capture_output=True,
                          text=True, cwd=root, env=e, timeout=300)


def test_run_json_contract(root):
    p = cli(root, "run", "lock-calibration", "--set", "cpus=4", "--set", "acquisitions=3000",
            "--json")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert CONTRACT_KEYS <= set(d)
    assert d["workload"] == "lock-calibration" and d["variant"] == "v2.6.33" and d["seed"] == 0
    assert d["params"]["cpus"] == 4
    assert d["lock_stat"] and all(tuple(row) == LOCK_STAT_KEYS for row in d["lock_stat"])
    assert d["violations"] == []


@pytest.mark.slow
def test_same_seed_byte_identical_in_separate_processes(root):
    args = ("run", "lock-calibration", "--set", "cpus=4", "--set", "acquisitions=4000",
            "--seed", "7", "--json")
    a = cli(root, *args, env={"PYTHONHASHSEED": "1"})
    b = cli(root, *args, env={"PYTHONHASHSEED": "2"})
    assert a.returncode == b.returncode == 0
    assert a.stdout == b.stdout
    c = cli(root, *args[:-2], "8", "--json")
    assert json.loads(c.stdout)["lock_stat"] != json.loads(a.stdout)["lock_stat"]


def test_python_api_returns_what_the_cli_prints(root):
    import sim
    p = cli(root, "run", "lock-calibration", "--set", "acquisitions=2000", "--seed", "3",
            "--json")
    r = sim.simulate("lock-calibration", seed=3, acquisitions=2000)
    assert json.loads(p.stdout) == json.loads(json.dumps(r.to_dict()))


def test_trace_opens_as_chrome_trace_events(root, tmp_path):
    out = tmp_path / "t.json"
    p = cli(root, "run", "lock-calibration", "--set", "acquisitions=500", "--set", "cpus=3",
            "--trace", str(out))
    assert p.returncode == 0, p.stderr
    t = json.loads(out.read_text())
    evs = t["traceEvents"]
    names = {(e["pid"], e.get("tid")): e["args"]["name"] for e in evs
             if e["ph"] == "M" and e["name"] == "thread_name"}
    assert {"cpu0", "cpu1", "cpu2", "CPU 0", "CPU 1", "CPU 2"} <= set(names.values())
    holds = [e for e in evs if e["ph"] in "be" and e.get("cat") == "lock-hold"]
    assert len(holds) == 2 * 500
    waits = [e for e in evs if e["ph"] == "b" and e.get("cat") == "lock-wait"]
    assert waits and all(e["name"] == "wait calibration_lock" for e in waits)
    assert any(e["ph"] == "C" and e["name"] == "waiters calibration_lock" for e in evs)
    assert all(isinstance(e["ts"], (int, float)) for e in evs if e["ph"] != "M")


@pytest.mark.parametrize("args,needle", [
    (("run", "no-such-workload"), "unknown workload 'no-such-workload'; valid: "),
    (("run", "lock-calibration", "--set", "nokey=1"), "unknown parameter 'nokey'"),
    (("run", "lock-calibration", "--set", "cpus=four"), "'cpus' must be an integer"),
    (("run", "lock-calibration", "--set", "cpus=0"), "'cpus' must be in 1 .. 512, got 0"),
    (("run", "lock-calibration", "--set", "lock=ticket"), "must be one of spinlock, mutex"),
    (("run", "lock-calibration", "--set", "cpus"), "--set expects KEY=VALUE"),
    (("run", "lock-calibration", "--variant", "v2.6.99"), "unknown variant 'v2.6.99'; valid:"),
    (("run", "lock-calibration", "--seed", "x"), "expected a non-negative integer"),
    (("run", "lock-calibration", "--set", "lock=rwsem", "--set", "readers=9"),
     "'readers' must be at most cpus"),
    (("frobnicate",), "invalid choice"),
])
def test_bad_input_one_line_exit_2(root, args, needle):
    p = cli(root, *args)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], p.stderr
    assert "Traceback" not in p.stderr and p.stdout == ""


def test_malformed_and_invalid_workload_files(root, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('scenario = "lock-calibration"\n[params\ncpus = 2\n')
    p = cli(root, "run", str(bad))
    assert p.returncode == 2 and "malformed TOML" in p.stderr and len(p.stderr.splitlines()) == 1
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('scenario = "lock-calibration"\n[params]\nthink_us = "slow"\n')
    p = cli(root, "run", str(wrong))
    assert p.returncode == 2 and "'think_us' in wrong.toml must be a decimal number" in p.stderr
    nosc = tmp_path / "nosc.toml"
    nosc.write_text('scenario = "weather"\n')
    p = cli(root, "run", str(nosc))
    assert p.returncode == 2 and "'scenario' must be one of" in p.stderr
    good = tmp_path / "mine.toml"
    good.write_text('scenario = "lock-calibration"\n[params]\nacquisitions = 100\n')
    p = cli(root, "run", str(good), "--json")
    assert p.returncode == 0 and json.loads(p.stdout)["workload"] == "mine"


def test_list(root):
    p = cli(root, "list", "--json")
    d = json.loads(p.stdout)
    assert "lock-calibration" in [w["name"] for w in d["workloads"]]
    assert [v["name"] for v in d["variants"]] == [
        "v2.6.33", "ksm-lru-no-walk", "no-new-forks-pass", "no-ksm-migrate-page",
        "walk-with-page-lock-anon-vma", "no-rcu", "anon-vma-refcount", "anon-vma-lock-get",
        "anon-vma-lock-get-no-recheck"]
    assert {"anon_vma_stale", "anon_vma_use_after_free", "migration_pte_leak",
            "stale_stable_node", "lock_order_inversion", "deadlock",
            "invariant"} <= {k["name"] for k in d["violation_kinds"]}
    assert cli(root, "list").returncode == 0


def test_workload_parameter_docs_are_current(root):
    p = cli(root, "list", "--params")
    assert p.returncode == 0
    assert (root / "workloads" / "README.md").read_text() == p.stdout, \
        "regenerate: rmapsim list --params > workloads/README.md"
    for key in ("processes", "pages_per_process", "ksm_share", "fork_rate", "exit_rate",
                "fault_rate", "migrate_rate", "offline_interval_us", "duration_ms",
                "costs.page_copy", "costs.pte_op", "costs.vma_visit"):
        assert f"| `{key}` |" in p.stdout


def test_the_engine_imports_nothing_of_the_mm_model(root):
    """Layers: no module of sim/engine/ imports from sim.mm or the layers above the engine
    (sim.errors is shared), at run time or for type checking."""
    import ast
    allowed = ("sim.engine", "sim.errors")
    bad = []
    for path in sorted((root / "sim" / "engine").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            bad += [(path.name, n) for n in names
                    if (n == "sim" or n.startswith("sim.")) and not n.startswith(allowed)]
    assert bad == []


SIMPY_PRIVATE = {"_now", "_queue", "_eid", "_ok", "_value", "_delay", "_defused"}


def test_simpy_private_fields_are_touched_only_in_env_py(root):
    """SimPy's private fields (stable since SimPy 3, pinned) are read or written in one
    module, sim/engine/env.py, so that a SimPy upgrade is checked in one place."""
    import ast

    def touches(node: ast.AST) -> bool:       # x._now, or a getter's "env._now"
        return (isinstance(node, ast.Attribute) and node.attr in SIMPY_PRIVATE or
                isinstance(node, ast.Constant) and isinstance(node.value, str) and
                node.value.split(".")[-1] in SIMPY_PRIVATE)
    where = sorted(path.relative_to(root).as_posix() for path in (root / "sim").rglob("*.py")
                   if any(touches(n) for n in ast.walk(ast.parse(path.read_text()))))
    assert where == ["sim/engine/env.py"]


def test_the_command_line_loads_race_and_sweep_machinery_only_when_used():
    """`rmapsim run` starts without sim.race or the sweep runner: the parser needs only two
    constants of sim.sweep, and each command imports what it uses."""
    code = ("import sys, sim.cli; print(sorted(m for m in sys.modules "
            "if m.startswith(('sim.race', 'sim.sweep'))))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120)
    assert p.stdout.strip() == "['sim.sweep', 'sim.sweep.backends', 'sim.sweep.grid', " \
                               "'sim.sweep.row']", p.stderr
    import sim.sweep
    assert all(getattr(sim.sweep, name) for name in sim.sweep.__all__)


def test_the_entry_point_loads_nothing_of_the_simulator_before_main():
    """sim.launch imports the CLI inside main() (a Ctrl-C while it loads is the CLI's), so
    the package's own names load on first use; each of them resolves."""
    code = "import sys, sim.launch; print(sorted(m for m in sys.modules if m.startswith('sim')))"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120)
    assert p.stdout.strip() == "['sim', 'sim.launch', 'sim.lazy']", p.stderr
    import sim
    assert all(getattr(sim, name) for name in sim.__all__)


def test_the_rmapsim_command_is_installed_and_matches_run_py(root):
    """`make install` puts a console script beside the interpreter; it is the same command
    line as run.py, under its own name."""
    import pathlib
    exe = pathlib.Path(sys.executable).parent / "rmapsim"
    p = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.startswith("usage: rmapsim ")
    for sub in ("list", "run", "sweep", "report", "export", "hunt", "replay", "shrink",
                "explore"):
        assert sub in p.stdout
    bad = subprocess.run([str(exe), "run", "hotremove-exit", "--seed", "+2"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("rmapsim run: error: ")
    p2 = cli(root, "run", "hotremove-exit", "--seed", "+2")
    assert p2.returncode == 2 and p2.stderr.startswith("run.py run: error: ")
    assert bad.stderr.split("error: ")[1] == p2.stderr.split("error: ")[1]


def test_shared_options_are_defined_once_with_each_commands_defaults():
    """The parent parsers give every command the same option, with its own default: a
    sweep's seed and jobs (None: the file's seed, the CPU count) do not leak into run or
    hunt (argparse shares a parent's actions between the parsers built from it)."""
    from sim.cli import parser
    ap = parser("rmapsim")
    run = ap.parse_args(["run", "w"])
    sweep = ap.parse_args(["sweep", "w", "--out", "d"])
    hunt = ap.parse_args(["hunt", "w"])
    assert (run.seed, run.variant, run.set, run.max_events) == (0, "v2.6.33", None, None)
    assert (sweep.seed, sweep.jobs, sweep.backend) == (None, None, "local")
    assert (hunt.seed, hunt.jobs, hunt.backend) == (0, 1, "local")
