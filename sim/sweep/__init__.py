"""Workload sweeps: grids of parameters x variants x replications, run on this process, a
local pool or a Dask cluster, stored crash-safely in a directory, and reported with
confidence intervals and plots.

    sweep = sim.sweep.make_sweep("hotremove-exit", variants=["v2.6.33", "no-rcu"],
                                 grid=[("exit_rate", [50, 100, 200])], reps=10)
    outcome = sim.sweep.run_sweep(sweep, "results/my-sweep", jobs=2)
    df = sim.load_results("results/my-sweep")          # pandas (the `sweep` extra)
"""

from sim.lazy import lazy_names

__getattr__, __dir__ = lazy_names(globals(), {
    "Cell": ("sim.sweep.grid", "Cell"),
    "SweepDef": ("sim.sweep.grid", "SweepDef"),
    "derive_seed": ("sim.sweep.grid", "derive_seed"),
    "make_sweep": ("sim.sweep.grid", "make_sweep"),
    "parse_grid_arg": ("sim.sweep.grid", "parse_grid_arg"),
    "SweepOutcome": ("sim.sweep.runner", "SweepOutcome"),
    "run_sweep": ("sim.sweep.runner", "run_sweep"),
    "stored_rows": ("sim.sweep.runner", "stored_rows"),
})
__all__ = ["Cell", "SweepDef", "derive_seed", "make_sweep", "parse_grid_arg", "SweepOutcome",
           "run_sweep", "stored_rows"]
