"""The `rmapsim` command line (`python run.py` is its shim): parse, build the run, call sim,
render. No model logic here.

argparse, with parent parsers for the options several subcommands share (a workload, a
variant, a seed, --set, the limits, the backend): each is defined once. click would also
remove the repetition, but its usage errors are several lines and its type errors read
differently; argparse with one `error()` override gives the one-line refusals (exit 2) the
contract asks for, and adds no dependency."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from typing import Any, NoReturn

import sim
from sim import report
from sim.launch import program
from sim.errors import InputError
from sim.engine.limits import Limits
from sim.outputs import check_output, output_in, pipe_safe_stdout, write_atomic
from sim.engine.trace import TRACE_LIMIT
from sim.scenarios import SCENARIOS
from sim.engine.sched import HUNT_STRATEGIES, PCT_DEPTH
from sim.engine.sched.coverage import line as coverage_line
# the rest of sim.race and sim.sweep loads in the commands that use it (a `run` starts
# faster); both packages import their modules on first use
from sim.sweep.backends import BACKENDS
from sim.sweep.grid import MAX_RUNS
from sim.workload import load, parse_sets


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, not argparse's usage block.
        print(f"{self.prog}: error: {one_line(message)}", file=sys.stderr)
        sys.exit(2)


_INT = re.compile(r"[0-9]+", re.ASCII)
_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?)(?:i?B)?", re.ASCII | re.IGNORECASE)


def _int_at_least(minimum: int, what: str) -> Any:
    """An option type: ASCII decimal digits only (no ' 2', '+2', '٣'), at least `minimum`."""
    def parse(text: str) -> int:
        if not _INT.fullmatch(text) or int(text) < minimum:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return int(text)
    return parse


_nonneg_int = _int_at_least(0, "a non-negative integer")
_pos_int = _int_at_least(1, "a positive integer")


def _pos_seconds(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = -1.0
    if not (v > 0 and v != float("inf")) or not re.fullmatch(r"[0-9.eE+-]+", text, re.ASCII):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return v


def _size(text: str) -> int:
    """Bytes: 4G, 512M, 2048K, 1.5GiB, or a plain number of bytes."""
    m = _SIZE.fullmatch(text)
    if not m:
        raise argparse.ArgumentTypeError(f"expected a size such as 4G, 512M or 1073741824, "
                                         f"got {text!r}")
    n = float(m.group(1)) * 1024 ** " KMGT".index(m.group(2).upper() or " ")
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive size, got {text!r}")
    return int(n)


def _invocation(args: argparse.Namespace) -> str:
    """How to call this command again, as the user did."""
    return "python run.py" if args.prog == "run.py" else args.prog


def one_line(text: str) -> str:
    """A message on one line: control characters from user input shown escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def cmd_list(args: argparse.Namespace) -> int:
    if args.params and args.json:
        print(json.dumps(report.params_json(SCENARIOS, [load(n) for n in sim.workloads()]),
                         indent=2))
        return 0
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
    spec = sim.spec_for(args.workload, variant=args.variant, seed=args.seed,
                        params=parse_sets(args.set or []), max_events=args.max_events,
                        max_wall_s=args.max_wall_s, max_memory=args.max_memory)
    if args.trace is not None:          # checked, not opened: nothing is touched before the run
        check_output(args.trace, "the trace (--trace)")
    r = sim.simulate(spec, trace=args.trace is not None, trace_limit=args.trace_limit)
    d: dict[str, Any] = r.to_dict()
    print(json.dumps(d, indent=2) if args.json else report.run_summary(d), flush=True)
    failed = False
    if args.trace is not None:
        try:
            write_atomic(args.trace, lambda f: json.dump(r.chrome_trace, f),
                         "the trace (--trace)")
        except InputError as e:
            print(f"{args.prog}: error: {one_line(str(e))}; the result above is complete",
                  file=sys.stderr)
            failed = True
        else:
            other = (r.chrome_trace or {}).get("otherData", {})
            note = (f" (cut at t={other['cut_at_us']} us after {other['limit_events']:,} "
                    "events; raise the cap with --trace-limit N)" if other.get("truncated")
                    else "")
            print(f"trace written to {args.trace}{note}; open it in https://ui.perfetto.dev",
                  file=sys.stderr if args.json else sys.stdout)
    if r.truncated == "interrupted":
        print(f"{args.prog}: interrupted; the result above covers the run so far",
              file=sys.stderr)
        return 130
    return 2 if failed else 0


