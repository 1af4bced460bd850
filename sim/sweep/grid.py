"""A sweep's definition: a workload, variants, axes of parameter values, replications, a
base seed; and its expansion into cells and RunSpecs.

Axes come from `--grid KEY=V1,V2,...` or a workload file's `[sweep]` table, where a list is
swept and a table is a range: `exit_rate = {from = 5, to = 500, steps = 6, scale = "log"}`
(scale "lin", the default, or "log"; integer keys are rounded, duplicates dropped). Every
value goes through the parameter schema's one parser, and every cell is validated before
anything runs or is written.

Each cell x replication gets a seed derived from (base seed, the cell's own key, the
replication) by SHA-256, so adding cells or axes' values never changes the seeds, and so the
results, of the cells already there.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sim.api import check_count, resolve_params
from sim.errors import InputError
from sim.engine.limits import default_max_memory
from sim.params import Param
from sim.scenarios import SCENARIOS
from sim.spec import RunSpec
from sim.mm.variants import VARIANTS
from sim.mm.variants import get as get_variant

DEFINITION_VERSION = 1
# Runs a sweep may have unless raised (run.py sweep --max-runs N, make_sweep(max_runs=N)):
# the count is made from the axes before anything is built, so a typo in `steps` or --reps
# is one line, not a machine out of memory. Memory grows with cells, not with replications.
MAX_RUNS = 100_000


@dataclass(frozen=True)
class Cell:
    index: int
    variant: str
    values: tuple[tuple[str, Any], ...]        # the swept parameters' values, in axis order

    @property
    def key(self) -> str:
        """Canonical and independent of the other cells: names it in the store and seeds."""
        return json.dumps({"variant": self.variant, "params": dict(sorted(self.values))},
                          sort_keys=True, separators=(",", ":"))

    @property
    def label(self) -> str:
        return " ".join([self.variant] + [f"{k}={_fmt(v)}" for k, v in self.values])


@dataclass(frozen=True)
class SweepDef:
    workload: str                              # its name (or path), for labels
    scenario: str
    base: dict[str, Any]                       # resolved parameters, before the axes
    variants: tuple[str, ...]
    axes: tuple[tuple[str, tuple[Any, ...]], ...]
    reps: int = 1
    seed: int = 0
    limits: dict[str, Any] = field(default_factory=dict)   # max_events, max_wall_s, ...

    def n_cells(self) -> int:
        return len(self.variants) * math.prod(len(vals) for _, vals in self.axes)

    def n_runs(self) -> int:
        return self.n_cells() * self.reps

    def iter_cells(self) -> Iterator[Cell]:
        """The cells in order, made one at a time."""
        keys = [k for k, _ in self.axes]
        i = 0
        for v in self.variants:
            for combo in itertools.product(*[vals for _, vals in self.axes]):
                yield Cell(i, v, tuple(zip(keys, combo)))
                i += 1

    def cells(self) -> list[Cell]:
        return list(self.iter_cells())

    def iter_specs(self) -> Iterator[tuple[Cell, int, RunSpec]]:
        """Every (cell, replication, spec), in cell order, made one at a time."""
        for cell in self.iter_cells():
            params = {**self.base, **dict(cell.values)}
            for rep in range(self.reps):
                yield (cell, rep, RunSpec(
                    self.scenario, params, cell.variant, derive_seed(self.seed, cell.key, rep),
                    workload=self.workload, **self.limits))

    def specs(self) -> list[tuple[Cell, int, RunSpec]]:
        return list(self.iter_specs())

    def to_dict(self) -> dict[str, Any]:
        return {"version": DEFINITION_VERSION, "workload": self.workload,
                "scenario": self.scenario, "base": self.base, "variants": list(self.variants),
                "axes": [[k, list(v)] for k, v in self.axes], "reps": self.reps,
                "seed": self.seed, "limits": self.limits}

    def canonical(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SweepDef":
        return cls(d["workload"], d["scenario"], d["base"], tuple(d["variants"]),
                   tuple((k, tuple(v)) for k, v in d["axes"]), d["reps"], d["seed"],
                   d.get("limits", {}))


def check_definition(d: SweepDef) -> SweepDef:
    """A definition read back (sweep.json) checked as make_sweep checks a new one: known
    scenario and variants, axes of the schema's keys with valid values, reps >= 1, seed >= 0."""
    sc = SCENARIOS.get(d.scenario)
    if sc is None:
        raise InputError(f"unknown scenario {d.scenario!r}")
    if not isinstance(d.workload, str) or not isinstance(d.base, dict) or \
            not isinstance(d.limits, dict):
        raise InputError("workload must be a name, base and limits tables")
    schema = sc.schema()
    check_count("reps", d.reps)
    check_count("seed", d.seed, minimum=0)
    if not d.variants or any(not isinstance(v, str) or v not in VARIANTS for v in d.variants):
        raise InputError("variants must be known variant names; valid: " + ", ".join(VARIANTS))
    for key, vals in d.axes:
        p = schema.get(key) if isinstance(key, str) else None
        if p is None or not vals:
            raise InputError(f"axis {key!r} is no parameter of {d.scenario} with values")
        for v in vals:
            if p.coerce(v, f" (axis {key})") != v or type(p.coerce(v, "")) is not type(v):
                raise InputError(f"axis {key}: {v!r} is not a value of {key}")
    return d


