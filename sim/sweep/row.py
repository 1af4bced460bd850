"""One finished run as one flat row: what sweeps store, report and export.

Keys: `params.<key>` for the swept parameters, `v.<kind>` (reports of each violation kind),
`harm.<harm>`, `lock.<class>.<figure>` (per lock_stat row), `win.<window>.<figure>`,
`c.<counter>` (the run's counters), `x.<section>.<figure>` (the scenario's scalar figures,
e.g. x.mm.ksm_pages_sharing), plus `violations` (the first reports of each kind, without
diagrams, as JSON). The same spec
gives the same row, byte for byte, in any process.
"""

from __future__ import annotations

import json
from typing import Any

from sim.kinds import KINDS
from sim.mm.checks.kasan import HARMS
from sim.result import Result

KEEP_VIOLATIONS = 5           # per kind, in the row's `violations`


def row_of(result: Result, cell_index: int, cell_key: str, rep: int,
           swept: dict[str, Any]) -> dict[str, Any]:
    d = result.to_dict()
    row: dict[str, Any] = {
        "cell": cell_index, "cell_key": cell_key, "rep": rep, "seed": d["seed"],
        "workload": d["workload"], "variant": d["variant"],
        "simulator_version": d["simulator_version"], "events": d["events"],
        "sim_time_us": d["sim_time_us"], "truncated": d["truncated"]}
    row.update({f"params.{k}": v for k, v in swept.items()})
    row.update({f"v.{k}": d["violation_counts"].get(k, 0) for k in KINDS})
    row.update({f"harm.{h}": d["harm_counts"].get(h, 0) for h in HARMS})
    pct = d.get("lock_percentiles", {})
    for r in d["lock_stat"]:
        c, pre = r["class"], f"lock.{r['class']}."
        row[pre + "acquisitions"] = r["acquisitions"]
        row[pre + "contentions"] = r["contentions"]
        row[pre + "wait_total_us"] = r["waittime-total"]
        # mean over every acquisition (zero for an uncontended one), as queueing theory
        row[pre + "wait_mean_us"] = round(r["waittime-total"] / r["acquisitions"], 6)
        row[pre + "wait_avg_us"] = r["waittime-avg"]          # over contentions (lock_stat)
        row[pre + "wait_max_us"] = r["waittime-max"]
        row[pre + "hold_avg_us"] = r["holdtime-avg"]
        row[pre + "wait_p99_us"] = pct.get(c, {}).get("wait_p99")
        row[pre + "hold_p99_us"] = pct.get(c, {}).get("hold_p99")
    for name, w in d["windows"].items():
        pre = f"win.{name}."
        for f in ("count", "closed", "hits", "hit_rate", "estimated_hit_rate",
                  "free_rate_per_us"):
            row[pre + f] = w.get(f)
        for f in ("p50", "p99", "mean", "max"):
            row[pre + f"width_{f}_us"] = w.get("width_us", {}).get(f)
        for c, n in w.get("hit_classes", {}).items():
            row[pre + f"hits.{c}"] = n
        row[pre + "width_hist"] = json.dumps(w.get("width_hist", {}), sort_keys=True)
    row.update({f"c.{k}": v for k, v in d["counters"].items()})
    for section in ("mm", "calibration"):
        for k, v in (d.get(section) or {}).items():
            if isinstance(v, (int, float, str, bool)) or v is None:
                row[f"x.{section}.{k}"] = v
    kept: dict[str, int] = {}
    vs = []
    for v in d["violations"]:
        if kept.get(v["kind"], 0) < KEEP_VIOLATIONS:
            kept[v["kind"]] = kept.get(v["kind"], 0) + 1
            vs.append({k: v[k] for k in ("kind", "time_us", "actors", "detail", "harm")
                       if k in v})
    row["violations"] = json.dumps(vs, sort_keys=True)
    return row


def encode(row: dict[str, Any]) -> str:
    return json.dumps(row, sort_keys=True, separators=(",", ":"))
