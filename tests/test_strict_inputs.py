"""Inputs exactly as documented (issue 17, "looser than documented"): one boolean rule
everywhere (true or false, nothing else), integers in ASCII decimal digits only, and the
other refusals the issue lists, each one line."""

import pytest
from conftest import main_in_process

import sim
from sim.errors import InputError
from sim.race import Reproducer


@pytest.mark.parametrize("value", ["yes", "on", "1", "True", "TRUE", "no", "off", "0",
                                   " true", "true ", "False"])
def test_set_booleans_are_exactly_true_or_false(value):
    """`run.py run ... --set lockdep=yes` (or on, 1, True) was accepted; README and the
    error say true or false."""
    with pytest.raises(InputError, match="'lockdep' must be true or false"):
        sim.spec_for("hotremove-exit-mini", params={"lockdep": value})


def test_true_and_false_are_booleans_on_the_command_line_in_toml_and_python(tmp_path):
    assert sim.spec_for("hotremove-exit-mini", params={"lockdep": "false"}).params[
        "lockdep"] is False
    assert sim.spec_for("hotremove-exit-mini", params={"lockdep": True}).params["lockdep"]
    f = tmp_path / "w.toml"
    for toml, ok in (("true", True), ("false", True), ("1", False), ('"yes"', False),
                     ("0", False)):
        f.write_text(f'scenario = "mm"\n[params]\nlockdep = {toml}\n')
        if ok:
            sim.spec_for(str(f))
        else:                      # `lockdep = 1` refused, as `lockdep = "yes"` is
            with pytest.raises(InputError, match="must be true or false"):
                sim.spec_for(str(f))


@pytest.mark.parametrize("value", ["+2", " 2", "2 ", "\t2", "+0.5"])
def test_integers_and_numbers_are_ascii_decimals_as_written(value):
    """`--set cpus=+2` and `--set 'cpus= 2'` were accepted against "ASCII decimal integers
    only"."""
    key = "wakeup_preempt_prob" if "." in value else "cpus"
    with pytest.raises(InputError, match=f"'{key}' must be"):
        sim.spec_for("hotremove-exit-mini", params={key: value})


@pytest.mark.parametrize("argv", [["--seed", " 2"], ["--seed", "+2"],
                                  ["--max-events", " 5"], ["--max-memory", " 4G"]])
def test_option_integers_are_ascii_decimals_as_written(capsys, argv):
    rc, out, err = main_in_process(["run", "hotremove-exit-mini", *argv], capsys)
    assert rc == 2 and out == "" and len(err.strip().splitlines()) == 1


def test_export_to_a_missing_directory_names_the_reason(capsys, tmp_path):
    """`export --csv /nonexistent/d/x.csv` said "cannot write ...: None"."""
    from sim.sweep import make_sweep, run_sweep
    run_sweep(make_sweep("hotremove-exit-mini", limits={"max_events": 3000}), tmp_path / "s",
              backend="serial")
    rc, out, err = main_in_process(["export", str(tmp_path / "s"), "--csv", "/nonexistent/d/x.csv"],
                         capsys)
    assert rc == 2 and "does not exist" in err and "None" not in err


def test_replay_of_deeply_nested_json_is_one_line(tmp_path, capsys):
    """`run.py replay` of a file of 100,000 nested `[`: RecursionError."""
    f = tmp_path / "nest.json"
    f.write_text("[" * 100_000)
    rc, out, err = main_in_process(["replay", str(f)], capsys)
    assert rc == 2 and "is not a reproducer" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(InputError):
        Reproducer.load(f)
