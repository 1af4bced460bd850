#!/usr/bin/env python3
"""Snapshot of timed results, for checking that an optimisation changes nothing.

Runs `run.py run ... --json` (each in its own process) for every variant on hotremove-exit,
a few variants and seeds on numa-exit and ksm-fork-migrate, and lock-calibration with each
lock kind, and writes each JSON output to DIR. Compare two snapshots byte for byte with
`--compare OLD_DIR NEW_DIR`.

    python benchmarks/snapshot.py DIR
    python benchmarks/snapshot.py --compare OLD_DIR NEW_DIR
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ["v2.6.33", "ksm-lru-no-walk", "no-new-forks-pass", "no-ksm-migrate-page",
            "walk-with-page-lock-anon-vma", "no-rcu", "anon-vma-refcount", "anon-vma-lock-get",
            "anon-vma-lock-get-no-recheck"]


def cases() -> list[tuple[str, list[str]]]:
    out = []
    for v in VARIANTS:
        out.append((f"hotremove-exit.{v}.17", ["hotremove-exit", "--variant", v, "--seed", "17"]))
    out.append(("hotremove-exit.v2.6.33.179", ["hotremove-exit", "--seed", "179"]))
    for v in ("v2.6.33", "no-rcu", "anon-vma-lock-get"):
        for s in (1, 5):
            out.append((f"numa-exit.{v}.{s}", ["numa-exit", "--variant", v, "--seed", str(s)]))
    for v in ("v2.6.33", "no-new-forks-pass", "no-ksm-migrate-page", "ksm-lru-no-walk"):
        for s in (1, 3):
            out.append((f"ksm-fork-migrate.{v}.{s}",
                        ["ksm-fork-migrate", "--variant", v, "--seed", str(s)]))
    for lock, extra in (("spinlock", []), ("mutex", []), ("rwsem", ["--set", "readers=2"])):
        out.append((f"lock-calibration.{lock}",
                    ["lock-calibration", "--seed", "3", "--set", f"lock={lock}", *extra]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", nargs="?")
    ap.add_argument("--compare", nargs=2, metavar=("OLD", "NEW"))
    a = ap.parse_args()
    if a.compare:
        old, new = (Path(p) for p in a.compare)
        names = sorted({p.name for p in old.glob("*.json")} | {p.name for p in new.glob("*.json")})
        bad = [n for n in names if not (old / n).exists() or not (new / n).exists()
               or (old / n).read_bytes() != (new / n).read_bytes()]
        print(f"{len(names) - len(bad)}/{len(names)} identical" + (": differ " + " ".join(bad) if bad else ""))
        sys.exit(1 if bad else 0)
    if not a.dir:
        ap.error("give DIR or --compare OLD NEW")
    out = Path(a.dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, args in cases():
        r = subprocess.run([sys.executable, str(ROOT / "run.py"), "run", *args, "--json"],
                           capture_output=True, cwd=ROOT)
        (out / f"{name}.json").write_bytes(r.stdout + f"\nexit {r.returncode}\n".encode())
        print(name, r.returncode, flush=True)


if __name__ == "__main__":
    main()
