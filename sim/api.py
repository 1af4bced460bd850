"""The public entry point: simulate one workload under one variant and seed."""

from __future__ import annotations

from typing import Any

from . import variants, workload as wl
from .errors import InputError
from .params import resolve
from .result import Result
from .sched import Strategy
from .scenarios import SCENARIOS


def resolve_params(workload: str, overrides: dict[str, Any] | None = None
                   ) -> tuple[wl.Workload, dict[str, Any]]:
    w = wl.load(workload)
    sc = SCENARIOS[w.scenario]
    layers = [(f" in {w.path.name}", w.values)]
    if overrides:
        layers.append(("", overrides))
    return w, resolve(sc.schema(), layers, f"workload '{w.name}'")


def simulate(workload: str, variant: str = "v2.6.33", seed: int = 0, *,
             params: dict[str, Any] | None = None, trace: bool = False,
             max_events: int | None = None, strategy: Strategy | None = None,
             stop_on: tuple[str, ...] = (), **overrides: Any) -> Result:
    """Run `workload` (a name in workloads/ or a .toml path) and return its Result.

    Parameters come from the workload file, then `params` (dotted keys allowed, e.g.
    {"costs.page_copy": 2.0}), then keyword overrides. `trace=True` keeps a Chrome/Perfetto
    trace in `result.chrome_trace`. `stop_on` ends the run at the first violation of those kinds.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    if max_events is not None and max_events < 1:
        raise InputError(f"max_events must be a positive integer, got {max_events!r}")
    v = variants.get(variant)
    merged = dict(params or {})
    merged.update(overrides)
    w, p = resolve_params(workload, merged)
    sc = SCENARIOS[w.scenario]
    k = sc.kernel(p, seed=seed, variant=v, strategy=strategy, trace=trace, stop_on=stop_on)
    model = sc.build(k, p)
    k.run(until=model.until_us, max_events=max_events)
    result = Result(
        workload=w.name, variant=v.name, seed=seed, params=p, sim_time_us=k.env.now,
        events=k.events, violations=k.violations.records,
        violation_counts=dict(k.violations.counts),
        harm_counts=dict(k.violations.harm_counts), lock_stat=k.lock_stat(),
        windows=k.windows.to_dict(), contention_points=k.contention_points(),
        counters=dict(k.counters), extra=model.extra(), schedule=k.strategy.record(),
        truncated=k.truncated,
    )
    result.chrome_trace = k.tracer.chrome_trace(k.tasks, k.cpus.n) if trace else None
    return result