def check_size(n_runs: int, n_cells: int, max_runs: int) -> None:
    """Refuse a sweep of more than max_runs runs, counted before anything is built."""
    if n_runs > max_runs:
        raise InputError(f"the sweep would be {n_runs:,} runs ({n_cells:,} cells); the limit "
                         f"is {max_runs:,}: give fewer values, steps or --reps, or raise the "
                         "limit with --max-runs N")


def derive_seed(base: int, cell_key: str, rep: int) -> int:
    h = hashlib.sha256(f"{base}|{cell_key}|{rep}".encode()).digest()
    return int.from_bytes(h[:8], "big") >> 1          # a non-negative 63-bit integer


def _fmt(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v).lower() if isinstance(v, bool) else str(v)


def axis_values(p: Param, raw: Any, origin: str, max_runs: int = MAX_RUNS) -> tuple[Any, ...]:
    """A list of values, or a range table, parsed by the schema's parser."""
    where = f"sweep axis '{p.name}'{origin}"
    if isinstance(raw, dict):
        return _range(p, raw, where, max_runs)
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise InputError(f"{where} has no values; give at least one")
    out: list[Any] = []
    for item in items:
        v = p.coerce(item, origin)
        if v not in out:
            out.append(v)
    return tuple(out)


def _range(p: Param, spec: dict[str, Any], where: str, max_runs: int) -> tuple[Any, ...]:
    allowed = {"from", "to", "steps", "scale"}
    extra = sorted(set(spec) - allowed)
    if extra or not {"from", "to", "steps"} <= set(spec):
        raise InputError(f"{where}: a range is {{from = A, to = B, steps = N, scale = "
                         f"\"lin\" or \"log\"}}, got keys {sorted(spec)}")
    if p.type not in (int, float):
        raise InputError(f"{where}: a range needs a numeric parameter ({p.name} is "
                         f"{p.type.__name__})")
    steps = spec["steps"]
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise InputError(f"{where}: steps must be an integer >= 1, got {steps!r}")
    check_size(steps, steps, max_runs)          # before a value is made
    scale = spec.get("scale", "lin")
    if scale not in ("lin", "log"):
        raise InputError(f"{where}: scale must be \"lin\" or \"log\", got {scale!r}")
    lo = float(p.coerce(spec["from"], f" ({where}, from)"))
    hi = float(p.coerce(spec["to"], f" ({where}, to)"))
    if scale == "log" and (lo <= 0 or hi <= 0):
        raise InputError(f"{where}: a log range needs from and to above 0")
    if steps == 1:
        raw = [lo]
    elif scale == "log":
        raw = [math.exp(math.log(lo) + i * (math.log(hi) - math.log(lo)) / (steps - 1))
               for i in range(steps)]
    else:
        raw = [lo + i * (hi - lo) / (steps - 1) for i in range(steps)]
    out: dict[Any, None] = {}                  # in order, without duplicates (linear time)
    for x in raw:
        out.setdefault(p.coerce(int(round(x)) if p.type is int else float(f"{x:.6g}"),
                                f" ({where})"))
    return tuple(out)


