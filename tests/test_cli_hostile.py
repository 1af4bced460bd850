"""A hostile newcomer (issue 17), generated: every subcommand with generated arguments and
generated files (damaged stores, truncated and nested JSON, existing, special and impossible
output paths). Whatever the input: exit 0, 1, 2 or 130, never a traceback, and no file that
existed before changes unless it is one of the command's own outputs (after a refusal, exit
2, not even those)."""

import hashlib
import os
import shutil
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import sim.cli as cli_main
from sim.race import explore
from sim.sweep import make_sweep, run_sweep
import sim

MINI = "hotremove-exit-mini"
PATHS = ["p.json", "new.json", "", "dir", "missing/x.json", "/proc/nope/x", "good", "bad",
         "dev", "trunc.json", "nest.json", "repro.json", "dir/", "prefix-", "bad.toml"]
FILES = ["repro.json", "trunc.json", "nest.json", "p.json", "dir", "missing.json", "dev", ""]
WORKLOADS = [MINI, MINI, "nope", "", "bad.toml", "dir", "good/sweep.json"]
SETS = ["cpus=2", "cpus=+2", "cpus= 2", "lockdep=yes", "lockdep=true", "cpus=0", "x=1",
        "reuser=false", "cpus", "migration=numa", "duration_ms=inf"]
NUMBERS = ["1", "2", "3", "0", "-1", "+2", " 2", "x", "99999999999999999999"]


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """The files a newcomer has lying around, made once (copied for each example)."""
    t = tmp_path_factory.mktemp("template")
    run_sweep(make_sweep(MINI, reps=2, limits={"max_events": 2000}), t / "good",
              backend="serial")
    (t / "bad").mkdir()
    (t / "bad" / "runs.sqlite").write_bytes((t / "good" / "runs.sqlite").read_bytes()[:3000])
    shutil.copy(t / "good" / "sweep.json", t / "bad")
    out = explore(sim.spec_for(MINI, params={"reuser": False, "cpus": 2},
                               variant="anon-vma-refcount"), 2)
    rep = next(iter(out.violations.values()))
    rep.save(t / "repro.json")
    text = (t / "repro.json").read_text()
    (t / "trunc.json").write_text(text[: len(text) // 2])
    (t / "nest.json").write_text("[" * 50_000)
    (t / "p.json").write_text("x\n")
    (t / "bad.toml").write_text('scenario = "mm"\n[params]\ncpus = "two"\n')
    (t / "dir").mkdir()
    (t / "dir" / "keep.txt").write_text("mine")
    return t


def _device(path: Path) -> None:
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))      # a /dev/null of our own
    except (PermissionError, OSError):
        path.write_text("not a device here\n")


def _snapshot(root: Path) -> dict[str, tuple]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + dirnames:
            p = Path(dirpath) / name
            st_ = os.lstat(p)
            rel = str(p.relative_to(root))
            if stat.S_ISREG(st_.st_mode):
                out[rel] = ("file", hashlib.sha256(p.read_bytes()).hexdigest())
            elif stat.S_ISDIR(st_.st_mode):
                out[rel] = ("dir",)
            else:
                out[rel] = ("special", st_.st_ino, st_.st_mode, st_.st_rdev)
    return out


def _outputs(argv: list[str]) -> list[str]:
    """The paths a command may write: its declared outputs (and what is under them)."""
    cmd = argv[0]
    outs = []
    for flag in ("--trace", "--out", "--csv", "--out-prefix"):
        if flag in argv:
            outs.append(argv[argv.index(flag) + 1])
    if cmd == "hunt" and "--out" not in argv:
        outs.append("reproducer.json")
    if cmd == "shrink" and "--out" not in argv:
        outs.append(cli_main.shrunk_path(argv[1]))
    if cmd == "explore" and "--out-prefix" not in argv:
        outs.append("explore-violation-")
    if cmd in ("report", "export", "sweep"):      # a sweep dir: plots, SQLite side files
        d = argv[1] if cmd != "sweep" else argv[argv.index("--out") + 1]
        outs += [os.path.join(d, n) for n in ("rates.png", "lock_wait.png",
                                              "window_widths.png", "runs.sqlite-wal",
                                              "runs.sqlite-shm", "sweep.lock")]
    return [os.path.normpath(o) for o in outs if o.strip()]


def _may_change(rel: str, outs: list[str]) -> bool:
    return any(rel == o or rel.startswith(o.rstrip("/") + "/") or
               (o.endswith("-") or o.endswith("/") or os.path.isdir(o)) and
               rel.startswith(o.rstrip("/")) for o in outs)


def _opt(flag, values):
    return st.one_of(st.just([]), st.sampled_from(values).map(lambda v: [flag, v]))


path = st.sampled_from(PATHS)
workload = st.sampled_from(WORKLOADS)
small = st.sampled_from(["1", "2", "3", "0", "x", " 2", "+2"])

