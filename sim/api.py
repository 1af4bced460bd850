"""The public entry point: simulate one workload under one variant and seed."""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping
from typing import Any

from sim import workload as wl
from sim.mm import variants
from sim.kinds import KINDS as VIOLATION_KINDS
from sim.errors import InputError
from sim.engine.interrupt import deferred_sigint
from sim.engine.limits import Limits
from sim.params import resolve
from sim.result import Result
from sim.engine.sched import Strategy, make_strategy
from sim.spec import DEFAULT_STRATEGY, RunSpec
from sim.engine.trace import TRACE_LIMIT
from sim.scenarios import SCENARIOS


def resolve_params(workload: str, overrides: dict[str, Any] | None = None
                   ) -> tuple[wl.Workload, dict[str, Any]]:
    w = wl.load(workload)
    sc = SCENARIOS[w.scenario]
    layers = [(f" in {w.path.name}", w.values)]
    if overrides:
        layers.append(("", overrides))
    p = resolve(sc.schema(), layers, f"workload '{w.name}'")
    sc.validate(p)
    return w, p


def spec_for(workload: str, variant: str = "v2.6.33", seed: int = 0, *,
             params: Mapping[str, Any] | None = None, max_events: int | None = None,
             max_wall_s: float | None = None, max_memory: int | None = None,
             strategy: Mapping[str, Any] | None = None, stop_on: Iterable[str] = (),
             **overrides: Any) -> RunSpec:
    """The RunSpec of a workload (name or .toml path) with these settings, its parameters
    resolved and checked."""
    if params is not None and not isinstance(params, Mapping):
        raise InputError("params must be a mapping of parameter names to values, got "
                         f"{type(params).__name__}")
    variants.get(variant)
    merged = dict(params or {})
    merged.update(overrides)
    w, p = resolve_params(workload, merged)
    return RunSpec(w.scenario, p, variant, check_count("seed", seed, minimum=0),
                   dict(strategy or DEFAULT_STRATEGY), w.name, max_events, max_wall_s,
                   max_memory, check_kinds(stop_on))


def simulate(workload: str | RunSpec, variant: str = "v2.6.33", seed: int = 0, *,
             params: Mapping[str, Any] | None = None, trace: bool = False,
             trace_limit: int = TRACE_LIMIT, max_events: int | None = None,
             max_wall_s: float | None = None, max_memory: int | None = None,
             strategy: Strategy | None = None, stop_on: Iterable[str] = (),
             **overrides: Any) -> Result:
    """Run `workload` (a name in workloads/, a .toml path, or a RunSpec) and return its
    Result.

    Parameters come from the workload file, then `params` (dotted keys allowed, e.g.
    {"costs.page_copy": 2.0}), then keyword overrides; a value may be given as text, parsed
    as on the command line. `trace=True` keeps a Chrome/Perfetto trace (at most
    `trace_limit` events) in `result.chrome_trace`. `stop_on` ends the run at the first
    violation of those kinds. max_events, max_wall_s and max_memory (bytes) bound the run
    (sim.engine.limits); a run over them ends early, with `result.truncated` saying why. A
    `strategy` object (sim.engine.sched) overrides the spec's. Bad input raises InputError (a
    ValueError) with one line saying what is wrong and what is valid.
    """
    if isinstance(workload, RunSpec):
        spec = workload
    else:
        spec = spec_for(workload, variant, seed, params=params, max_events=max_events,
                        max_wall_s=max_wall_s, max_memory=max_memory, stop_on=stop_on,
                        **overrides)
    return run_spec(spec, trace=trace, trace_limit=trace_limit, strategy=strategy)


def run_spec(spec: RunSpec, *, trace: bool = False, trace_limit: int = TRACE_LIMIT,
             strategy: Strategy | None = None) -> Result:
    """Run one RunSpec (no workload file needed) and return its Result."""
    sc = SCENARIOS.get(spec.scenario)
    if sc is None:
        raise InputError(f"unknown scenario {spec.scenario!r}; valid: " + ", ".join(SCENARIOS))
    seed = check_count("seed", spec.seed, minimum=0)
    limits = Limits(
        max_events=Limits.max_events if spec.max_events is None
        else check_count("max_events", spec.max_events),
        max_wall_s=Limits.max_wall_s if spec.max_wall_s is None
        else check_positive("max_wall_s", spec.max_wall_s),
        max_memory=0 if spec.max_memory is None
        else check_count("max_memory", spec.max_memory))
    trace_limit = check_count("trace_limit", trace_limit)
    stops = check_kinds(spec.stop_on)
    if strategy is None:
        strategy = make_strategy(spec.strategy)
    elif not isinstance(strategy, Strategy):
        raise InputError("strategy must be a sim.engine.sched strategy, got "
                         f"{type(strategy).__name__}")
    v = variants.get(spec.variant)
    name = spec.workload or spec.scenario
    p = resolve(sc.schema(), [("", dict(spec.params))], f"workload '{name}'")
    sc.validate(p)
    need = sc.footprint(p)
    if need > limits.memory():
        raise InputError(
            f"workload '{name}' would need about {need / 2**30:.1f} GiB of memory "
            f"(see its size parameters); the limit is {limits.memory() / 2**30:.1f} GiB "
            "(--max-memory)")
    with deferred_sigint() as sigint:       # Ctrl-C: see sim.engine.interrupt
        k = sc.kernel(p, seed=seed, variant=v, strategy=strategy, trace=trace, stop_on=stops,
                      trace_limit=trace_limit)
        try:
            model = sc.build(k, p)
            k.run(until=model.until_us, limits=limits)
            strategy.finished()
            result = Result(
                workload=name, variant=v.name, seed=seed, params=p, sim_time_us=k.now,
                events=k.events, violations=k.violations.records,
                violation_counts=dict(k.violations.counts),
                harm_counts=dict(k.violations.harm_counts), lock_stat=k.lock_stat(),
                windows=k.windows.to_dict(), contention_points=k.contention_points(),
                lock_percentiles=k.lock_percentiles(),
                counters=dict(k.counters), extra=model.extra(), schedule=k.strategy.record(),
                truncated=k.truncated,
            )
            result.chrome_trace = k.tracer.chrome_trace(k.tasks, k.cpus.n) if trace else None
        finally:
            k.close()
        if sigint.take():                   # while the result was built: keep it, but stop
            result.truncated = "interrupted"
    return result


def check_count(name: str, value: Any, minimum: int = 1) -> int:
    """An integer argument (Python int or numpy integer, not bool) of at least `minimum`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        what = "a non-negative integer" if minimum == 0 else f"an integer >= {minimum}"
        raise InputError(f"{name} must be {what}, got {value!r}")
    return int(value)


def check_positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0 \
            or value != value or value == float("inf"):
        raise InputError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


def check_kinds(kinds: Iterable[str]) -> tuple[str, ...]:
    if isinstance(kinds, str):
        kinds = (kinds,)
    out = tuple(kinds)
    bad = [x for x in out if x not in VIOLATION_KINDS]
    if bad:
        raise InputError(f"unknown violation kind {bad[0]!r}; valid: "
                         + ", ".join(VIOLATION_KINDS))
    return out
