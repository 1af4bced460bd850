"""Text renderings of results (the CLI prints them; the library never prints)."""

from __future__ import annotations

from typing import Any

from .stats import LOCK_STAT_KEYS

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
        ci = f"+/- {half:.4f}" if half is not None else "(CI n/a)"
        verdict = "within" if s["within_ci"] else "OUTSIDE"
        lines.append(
            f"  {s['class']:<24} measured mean wait {s['measured_wait_us']:.4f} us {ci} "
            f"(95% CI, {s['batches']} batches); theory {s['theory_wait_us']:.4f} us: "
            f"{verdict} the CI")
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
        lines.append(f"  {name}: {w['count']} opened, {w['hits']} hit; {wtxt}")
        lines.append(f"    ({w['doc']})")
    return "\n".join(lines)


def violation(v: dict[str, Any]) -> str:
    lines = [f"VIOLATION {v['kind']} at t={v['time_us']:.3f} us, actors: "
             + ", ".join(v["actors"])]
    for key, val in v["detail"].items():
        lines.append(f"  {key}: {val}")
    for h in v.get("history", []):
        lines.append("  history: " + ", ".join(f"{k}={x}" for k, x in h.items()))
    if v.get("diagram"):
        lines.append("")
        lines.extend("  " + line for line in v["diagram"].splitlines())
    return "\n".join(lines)


def run_summary(d: dict[str, Any]) -> str:
    lines = [f"rmapsim: workload {d['workload']}, variant {d['variant']}, seed {d['seed']}: "
             f"{d['sim_time_us']:.1f} simulated us, {d['events']} events"
             + (" (stopped at --max-events)" if d.get("truncated") else "")]
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
