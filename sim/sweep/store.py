"""A sweep's directory: `sweep.json` (its definition) and `runs.sqlite` (one row per finished
run), SQLite in WAL mode, written only by the coordinating process, one transaction per batch
of finished runs. Killing a sweep at any moment loses no committed run and never corrupts
the store; the same definition resumes it, another one is refused."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sim.errors import InputError
from sim.sweep.grid import SweepDef

DEFINITION = "sweep.json"
DATABASE = "runs.sqlite"


def check_dir(out: str | os.PathLike, sweep: SweepDef | None = None) -> Path:
    """Refuse, before anything is written, a directory that cannot hold this sweep: not
    writable, not empty and not a sweep, or another sweep's. With sweep None: must hold one."""
    d = Path(out)
    if d.exists() and not d.is_dir():
        raise InputError(f"--out '{d}' is a file; give a directory for the sweep")
    defn = d / DEFINITION
    if sweep is None:
        if not defn.is_file():
            raise InputError(f"'{d}' holds no sweep (no {DEFINITION}); run `run.py sweep "
                             f"WORKLOAD --out {d}` first")
        return d
    if d.exists():
        if defn.is_file():
            old = _read_definition(defn)
            if old != json.loads(sweep.canonical()):
                diff = sorted(k for k in set(old) | set(json.loads(sweep.canonical()))
                              if old.get(k) != json.loads(sweep.canonical()).get(k))
                raise InputError(f"'{d}' holds another sweep (its {', '.join(diff)} differ); "
                                 "give another --out, or the same definition to resume it")
        elif any(d.iterdir()):
            raise InputError(f"--out '{d}' is not empty and holds no rmapsim sweep; give a "
                             "new or empty directory")
        if not os.access(d, os.W_OK | os.X_OK):
            raise InputError(f"--out '{d}' is not writable")
    else:
        parent = d.resolve().parent
        while not parent.exists():
            parent = parent.parent
        if not os.access(parent, os.W_OK | os.X_OK):
            raise InputError(f"--out '{d}' cannot be created: '{parent}' is not writable")
    return d


def _read_definition(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise InputError(f"'{path}' is not a sweep definition: {e}") from None


def read_definition(d: Path) -> SweepDef:
    try:
        return SweepDef.from_dict(_read_definition(d / DEFINITION))
    except KeyError as e:
        raise InputError(f"'{d / DEFINITION}' lacks {e}") from None


class Store:
    def __init__(self, d: Path, sweep: SweepDef | None = None) -> None:
        self.dir = d
        if sweep is not None:
            d.mkdir(parents=True, exist_ok=True)
            defn = d / DEFINITION
            if not defn.exists():
                tmp = d / (DEFINITION + ".tmp")
                tmp.write_text(json.dumps(sweep.to_dict(), indent=1, sort_keys=True) + "\n")
                os.replace(tmp, defn)                  # atomic: all or nothing
        self.db = sqlite3.connect(d / DATABASE, timeout=60)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")   # WAL: safe against a killed process
        self.db.execute("CREATE TABLE IF NOT EXISTS runs (run_key TEXT PRIMARY KEY, "
                        "cell INTEGER NOT NULL, rep INTEGER NOT NULL, seed INTEGER NOT NULL, "
                        "row TEXT NOT NULL)")
        self.db.commit()

    def done(self) -> set[str]:
        return {k for (k,) in self.db.execute("SELECT run_key FROM runs")}

    def add(self, rows: Iterable[tuple[str, int, int, int, str]]) -> None:
        """Commit finished runs (run_key, cell, rep, seed, row JSON) in one transaction."""
        with self.db:
            self.db.executemany("INSERT OR IGNORE INTO runs VALUES (?, ?, ?, ?, ?)", rows)

    def rows(self) -> list[dict[str, Any]]:
        return [json.loads(r) for (r,) in
                self.db.execute("SELECT row FROM runs ORDER BY cell, rep")]

    def count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]

    def close(self) -> None:
        self.db.close()
