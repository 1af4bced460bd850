"""rmapsim: a discrete-event concurrency simulator of Linux v2.6.33 anon rmap, migration, KSM.

    import sim
    r = sim.simulate("hotremove-exit", variant="v2.6.33", seed=3)
    r.to_dict()      # the same object `rmapsim run ... --json` prints
"""

__version__ = "0.2.0"   # the simulator's version: results name it (pyproject reads it here)

from sim.api import resolve_params, run_spec, simulate, spec_for  # noqa: E402
from sim.kinds import KINDS as VIOLATION_KINDS
from sim.errors import InputError
from sim.result import Result
from sim.spec import RunSpec
from sim.mm.variants import VARIANTS
from sim.workload import available as workloads

__all__ = ["__version__", "simulate", "run_spec", "spec_for", "RunSpec", "resolve_params",
           "Result", "InputError", "VARIANTS", "VIOLATION_KINDS", "workloads", "load_results"]


def load_results(out: str) -> "pandas.DataFrame":  # type: ignore[name-defined] # noqa: F821
    """A stored sweep's runs as a tidy pandas DataFrame (sim.sweep.report.load_results)."""
    from sim.sweep.report import load_results as _load
    return _load(out)
