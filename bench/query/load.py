"""Load bench/query/million.py's data into a migrated database with COPY, in minutes.

The tables' plain indexes are dropped for the load and built again after it (one
sort per index instead of a million random inserts), foreign keys are not
checked row by row (`session_replication_role = replica`: the rows are made to
agree), and the recordings, markers and events stream through three COPYs at once,
so the server parses one table's rows while Python makes the next session's.
Then VACUUM ANALYZE: the visibility map set and the statistics fresh, as a table
that has been live for weeks has them, and no autovacuum in the middle of the
measurements.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
from psycopg import Copy, sql

from bench.harness.servers import log
from bench.query.data import (
    EVENT_COLUMNS,
    MARKER_COLUMNS,
    PEOPLE_PER_RECORDING,
    PERSON_COLUMNS,
    UNRECORDED_SHARE,
    EventWriter,
    PersonPlan,
    SessionMaker,
    marker_rows,
    person_row,
    plan_people,
    recording_values,
)

TABLES = (
    "recordings_recording",
    "recordings_marker",
    "recordings_event",
    "recordings_person",
)
PROGRESS_EVERY_S = 10.0
PEOPLE_BATCH = 10_000


@dataclass(frozen=True, slots=True)
class LoadStats:
    recordings: int
    markers: int
    events: int
    people: int
    copy_s: float
    index_s: float
    vacuum_s: float

    @property
    def total_s(self) -> float:
        return self.copy_s + self.index_s + self.vacuum_s


def recording_columns() -> tuple[list[str], dict[str, Any]]:
    """The recording table's columns and the model's default for each: the COPY
    fills every NOT NULL column, those the data does not set with the default
    capture would leave."""
    from recordings.models import Recording

    defaults: dict[str, Any] = {}
    columns = [str(f.column) for f in Recording._meta.concrete_fields]
    for column, model_field in zip(
        columns, Recording._meta.concrete_fields, strict=True
    ):
        if model_field.has_default():
            value = model_field.get_default()
            if isinstance(value, dict | list):
                value = orjson.dumps(value).decode()
            defaults[column] = value
        elif model_field.null:
            defaults[column] = None
    return columns, defaults


def _plain_indexes(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    """(name, definition) of the tables' indexes that back no constraint."""
    query = """
        SELECT c.relname, pg_get_indexdef(i.indexrelid)
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE i.indrelid = ANY(%s::regclass[])
          AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
        ORDER BY c.relname
    """
    return [(r[0], r[1]) for r in conn.execute(query, [list(TABLES)])]


