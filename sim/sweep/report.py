"""What a sweep shows: a tidy table of its runs, per-cell summaries with 95% intervals, and
plots. Needs the `sweep` extra (pandas, matplotlib).

Per cell: the fraction of replications showing each violation kind and harm (Wilson score
interval); the mean and p99 wait and hold per lock class (mean over replications, Student-t
interval); the race window's count, width percentiles, pooled hit rate (Wilson) and the
memoryless estimate 1 - exp(-free rate x mean width) beside it.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from sim.errors import InputError
from sim.outputs import check_output, write_atomic
from sim.engine.stats import LogHistogram, wilson
from sim.scenarios import SCENARIOS
from sim.sweep.grid import SweepDef
from sim.sweep.runner import stored_rows
from sim.sweep.store import check_dir, read_definition

# two-sided 95% Student t quantiles, by degrees of freedom (1.96 beyond)
_T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042]
HARMS_SHOWN = ("benign", "unprotected", "corrupting", "use_after_free")


def t95(df: int) -> float:
    return _T95[df - 1] if 1 <= df <= len(_T95) else 1.96


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise InputError("sweep results need pandas: pip install 'rmapsim[sweep]'") from None
    return pandas


def load_results(out: str | os.PathLike) -> Any:
    """The sweep's runs as a tidy pandas DataFrame: one row per run, in cell and
    replication order; columns `cell`, `rep`, `seed`, `variant`, `params.<swept key>`,
    `v.<kind>`, `harm.<harm>`, `lock.<class>.<figure>`, `win.<window>.<figure>`, ..."""
    pd = _pandas()
    return pd.DataFrame(stored_rows(out))


def mean_ci(values: list[float]) -> dict[str, float | None]:
    xs = [x for x in values if x is not None and not (isinstance(x, float) and math.isnan(x))]
    if not xs:
        return {"mean": None, "lo": None, "hi": None, "n": 0}
    m = sum(xs) / len(xs)
    if len(xs) < 2:
        return {"mean": round(m, 6), "lo": None, "hi": None, "n": len(xs)}
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))
    h = t95(len(xs) - 1) * sd / math.sqrt(len(xs))
    # every figure here is non-negative: the interval is clipped at 0
    return {"mean": round(m, 6), "lo": round(max(m - h, 0.0), 6), "hi": round(m + h, 6),
            "n": len(xs)}


def rate(k: int, n: int) -> dict[str, Any]:
    lo, hi = wilson(k, n)
    return {"k": k, "n": n, "rate": round(k / n, 6) if n else None, "lo": round(lo, 6),
            "hi": round(hi, 6)}


def summarize(out: str | os.PathLike) -> dict[str, Any]:
    """Per-cell figures of a stored sweep (plain data: `report --json` prints it)."""
    d = check_dir(out)
    sweep = read_definition(d)
    rows = stored_rows(d)
    by_cell: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        by_cell.setdefault(r["cell"], []).append(r)
    kinds = sorted({k[2:] for r in rows for k, v in r.items() if k.startswith("v.") and v})
    classes = _top_classes(rows)
    cells = []
    for cell in sweep.cells():
        rs = by_cell.get(cell.index, [])
        n = len(rs)
        c: dict[str, Any] = {"cell": cell.index, "label": cell.label, "variant": cell.variant,
                             "params": dict(cell.values), "runs": n, "of": sweep.reps,
                             "truncated": sum(1 for r in rs if r["truncated"])}
        c["violations"] = {k: rate(sum(1 for r in rs if r.get(f"v.{k}", 0) > 0), n)
                           for k in kinds}
        c["harm"] = {h: rate(sum(1 for r in rs if r.get(f"harm.{h}", 0) > 0), n)
                     for h in HARMS_SHOWN}
        c["locks"] = {cls: {f: mean_ci([r.get(f"lock.{cls}.{f}") for r in rs])
                            for f in ("wait_mean_us", "wait_p99_us", "hold_avg_us",
                                      "hold_p99_us", "contentions")}
                      for cls in classes}
        c["windows"] = _windows(rs)
        cells.append(c)
    schema = SCENARIOS[sweep.scenario].schema()
    return {"dir": str(d), "workload": sweep.workload, "variants": list(sweep.variants),
            "axes": {k: list(v) for k, v in sweep.axes},
            "units": {k: schema[k].unit for k, _ in sweep.axes}, "reps": sweep.reps,
            "seed": sweep.seed, "runs": len(rows), "of": len(sweep.cells()) * sweep.reps,
            "cells": cells}


def _top_classes(rows: list[dict[str, Any]], n: int = 6) -> list[str]:
    total: dict[str, float] = {}
    for r in rows:
        for k, v in r.items():
            if k.startswith("lock.") and k.endswith(".contentions"):
                cls = k[5:-len(".contentions")]
                total[cls] = total.get(cls, 0) + (v or 0)
    return [c for c, _ in sorted(total.items(), key=lambda x: (-x[1], x[0]))[:n]]


def _windows(rs: list[dict[str, Any]]) -> dict[str, Any]:
    names = sorted({k.split(".")[1] for r in rs for k in r if k.startswith("win.")})
    out = {}
    for name in names:
        pre = f"win.{name}."
        hits = sum(r.get(pre + "hits") or 0 for r in rs)
        closed = sum(r.get(pre + "closed") or 0 for r in rs)
        out[name] = {
            "count": mean_ci([r.get(pre + "count") for r in rs]),
            "width_p50_us": mean_ci([r.get(pre + "width_p50_us") for r in rs]),
            "width_p99_us": mean_ci([r.get(pre + "width_p99_us") for r in rs]),
            "hits": hits, "closed": closed,
            "hit_rate": rate(hits, closed) if closed else None,
            "estimated_hit_rate": mean_ci([r.get(pre + "estimated_hit_rate") for r in rs]),
            "runs_hit": rate(sum(1 for r in rs if (r.get(pre + "hits") or 0) > 0), len(rs)),
            "classes": {c: sum(r.get(pre + f"hits.{c}") or 0 for r in rs)
                        for c in ("freed_outside_rcu", "slab_released")}}
    return out


def _pct(x: dict[str, Any] | None) -> str:
    if not x or x.get("rate") is None:
        return "-"
    return f"{x['k']}/{x['n']} {100 * x['rate']:.0f}% [{100 * x['lo']:.0f}-{100 * x['hi']:.0f}]"


def _mci(x: dict[str, Any], digits: int = 3) -> str:
    if x["mean"] is None:
        return "-"
    if x["lo"] is None:
        return f"{x['mean']:.{digits}g}"
    return f"{x['mean']:.{digits}g} [{x['lo']:.{digits}g}, {x['hi']:.{digits}g}]"


def render(summary: dict[str, Any]) -> str:
    """The report as text: one block per cell."""
    s = summary
    lines = [f"sweep {s['dir']}: workload {s['workload']}, {s['runs']}/{s['of']} runs, "
             f"{s['reps']} replications per cell, base seed {s['seed']}",
             "rates: replications showing it, k/n, with 95% Wilson intervals; lock figures: "
             "mean over replications [95% t interval], us", ""]
    for c in s["cells"]:
        lines.append(f"cell {c['cell']}: {c['label']}  ({c['runs']}/{c['of']} runs"
                     + (f", {c['truncated']} truncated" if c["truncated"] else "") + ")")
        viol = ", ".join(f"{k} {_pct(v)}" for k, v in c["violations"].items())
        lines.append("  violations: " + (viol or "none"))
        lines.append("  harm: " + ", ".join(f"{h} {_pct(v)}" for h, v in c["harm"].items()))
        for name, w in c["windows"].items():
            hr = w["hit_rate"]
            lines.append(
                f"  window {name}: {_mci(w['count'], 4)} per run, width p50 "
                f"{_mci(w['width_p50_us'])} p99 {_mci(w['width_p99_us'])} us; "
                f"hit rate {hr['k'] if hr else 0}/{w['closed']}"
                + (f" = {hr['rate']:.2e} [{hr['lo']:.2e}, {hr['hi']:.2e}]" if hr else "")
                + f", memoryless estimate {_mci(w['estimated_hit_rate'])}; runs hit "
                f"{_pct(w['runs_hit'])}; freed outside RCU {w['classes']['freed_outside_rcu']}"
                f", slab released {w['classes']['slab_released']}")
        for cls, f in c["locks"].items():
            lines.append(f"  {cls:<22} wait mean {_mci(f['wait_mean_us'])} p99 "
                         f"{_mci(f['wait_p99_us'])}; hold avg {_mci(f['hold_avg_us'])} p99 "
                         f"{_mci(f['hold_p99_us'])}")
        lines.append("")
    return "\n".join(lines)


# --- plots -----------------------------------------------------------------------------------

def _numeric(values: list[Any]) -> bool:
    return all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in values)


def _layout(summary: dict[str, Any]) -> tuple[str | None, list[str], list[str]]:
    """The x axis (the numeric axis with the most values; else the categorical one with the
    most), the facets (one row per combination of the other axes' values) and the variants
    (one line each)."""
    axes = summary["axes"]
    numeric = [k for k, v in axes.items() if _numeric(v)]
    pool = numeric or list(axes)
    xkey = max(pool, key=lambda k: len(axes[k]), default=None)   # first of the longest
    facets: list[str] = []
    for c in summary["cells"]:
        f = _facet(c, xkey)
        if f not in facets:
            facets.append(f)
    return xkey, facets, list(summary["variants"])


def _facet(c: dict[str, Any], xkey: str | None) -> str:
    return " ".join(f"{k}={v}" for k, v in c["params"].items() if k != xkey) or "all cells"


def log_spaced(xs: list[float]) -> bool:
    """Values spread over a log range: positive, three or more, and more evenly spaced in
    log than in linear terms (a `scale = "log"` range), or spanning 20x or more."""
    if len(xs) < 3 or min(xs) <= 0:
        return False
    if max(xs) / min(xs) >= 20:
        return True

    def spread(v: list[float]) -> float:
        d = [b - a for a, b in zip(v, v[1:])]
        m = sum(d) / len(d)
        return math.sqrt(sum((x - m) ** 2 for x in d) / len(d)) / m if m else 0.0
    return max(xs) / min(xs) >= 3 and spread([math.log(x) for x in xs]) < spread(xs) * 0.5


MAX_FACETS = 6
MAX_TICKS = 12


def figures(summary: dict[str, Any], out: str | os.PathLike) -> dict[str, Any]:
    """The report's matplotlib figures by file name (rates.png, lock_wait.png,
    window_widths.png), not yet written: `plot` writes them; tests inspect them. Each grid
    figure has a row per combination of the non-x axes (up to six), a line per variant; a
    categorical x axis is drawn as categories, an integer one with integer ticks, a log
    range on a log scale."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator, NullLocator
    except ImportError:
        raise InputError("sweep plots need matplotlib: pip install 'rmapsim[sweep]'") from None
    out = Path(out)
    xkey, facets, variants = _layout(summary)
    facets = facets[:MAX_FACETS]
    colors = {v: f"C{i % 10}" for i, v in enumerate(variants)}
    xs_all = list(summary["axes"].get(xkey, [])) if xkey else []
    categorical = bool(xkey) and not _numeric(xs_all)
    numeric_x = bool(xkey) and not categorical
    logx = numeric_x and log_spaced(sorted(xs_all))
    integer_x = numeric_x and all(isinstance(x, int) for x in xs_all)
    unit = summary.get("units", {}).get(xkey or "", "")
    xlabel = (f"{xkey} ({unit})" if unit else xkey) if xkey else "all cells"
    figs: dict[str, Any] = {}

    def xof(c: dict[str, Any]) -> float:
        if not xkey:
            return 0
        v = c["params"][xkey]
        return xs_all.index(v) if categorical else v

    def style_x(ax: Any) -> None:
        if not xkey:                      # one point per facet: no x axis to speak of
            ax.set_xlim(-1, 1)
            ax.set_xticks([0], ["all"])
            return
        if categorical:
            ax.set_xticks(range(len(xs_all)), [_fmt_value(x) for x in xs_all])
            ax.set_xlim(-0.5, len(xs_all) - 0.5)
            return
        if logx:
            ax.set_xscale("log")
        lo, hi = min(xs_all), max(xs_all)
        if len(xs_all) <= MAX_TICKS:
            ax.set_xticks(sorted(xs_all), [_fmt_value(x) for x in sorted(xs_all)])
            ax.xaxis.set_minor_locator(NullLocator())
        elif integer_x:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if lo == hi:                      # a single value: a little room either side
            ax.set_xlim(lo / 2, lo * 2) if logx else ax.set_xlim(lo - 1, hi + 1)
        else:
            pad = (math.log(hi / lo) if logx else hi - lo) * 0.05
            ax.set_xlim((lo / math.exp(pad), hi * math.exp(pad)) if logx else
                        (lo - pad, hi + pad))

    def grid(columns: list[tuple[str, Any]], ylabel: str, band: bool, pct: bool,
             title: str, name: str) -> None:
        fig, axs = plt.subplots(len(facets), len(columns), squeeze=False,
                                figsize=(max(4.2 * len(columns), 6.5), 2.9 * len(facets) + 1.2),
                                layout="constrained")
        for row, facet in enumerate(facets):
            for col, (ctitle, get) in enumerate(columns):
                ax = axs[row][col]
                ymax = 0.0
                for v in variants:
                    cells = [c for c in summary["cells"]
                             if c["variant"] == v and _facet(c, xkey) == facet]
                    pts = sorted(((xof(c), get(c)) for c in cells
                                  if get(c) and get(c).get("rate" if pct else "mean")
                                  is not None), key=lambda p: p[0])
                    if not pts:
                        continue
                    x = [p[0] for p in pts]
                    k = 100 if pct else 1
                    y = [k * p[1]["rate" if pct else "mean"] for p in pts]
                    ymax = max([ymax] + y + [k * (p[1].get("hi") or 0) for p in pts])
                    ax.plot(x, y, marker="o", ms=3, color=colors[v], label=v)
                    if band and all(p[1].get("lo") is not None for p in pts):
                        ax.fill_between(x, [k * p[1]["lo"] for p in pts],
                                        [k * p[1]["hi"] for p in pts], color=colors[v],
                                        alpha=0.12, linewidth=0)
                ax.set_title(f"{ctitle}\n{facet}" if len(facets) > 1 else ctitle,
                             fontsize=9)
                if pct:
                    ax.set_ylim(-3, 103)
                elif ymax <= 0:                    # all zero: a range that says so
                    ax.set_ylim(-0.05, 1)
                else:
                    ax.set_ylim(0, ymax * 1.08)
                style_x(ax)
                ax.grid(alpha=0.3)
                if row == len(facets) - 1:
                    ax.set_xlabel(xlabel)
                if col == 0:
                    ax.set_ylabel(ylabel, fontsize=8)
        handles, labels = axs[0][0].get_legend_handles_labels()
        fig.suptitle(title, fontsize=11)
        if handles:          # below the plots: never over the title, however narrow
            fig.legend(handles, labels, loc="outside lower center", fontsize=8,
                       ncol=min(len(variants), 4))
        figs[name] = fig

    # 1. rates with interval bands
    first_window = lambda c: next(iter(c["windows"].values()), {}).get("runs_hit")  # noqa
    outcomes: list[tuple[str, Any]] = [("window hit", first_window)]
    outcomes += [(f"{h} access", (lambda h: lambda c: c["harm"][h])(h)) for h in HARMS_SHOWN
                 if any(c["harm"][h]["k"] for c in summary["cells"])]
    kinds = sorted({k for c in summary["cells"] for k, v in c["violations"].items()
                    if v["k"] and not k.startswith("anon_vma")})
    outcomes += [(k, (lambda k: lambda c: c["violations"].get(k))(k)) for k in kinds]
    grid(outcomes[:5], "replications showing it (%)\n95% Wilson band", True, True,
         f"{summary['workload']}: outcomes per cell, {summary['reps']} replications each",
         "rates.png")

    # 2. lock wait against the swept parameter, per lock class
    classes = list(summary["cells"][0]["locks"])[:4] if summary["cells"] else []
    if classes:
        cols = [(cls, (lambda cls: lambda c: c["locks"].get(cls, {}).get("wait_mean_us"))(cls))
                for cls in classes]
        grid(cols, "mean wait per acquisition (us)\n95% t band", True, False,
             f"{summary['workload']}: lock wait against {xlabel}", "lock_wait.png")

    # 3. the race window's width distribution, per variant
    hist = _width_hists(out, summary)
    if hist:
        fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
        for variant, (edges, counts) in hist.items():
            total = sum(counts) or 1
            ax.stairs([100 * c / total for c in counts], edges, label=variant,
                      color=colors.get(variant))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("window width (us), log scale")
        ax.set_ylabel("windows (%), log scale")
        ax.set_title(f"{summary['workload']}: migration race-window widths, all cells")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        figs["window_widths.png"] = fig
    return figs


