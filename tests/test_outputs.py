"""Output files: nothing lost, nothing deleted (issue 17). Every input is checked before an
output path is touched; outputs are written to a temporary file renamed into place; a path
the command did not create (a user's file, a device node) is never removed or replaced."""

import json
import os
import stat

import pytest
from conftest import main_in_process, wait_cpu_seconds

import sim.cli as cli_main
from sim.errors import InputError
from sim.outputs import check_output, output_in, write_atomic


@pytest.mark.parametrize("bad", [["--set", "cpus=0"], ["--variant", "nope"],
                                 ["--max-memory", "1"], ["--set", "nokey=1"]])
def test_bad_input_leaves_an_existing_trace_file_alone(tmp_path, capsys, bad):
    """`echo x > p.json; run.py run hotremove-exit --set cpus=0 --trace p.json` (and an
    unknown variant, a --max-memory refusal) removed p.json."""
    p = tmp_path / "p.json"
    p.write_text("x\n")
    rc, _, err = main_in_process(["run", "hotremove-exit-mini", *bad, "--trace", str(p)], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert p.read_text() == "x\n"
    assert sorted(os.listdir(tmp_path)) == ["p.json"]


def test_a_device_node_given_as_trace_is_never_removed(tmp_path, capsys):
    """`mknod fakenull c 1 3; run.py run hotremove-exit-mini --variant nope --trace
    fakenull` deleted the node (as root, `--trace /dev/null` deleted /dev/null)."""
    node = tmp_path / "fakenull"
    try:
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        os.mkfifo(node)                       # not root: a FIFO is a special file too
    before = os.stat(node)
    rc, _, _ = main_in_process(["run", "hotremove-exit-mini", "--variant", "nope", "--trace",
                      str(node)], capsys)
    assert rc == 2
    after = os.stat(node)
    assert (after.st_ino, after.st_mode, after.st_rdev) == \
        (before.st_ino, before.st_mode, before.st_rdev)
    if stat.S_ISCHR(before.st_mode):          # a good run writes into it, still a device
        rc, _, _ = main_in_process(["run", "hotremove-exit-mini", "--trace", str(node)], capsys)
        assert rc == 0
        assert os.stat(node).st_ino == before.st_ino and stat.S_ISCHR(os.stat(node).st_mode)


@pytest.mark.slow
def test_a_cut_trace_of_a_long_run_keeps_the_result(tmp_path, capsys):
    """`run.py run hotremove-exit --set duration_ms=300 --trace t.json --trace-limit
    50000`: AttributeError 'NoneType' object has no attribute 'tid' once the cap was hit
    after dead tasks were forgotten; the result was lost."""
    t = tmp_path / "t.json"
    rc, out, err = main_in_process(["run", "hotremove-exit", "--set", "duration_ms=300", "--trace",
                          str(t), "--trace-limit", "50000", "--json"], capsys)
    assert rc == 0, err
    assert json.loads(out)["workload"] == "hotremove-exit"
    d = json.loads(t.read_text())
    assert d["otherData"]["truncated"] is True
    named = {e["pid"] for e in d["traceEvents"] if e.get("ph") == "M"}
    used = {e["pid"] for e in d["traceEvents"] if e.get("ph") != "M"}
    assert used <= named                      # every task in the trace has its name


def test_atomic_write_failure_leaves_the_old_file_and_no_temporary(tmp_path):
    p = tmp_path / "out.json"
    p.write_text("old")

    def boom(f):
        f.write("half")
        raise OSError(28, "No space left on device")
    with pytest.raises(InputError, match="No space left"):
        write_atomic(p, boom, "--x")
    assert p.read_text() == "old" and os.listdir(tmp_path) == ["out.json"]
    write_atomic(p, lambda f: f.write("new"), "--x")
    assert p.read_text() == "new" and os.listdir(tmp_path) == ["out.json"]


def test_check_output_creates_nothing(tmp_path):
    check_output(tmp_path / "new.json", "--x")
    assert os.listdir(tmp_path) == []
    with pytest.raises(InputError, match="is a directory"):
        check_output(tmp_path, "--x")
    with pytest.raises(InputError, match="does not exist"):
        check_output(tmp_path / "no" / "x.json", "--x")
    with pytest.raises(InputError, match="needs a file name"):
        check_output("", "--x")


def test_output_prefix_naming_a_directory_means_files_inside_it(tmp_path):
    """`explore --out-prefix /tmp` wrote /tmp0.json."""
    assert output_in(str(tmp_path), "explore-violation-") == \
        str(tmp_path / "explore-violation-")
    assert output_in(str(tmp_path) + "/", "e-") == str(tmp_path / "e-")
    assert output_in(str(tmp_path / "mine-"), "e-") == str(tmp_path / "mine-")


def _closed_pipe_run(root, *args):
    """Run the CLI with stdout a pipe whose reader has already gone (EPIPE on the first
    write, deterministically)."""
    import subprocess
    import sys
    r, w = os.pipe()
    os.close(r)
    try:
        p = subprocess.run([sys.executable, str(root / "run.py"), *args], stdout=w,
                           stderr=subprocess.PIPE, text=True, cwd=root, timeout=300)
    finally:
        os.close(w)
    return p


def test_a_closed_stdout_keeps_the_exit_code(root, tmp_path):
    """`set -o pipefail; run.py replay uaf.json | head -1` exited 0 (BrokenPipeError ended
    it) instead of 1 (the violation reproduced)."""
    rep = tmp_path / "uaf.json"
    p = _closed_pipe_run(root, "hunt", "hotremove-exit-mini", "--kind",
                         "anon_vma_use_after_free", "--out", str(rep))
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
    assert json.loads(rep.read_text())["violation"]["kind"] == "anon_vma_use_after_free"
    p = _closed_pipe_run(root, "replay", str(rep))
    assert p.returncode == 1 and p.stderr == "", p.stderr


def test_shrink_writes_beside_its_input_replacing_only_the_last_suffix():
    """`run.py shrink my.json.d/uaf.json` wrote to my.d/uaf.shrunk.json."""
    assert cli_main.shrunk_path("my.json.d/uaf.json") == "my.json.d/uaf.shrunk.json"
    assert cli_main.shrunk_path("r.json") == "r.shrunk.json"
    assert cli_main.shrunk_path("r.txt") == "r.txt.shrunk.json"


def test_empty_output_names_are_refused_before_the_work(capsys, tmp_path, monkeypatch):
    """`run.py hunt hotremove-exit-mini --out ''` silently wrote reproducer.json."""
    monkeypatch.chdir(tmp_path)
    rc, out, err = main_in_process(["hunt", "hotremove-exit-mini", "--out", ""], capsys)
    assert rc == 2 and out == "" and "needs a file name" in err
    assert os.listdir(tmp_path) == []


@pytest.mark.slow
def test_an_interrupted_parallel_explore_keeps_what_its_subtrees_found(root, tmp_path):
    """`run.py explore ... --jobs 2`, Ctrl-C after 4.8 s of work, printed "0 executions,
    violations: none" (the serial explore keeps what it found)."""
    import signal
    import subprocess
    import sys
    proc = subprocess.Popen([sys.executable, str(root / "run.py"), "explore",
                             "hotremove-exit-mini", "--jobs", "2", "--max-preemptions", "3",
                             "--out-prefix", str(tmp_path) + "/", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=root)
    wait_cpu_seconds(proc.pid, 2.0, workers=True)  # ~1,000 executions, however loaded
    proc.send_signal(signal.SIGINT)               # the coordinator only (kill -INT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, err
    d = json.loads(out)
    assert d["interrupted"] is True and d["complete"] is False
    assert d["executions"] > 0 and d["violations"]
    assert len(d["reproducers"]) == len(d["violations"])
