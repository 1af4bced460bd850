"""What a strategy's execution reached of the declared race windows (sim.engine.stats.Windows):
how many opened, in how many the holder stood at a candidate site where another actor could
run instead (a real choice in controlled mode) or a delay was injected (sim.engine.sched.delays),
and which candidate sites (window@kernel function) were met. A hunt prints the sum: a
strategy that cannot reach a window shows it as a zero, not as silence."""

from __future__ import annotations

from typing import Any

from sim.engine.task import Task


class Coverage:
    def __init__(self, k: Any, generic: frozenset[str] = frozenset()) -> None:
        self.k = k
        self.generic = generic
        self.watch: list[Any] | None = None     # the windows that name sites (bound lazily)
        self.exercised: set[Any] = set()        # open windows (OpenWindow objects) reached
        self.sites: set[str] = set()

    def candidate(self, task: Task) -> tuple[str, Any] | None:
        """(site, its open window or None for a generic site) if this choice point of `task`
        is a candidate: it holds a window open inside one of the window's sites."""
        st = task.stack
        if not st:
            return None
        top = st[-1]
        watch = self.watch
        if watch is None:
            watch = self.watch = [w for w in self.k.windows.kinds.values() if w.sites]
        tid = task.tid
        best = None                             # the innermost (latest opened) window
        for w in watch:
            ow = w.open.get(tid)
            if ow is not None and top in w.sites and (best is None or ow.t0 >= best[1].t0):
                best = (w, ow)
        if best is not None:
            return f"{best[0].name}@{top}", best[1]
        if top in self.generic:
            return f"generic@{top}", None
        return None

    def reached(self, site: str, ow: Any) -> None:
        self.sites.add(site)
        if ow is not None:
            self.exercised.add(ow)

    def summary(self) -> dict[str, Any]:
        return {"windows_opened": sum(w.count for w in self.k.windows.kinds.values()),
                "windows_exercised": len(self.exercised), "sites": sorted(self.sites)}


def merge(a: dict[str, Any] | None, b: dict[str, Any] | None) -> dict[str, Any] | None:
    """The coverage of two sets of executions."""
    if a is None or b is None:
        return a or b
    return {"windows_opened": a["windows_opened"] + b["windows_opened"],
            "windows_exercised": a["windows_exercised"] + b["windows_exercised"],
            "sites": sorted(set(a["sites"]) | set(b["sites"]))}


def line(cov: dict[str, Any] | None, executions: int) -> str:
    """The coverage line a hunt prints."""
    if cov is None:
        return "coverage: not measured"
    sites = cov["sites"]
    return (f"coverage: {cov['windows_opened']} race windows opened in {executions} "
            f"executions; {cov['windows_exercised']} with another actor able to run or a "
            f"delay injected; {len(sites)} distinct candidate sites exercised"
            + (f" ({', '.join(sites)})" if sites else ""))
