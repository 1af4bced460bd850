"""Parameter schemas: every workload key with its type, default, unit, valid range and meaning.

Values come from three layers: the schema default, the workload file, then overrides (`--set`
or keyword arguments). Every value is checked against the schema; a bad one raises InputError
with one line that names the key, the problem and what is valid.
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass
from typing import Any

from sim.errors import InputError


@dataclass(frozen=True)
class Param:
    name: str
    type: type
    default: Any
    doc: str
    unit: str = ""
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] = ()

    def describe_range(self) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.type is bool:
            return "true or false"
        lo = "-inf" if self.lo is None else _num(self.lo)
        hi = "inf" if self.hi is None else _num(self.hi)
        return f"{lo} .. {hi}"

    def coerce(self, raw: Any, origin: str) -> Any:
        """The one parser of parameter values, whether they come as text (--set, or a string
        in the Python API) or typed (TOML, Python): the same rules everywhere. Integer keys
        take integers only (ASCII decimal digits as text; no 2.0, no 2_0); number keys take
        integers or finite decimals; booleans true/false; strings one of their choices."""
        t = self.type
        where = f"parameter '{self.name}'{origin}"
        if isinstance(raw, str) and t is not str:
            raw = _parse_text(raw, t, where)
        if t is bool:
            if not isinstance(raw, bool):
                raise InputError(f"{where} must be true or false, got {_show(raw)}")
            return raw
        if t is int:
            if isinstance(raw, bool) or not isinstance(raw, numbers.Integral):
                raise InputError(f"{where} must be an integer, got {_show(raw)}")
            raw = int(raw)
        elif t is float:
            if isinstance(raw, bool) or not isinstance(raw, numbers.Real):
                raise InputError(f"{where} must be a number, got {_show(raw)}")
            raw = float(raw)
            if not math.isfinite(raw):
                raise InputError(f"{where} must be a finite number, got {_show(raw)}")
        elif t is str:
            if not isinstance(raw, str):
                raise InputError(f"{where} must be a string, got {_show(raw)}")
            if self.choices and raw not in self.choices:
                raise InputError(f"{where} must be {self.describe_range()}; got {raw!r}")
            return raw
        if (self.lo is not None and raw < self.lo) or (self.hi is not None and raw > self.hi):
            raise InputError(f"{where} must be in {self.describe_range()}, got {_num(raw)}")
        return raw


def _num(x: float) -> str:
    """A number as a user wrote it: 20, 0.5, 1e+300 (never a 301-digit integer)."""
    if isinstance(x, int) and abs(x) < 10**15:
        return str(x)
    return f"{float(x):g}"


def _show(raw: Any) -> str:
    text = repr(raw)
    return text if len(text) <= 60 else text[:57] + "..."


_INT = re.compile(r"-?[0-9]+", re.ASCII)
_FLOAT = re.compile(r"-?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII)


def _parse_text(raw: str, t: type, where: str) -> Any:
    # Exactly as written: no surrounding spaces, no '+', no other spellings of a boolean.
    if t is bool:
        if raw in ("true", "false"):
            return raw == "true"
        raise InputError(f"{where} must be true or false, got {_show(raw)}")
    if t is int and _INT.fullmatch(raw):
        return int(raw)
    if t is float and _FLOAT.fullmatch(raw):
        return float(raw)
    kind = "an integer (decimal digits)" if t is int else "a decimal number"
    raise InputError(f"{where} must be {kind}, got {_show(raw)}")


# Kernel-wide parameters: every workload has these.
KERNEL_PARAMS: tuple[Param, ...] = (
    Param("cpus", int, 4, "simulated CPUs", "", 1, 512),
    Param("duration_ms", float, 200.0, "simulated time to run (scenarios that run for a time)",
          "ms", 0.001, 1e7),
    Param("sched_latency_us", float, 5000.0,
          "CFS sysctl_sched_latency before the 1+ilog2(cpus) scaling (2.6.33: 5 ms)", "us",
          1, 1e7),
    Param("sched_min_granularity_us", float, 1000.0,
          "CFS sysctl_sched_min_granularity before scaling (2.6.33: 1 ms)", "us", 1, 1e7),
    Param("wakeup_preempt_prob", float, 0.5,
          "probability that a waking task finding all CPUs busy sets need_resched on a random "
          "running task (stands for CFS check_preempt_wakeup; estimate)", "", 0, 1),
    Param("rcu_gp_us", float, 3000.0,
          "minimum RCU grace period (2.6.33 TREE_RCU: a few jiffies, about 3-10 ms at "
          "HZ=1000, 10-25 ms at HZ=250)", "us", 0, 1e7),
    Param("rcu_flavour", str, "tree",
          "RCU implementation (CONFIG_PREEMPT kernels): tree = CONFIG_TREE_RCU, rcu_read_lock "
          "disables preemption; tree_preempt = CONFIG_TREE_PREEMPT_RCU, readers can be "
          "preempted and the grace period waits for them", "",
          choices=("tree", "tree_preempt")),
    Param("cost_shape", float, 4.0,
          "shape k of the gamma jitter on step costs (coefficient of variation 1/sqrt(k))",
          "", 0.1, 1e6),
    Param("lockdep", bool, True, "run the lockdep validator (order, recursion, unlock balance)"),
    Param("lockstat_batch", int, 1000,
          "acquisitions per batch for the batch-means confidence interval of mean waits", "",
          10, 10**9),
    Param("costs.lock_op", float, 0.02, "uncontended lock or unlock of any lock", "us", 0, 1e6),
    Param("costs.context_switch", float, 3.0,
          "wake-up to running again after a sleep (try_to_wake_up + switch; estimate)", "us",
          0, 1e6),
)


def schema_dict(params: tuple[Param, ...]) -> dict[str, Param]:
    return {p.name: p for p in params}


def resolve(schema: dict[str, Param], layers: list[tuple[str, dict[str, Any]]],
            context: str) -> dict[str, Any]:
    """Defaults, then each (origin, values) layer in order; every key and value is checked."""
    out = {name: p.default for name, p in schema.items()}
    for origin, values in layers:
        for key, raw in values.items():
            p = schema.get(key)
            if p is None:
                raise InputError(
                    f"unknown parameter '{key}'{origin} for {context}; valid: "
                    + ", ".join(sorted(schema)))
            out[key] = p.coerce(raw, origin)
    return out
