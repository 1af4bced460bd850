"""Text renderings of results (the CLI prints them; the library never prints)."""

from __future__ import annotations

from typing import Any

from sim.engine.stats import LOCK_STAT_KEYS

TRUNCATED = {
    "max_events": "stopped at --max-events",
    "max_wall_s": "stopped at --max-wall-s",
    "max_memory": "stopped at --max-memory",
    "livelock": "livelock: steps without simulated time passing",
    "interrupted": "interrupted",
}

_NUM_KEYS = LOCK_STAT_KEYS[1:]


def lock_stat_table(rows: list[dict[str, Any]], points: dict[str, Any] | None = None,
                    limit: int | None = None) -> str:
    """/proc/lock_stat layout: one line per class (rwsems as -W and -R), times in us."""
    name_w = max([len("class name")] + [len(r["class"]) + 1 for r in rows])
    head = f"{'class name':>{name_w}} " + " ".join(f"{k:>14}" for k in _NUM_KEYS)
    bar = "-" * len(head)
    out = ["lock_stat version 0.3 (rmapsim: simulated microseconds)", bar, head, bar]
    for r in rows[:limit]:
        cells = []
        for k in _NUM_KEYS:
            v = r[k]
            cells.append(f"{v:>14}" if isinstance(v, int) else f"{v:>14.2f}")
        out.append(f"{r['class'] + ':':>{name_w}} " + " ".join(cells))
        pts = (points or {}).get(r["class"])
        if pts:
            out.append(f"{'-' * min(len(r['class']), name_w):>{name_w}}")
            for label, key in (("waited at", "contentions"), ("held from", "contending")):
                for p in pts[key]:
                    out.append(f"{r['class']:>{name_w}} {p['count']:>14}          "
                               f"{label} {p['site']}")
            out.append("")
    out.append(bar)
    return "\n".join(out)


def calibration(section: dict[str, Any]) -> str:
    lines = [f"calibration against {section['model']}:"]
    for s in section["sides"]:
        half = s["ci95_half_width_us"]
        if half is None:
            lines.append(
                f"  {s['class']:<24} measured mean wait {s['measured_wait_us']:.4f} us; "
                f"theory {s['theory_wait_us']:.4f} us: no confidence interval ({s['batches']} "
                f"batches after the warm-up; it needs 2: raise acquisitions or lower "
                f"lockstat_batch)")
            continue
        verdict = "within" if s["within_ci"] else "OUTSIDE"
        lines.append(
            f"  {s['class']:<24} measured mean wait {s['measured_wait_us']:.4f} us "
            f"+/- {half:.4f} (95% CI, {s['batches']} batches); theory "
            f"{s['theory_wait_us']:.4f} us: {verdict} the CI")
    return "\n".join(lines)


def windows(ws: dict[str, Any]) -> str:
    if not ws:
        return ""
    lines = ["race windows:"]
    for name, w in ws.items():
        width = w.get("width_us")
        wtxt = (f"width us min {width['min']:.3f} p50 {width['p50']:.3f} mean "
                f"{width['mean']:.3f} p99 {width['p99']:.3f} max {width['max']:.3f}"
                if width else "no closed windows")
        classes = "".join(f", {n} {c}" for c, n in w.get("hit_classes", {}).items())
        lines.append(f"  {name}: {w['count']} opened, {w['hits']} hit{classes}; {wtxt}")
        lines.append(f"    ({w['doc']})")
    return "\n".join(lines)


def violation(v: dict[str, Any]) -> str:
    harm = f" (harm: {v['harm']})" if v.get("harm") else ""
    when = (f"step {v['time_us']:.0f}" if v.get("clock") == "step" else
            f"t={v['time_us']:.3f} us")
    lines = [f"VIOLATION {v['kind']}{harm} at {when}, actors: "
             + ", ".join(v["actors"])]
    for key, val in v["detail"].items():
        if val is not None:
            lines.append(f"  {key}: {val}")
    for h in v.get("history", []):
        lines.append("  history: " + ", ".join(f"{k}={x}" for k, x in h.items() if k != "tid"))
    if v.get("diagram"):
        lines.append("")
        lines.extend("  " + line for line in v["diagram"].splitlines())
    return "\n".join(lines)


def run_summary(d: dict[str, Any]) -> str:
    lines = [f"rmapsim: workload {d['workload']}, variant {d['variant']}, seed {d['seed']}: "
             f"{d['sim_time_us']:.1f} simulated us, {d['events']} events"
             + (f" (truncated: {TRUNCATED.get(d['truncated'], d['truncated'])})"
                if d.get("truncated") else "")]
    counts = d["violation_counts"]
    if counts:
        lines.append("violations: " + ", ".join(f"{k} x{n}" for k, n in counts.items()))
        shown = d["violations"]
        seen: set[str] = set()
        for v in shown:                      # the first report of each kind, in full
            if v["kind"] in seen:
                continue
            seen.add(v["kind"])
            lines.append("")
            lines.append(violation(v))
    else:
        lines.append("violations: none")
    w = windows(d["windows"])
    if w:
        lines += ["", w]
    if "calibration" in d:
        lines += ["", calibration(d["calibration"])]
    lines += ["", lock_stat_table(d["lock_stat"], d.get("contention_points"))]
    return "\n".join(lines)


def params_json(scenarios: dict[str, Any], workloads: list[Any]) -> dict[str, Any]:
    """Every parameter of every scenario, and each workload's settings, as plain data."""
    from sim.params import KERNEL_PARAMS

    def rows(params: Any) -> list[dict[str, Any]]:
        return [{"key": p.name, "type": p.type.__name__, "default": p.default, "unit": p.unit,
                 "valid": p.describe_range(), "doc": p.doc} for p in params]

    return {"kernel": rows(KERNEL_PARAMS),
            "scenarios": {name: {"doc": (sc.doc or "").strip(), "params": rows(sc.params)}
                          for name, sc in scenarios.items()},
            "workloads": {w.name: {"scenario": w.scenario, "description": w.description,
                                   "params": w.values} for w in workloads}}


def params_markdown(scenarios: dict[str, Any], workloads: list[Any]) -> str:
    """Every parameter of every scenario as Markdown tables, and each workload's settings."""
    from sim.params import KERNEL_PARAMS

    def table(params: Any) -> list[str]:
        out = ["| key | meaning | unit | default | valid |", "|---|---|---|---|---|"]
        for p in params:
            default = str(p.default).lower() if isinstance(p.default, bool) else p.default
            out.append(f"| `{p.name}` | {p.doc} | {p.unit} | {default} | "
                       f"{p.describe_range()} |")
        return out

    lines = ["# Workload parameters", "",
             "Generated by `rmapsim list --params` (a test keeps this file in step with "
             "the code). A workload file sets any of its scenario's keys under `[params]` "
             "(`costs.x` under `[params.costs]`); `--set KEY=VALUE` overrides them.", "",
             "## Every scenario: kernel-wide keys", ""]
    lines += table(KERNEL_PARAMS)
    for name, sc in scenarios.items():
        lines += ["", f"## Scenario `{name}`", ""]
        lines += [ln.strip() for ln in (sc.doc or "").strip().splitlines()] + [""]
        lines += table(sc.params)
    lines += ["", "## Workloads", ""]
    for w in workloads:
        settings = ", ".join(f"`{k}={str(v).lower() if isinstance(v, bool) else v}`"
                             for k, v in w.values.items())
        lines.append(f"- `{w.name}` ({w.scenario}): {w.description}. Sets: {settings}.")
    return "\n".join(lines) + "\n"
