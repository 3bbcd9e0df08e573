"""Review decisions in ``review.sqlite``: written the moment they are made, never rewritten.

The table is an append-only log. A decision is one row; an undo is another row that points at the
decision it takes back (the decision row only gains ``undone_by``), so the full history stays for
audit and undo works like a stack: the newest decision still standing is the one undone next.
An image's current verdict is its newest decision that was not undone.

SQLite in WAL mode with ``synchronous=FULL`` commits every decision to disk before the call
returns, so a page refresh, a ComfyUI restart or ``kill -9`` loses nothing. Every call opens its
own short connection, so the store is safe to use from the HTTP server, a ComfyUI node and the
CLI at the same time.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from ..data.project import Project
from ..data.records import utc_now
from .items import check_image_id, open_dataset, record_index
from .stages import ReviewError, check_verdict, clean_text, reason_title, review_stage

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    kind      TEXT NOT NULL CHECK (kind IN ('decide', 'undo')),
    image_id  TEXT NOT NULL,
    stage     TEXT NOT NULL,
    dataset   TEXT NOT NULL,
    version   TEXT NOT NULL,
    label     TEXT,
    reason    TEXT,
    note      TEXT,
    reviewer  TEXT,
    at        TEXT NOT NULL,
    undoes    INTEGER REFERENCES decisions (seq),
    undone_by INTEGER REFERENCES decisions (seq)
);
CREATE INDEX IF NOT EXISTS decisions_scope ON decisions (stage, version, kind, undone_by, image_id, seq);
CREATE INDEX IF NOT EXISTS decisions_image ON decisions (image_id, seq);
"""

_ACTIVE = "kind = 'decide' AND undone_by IS NULL"
_COLUMNS = "kind, image_id, stage, dataset, version, label, reason, note, reviewer, at"


@dataclass(frozen=True)
class Decision:
    """One row of the log: a verdict (``kind='decide'``) or the undo of one (``kind='undo'``)."""

    seq: int
    kind: Literal["decide", "undo"]
    image_id: str
    stage: str
    dataset: str
    version: str
    label: str | None
    reason: str | None
    note: str | None
    reviewer: str | None
    at: str
    undoes: int | None = None
    undone_by: int | None = None

    @property
    def reason_text(self) -> str | None:
        return reason_title(self.reason)

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"reason_text": self.reason_text}


