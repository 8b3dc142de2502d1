"""Durable records of training jobs: one SQLite file beside the checkpoints root.

A record is what a run is, not where it executes: owner, settings, status, message, history
(one entry per complete epoch) and the checkpoint it saved. Both executors (vae.executors: the
in-process worker, Ray actors) write the same records, so the run list, ownership and limits do
not change with the backend; a run on Ray also keeps its actor's name in `extra["ray_actor"]`, by
which a restarted server finds it again. Every write is one transaction, so a
server killed at any moment leaves each record as it was before or after a change, never half.
Live progress (steps, previews) is not stored: it is meaningless after a restart.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass, field, fields
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- submission order, which is also queue order
    id TEXT UNIQUE NOT NULL,
    name TEXT NOT NULL,
    root TEXT NOT NULL,
    owner TEXT,
    owner_name TEXT NOT NULL DEFAULT '',
    role TEXT NOT NULL DEFAULT 'student',
    model TEXT NOT NULL,
    train TEXT NOT NULL,
    overwrite INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    checkpoint TEXT,
    history TEXT NOT NULL DEFAULT '[]',
    extra TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL,
    started REAL,
    ended REAL
)
"""
_JSON_FIELDS = ("model", "train", "history", "extra")


@dataclass
class JobRecord:
    """One row of the store; JSON columns come back as Python objects."""

    id: str
    name: str  # the checkpoint it saves as
    root: str  # the checkpoints folder it saves into
    model: dict
    train: dict  # TrainConfig.to_dict()
    status: str
    created: float
    owner: str | None = None  # the session that started it (None: a script or the CLI)
    owner_name: str = ""  # the display name its owner gave, if any
    role: str = "student"  # "student" or "teacher": whose quota its model counts against
    overwrite: bool = False
    message: str = ""
    checkpoint: str | None = None
    history: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)  # room for later fields (e.g. a sweep's group)
    started: float | None = None
    ended: float | None = None
    seq: int | None = None


def store_path(checkpoints_root: str | Path) -> Path:
    """The job database of a checkpoints folder: a file beside it (`checkpoints` -> `checkpoints-jobs.sqlite3`)."""
    root = Path(checkpoints_root).resolve()
    return root.parent / f"{root.name}-jobs.sqlite3"


class JobStore:
    """Job records in SQLite (`path`, or ":memory:" for a store that lasts as long as the process).

    Thread-safe: one connection behind a lock; every method is one transaction.
    Raises sqlite3.Error when the file cannot be opened or written.
    """

    def __init__(self, path: str | Path = ":memory:"):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._connection = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        with self._lock:
            if self.path != ":memory:":
                self._connection.execute("PRAGMA journal_mode=WAL")
                self._connection.execute("PRAGMA synchronous=FULL")
            self._connection.execute(SCHEMA)

    def add(self, record: JobRecord) -> JobRecord:
        values = {item.name: getattr(record, item.name) for item in fields(JobRecord) if item.name != "seq"}
        columns = ", ".join(values)
        with self._lock, self._connection:
            cursor = self._connection.execute(f"INSERT INTO jobs ({columns}) VALUES ({', '.join('?' * len(values))})",
                                              [self._encode(key, value) for key, value in values.items()])
            record.seq = cursor.lastrowid
        return record

    def update(self, job_id: str, **values) -> None:
        """Change some fields of one record in one transaction."""
        if not values:
            return
        allowed = {item.name for item in fields(JobRecord)} - {"id", "seq"}
        unknown = set(values) - allowed
        if unknown:
            raise KeyError(f"not job record fields: {sorted(unknown)}")
        assignments = ", ".join(f"{key} = ?" for key in values)
        with self._lock, self._connection:
            self._connection.execute(f"UPDATE jobs SET {assignments} WHERE id = ?",
                                     [*(self._encode(key, value) for key, value in values.items()), job_id])

    def records(self) -> list[JobRecord]:
        """Every record, in submission order."""
        with self._lock:
            cursor = self._connection.execute("SELECT * FROM jobs ORDER BY seq")
            names = [column[0] for column in cursor.description]
            rows = cursor.fetchall()
        return [self._decode(dict(zip(names, row))) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    @staticmethod
    def _encode(key: str, value):
        if key in _JSON_FIELDS:
            return json.dumps(value, allow_nan=True)
        if key == "overwrite":
            return int(bool(value))
        return str(value) if isinstance(value, Path) else value

    @staticmethod
    def _decode(row: dict) -> JobRecord:
        for key in _JSON_FIELDS:
            row[key] = json.loads(row[key])
        row["overwrite"] = bool(row["overwrite"])
        return JobRecord(**row)
