"""The capture path's SQL: per session of a request, one read and one write.

`recording_ingest_batches` (services.py) is the only caller. Raw SQL, because on
this path the ORM spent more time building statements and model objects than the
database spent running them (docs/benchmarks/ingest.md). Column lists come from the
models, so a field added later (with a Python default) is written too.

The session's ledger row is its version: `session_commit` writes only if the
ledger's scrub state and count of stored batches are still what `session_read`
saw, and bumps the count. On PostgreSQL that write is one statement (CTEs),
committed on its own; elsewhere three statements in one transaction.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
from contextlib import nullcontext
from typing import Any

from django.db import DatabaseError, IntegrityError, connection, models, transaction

from recordings.models import Recording, SessionLedger, SnapshotChunk

# Recording fields only ingest writes: read, folded in Python, written back whole.
FOLDED = (
    "started_at",
    "ended_at",
    "first_url",
    "max_gap_ms",
    "largest_event_bytes",
    "has_full_snapshot",
    "distinct_id",
    "lib",
    "lib_version",
    "user_agent",
    "country",
)
_RECORDING_SET = (*FOLDED, "duration_ms", "last_batch_at", "compacted")
# Counters that others change too (compaction rewrites size_bytes): added to.
_RECORDING_ADD = (
    "click_count",
    "keypress_count",
    "console_error_count",
    "size_bytes",
    "event_count",
)
# events_dropped and clock_skew_ms are decided in Python from the read: the
# version check covers them.
_LEDGER_SET = ("scrub_state", "events_dropped", "clock_skew_ms", "last_seen")
_LEDGER_ADD = ("batches_accepted", "batches_duplicate", "events_accepted")
_LEDGER_NEWEST = ("distinct_id", "lib_version")  # kept when the batch has none


# A row to insert: values by field attname ("project_id"); defaults fill the rest.
Row = dict[str, Any]


class VersionConflict(DatabaseError):
    """Another request of the session committed since the read; nothing written."""


@dataclasses.dataclass(frozen=True, slots=True)
class SessionRead:
    """What the database held for a session when its batches were prepared."""

    accepted: int  # the ledger's batches_accepted ("version" with scrub_state)
    scrub_state: str  # the ledger's scrub_state exactly as stored; "{}" if no row
    events_dropped: dict[str, int]  # the ledger's counts of unknown events
    clock_skew_ms: int | None  # the correction the session's clock was given
    folded: dict[str, Any] | None  # the recording's FOLDED fields; None if no row
    batch_ids: frozenset[str]  # of the batches asked about, those already stored


def session_read(project_id: int, session_id: str, batch_ids: list[str]) -> SessionRead:
    """The ledger, the recording and the stored batches of a session: one query."""
    with connection.cursor() as cursor:
        cursor.execute(
            _read_sql(len(batch_ids)),
            [project_id, session_id, project_id, session_id, *batch_ids],
        )
        rows = cursor.fetchall()
    accepted, scrub_state, dropped, skew, recording_id, *folded = rows[0][:-1]
    return SessionRead(
        accepted=accepted or 0,
        scrub_state=scrub_state or "{}",
        events_dropped=_counts(dropped),
        clock_skew_ms=skew,
        folded=None if recording_id is None else _folded(folded),
        batch_ids=frozenset(row[-1] for row in rows if row[-1] is not None),
    )


def session_commit(
    read: SessionRead, ledger: Row, recording: Row | None, chunks: list[Row]
) -> int | None:
    """Write the ledger, and the recording and its new chunks if given.

    Returns the recording's id; raises VersionConflict when the ledger moved on
    since `read` (or a chunk row exists already), in which case nothing was written.
    """
    try:
        if connection.vendor == "postgresql":
            return _commit_in_one(read, ledger, recording, chunks)
        return _commit_in_three(read, ledger, recording, chunks)
    except IntegrityError as exc:
        # A chunk row already there: a concurrent retry that the read could not see.
        raise VersionConflict(str(exc)) from exc


def _counts(value: str | dict[str, Any] | None) -> dict[str, int]:
    # SQLite hands back JSON text, PostgreSQL (jsonb) a dict; None: no ledger yet.
    loaded = json.loads(value) if isinstance(value, str) else value
    if not isinstance(loaded, dict):
        return {}
    return {k: v for k, v in loaded.items() if isinstance(v, int)}


def _folded(values: list[Any]) -> dict[str, Any]:
    folded = dict(zip(FOLDED, values, strict=True))
    for name in ("started_at", "ended_at"):
        folded[name] = _aware(folded[name])
    folded["has_full_snapshot"] = bool(folded["has_full_snapshot"])
    return folded


def _aware(value: dt.datetime | str) -> dt.datetime:
    # SQLite hands back Django's text form (UTC), PostgreSQL a datetime.
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _commit_in_one(
    read: SessionRead, ledger: Row, recording: Row | None, chunks: list[Row]
) -> int | None:
    """PostgreSQL: the recording and chunk inserts select from the ledger upsert,
    so they write nothing when its version check fails."""
    sql = f"WITH ledger AS ({_ledger_sql()} RETURNING 1)"
    params = [*_values(SessionLedger, ledger), read.accepted, read.scrub_state]
    if recording is not None:
        sql += f", recording AS ({_recording_sql('FROM ledger')} RETURNING id)"
        sql += f", chunk AS ({_chunks_sql(len(chunks))})"
        params += _values(Recording, recording)
        for chunk in chunks:
            params += _values(SnapshotChunk, chunk, skip=1)
    sql += " SELECT (SELECT count(*) FROM ledger), "
    sql += "(SELECT id FROM recording)" if recording is not None else "NULL"
    # Alone it commits by itself; in a caller's transaction a savepoint keeps a
    # failure from breaking that transaction.
    nested = transaction.atomic() if connection.in_atomic_block else nullcontext()
    with nested, connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if not row or not row[0]:
        raise VersionConflict("the session's ledger changed since it was read")
    return None if row[1] is None else int(row[1])


def _commit_in_three(
    read: SessionRead, ledger: Row, recording: Row | None, chunks: list[Row]
) -> int | None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"{_ledger_sql()} RETURNING id",
            [*_values(SessionLedger, ledger), read.accepted, read.scrub_state],
        )
        if cursor.fetchone() is None:
            raise VersionConflict("the session's ledger changed since it was read")
        if recording is None:
            return None
        cursor.execute(
            f"{_recording_sql(None)} RETURNING id", _values(Recording, recording)
        )
        recording_id = int(cursor.fetchone()[0])
        rows = [chunk | {"recording_id": recording_id} for chunk in chunks]
        cursor.execute(
            f"INSERT INTO {_table(SnapshotChunk)} ({_column_list(SnapshotChunk)}) "
            f"VALUES {', '.join([f'({_placeholders(SnapshotChunk)})'] * len(rows))}",
            [value for row in rows for value in _values(SnapshotChunk, row)],
        )
        return recording_id


def _values(model: type[models.Model], row: Row, skip: int = 0) -> list[Any]:
    """The row's values in column order, ready for the database; defaults for the
    columns it does not name (code, created, ..., and any added later)."""
    return [
        field.get_db_prep_save(
            row[field.attname] if field.attname in row else field.get_default(),
            connection,
        )
        for field in _columns(model)[skip:]
    ]


@functools.cache
def _columns(model: type[models.Model]) -> tuple[models.Field[Any, Any], ...]:
    """Every column but the id; for chunks, recording_id first."""
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    fields.sort(key=lambda f: f.name != "recording")
    return tuple(fields)


def _q(name: str) -> str:
    return str(connection.ops.quote_name(name))


def _table(model: type[models.Model]) -> str:
    return _q(model._meta.db_table)


def _column_list(model: type[models.Model]) -> str:
    return ", ".join(_q(field.column or field.name) for field in _columns(model))


def _placeholders(model: type[models.Model]) -> str:
    return ", ".join(["%s"] * len(_columns(model)))


def _typed_placeholders(model: type[models.Model], skip: int = 0) -> str:
    # In INSERT ... SELECT, PostgreSQL cannot take the parameters' types from the
    # target columns as it does in INSERT ... VALUES.
    fields = _columns(model)[skip:]
    return ", ".join(f"CAST(%s AS {field.db_type(connection)})" for field in fields)


@functools.lru_cache(maxsize=64)
def _read_sql(batches: int) -> str:
    recording = ", ".join(f"r.{_q(name)}" for name in FOLDED)
    return (
        "SELECT l.batches_accepted, l.scrub_state, l.events_dropped, "
        "l.clock_skew_ms, r.id, "
        f"{recording}, c.batch_id "
        "FROM (SELECT 1 AS one) AS k "
        f"LEFT JOIN {_table(SessionLedger)} l "
        "ON l.project_id = %s AND l.session_id = %s "
        f"LEFT JOIN {_table(Recording)} r "
        "ON r.project_id = %s AND r.session_id = %s "
        f"LEFT JOIN {_table(SnapshotChunk)} c ON c.recording_id = r.id "
        f"AND c.batch_id IN ({', '.join(['%s'] * batches)})"
    )


@functools.cache
def _ledger_sql() -> str:
    """Insert the ledger, or update it if its version is still what was read."""
    t = _table(SessionLedger)
    sets = [f"{_q(c)} = excluded.{_q(c)}" for c in _LEDGER_SET]
    sets += [f"{_q(c)} = {t}.{_q(c)} + excluded.{_q(c)}" for c in _LEDGER_ADD]
    sets += [
        f"{_q(c)} = CASE WHEN excluded.{_q(c)} = '' THEN {t}.{_q(c)} "
        f"ELSE excluded.{_q(c)} END"
        for c in _LEDGER_NEWEST
    ]
    sets.append(
        f"has_full_snapshot = ({t}.has_full_snapshot OR excluded.has_full_snapshot)"
    )
    as_json = "CAST(%s AS jsonb)" if connection.vendor == "postgresql" else "%s"
    return (
        f"INSERT INTO {t} ({_column_list(SessionLedger)}) "
        f"VALUES ({_placeholders(SessionLedger)}) "
        f"ON CONFLICT (project_id, session_id) DO UPDATE SET {', '.join(sets)} "
        f"WHERE {t}.batches_accepted = %s AND {t}.scrub_state = {as_json}"
    )


@functools.lru_cache(maxsize=4)
def _recording_sql(source: str | None) -> str:
    """Insert the recording or fold into it; `source`: the CTE it selects from."""
    t = _table(Recording)
    sets = [f"{_q(c)} = excluded.{_q(c)}" for c in _RECORDING_SET]
    sets += [f"{_q(c)} = {t}.{_q(c)} + excluded.{_q(c)}" for c in _RECORDING_ADD]
    if source is None:
        values = f"VALUES ({_placeholders(Recording)})"
    else:
        values = f"SELECT {_typed_placeholders(Recording)} {source}"
    return (
        f"INSERT INTO {t} ({_column_list(Recording)}) {values} "
        f"ON CONFLICT (project_id, session_id) DO UPDATE SET {', '.join(sets)}"
    )


@functools.lru_cache(maxsize=64)
def _chunks_sql(count: int) -> str:
    row = f"SELECT recording.id, {_typed_placeholders(SnapshotChunk, skip=1)} "
    row += "FROM recording"
    return (
        f"INSERT INTO {_table(SnapshotChunk)} ({_column_list(SnapshotChunk)}) "
        + " UNION ALL ".join([row] * count)
    )