def plot(summary: dict[str, Any], out: str | os.PathLike) -> list[Path]:
    """rates.png, lock_wait.png and window_widths.png in `out` (see `figures`); returns
    their paths. A plot that cannot be written raises InputError naming it, after the
    others are written."""
    import matplotlib.pyplot as plt
    figs = figures(summary, out)
    paths, failed = [], None
    for name, fig in figs.items():
        try:
            paths.append(_save(fig, Path(out) / name, plt))
        except InputError as e:
            failed = failed or e
    if failed is not None:
        raise failed
    return paths


def _fmt_value(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _width_hists(out: Path, summary: dict[str, Any]) -> dict[str, tuple[list, list]]:
    """Per variant: bucket edges (one more than counts) and counts, empty buckets included,
    summed over every run (LogHistogram buckets: a bucket index from its lower edge)."""
    acc: dict[str, dict[int, int]] = {}
    per = LogHistogram.PER_DECADE
    for r in stored_rows(out):
        for k, v in r.items():
            if k.startswith("win.") and k.endswith(".width_hist") and v:
                for edge, n in json.loads(v).get("buckets", []):
                    i = round((math.log10(edge) - LogHistogram.LOW) * per)
                    d = acc.setdefault(r["variant"], {})
                    d[i] = d.get(i, 0) + n
    out_: dict[str, tuple[list, list]] = {}
    for variant, d in acc.items():
        lo, hi = min(d), max(d)
        edges = [10 ** (LogHistogram.LOW + i / per) for i in range(lo, hi + 2)]
        out_[variant] = (edges, [d.get(i, 0) for i in range(lo, hi + 1)])
    return out_


def _save(fig: Any, path: Path, plt: Any) -> Path:
    """Through a temporary file renamed into place; InputError names a plot that cannot be
    written (the summary it plots is not lost: the caller has it)."""
    try:
        write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=110), "the plot",
                     binary=True)
    finally:
        plt.close(fig)
    return path


def export_csv(out: str | os.PathLike, csv: str | os.PathLike) -> int:
    check_output(csv, "the CSV (--csv)")           # before reading the store
    df = load_results(out)
    write_atomic(csv, lambda f: df.to_csv(f, index=False), "the CSV (--csv)")
    return len(df)


__all__ = ["load_results", "summarize", "render", "plot", "export_csv", "SweepDef"]
