"""The result of one run: plain data, and the contract JSON (`run --json`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sim.engine.violations import Violation

# The result's JSON layout. 2: `truncated` names why (or is null), `harm_counts`,
# `schema_version` and `simulator_version` added.
SCHEMA_VERSION = 2


@dataclass
class Result:
    workload: str
    variant: str
    seed: int
    params: dict[str, Any]
    sim_time_us: float
    events: int
    violations: list[Violation]
    violation_counts: dict[str, int]
    harm_counts: dict[str, int]
    lock_stat: list[dict[str, Any]]
    windows: dict[str, Any]
    contention_points: dict[str, Any] = field(default_factory=dict)
    lock_percentiles: dict[str, Any] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    schedule: dict[str, Any] = field(default_factory=dict)
    truncated: str | None = None     # why the run ended early (sim.engine.limits), or None
    chrome_trace: dict[str, Any] | None = field(default=None, repr=False)  # not in to_dict

    def to_dict(self) -> dict[str, Any]:
        from sim import __version__
        d: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "simulator_version": __version__,
            "workload": self.workload,
            "variant": self.variant,
            "seed": self.seed,
            "params": self.params,
            "sim_time_us": round(self.sim_time_us, 3),
            "events": self.events,
            "violations": [v.to_dict() for v in self.violations],
            "violation_counts": dict(sorted(self.violation_counts.items())),
            # anon_vma reports by harm: benign, corrupting, use_after_free
            "harm_counts": dict(sorted(self.harm_counts.items())),
            "lock_stat": self.lock_stat,
            "windows": self.windows,
            "contention_points": self.contention_points,
            "lock_percentiles": self.lock_percentiles,
            "counters": dict(sorted(self.counters.items())),
            "schedule": self.schedule,
            "truncated": self.truncated,
        }
        d.update(self.extra)
        return d