commands = st.one_of(
    st.tuples(st.just(["list"]), st.sampled_from([[], ["--json"]]),
              st.sampled_from([[], ["--params"]])).map(lambda t: sum(t, [])),
    st.tuples(st.just(["run"]), workload.map(lambda w: [w]), _opt("--trace", PATHS),
              st.lists(st.sampled_from(SETS), max_size=2).map(
                  lambda s: sum((["--set", x] for x in s), [])),
              _opt("--variant", ["v2.6.33", "nope", ""]), _opt("--seed", NUMBERS),
              st.sampled_from([["--max-events", "2000"], ["--max-events", "0"],
                               ["--max-events", "2000", "--json"]])).map(lambda t: sum(t, [])),
    st.tuples(st.just(["sweep"]), workload.map(lambda w: [w]), path.map(lambda p: ["--out", p]),
              _opt("--reps", NUMBERS), _opt("--grid", ["cpus=1,2", "migration=numa,x",
                                                       "cpus=", "x=1", "cpus=1,+2"]),
              _opt("--jobs", ["1", "0", "64"]),
              st.sampled_from([["--backend", "serial"], ["--address", "tcp://h:1"],
                               ["--backend", "dask", "--address", "notaurl"],
                               ["--backend", "serial", "--max-runs", "1"]]),
              st.just(["--max-events", "2000"])).map(lambda t: sum(t, [])),
    st.tuples(st.sampled_from(["report", "export"]).map(lambda c: [c]),
              path.map(lambda p: [p]), path.map(lambda p: ["--csv", p])).map(
        lambda t: t[0] + t[1] + (t[2] if t[0] == ["export"] else [])),
    st.tuples(st.just(["hunt"]), workload.map(lambda w: [w]), _opt("--out", PATHS),
              _opt("--strategy", ["random", "pct", "dfs", "seeds", "x"]),
              _opt("--kind", ["anon_vma_use_after_free", "nope"]),
              st.sampled_from([["--budget", "2"], ["--budget", "0"], ["--budget", "3"]]),
              st.just(["--max-events", "2000"])).map(lambda t: sum(t, [])),
    st.tuples(st.sampled_from(["replay", "shrink"]).map(lambda c: [c]),
              st.sampled_from(FILES).map(lambda f: [f]),
              _opt("--out", PATHS)).map(
        lambda t: t[0] + t[1] + (t[2] if t[0] == ["shrink"] and t[1] != ["repro.json"] else [])),
    st.tuples(st.just(["explore"]), workload.map(lambda w: [w]), _opt("--out-prefix", PATHS),
              _opt("--max-preemptions", ["0", "1", "x"]), _opt("--kind", ["nope"]),
              st.sampled_from([["--budget", "2"], ["--budget", "3", "--json"]]),
              st.just(["--max-events", "2000"])).map(lambda t: sum(t, [])),
)


@settings(max_examples=int(os.environ.get("HOSTILE_EXAMPLES", 80)), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(argv=commands)
# the issue's own data-loss commands, always among the examples
@example(argv=["run", MINI, "--set", "cpus=0", "--trace", "p.json", "--max-events", "2000"])
@example(argv=["run", MINI, "--variant", "nope", "--trace", "dev", "--max-events", "2000"])
@example(argv=["run", MINI, "--trace", "p.json", "--max-memory", "1", "--max-events", "2000"])
@example(argv=["report", "bad"])
@example(argv=["sweep", MINI, "--out", "p.json", "--jobs", "64", "--max-events", "2000"])
@example(argv=["replay", "nest.json"])
def test_any_command_ends_cleanly_and_touches_only_its_outputs(template, tmp_path_factory,
                                                               monkeypatch, capsys, argv):
    if argv[0] == "shrink" and argv[1] == "repro.json":     # a real shrink takes seconds
        argv = ["replay", "repro.json"]
    work = tmp_path_factory.mktemp("w")
    shutil.copytree(template, work, dirs_exist_ok=True)
    _device(work / "dev")
    monkeypatch.chdir(work)
    before = _snapshot(work)
    try:
        rc = cli_main.main(argv)
    except SystemExit as e:
        rc = e.code
    out, err = capsys.readouterr()
    assert rc in (0, 1, 2, 130), (argv, rc, err)
    assert "Traceback" not in err and "Error:" not in err.replace("error:", ""), (argv, err)
    if rc == 2:
        lines = [x for x in err.splitlines() if x.startswith("run.py") or ": error" in x]
        assert len(lines) == 1, (argv, err)
    after = _snapshot(work)
    if os.environ.get("HOSTILE_LOG"):
        with open(os.environ["HOSTILE_LOG"], "a") as f:
            f.write(f"{rc} {argv!r} {err.strip()[:150]!r}\n")
    outs = [] if rc == 2 else _outputs(argv)      # a refusal touches nothing that existed
    changed = [k for k, v in before.items() if after.get(k) != v and not _may_change(k, outs)]
    assert not changed, (argv, changed)