def _csv(text: str) -> list[str]:
    items = [x.strip() for x in text.split(",")]
    if not text.strip() or any(not x for x in items):
        raise argparse.ArgumentTypeError(f"expected V1,V2,..., got {text!r}")
    return items


class _Progress:
    """A bar on a terminal (tqdm); otherwise a line at each tenth of the way."""

    def __init__(self, unit: str = "run", verb: str = "sweep") -> None:
        self.bar = None
        self.shown = -1
        self.tty = sys.stderr.isatty()
        self.unit, self.verb = unit, verb
        self.t0 = time.monotonic()

    def __call__(self, done: int, total: int, rate: float | None = None) -> None:
        if rate is None:
            rate = done / max(time.monotonic() - self.t0, 1e-9)
        if self.tty:
            try:
                from tqdm import tqdm
            except ImportError:
                self.tty = False
            else:
                if self.bar is None:
                    self.bar = tqdm(total=total, initial=done, unit=self.unit,
                                    file=sys.stderr, smoothing=0.1)
                else:
                    self.bar.update(done - self.bar.n)
                return
        tenth = done * 10 // max(total, 1)
        if tenth != self.shown:
            self.shown = tenth
            eta = f", ETA {(total - done) / rate:.0f} s" if rate > 0 and done < total else ""
            print(f"{self.verb}: {done}/{total} {self.unit}s "
                  f"({100 * done // max(total, 1)}%), {rate:.2f} {self.unit}s/s{eta}",
                  file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def cmd_sweep(args: argparse.Namespace) -> int:
    from sim.sweep import make_sweep, parse_grid_arg, run_sweep
    from sim.sweep.backends import check_backend
    from sim.sweep.store import check_dir
    limits = {k: v for k, v in (("max_events", args.max_events),
                                ("max_wall_s", args.max_wall_s),
                                ("max_memory", args.max_memory)) if v is not None}
    sweep = make_sweep(args.workload, variants=args.variant,
                       grid=[parse_grid_arg(g) for g in args.grid or []], reps=args.reps,
                       seed=args.seed, overrides=parse_sets(args.set or []), limits=limits,
                       max_runs=args.max_runs)
    check_backend(args.backend, args.address)
    check_dir(args.out, sweep)               # every refusal before the --jobs note
    _check_jobs(args)
    progress = _Progress()
    try:
        out = run_sweep(sweep, args.out, backend=args.backend, jobs=args.jobs,
                        address=args.address, batch=args.batch, progress=progress,
                        keep_rows=False)
    finally:
        progress.close()
    print(f"sweep {args.out}: {out.stored}/{out.total} runs stored ({out.ran} now, "
          f"{out.skipped} already there); `{_invocation(args)} report {args.out}` "
          "summarises them")
    if out.interrupted:
        print(f"{args.prog}: interrupted; {out.stored} runs are stored and the same command "
              "resumes the sweep", file=sys.stderr)
        return 130
    return 0


def _check_jobs(args: argparse.Namespace) -> None:
    """Refuse a bad --backend/--address pair before the work; say when --jobs is capped."""
    from sim.sweep.backends import check_backend, machine_cpus, usable_jobs
    check_backend(args.backend, args.address)
    if args.backend == "local" and args.jobs is not None and \
            usable_jobs(args.jobs, args.backend) < args.jobs:
        print(f"{args.prog}: --jobs {args.jobs} is more than this machine's "
              f"{machine_cpus()} CPUs; "
              f"running {machine_cpus()} worker processes", file=sys.stderr)


def cmd_report(args: argparse.Namespace) -> int:
    from sim.sweep.report import plot, render, summarize
    summary = summarize(args.dir)
    if not args.json:
        print(render(summary), flush=True)       # the report first: a plot may fail
    paths, failed = [], None
    if summary["runs"]:
        try:
            paths = plot(summary, args.dir)
        except InputError as e:
            failed = e
    if args.json:
        print(json.dumps({**summary, "plots": [str(p) for p in paths]}, indent=2))
    for p in paths if not args.json else []:
        print(f"plot written to {p}")
    if failed is not None:
        print(f"{args.prog}: error: {one_line(str(failed))}; the report above is complete",
              file=sys.stderr)
        return 2
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from sim.sweep.report import export_csv
    n = export_csv(args.dir, args.csv)
    print(f"{n} runs written to {args.csv}")
    return 0


def _render_found(result: Any, rep: Any) -> str:
    """The found violation's report and diagram (as `run` prints it)."""
    from sim.race.target import same_violation
    return report.violation(next(v.to_dict() for v in result.violations
                                 if same_violation(v, rep.violation)))


def _hunt_target(args: argparse.Namespace) -> Any:
    from sim.race import Target
    return Target.named(args.kind)


def _check_writable(path: str) -> None:
    """Refuse an output path before the work, not after (nothing computed is lost)."""
    check_output(path, "the reproducer")


def shrunk_path(file: str) -> str:
    """uaf.json -> uaf.shrunk.json, beside it (only the last suffix is replaced)."""
    stem, ext = os.path.splitext(file)
    return (stem if ext == ".json" else file) + ".shrunk.json"


def _save(rep: Any, path: str) -> None:
    """Write a reproducer; if that fails after all, print it, so that it is not lost."""
    try:
        rep.save(path)
    except InputError:
        print(json.dumps(rep.to_dict()))
        raise


def cmd_hunt(args: argparse.Namespace) -> int:
    from sim.race import hunt
    spec = sim.spec_for(args.workload, variant=args.variant, seed=args.seed,
                        params=parse_sets(args.set or []), max_events=args.max_events)
    target = _hunt_target(args)
    path = "reproducer.json" if args.out is None else args.out
    _check_writable(path)
    _check_jobs(args)
    progress = _Progress(unit="execution", verb="hunt")
    try:
        out = hunt(spec, args.strategy, args.budget, target=target, depth=args.depth,
                   seed=args.strategy_seed, jobs=args.jobs, backend=args.backend,
                   address=args.address, progress=progress)
    finally:
        progress.close()
    if out.interrupted:
        print(f"hunt: interrupted after {out.executions} executions, no "
              f"{target.describe()} found", file=sys.stderr)
        return 130
    print(coverage_line(out.coverage, out.executions))
    if out.found is None:
        print(f"hunt: no {target.describe()} in {out.executions} executions "
              f"({args.strategy}, {out.wall_s:.1f} s); raise --budget or try another "
              "--strategy")
        return 0
    _save(out.found, path)
    print(f"hunt: found {out.found.violation['kind']} ({out.found.violation['harm']}) after "
          f"{out.executions} executions ({args.strategy}, {out.wall_s:.1f} s)\n")
    print(_render_found(out.result, out.found))
    print(f"\nreproducer written to {path}; replay it with:\n"
          f"    {_invocation(args)} replay {path}")
    return 1


def cmd_replay(args: argparse.Namespace) -> int:
    from sim.race import Reproducer, replay
    rep = Reproducer.load(args.file)
    result, v = replay(rep, args.variant)
    if rep.edited:
        print(f"replay: '{args.file}' was edited since it was made (its recipe no longer "
              "matches its digest); it ran as it is now", file=sys.stderr)
    other = args.variant is not None and args.variant != rep.spec.variant
    if args.json:
        print(json.dumps({"reproduced": v is not None, "variant": result.variant,
                          "events": result.events, "result": result.to_dict()}, indent=2))
        return 1 if v is not None else 0
    if other and not rep.timed:
        print(f"replay on {result.variant}: followed {result.schedule['followed']} of the "
              f"{len(rep.choices)} recorded choices (recorded on {rep.spec.variant}), then "
              "ran without preemption")
    elif other:
        print(f"replay on {result.variant}: seed {rep.spec.seed} of the timed model "
              f"(recorded on {rep.spec.variant})")
    if v is None:
        print(f"replay: {rep.violation['kind']} ({rep.violation['harm']}) did not show "
              f"({result.events} events; the reproducer recorded {rep.events})")
        if result.violations:
            print("other violations: " + ", ".join(
                f"{k} x{n}" for k, n in sorted(result.violation_counts.items())))
    else:
        when = f"step {v.time_us:.0f}" if v.clock == "step" else f"t={v.time_us:.3f} us"
        print(f"replay: {v.kind} ({v.harm}) reproduced at {when}, "
              f"{result.events} events (recorded: {rep.events})")
        if result.events != rep.events and not other:
            print("replay: but not the recorded run (another event count): was the "
                  "reproducer edited?")
        print()
        print(_render_found(result, rep))
    return 1 if v is not None else 0


def cmd_shrink(args: argparse.Namespace) -> int:
    from sim.race import Reproducer, shrink
    rep = Reproducer.load(args.file)
    path = shrunk_path(args.file) if args.out is None else args.out
    _check_writable(path)
    out = shrink(rep)
    _save(out.reproducer, path)
    print("shrink: the same violation ({kind}, {harm}, in {via}) from".format(**rep.violation))
    keys = list(out.before)
    w = max(len(k) for k in keys)
    for key in keys:
        print(f"  {key:<{w}}  {out.before[key]!s:>8} -> {out.after[key]!s:<8}")
    print(f"({out.tries} trial runs)\n")
    print(_render_found(out.result, out.reproducer))
    print(f"\nshrunk reproducer written to {path}; replay it with:\n"
          f"    {_invocation(args)} replay {path}")
    return 0


def cmd_explore(args: argparse.Namespace) -> int:
    from sim.race import explore
    spec = sim.spec_for(args.workload, variant=args.variant, seed=args.seed,
                        params=parse_sets(args.set or []), max_events=args.max_events)
    target = None if args.kind is None else _hunt_target(args)
    prefix = output_in(args.out_prefix, "explore-violation-")
    _check_writable(f"{prefix}0.json")
    _check_jobs(args)
    out = explore(spec, args.max_preemptions, reduction=not args.no_reduction,
                  budget=args.budget, jobs=args.jobs, backend=args.backend,
                  address=args.address, target=target)
    paths = []
    for i, rep in enumerate(out.violations.values()):
        path = f"{prefix}{i}.json"
        _save(rep, path)
        paths.append(path)
    if args.json:
        print(json.dumps({**out.to_dict(), "reproducers": paths}, indent=2))
    else:
        state = ("interrupted: the search is incomplete" if out.interrupted else
                 "complete: every schedule with at most "
                 f"{args.max_preemptions} preemption{'' if args.max_preemptions == 1 else 's'}"
                 " was run" if out.complete else
                 f"incomplete: stopped at the budget of {args.budget} executions")
        print(f"explore {args.workload} ({args.variant}): {out.executions} executions "
              f"({out.pruned} pruned as equivalent), {len(out.states)} distinct terminal "
              f"states, {out.wall_s:.1f} s; {state}")
        if not out.violations:
            print("violations: none")
        for rep, path in zip(out.violations.values(), paths):
            v = rep.violation
            print(f"violation: {v['kind']} ({v['harm']}) in {v['via']}; reproducer {path} "
                  f"({_invocation(args)} replay {path})")
    if out.interrupted:
        return 130
    return 1 if out.violations else 0


def _parents() -> dict[str, argparse.ArgumentParser]:
    """The options several subcommands share, each defined once (argparse parent parsers)."""
    def parent() -> argparse.ArgumentParser:
        return argparse.ArgumentParser(add_help=False)
    out = {name: parent() for name in ("workload", "variant", "seed", "set", "events",
                                       "limits", "jobs", "json")}
    out["workload"].add_argument("workload",
                                 help="a name from workloads/ or a path to a .toml file")
    out["variant"].add_argument("--variant", default="v2.6.33",
                                help="the kernel variant (list: `list`; default v2.6.33)")
    out["seed"].add_argument("--seed", type=_nonneg_int, default=0, help="the workload's seed")
    out["set"].add_argument("--set", action="append", metavar="KEY=VALUE",
                            help="override a workload parameter (repeatable)")
    out["events"].add_argument("--max-events", type=_pos_int, default=None,
                               help=f"stop a run after this many simulation events (default "
                                    f"{Limits.max_events:,})")
    lim = out["limits"]
    lim.add_argument("--max-wall-s", type=_pos_seconds, default=None, metavar="S",
                     help=f"stop a run after this many wall-clock seconds (default "
                          f"{Limits.max_wall_s:g})")
    lim.add_argument("--max-memory", type=_size, default=None, metavar="SIZE",
                     help="refuse a run estimated to need more, and stop one whose resident "
                          "memory grows past it (default: half the machine's RAM)")
    jobs = out["jobs"]
    jobs.add_argument("--jobs", type=_pos_int, default=1,
                      help="worker processes (default 1; sweep: the CPU count)")
    jobs.add_argument("--backend", choices=BACKENDS, default="local",
                      help="local process pool (default), a Dask cluster, or this process")
    jobs.add_argument("--address", metavar="tcp://HOST:PORT",
                      help="with --backend dask: join this scheduler (default: a "
                           "LocalCluster)")
    out["json"].add_argument("--json", action="store_true", help="print the result as JSON")
    return out


def parser(prog: str) -> argparse.ArgumentParser:
    """The whole command line; `prog` is how the user called it (rmapsim or run.py)."""
    ap = _Parser(prog=prog, description="rmapsim: Linux v2.6.33 rmap/migration/KSM "
                 "concurrency simulator")
    ap.set_defaults(prog=prog)
    sub = ap.add_subparsers(dest="cmd", required=True, parser_class=_Parser)

    def command(name: str, fn: Any, help: str, *shared: str) -> argparse.ArgumentParser:
        # fresh parents for each command: argparse shares a parent's actions, and a
        # command's set_defaults would otherwise change another's defaults
        P = _parents()
        p = sub.add_parser(name, help=help, parents=[P[s] for s in shared])
        p.set_defaults(fn=fn)
        return p

    p = command("list", cmd_list, "workloads, variants, violation kinds", "json")
    p.add_argument("--params", action="store_true",
                   help="every workload parameter (meaning, unit, default, range) as Markdown")

    p = command("run", cmd_run, "simulate one workload",
                "workload", "variant", "seed", "set", "json", "events", "limits")
    p.add_argument("--trace", metavar="FILE.json",
                   help="write a Chrome trace-event file (opens in ui.perfetto.dev)")
    p.add_argument("--trace-limit", type=_pos_int, default=TRACE_LIMIT, metavar="N",
                   help=f"trace events to keep before cutting the trace (default {TRACE_LIMIT:,})")

    p = command("sweep", cmd_sweep, "run a grid of parameters x variants x replications",
                "workload", "seed", "set", "jobs", "events", "limits")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="the sweep's directory (created; the same command resumes it)")
    p.add_argument("--variant", type=_csv, default=None, metavar="V1,V2",
                   help="variants to sweep (default: the file's [sweep] variants, or v2.6.33)")
    p.add_argument("--grid", action="append", metavar="KEY=V1,V2,...",
                   help="a parameter axis (repeatable; replaces the file's axis of that key)")
    p.add_argument("--reps", type=_pos_int, default=None,
                   help="replications per cell (default: the file's, or 1)")
    p.add_argument("--batch", type=_pos_int, default=None, metavar="N",
                   help="runs per task (default: about eight tasks per job)")
    p.add_argument("--max-runs", type=_pos_int, default=MAX_RUNS, metavar="N",
                   help=f"refuse a sweep of more runs than this (default {MAX_RUNS:,})")
    # a sweep's seed is its base seed (the file's by default); its jobs the CPU count
    p.set_defaults(seed=None, jobs=None)

    p = command("hunt", cmd_hunt, "run executions until one shows a violation",
                "workload", "variant", "seed", "set", "jobs", "events")
    p.add_argument("--strategy", choices=HUNT_STRATEGIES, default="pct")
    p.add_argument("--budget", type=_pos_int, default=1000, help="executions at most")
    p.add_argument("--depth", type=_nonneg_int, default=None,
                   help=f"pct: the bug depth d (default {PCT_DEPTH}); dfs: the preemption "
                        "bound (default 2)")
    p.add_argument("--kind", default=None, help="the violation kind, or anon_vma access harm "
                   "(use_after_free, corrupting, unprotected, benign), to hunt (default: an "
                   "anon_vma access of any harm but benign)")
    p.add_argument("--out", default=None, metavar="FILE",
                   help="where to write the reproducer (default reproducer.json)")
    p.add_argument("--strategy-seed", type=_nonneg_int, default=0,
                   help="random and pct: the seed of their choices")

    p = command("replay", cmd_replay, "replay a reproducer exactly", "json")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--variant", default=None,
                   help="replay on another variant: follow the recorded choices while they "
                        "fit (does a fix close this interleaving?)")

    p = command("shrink", cmd_shrink, "the same violation from a smaller workload and schedule")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--out", default=None, metavar="FILE2")

    p = command("explore", cmd_explore,
                "every schedule of a small configuration, within a preemption bound",
                "workload", "variant", "seed", "set", "jobs", "events", "json")
    p.add_argument("--max-preemptions", type=_nonneg_int, default=2)
    p.add_argument("--budget", type=_pos_int, default=None, help="executions at most")
    p.add_argument("--no-reduction", action="store_true",
                   help="run equivalent schedules too (no sleep sets)")
    p.add_argument("--kind", default=None, help="report only this violation kind or harm")
    p.add_argument("--out-prefix", default="explore-violation-", metavar="PREFIX",
                   help="reproducers are written to PREFIX0.json, PREFIX1.json, ...")

    p = command("report", cmd_report, "summarise a sweep: rates, lock figures, windows, plots",
                "json")
    p.add_argument("dir", metavar="DIR")

    p = command("export", cmd_export, "a sweep's runs as CSV (one row per run)")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--csv", required=True, metavar="FILE")
    return ap


def main(argv: list[str] | None = None) -> int:
    prog = program()
    ap = parser(prog)
    try:
        with pipe_safe_stdout():
            args = ap.parse_args(argv)
            return args.fn(args)
    except InputError as e:
        print(f"{prog}: error: {one_line(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:            # stderr gone too: the exit code still tells
        return 1