class ReviewStore:
    """The project's review log. Create freely: it holds no connection between calls."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.path: Path = project.review_db
        self._ready = False

    # Writing ------------------------------------------------------------------------------
    def decide(self, image_id: str, stage: str, dataset_version: str, label: str, reason: str | None = None,
               reviewer: str | None = None, note: str | None = None) -> Decision:
        """Record a verdict for one image of a dataset version; returns the row now current.

        Refuses labels foreign to the stage, rejections and corrections without a reason, and
        images that are not in the dataset. Repeating the current verdict adds no row.
        """
        spec = review_stage(stage)
        check_image_id(image_id)
        dataset = open_dataset(self.project, spec.dataset_stage, dataset_version)
        record_index(dataset).get(image_id)
        stored_reason = check_verdict(spec, label, reason)
        note = clean_text(note, "note")
        stored_reviewer = clean_text(reviewer, "reviewer name")
        with self._transaction() as con:
            current = self._current_row(con, stage, dataset_version, image_id)
            if current and (current.label, current.reason, current.note) == (label, stored_reason, note):
                return current
            cursor = con.execute(
                f"INSERT INTO decisions ({_COLUMNS}) VALUES ('decide', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (image_id, stage, spec.dataset_stage, dataset_version, label, stored_reason, note,
                 stored_reviewer, utc_now()),
            )
            return self._row(con, cursor.lastrowid)

    def undo(self, stage: str, dataset_version: str, image_id: str | None = None,
             reviewer: str | None = None) -> Decision | None:
        """Take back the newest standing decision (of one image, or of the whole dataset version).

        Returns the decision that was undone, or None when there is nothing left to undo. The
        image falls back to its previous verdict, or to pending.
        """
        spec = review_stage(stage)
        scope = "stage = ? AND version = ?"
        args: list[Any] = [stage, dataset_version]
        if image_id is not None:
            check_image_id(image_id)
            scope += " AND image_id = ?"
            args.append(image_id)
        with self._transaction() as con:
            found = con.execute(
                f"SELECT seq FROM decisions WHERE {scope} AND {_ACTIVE} ORDER BY seq DESC LIMIT 1", args
            ).fetchone()
            if found is None:
                return None
            undone = self._row(con, found["seq"])
            cursor = con.execute(
                f"INSERT INTO decisions ({_COLUMNS}, undoes) VALUES ('undo', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (undone.image_id, stage, spec.dataset_stage, dataset_version, undone.label, undone.reason,
                 undone.note, clean_text(reviewer, "reviewer name"), utc_now(), undone.seq),
            )
            con.execute("UPDATE decisions SET undone_by = ? WHERE seq = ?", (cursor.lastrowid, undone.seq))
            return self._row(con, undone.seq)

    # Reading ------------------------------------------------------------------------------
    def current(self, stage: str, dataset_version: str) -> dict[str, Decision]:
        """The standing verdict of every decided image of a dataset version, by image id."""
        with self._connection() as con:
            rows = con.execute(
                f"SELECT * FROM decisions WHERE seq IN (SELECT MAX(seq) FROM decisions WHERE stage = ? AND "
                f"version = ? AND {_ACTIVE} GROUP BY image_id)",
                (stage, dataset_version),
            ).fetchall()
        return {row["image_id"]: _decision(row) for row in rows}

    def current_for(self, stage: str, dataset_version: str, image_id: str) -> Decision | None:
        with self._connection() as con:
            return self._current_row(con, stage, dataset_version, image_id)

    def history(self, stage: str | None = None, dataset_version: str | None = None,
                image_id: str | None = None) -> list[Decision]:
        """Every row, oldest first, optionally limited to a stage, version and image."""
        clauses, args = [], []
        for column, value in (("stage", stage), ("version", dataset_version), ("image_id", image_id)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._connection() as con:
            rows = con.execute(f"SELECT * FROM decisions {where} ORDER BY seq", args).fetchall()
        return [_decision(row) for row in rows]

    # Internals ----------------------------------------------------------------------------
    def _current_row(self, con: sqlite3.Connection, stage: str, version: str,
                     image_id: str) -> Decision | None:
        row = con.execute(
            f"SELECT * FROM decisions WHERE stage = ? AND version = ? AND image_id = ? AND {_ACTIVE} "
            "ORDER BY seq DESC LIMIT 1",
            (stage, version, image_id),
        ).fetchone()
        return _decision(row) if row else None

    def _row(self, con: sqlite3.Connection, seq: int | None) -> Decision:
        return _decision(con.execute("SELECT * FROM decisions WHERE seq = ?", (seq,)).fetchone())

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        try:
            con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except sqlite3.Error as exc:
            raise ReviewError(f"cannot open {self.path}: {exc}") from None
        try:
            con.row_factory = sqlite3.Row
            con.execute("PRAGMA synchronous = FULL")
            if not self._ready:
                self._prepare(con)
            yield con
        except sqlite3.DatabaseError as exc:
            raise ReviewError(
                f"{self.path} cannot be used ({exc}); if it is damaged, restore it from a backup "
                "(your images and folders are untouched)"
            ) from None
        finally:
            con.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connection() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def _prepare(self, con: sqlite3.Connection) -> None:
        """Create the schema once (a write); later opens only read its version."""
        version = con.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise ReviewError(f"{self.path} was written by a newer FLENwheel (schema {version}); upgrade it")
        if version < SCHEMA_VERSION:
            con.execute("PRAGMA journal_mode = WAL")
            con.executescript(_SCHEMA)
            con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self._ready = True


def _decision(row: sqlite3.Row) -> Decision:
    return Decision(**{key: row[key] for key in row.keys()})
