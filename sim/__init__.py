"""rmapsim: a discrete-event concurrency simulator of Linux v2.6.33 anon rmap, migration, KSM.

    import sim
    r = sim.simulate("hotremove-exit", variant="v2.6.33", seed=3)
    r.to_dict()      # the same object `rmapsim run ... --json` prints

The names below are imported when first used, so that `import sim.launch` (the command's
entry point) costs nothing and a Ctrl-C while the rest loads is the CLI's to handle.
"""

from sim.lazy import lazy_names

__version__ = "0.2.0"   # the simulator's version: results name it (pyproject reads it here)

__getattr__, __dir__ = lazy_names(globals(), {
    "simulate": ("sim.api", "simulate"), "run_spec": ("sim.api", "run_spec"),
    "spec_for": ("sim.api", "spec_for"), "resolve_params": ("sim.api", "resolve_params"),
    "RunSpec": ("sim.spec", "RunSpec"), "Result": ("sim.result", "Result"),
    "InputError": ("sim.errors", "InputError"), "VARIANTS": ("sim.mm.variants", "VARIANTS"),
    "VIOLATION_KINDS": ("sim.kinds", "KINDS"), "workloads": ("sim.workload", "available"),
})

__all__ = ["__version__", "simulate", "run_spec", "spec_for", "RunSpec", "resolve_params",
           "Result", "InputError", "VARIANTS", "VIOLATION_KINDS", "workloads", "load_results"]


def load_results(out: str) -> "pandas.DataFrame":  # type: ignore[name-defined] # noqa: F821
    """A stored sweep's runs as a tidy pandas DataFrame (sim.sweep.report.load_results)."""
    from sim.sweep.report import load_results as _load
    return _load(out)
