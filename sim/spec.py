"""A run as plain data: RunSpec names everything that determines a run's result, so a run
can be stored, shipped to another process or machine, and repeated without a workload file.

    spec = RunSpec("mm", {"processes": 8, "duration_ms": 50}, variant="no-rcu", seed=3)
    sim.simulate(spec)

`params` are overrides on the scenario's defaults (a workload's resolved parameters are
fine too); `strategy` is a strategy spec (sim.engine.sched.make_strategy), `{"name": "timed"}` by
default. Limits (sim.engine.limits) are part of the spec: a run cut short by one has another result.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sim.errors import InputError

DEFAULT_STRATEGY: dict[str, Any] = {"name": "timed"}


# The run limits a spec (and a reproducer) may set: one list, used everywhere.
LIMIT_KEYS = ("max_events", "max_wall_s", "max_memory")


@dataclass(frozen=True)
class RunSpec:
    scenario: str
    params: dict[str, Any] = field(default_factory=dict)
    variant: str = "v2.6.33"
    seed: int = 0
    strategy: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_STRATEGY))
    workload: str = ""                    # a label: the workload the spec was made from
    max_events: int | None = None
    max_wall_s: float | None = None
    max_memory: int | None = None
    stop_on: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stop_on"] = list(self.stop_on)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunSpec":
        try:
            return cls(**{**d, "stop_on": tuple(d.get("stop_on", ()))})
        except TypeError as e:
            raise InputError(f"not a run spec: {e}") from None
