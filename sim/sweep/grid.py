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
from dataclasses import dataclass, field
from typing import Any

from sim.api import check_count, resolve_params
from sim.errors import InputError
from sim.params import Param
from sim.scenarios import SCENARIOS
from sim.spec import RunSpec
from sim.mm.variants import get as get_variant

DEFINITION_VERSION = 1


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

    def cells(self) -> list[Cell]:
        keys = [k for k, _ in self.axes]
        out = []
        for v in self.variants:
            for combo in itertools.product(*[vals for _, vals in self.axes]):
                out.append(Cell(len(out), v, tuple(zip(keys, combo))))
        return out

    def specs(self) -> list[tuple[Cell, int, RunSpec]]:
        """Every (cell, replication, spec), in cell order."""
        out = []
        for cell in self.cells():
            params = {**self.base, **dict(cell.values)}
            for rep in range(self.reps):
                out.append((cell, rep, RunSpec(
                    self.scenario, params, cell.variant, derive_seed(self.seed, cell.key, rep),
                    workload=self.workload, **self.limits)))
        return out

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


def derive_seed(base: int, cell_key: str, rep: int) -> int:
    h = hashlib.sha256(f"{base}|{cell_key}|{rep}".encode()).digest()
    return int.from_bytes(h[:8], "big") >> 1          # a non-negative 63-bit integer


def _fmt(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v).lower() if isinstance(v, bool) else str(v)


def axis_values(p: Param, raw: Any, origin: str) -> tuple[Any, ...]:
    """A list of values, or a range table, parsed by the schema's parser."""
    where = f"sweep axis '{p.name}'{origin}"
    if isinstance(raw, dict):
        return _range(p, raw, where)
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise InputError(f"{where} has no values; give at least one")
    out: list[Any] = []
    for item in items:
        v = p.coerce(item, origin)
        if v not in out:
            out.append(v)
    return tuple(out)


def _range(p: Param, spec: dict[str, Any], where: str) -> tuple[Any, ...]:
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
    out: list[Any] = []
    for x in raw:
        v = p.coerce(int(round(x)) if p.type is int else float(f"{x:.6g}"), f" ({where})")
        if v not in out:
            out.append(v)
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
               limits: dict[str, Any] | None = None) -> SweepDef:
    """A checked SweepDef: the workload file's [sweep] table, then these arguments (an axis
    given here replaces the file's)."""
    w, base = resolve_params(workload, overrides or {})
    sc = SCENARIOS[w.scenario]
    schema = sc.schema()
    table = dict(w.sweep)
    file_variants = table.pop("variants", table.pop("variant", None))
    axes: dict[str, tuple[Any, ...]] = {}
    for key, raw in table.items():
        if key in ("reps", "seed"):
            continue
        axes[key] = axis_values(_param(schema, key, w.name), raw, f" in {w.path.name}")
    for key, raw in grid or []:
        axes[key] = axis_values(_param(schema, key, w.name), raw, " (--grid)")
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
    for cell in d.cells():                       # every cell must be a valid run
        p = {**base, **dict(cell.values)}
        try:
            sc.validate(p)
        except InputError as e:
            raise InputError(f"cell {cell.label}: {e}") from None
    return d


def _param(schema: dict[str, Param], key: str, workload: str) -> Param:
    p = schema.get(key)
    if p is None:
        raise InputError(f"unknown parameter {key!r} to sweep for workload '{workload}'; "
                         "valid: " + ", ".join(sorted(schema)))
    return p

