"""rmapsim: a discrete-event concurrency simulator of Linux v2.6.33 anon rmap, migration, KSM.

    import sim
    r = sim.simulate("hotremove-exit", variant="v2.6.33", seed=3)
    r.to_dict()      # the same object `rmapsim run ... --json` prints

The names below are imported when first used, so that `import sim.launch` (the command's
entry point) costs nothing and a Ctrl-C while the rest loads is the CLI's to handle.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

__version__ = "0.2.0"   # the simulator's version: results name it (pyproject reads it here)

_EXPORTS = {             # name: (module, attribute there)
    "simulate": ("sim.api", "simulate"), "run_spec": ("sim.api", "run_spec"),
    "spec_for": ("sim.api", "spec_for"), "resolve_params": ("sim.api", "resolve_params"),
    "RunSpec": ("sim.spec", "RunSpec"), "Result": ("sim.result", "Result"),
    "InputError": ("sim.errors", "InputError"), "VARIANTS": ("sim.mm.variants", "VARIANTS"),
    "VIOLATION_KINDS": ("sim.kinds", "KINDS"), "workloads": ("sim.workload", "available"),
}

__all__ = ["__version__", "simulate", "run_spec", "spec_for", "RunSpec", "resolve_params",
           "Result", "InputError", "VARIANTS", "VIOLATION_KINDS", "workloads", "load_results"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'sim' has no attribute {name!r}")
    module, attr = _EXPORTS[name]
    value = getattr(import_module(module), attr)
    globals()[name] = value              # once: later lookups are plain attributes
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


def load_results(out: str) -> "pandas.DataFrame":  # type: ignore[name-defined] # noqa: F821
    """A stored sweep's runs as a tidy pandas DataFrame (sim.sweep.report.load_results)."""
    from sim.sweep.report import load_results as _load
    return _load(out)
