"""A sweep's directory: `sweep.json` (its definition) and `runs.sqlite` (one row per finished
run), SQLite in WAL mode, written only by the coordinating process, one transaction per batch
of finished runs. Killing a sweep at any moment loses no committed run and never corrupts
the store; the same definition resumes it, another one is refused."""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sim.errors import InputError
from sim.sweep.grid import SweepDef, check_definition

DEFINITION = "sweep.json"
DATABASE = "runs.sqlite"
LOCK = "sweep.lock"


def check_dir(out: str | os.PathLike, sweep: SweepDef | None = None) -> Path:
    """Refuse, before anything is written, a directory that cannot hold this sweep: not
    writable, not empty and not a sweep, or another sweep's. With sweep None: must hold one."""
    if not os.fspath(out).strip():
        raise InputError("--out needs a directory name, got ''")
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
        elif any(p.name != LOCK for p in d.iterdir()):
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
        d = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as e:
        raise InputError(f"'{path}' is not a sweep definition: {one_line(e)}") from None
    if not isinstance(d, dict):
        raise InputError(f"'{path}' is not a sweep definition (not a JSON object)")
    return d


def one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:200]


def read_definition(d: Path) -> SweepDef:
    """The definition in DIR/sweep.json, checked as a new one would be (a tampered file is
    refused with one line, never reported as "12/-4 runs")."""
    path = d / DEFINITION
    raw = _read_definition(path)
    try:
        return check_definition(SweepDef.from_dict(raw))
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        if isinstance(e, InputError):
            raise InputError(f"'{path}': {e}") from None
        raise InputError(f"'{path}' is not a valid sweep definition ({type(e).__name__}: "
                         f"{one_line(e)})") from None


class Store:
    """The runs of one sweep. Opened for writing (with its definition: the sweep command)
    it holds DIR/sweep.lock, so that a second sweep on the same directory is refused, and
    records the definition's canonical text inside the database, so that a store copied
    beside another sweep's sweep.json is refused instead of mixed in. Opened without one
    (report, export) it only reads: a read-only directory is fine."""

    def __init__(self, d: Path, sweep: SweepDef | None = None) -> None:
        self.dir = d
        self.lock: Any = None
        self.db: sqlite3.Connection | None = None
        try:
            if sweep is not None:
                self._open_writer(d, sweep)
            else:
                self._open_reader(d)
        except sqlite3.DatabaseError as e:
            self.close()
            raise InputError(f"'{d / DATABASE}' is not a readable sweep store ({e}); move "
                             "it away and run the sweep again") from None
        except OSError as e:
            self.close()
            raise InputError(f"--out '{d}': cannot write the sweep: "
                             f"{e.strerror or e}") from None

    def _open_writer(self, d: Path, sweep: SweepDef) -> None:
        d.mkdir(parents=True, exist_ok=True)
        self.lock = open(d / LOCK, "a")
        try:
            fcntl.flock(self.lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise InputError(f"another sweep is running on '{d}' (it holds {d / LOCK}); "
                             "wait for it to end, or give another --out") from None
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
        self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, "
                        "value TEXT NOT NULL)")
        self.db.commit()
        self._check_owner(sweep)
        with self.db:
            self.db.execute("INSERT OR IGNORE INTO meta VALUES ('definition', ?)",
                            (sweep.canonical(),))

    def _open_reader(self, d: Path) -> None:
        path = d / DATABASE
        if not path.is_file():
            self.db = sqlite3.connect(":memory:")      # nothing stored yet
            self.db.execute("CREATE TABLE runs (run_key TEXT, cell INTEGER, rep INTEGER, "
                            "seed INTEGER, row TEXT)")
            return
        uri = path.resolve().as_uri()
        # read-only; a directory that cannot be written (no -shm to make) is read immutable
        mode = "ro" if os.access(d, os.W_OK) else "ro&immutable=1"
        self.db = sqlite3.connect(f"{uri}?mode={mode}", uri=True, timeout=60)
        self.db.execute("SELECT COUNT(*) FROM runs").fetchone()
        self._check_owner(read_definition(d))

    def _check_owner(self, sweep: SweepDef) -> None:
        """Refuse a store that belongs to another sweep than this definition."""
        assert self.db is not None
        has_meta = self.db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                   "name = 'meta'").fetchone()
        recorded = self.db.execute("SELECT value FROM meta WHERE key = 'definition'"
                                   ).fetchone() if has_meta else None
        if recorded is not None:
            if recorded[0] != sweep.canonical():
                raise InputError(f"'{self.dir / DATABASE}' holds the runs of another sweep "
                                 f"than '{self.dir / DEFINITION}'; put each store beside its "
                                 "own sweep.json")
            return
        # a store from before definitions were recorded: its rows must be this sweep's cells
        keys = {c.index: c.key for c in sweep.cells()}
        for cell, key, rep in self.db.execute(
                "SELECT cell, json_extract(row, '$.cell_key'), rep FROM runs"):
            if keys.get(cell) != key or not 0 <= rep < sweep.reps:
                raise InputError(f"'{self.dir / DATABASE}' holds runs of another sweep than "
                                 f"'{self.dir / DEFINITION}'; put each store beside its own "
                                 "sweep.json")

    def done(self) -> set[str]:
        return {k for (k,) in self._query("SELECT run_key FROM runs")}

    def add(self, rows: Iterable[tuple[str, int, int, int, str]]) -> None:
        """Commit finished runs (run_key, cell, rep, seed, row JSON) in one transaction."""
        assert self.db is not None
        with self.db:
            self.db.executemany("INSERT OR IGNORE INTO runs VALUES (?, ?, ?, ?, ?)", rows)

    def rows(self) -> list[dict[str, Any]]:
        try:
            return [json.loads(r) for (r,) in
                    self._query("SELECT row FROM runs ORDER BY cell, rep")]
        except ValueError as e:
            raise InputError(f"'{self.dir / DATABASE}' holds a damaged row ({e})") from None

    def count(self) -> int:
        return self._query("SELECT COUNT(*) FROM runs")[0][0]

    def _query(self, sql: str) -> list[Any]:
        assert self.db is not None
        try:
            return self.db.execute(sql).fetchall()
        except sqlite3.DatabaseError as e:
            raise InputError(f"'{self.dir / DATABASE}' is not a readable sweep store ({e}); "
                             "move it away and run the sweep again") from None

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None
        if self.lock is not None:
            self.lock.close()                 # releases the flock; the file stays (ours)
            self.lock = None
