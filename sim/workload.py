"""Workload files: finding them, parsing them, and resolving their parameters.

A workload is a TOML file in workloads/ (or any path):

    scenario = "lock-calibration"       # which model builds it (sim.scenarios)
    description = "one line"
    [params]                            # any key of the scenario's schema
    cpus = 4
    [params.costs]                      # nested tables flatten to dotted keys: costs.lock_op
    lock_op = 0.0
    [sweep]                             # optional: what `run.py sweep` varies (sim.sweep)
    variants = ["v2.6.33", "no-rcu"]
    reps = 10
    cpus = [2, 4]                       # a list is swept; a table is a range:
    think_us = {from = 1, to = 100, steps = 5, scale = "log"}
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.errors import InputError

WORKLOAD_DIR = Path(os.environ.get("RMAPSIM_WORKLOADS",
                                   Path(__file__).resolve().parent.parent / "workloads"))


@dataclass
class Workload:
    name: str
    path: Path
    scenario: str
    description: str
    values: dict[str, Any] = field(default_factory=dict)
    sweep: dict[str, Any] = field(default_factory=dict)      # the [sweep] table, unparsed


def available() -> list[str]:
    return sorted(p.stem for p in WORKLOAD_DIR.glob("*.toml"))


def _flatten(prefix: str, d: dict[str, Any], out: dict[str, Any], path: Path) -> None:
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            _flatten(key + ".", v, out, path)
        elif isinstance(v, list):
            raise InputError(f"{path}: key '{key}' is a list; parameters are single values")
        else:
            out[key] = v


def load(name_or_path: str) -> Workload:
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise InputError("workload must be a name or a path to a .toml file, got "
                         f"{type(name_or_path).__name__}")
    name_or_path = os.fspath(name_or_path)
    p = Path(name_or_path)
    if not name_or_path.strip():
        raise InputError("workload must be a name or a path to a .toml file, got ''; "
                         "named workloads: " + ", ".join(available()))
    if name_or_path.endswith(".toml") or os.sep in name_or_path or p.is_dir():
        path = p
        if path.is_dir():
            raise InputError(f"workload '{name_or_path}' is a directory; give a .toml file "
                             "or one of: " + ", ".join(available()))
        if not path.is_file():
            raise InputError(f"workload file '{name_or_path}' does not exist; named workloads: "
                             + ", ".join(available()))
    else:
        path = WORKLOAD_DIR / f"{name_or_path}.toml"
        if not path.is_file():
            raise InputError(f"unknown workload '{name_or_path}'; valid: "
                             + ", ".join(available()) + " (or a path to a .toml file)")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))   # a BOM is allowed
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{path}: malformed TOML: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read: {e}") from None
    from sim.scenarios import SCENARIOS
    allowed = {"scenario", "description", "params", "sweep"}
    extra = sorted(set(data) - allowed)
    if extra:
        raise InputError(f"{path}: unknown top-level key '{extra[0]}'; valid: "
                         + ", ".join(sorted(allowed)) + " (parameters go under [params])")
    scenario = data.get("scenario")
    if scenario is None:
        raise InputError(f"{path}: missing the key 'scenario' (one of "
                         + ", ".join(sorted(SCENARIOS)) + "): a workload file names its model")
    if scenario not in SCENARIOS:
        raise InputError(f"{path}: 'scenario' must be one of " + ", ".join(sorted(SCENARIOS))
                         + f"; got {scenario!r}")
    desc = data.get("description", "")
    if not isinstance(desc, str):
        raise InputError(f"{path}: 'description' must be a string")
    params = data.get("params", {})
    if not isinstance(params, dict):
        raise InputError(f"{path}: 'params' must be a table ([params])")
    values: dict[str, Any] = {}
    _flatten("", params, values, path)
    sweep = data.get("sweep", {})
    if not isinstance(sweep, dict):
        raise InputError(f"{path}: 'sweep' must be a table ([sweep])")
    return Workload(path.stem, path, scenario, desc, values, _flatten_sweep(sweep))


def _flatten_sweep(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """[sweep] keys to axes: nested tables are dotted keys ([sweep.costs] page_copy = [..]),
    except a range table ({from, to, steps, scale}), which stays whole."""
    out: dict[str, Any] = {}
    for k, v in table.items():
        if isinstance(v, dict) and not {"from", "to"} & set(v):
            out.update(_flatten_sweep(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def parse_sets(items: list[str]) -> dict[str, str]:
    """--set KEY=VALUE ... into a dict (values stay text; the schema parses them)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--set expects KEY=VALUE, got {item!r}")
        out[key.strip()] = value
    return out