def parse_grid_arg(text: str) -> tuple[str, list[str]]:
    """--grid KEY=V1,V2,... (values stay text: the schema parses them)."""
    key, sep, values = text.partition("=")
    if not sep or not key.strip():
        raise InputError(f"--grid expects KEY=V1,V2,..., got {text!r}")
    vals = [v.strip() for v in values.split(",")]
    if not values.strip() or any(not v for v in vals):
        raise InputError(f"--grid {key.strip()}: empty value in {values!r}; give V1,V2,...")
    return key.strip(), vals


def make_sweep(workload: str, *, variants: list[str] | None = None,
               grid: list[tuple[str, Any]] | None = None, reps: int | None = None,
               seed: int | None = None, overrides: dict[str, Any] | None = None,
               limits: dict[str, Any] | None = None, max_runs: int = MAX_RUNS) -> SweepDef:
    """A checked SweepDef: the workload file's [sweep] table, then these arguments (an axis
    given here replaces the file's). A sweep of more than `max_runs` runs is refused, counted
    from the axes before any cell is made."""
    max_runs = check_count("max_runs", max_runs)
    w, base = resolve_params(workload, overrides or {})
    sc = SCENARIOS[w.scenario]
    schema = sc.schema()
    table = dict(w.sweep)
    file_variants = table.pop("variants", table.pop("variant", None))
    axes: dict[str, tuple[Any, ...]] = {}
    for key, raw in table.items():
        if key in ("reps", "seed"):
            continue
        axes[key] = axis_values(_param(schema, key, w.name), raw, f" in {w.path.name}",
                                max_runs)
    for key, raw in grid or []:
        axes[key] = axis_values(_param(schema, key, w.name), raw, " (--grid)", max_runs)
    vs = variants or (file_variants if file_variants is not None else ["v2.6.33"])
    if isinstance(vs, str):
        vs = [vs]
    if not vs:
        raise InputError("no variants to sweep; give --variant V1,V2")
    for v in vs:
        get_variant(v)                              # refuses an unknown one
    r = reps if reps is not None else table.get("reps", 1)
    s = seed if seed is not None else table.get("seed", 0)
    d = SweepDef(w.name, w.scenario, base, tuple(dict.fromkeys(vs)), tuple(axes.items()),
                 check_count("reps", r), check_count("seed", s, minimum=0), dict(limits or {}))
    check_size(d.n_runs(), d.n_cells(), max_runs)
    memory = (limits or {}).get("max_memory") or default_max_memory()
    for cell in d.iter_cells():                  # every cell must be a valid run
        p = {**base, **dict(cell.values)}
        try:
            sc.validate(p)
        except InputError as e:
            raise InputError(f"cell {cell.label}: {e}") from None
        need = sc.footprint(p)
        if need > memory:                        # refused here, not by every run
            raise InputError(f"cell {cell.label} would need about {need / 2**30:.1f} GiB of "
                             f"memory; the limit is {memory / 2**30:.1f} GiB (--max-memory)")
    return d


def _param(schema: dict[str, Param], key: str, workload: str) -> Param:
    p = schema.get(key)
    if p is None:
        raise InputError(f"unknown parameter {key!r} to sweep for workload '{workload}'; "
                         "valid: " + ", ".join(sorted(schema)))
    return p

