"""Workload sweeps: grids of parameters x variants x replications, run on this process, a
local pool or a Dask cluster, stored crash-safely in a directory, and reported with
confidence intervals and plots.

    sweep = sim.sweep.make_sweep("hotremove-exit", variants=["v2.6.33", "no-rcu"],
                                 grid=[("exit_rate", [50, 100, 200])], reps=10)
    outcome = sim.sweep.run_sweep(sweep, "results/my-sweep", jobs=2)
    df = sim.load_results("results/my-sweep")          # pandas (the `sweep` extra)
"""

import importlib
from typing import Any

# each name's module, imported on first use (PEP 562): importing one submodule, or the
# package for one name, does not load the rest
_WHERE = {
    "Cell": "sim.sweep.grid",
    "SweepDef": "sim.sweep.grid",
    "derive_seed": "sim.sweep.grid",
    "make_sweep": "sim.sweep.grid",
    "parse_grid_arg": "sim.sweep.grid",
    "SweepOutcome": "sim.sweep.runner",
    "run_sweep": "sim.sweep.runner",
    "stored_rows": "sim.sweep.runner",
}
__all__ = list(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