class Loader:
    """One load: people, then sessions, for each project in turn."""

    def __init__(self, dsn: str, seed: int, anchor_ms: int) -> None:
        self.dsn = dsn
        self.rng = random.Random(seed)
        self.anchor_ms = anchor_ms
        self.columns, self.defaults = recording_columns()
        self.counts = {"recordings": 0, "markers": 0, "events": 0, "people": 0}
        self.next_id = 1
        self.started = time.monotonic()
        self.reported = self.started

    def load(self, projects: list[tuple[int, int]]) -> LoadStats:
        """Load `(project id, recordings)` pairs; build indexes; vacuum."""
        with psycopg.connect(self.dsn, autocommit=True) as admin:
            indexes = _plain_indexes(admin)
            for name, _ in indexes:
                admin.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
            log(f"dropped {len(indexes)} plain indexes for the load")
            for project_id, recordings in projects:
                self._project(project_id, recordings)
            copy_s = time.monotonic() - self.started
            self._report(force=True)
            index_s = _timed(lambda: _build(admin, indexes))
            log(f"built {len(indexes)} indexes in {index_s:.0f} s")
            vacuum_s = _timed(lambda: _vacuum(admin))
            log(f"VACUUM ANALYZE in {vacuum_s:.0f} s")
        return LoadStats(
            recordings=self.counts["recordings"],
            markers=self.counts["markers"],
            events=self.counts["events"],
            people=self.counts["people"],
            copy_s=copy_s,
            index_s=index_s,
            vacuum_s=vacuum_s,
        )

    def _project(self, project_id: int, recordings: int) -> None:
        people = plan_people(
            self.rng, max(10, int(recordings * PEOPLE_PER_RECORDING)), self.anchor_ms
        )
        with _copying(self.dsn, "recordings_person", PERSON_COLUMNS) as copy:
            for person in people:
                if person.identified:
                    copy.write_row(person_row(project_id, person))
                    self.counts["people"] += 1
        self._sessions(project_id, recordings, people)

    def _sessions(
        self, project_id: int, recordings: int, people: list[PersonPlan]
    ) -> None:
        maker = SessionMaker(self.rng, people, self.anchor_ms)
        events = EventWriter(self.rng, project_id)
        columns = self.columns
        with ExitStack() as stack:
            rec = stack.enter_context(
                _copying(self.dsn, "recordings_recording", self.columns)
            )
            mark = stack.enter_context(
                _copying(self.dsn, "recordings_marker", MARKER_COLUMNS)
            )
            ev = stack.enter_context(
                _copying(self.dsn, "recordings_event", EVENT_COLUMNS)
            )
            for person in _people_stream(maker, recordings):
                session = maker.plan(person)
                values = recording_values(session, self.rng, self.anchor_ms)
                values |= {"id": self.next_id, "project_id": project_id}
                values["code"] = uuid.UUID(int=self.rng.getrandbits(128), version=4)
                rec.write_row([values.get(c, self.defaults.get(c)) for c in columns])
                for row in marker_rows(self.next_id, session):
                    mark.write_row(row)
                    self.counts["markers"] += 1
                self._events(ev, events, session)
                if self.rng.random() < UNRECORDED_SHARE:
                    self._events(ev, events, maker.plan(person))
                self.next_id += 1
                self.counts["recordings"] += 1
                self._report()
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            sequence = "pg_get_serial_sequence('recordings_recording', 'id')"
            conn.execute(f"SELECT setval({sequence}, %s)", [self.next_id])

    def _events(self, copy: Copy, writer: EventWriter, session: Any) -> None:
        for row in writer.rows(session):
            copy.write_row(row)
            self.counts["events"] += 1

    def _report(self, force: bool = False) -> None:
        moment = time.monotonic()
        if not force and moment - self.reported < PROGRESS_EVERY_S:
            return
        self.reported = moment
        elapsed = moment - self.started
        rows = sum(self.counts.values())
        parts = ", ".join(f"{n:,} {what}" for what, n in self.counts.items())
        log(f"loaded {parts} in {elapsed:.0f} s ({rows / elapsed:,.0f} rows/s)")


def _people_stream(maker: SessionMaker, count: int) -> Iterator[PersonPlan]:
    """Who each of `count` recordings belongs to, drawn in batches."""
    left = count
    while left > 0:
        batch = min(left, PEOPLE_BATCH)
        yield from maker.people_for(batch)
        left -= batch


class _copying:
    """A COPY into `table` on a connection of its own, committed at the end."""

    def __init__(self, dsn: str, table: str, columns: Any) -> None:
        self.conn = psycopg.connect(dsn)
        self.conn.execute("SET session_replication_role = replica")
        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
        )
        self.cursor = self.conn.cursor()
        self.copy_cm = self.cursor.copy(statement)

    def __enter__(self) -> Copy:
        return self.copy_cm.__enter__()

    def __exit__(self, *exc: Any) -> None:
        try:
            self.copy_cm.__exit__(*exc)
            if exc[0] is None:
                self.conn.commit()
        finally:
            self.conn.close()


def _build(admin: psycopg.Connection[Any], indexes: list[tuple[str, str]]) -> None:
    admin.execute("SET maintenance_work_mem = '1GB'")
    for name, definition in indexes:
        started = time.monotonic()
        admin.execute(definition)  # from pg_get_indexdef: the index as it was
        log(f"  {name}: {time.monotonic() - started:.0f} s")


def _vacuum(admin: psycopg.Connection[Any]) -> None:
    for table in TABLES:
        admin.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(table)))


def _timed(work: Callable[[], None]) -> float:
    started = time.monotonic()
    work()
    return time.monotonic() - started
