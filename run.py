#!/usr/bin/env python3
"""rmapsim command line: parse, build the run, call sim, render. No model logic here."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, NoReturn

import sim
from sim import report
from sim.errors import InputError
from sim.scenarios import SCENARIOS
from sim.workload import load, parse_sets


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, not argparse's usage block.
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def _nonneg_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return v


def _pos_int(text: str) -> int:
    v = _nonneg_int(text)
    if v == 0:
        raise argparse.ArgumentTypeError("expected a positive integer, got 0")
    return v


def cmd_list(args: argparse.Namespace) -> int:
    if args.params:
        print(report.params_markdown(SCENARIOS, [load(n) for n in sim.workloads()]), end="")
        return 0
    workloads = []
    for name in sim.workloads():
        w = load(name)
        workloads.append({"name": name, "scenario": w.scenario, "description": w.description})
    variants = [v.describe() for v in sim.VARIANTS.values()]
    kinds = [{"name": k, "doc": d} for k, d in sim.VIOLATION_KINDS.items()]
    if args.json:
        print(json.dumps({"workloads": workloads, "variants": variants,
                          "violation_kinds": kinds, "scenarios": sorted(SCENARIOS)}, indent=2))
        return 0
    print("workloads:")
    for w in workloads:
        print(f"  {w['name']:<22} {w['description']}")
    print("variants:")
    for v in variants:
        print(f"  {v['name']:<30} {v['doc']}")
    print("violation kinds:")
    for k in kinds:
        print(f"  {k['name']:<26} {k['doc']}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    if args.trace:
        d = os.path.dirname(os.path.abspath(args.trace))
        if not os.path.isdir(d):
            raise InputError(f"--trace: directory '{d}' does not exist")
    overrides = parse_sets(args.set or [])
    r = sim.simulate(args.workload, variant=args.variant, seed=args.seed, params=overrides,
                     trace=bool(args.trace), max_events=args.max_events)
    if args.trace:
        with open(args.trace, "w") as f:
            json.dump(r.chrome_trace, f)
    d: dict[str, Any] = r.to_dict()
    if args.json:
        print(json.dumps(d, indent=2))
    else:
        print(report.run_summary(d))
        if args.trace:
            print(f"\ntrace written to {args.trace} (open it in https://ui.perfetto.dev)")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = _Parser(prog="run.py", description="rmapsim: Linux v2.6.33 rmap/migration/KSM "
                 "concurrency simulator")
    sub = ap.add_subparsers(dest="cmd", required=True, parser_class=_Parser)

    p = sub.add_parser("list", help="workloads, variants, violation kinds")
    p.add_argument("--json", action="store_true")
    p.add_argument("--params", action="store_true",
                   help="every workload parameter (meaning, unit, default, range) as Markdown")
    p.set_defaults(fn=cmd_list)

    p = sub.add_parser("run", help="simulate one workload")
    p.add_argument("workload", help="a name from workloads/ or a path to a .toml file")
    p.add_argument("--variant", default="v2.6.33")
    p.add_argument("--seed", type=_nonneg_int, default=0)
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a workload parameter (repeatable)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.add_argument("--trace", metavar="FILE.json",
                   help="write a Chrome trace-event file (opens in ui.perfetto.dev)")
    p.add_argument("--max-events", type=_pos_int, default=None,
                   help="stop after this many simulation events")
    p.set_defaults(fn=cmd_run)

    args = ap.parse_args(argv)
    try:
        return args.fn(args)
    except InputError as e:
        print(f"run.py: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
