"""Scenarios: the models a workload file can instantiate.

A scenario has a parameter schema and a `build(k, params)` that spawns its tasks on a Kernel
and returns a Model: the run's time limit and a scenario-specific section of the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from sim.engine.kernel import Kernel
from sim.mm.kernel import MmKernel
from sim.params import KERNEL_PARAMS, Param, schema_dict
from sim.mm.scenarios import mini, mm
from sim.scenarios import lock_calibration


class Model(Protocol):
    until_us: float | None

    def extra(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Scenario:
    name: str
    doc: str
    params: tuple[Param, ...]
    build: Callable[..., Model]
    kernel: type[Kernel] = Kernel       # the engine, or a subclass with the scenario's state
    # cross-parameter checks (raise InputError), and the memory a run will need, in bytes,
    # estimated from the parameters before anything is built
    validate: Callable[[dict[str, Any]], None] = lambda p: None
    footprint: Callable[[dict[str, Any]], int] = lambda p: 64 << 20
    # parameters shrinking may make smaller: key -> smaller values to try, smallest first
    shrink: dict[str, Callable[[Any], list[Any]]] = field(default_factory=dict)
    # are its actors driven by timed sleeps (then controlled strategies cannot reach its
    # race windows: sim.race.hunt.refuse_controlled)?
    sleeps: Callable[[dict[str, Any]], bool] = lambda p: False

    def schema(self) -> dict[str, Param]:
        return schema_dict(KERNEL_PARAMS + self.params)


SCENARIOS: dict[str, Scenario] = {
    "lock-calibration": Scenario("lock-calibration", lock_calibration.__doc__ or "",
                                 lock_calibration.PARAMS, lock_calibration.build,
                                 validate=lock_calibration.validate),
    "mm": Scenario("mm", mm.__doc__ or "", mm.PARAMS, mm.build, MmKernel,
                   validate=mm.validate, footprint=mm.footprint, shrink=mm.SHRINK,
                   sleeps=lambda p: True),
    "mm-mini": Scenario("mm-mini", mini.__doc__ or "", mini.PARAMS, mini.build, MmKernel,
                        validate=mini.validate, shrink=mini.SHRINK,
                        sleeps=lambda p: p["memcg_reclaim_prob"] > 0),
}
