"""Shrinking a reproducer: the same violation (kind, harm, kernel site) from a smaller
workload and fewer deviations from the default schedule.

A controlled run is rewritten as deviations: the decisions where it chose another actor than
the default (the one that ran last, else the lowest id). Replaying the deviations alone, with
the default everywhere else, gives the same run. Shrinking then alternates two passes until
neither helps: make the workload smaller (the scenario's `shrink` parameters: fewer
processes, pages, actors), and delta-debug the deviations (ddmin, Zeller and Hildebrandt
2002): drop chunks of them while the violation still shows. A smaller workload numbers its
decisions differently, so when the deviations no longer fit it and there are few of them, it
is searched (sim.race.explore, iteratively deepening up to as many preemptions as there are
deviations) for a schedule that shows the violation. The result is re-recorded as a strict reproducer. A timed-model reproducer (seeds) has no schedule to shrink: only its
workload shrinks, keeping its seed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from collections.abc import Iterator
from typing import Any

from sim.errors import InputError
from sim.result import Result
from sim.scenarios import SCENARIOS
from sim.spec import RunSpec
from sim.engine.sched import Delays, Replay, default_choice
from sim.race.explore import explore
from sim.race.repro import Reproducer, matches, replay, timed_strategy
from sim.race.runs import run_spec
from sim.race.target import Target

# A smaller workload whose decisions no longer fit the deviations is searched (iteratively
# deepening up to as many preemptions as there are deviations, within the search budget) only
# when there are this few: beyond, even the budget is better spent on ddmin.
SEARCH_DEVIATIONS = 6


@dataclass
class ShrinkOutcome:
    before: dict[str, Any]
    after: dict[str, Any]
    reproducer: Reproducer
    result: Result
    tries: int


def deviations(rep: Reproducer) -> dict[int, int]:
    """The decisions (by index) where the recorded run left the default schedule."""
    strat = Replay(rep.choices)
    run_spec(rep.spec, strategy=strat)
    return {d.index: d.chosen for d in strat.decisions
            if d.chosen != default_choice(d.runnable, d.current)}


def sizes(rep: Reproducer, devs: dict[int, int] | None, result: Result) -> dict[str, Any]:
    keys = SCENARIOS[rep.spec.scenario].shrink
    return {"choices": len(rep.choices), "deviations": None if devs is None else len(devs),
            "events": result.events, **{k: rep.spec.params.get(k) for k in keys}}


def smaller_specs(spec: RunSpec, key: str) -> Iterator[RunSpec]:
    """The spec with each smaller value of workload key `key` its scenario offers, in order,
    skipping values the scenario refuses (a value smaller than another key allows)."""
    sc = SCENARIOS[spec.scenario]
    for value in sc.shrink[key](spec.params[key]):
        cand = replace(spec, params={**spec.params, key: value})
        try:
            sc.validate(cand.params)
        except InputError:
            continue
        yield cand


def shrink(rep: Reproducer, max_tries: int = 2000, search_budget: int = 5000) -> ShrinkOutcome:
    result, v = replay(rep)
    if v is None:
        raise InputError("the reproducer does not show its violation: nothing to shrink")
    if timed_strategy(rep) is not None:
        return _shrink_delays(rep, result, max_tries)
    timed = rep.timed
    devs = None if timed else deviations(rep)
    before = sizes(rep, devs, result)
    spec = rep.spec
    tries = 0

    def shows(s: Any, d: dict[int, int] | None) -> bool:
        nonlocal tries
        tries += 1
        r = run_spec(s) if timed else run_spec(s, strategy=Replay(prefix=True, overrides=d))
        return matches(r, rep.violation) is not None

    if not timed and not shows(spec, devs):
        raise InputError("the deviations alone do not reproduce it (the run is not "
                         "deterministic?)")
    changed = True
    while changed and tries < max_tries:
        changed = False
        for key in SCENARIOS[spec.scenario].shrink:                     # the workload
            for cand in smaller_specs(spec, key):
                if shows(cand, devs):
                    spec, changed = cand, True
                    break
                if timed or devs is None or len(devs) > SEARCH_DEVIATIONS:
                    continue
                # the deviations no longer fit (the decisions are numbered differently in a
                # smaller program): search it for a schedule within as many preemptions. A
                # smaller workload is worth a few more deviations, which ddmin then cuts (and
                # the workload only ever shrinks, so this ends)
                found = _search(cand, rep.violation, len(devs), search_budget)
                tries += found[1]
                if found[0] is not None:
                    spec, devs, changed = cand, found[0], True
                    break
        if devs:                                                        # the schedule
            smaller_devs = _ddmin(devs, lambda d: shows(spec, d), lambda: tries < max_tries)
            if len(smaller_devs) < len(devs):
                devs, changed = smaller_devs, True
    if timed:
        final = run_spec(spec)
        choices: list[int] = []
    else:
        strat = Replay(prefix=True, overrides=devs)
        final = run_spec(spec, strategy=strat)
        choices = list(final.schedule["choices"])
    v = matches(final, rep.violation)
    assert v is not None
    out = Reproducer(spec, {"name": "shrunk", "from": rep.strategy,
                            "deviations": {str(k): t for k, t in (devs or {}).items()}},
                     choices, final.events, {**rep.violation, "time_us": round(v.time_us, 3)},
                     timed)
    return ShrinkOutcome(before, sizes(out, devs, final), out, final, tries)


def _search(spec: Any, sig: dict[str, Any], max_preemptions: int, budget: int
            ) -> tuple[dict[int, int] | None, int]:
    """A schedule of `spec` within `max_preemptions` that shows the violation, as deviations;
    and the executions spent. Iterative deepening (bound 0, 1, ...): a deeper bound's DFS can
    spend its whole budget in branches a shallower one never enters."""
    spent = 0
    for bound in range(max_preemptions + 1):
        out = explore(spec, bound, budget=max(budget - spent, 1), target=Target.of(sig),
                      stop_at_first=True)
        if out.interrupted:             # explore keeps what it found; a shrink just stops
            raise KeyboardInterrupt
        spent += out.executions
        found = next(iter(out.violations.values()), None)
        if found is not None and matches(run_spec(spec, strategy=Replay(found.choices)),
                                         sig) is not None:
            return deviations(found), spent
        if spent >= budget:
            break
    return None, spent


def _ddmin(devs: dict[int, int], test: Any, budget: Any) -> dict[int, int]:
    """ddmin over the deviation set: the smallest (1-minimal) subset that still fails."""
    items = sorted(devs.items())
    n = 2
    while len(items) >= 2 and budget():
        chunk = max(1, len(items) // n)
        parts = [items[i:i + chunk] for i in range(0, len(items), chunk)]
        reduced = False
        for i in range(len(parts)):
            rest = [x for j, p in enumerate(parts) if j != i for x in p]
            if test(dict(rest)):
                items, n, reduced = rest, max(n - 1, 2), True
                break
        if not reduced:
            if chunk == 1:
                break
            n = min(len(items), n * 2)
    if len(items) == 1 and test({}):
        items = []
    return dict(items)


def _shrink_delays(rep: Reproducer, result: Result, max_tries: int) -> ShrinkOutcome:
    """A delays reproducer (sim.engine.sched.delays): ddmin over its injected delays, then each
    delay shortened (to a quarter, a half, three quarters of it, shortest first), then the
    scenario's workload keys made smaller, the seed kept; repeated until nothing helps."""
    how = rep.strategy
    spec = rep.spec
    tries = 0
    fixed = {"generic": how.get("generic", []), "preempt_us": how.get("preempt_us")}
    picks = {int(p[0]): (str(p[1]), float(p[2])) for p in how.get("picks", [])}

    def run(s: Any, d: dict[int, tuple[str, float]]) -> Result:
        return run_spec(s, strategy=Delays(picks=[[n, kd, us] for n, (kd, us) in
                                                  sorted(d.items())], **fixed))

    def shows(s: Any, d: dict[int, tuple[str, float]]) -> bool:
        nonlocal tries
        tries += 1
        return matches(run(s, d), rep.violation) is not None

    def size(s: Any, d: dict[int, tuple[str, float]], r: Result) -> dict[str, Any]:
        return {"delays": len(d), "delayed_us": round(sum(us for _, us in d.values()), 3),
                "events": r.events, **{k: s.params.get(k)
                                        for k in SCENARIOS[s.scenario].shrink}}

    before = size(spec, picks, result)
    changed = True
    while changed and tries < max_tries:
        changed = False
        if picks:
            smaller = _ddmin(picks, lambda d: shows(spec, d), lambda: tries < max_tries)
            if len(smaller) < len(picks):
                picks, changed = smaller, True
        for n in sorted(picks):
            kind, us = picks[n]
            for f in (0.25, 0.5, 0.75):
                if tries >= max_tries:
                    break
                cand = {**picks, n: (kind, round(us * f, 3))}
                if cand[n][1] > 0 and shows(spec, cand):
                    picks, changed = cand, True
                    break
        for key in SCENARIOS[spec.scenario].shrink:
            for cand_spec in smaller_specs(spec, key):
                if tries >= max_tries:
                    break
                if shows(cand_spec, picks):
                    spec, changed = cand_spec, True
                    break
    strat = Delays(picks=[[n, kd, us] for n, (kd, us) in sorted(picks.items())], **fixed)
    final = run_spec(spec, strategy=strat)
    v = matches(final, rep.violation)
    assert v is not None
    out = Reproducer(spec, {**strat.spec(), "from": {k: how.get(k) for k in
                                                    ("name", "seed", "execution")}},
                     [], final.events, {**rep.violation, "time_us": round(v.time_us, 3)},
                     True)
    return ShrinkOutcome(before, size(spec, picks, final), out, final, tries)
