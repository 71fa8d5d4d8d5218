"""Recordings carried between installations: an export document imported, and
exports of recordings on legal hold audited.

The export document is written by recordings.playback.responses.export_chunks and
described in docs/storage-format.md. An import stores the events the way capture and
compaction do (live chunk rows, then one window blob per window), so what it leaves
behind is ReplayHub's own format, whatever that is at the time.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction

from privacy.models import PrivacyAuditEntry
from recordings import blobs
from recordings.ingest.parse import IngestError, ms_to_datetime
from recordings.models import (
    Comment,
    Event,
    Marker,
    Person,
    Project,
    Recording,
    RecordingTag,
    SnapshotChunk,
)
from recordings.services.compaction import recording_compact_windows
from recordings.services.curation import tag_get_or_create

logger = logging.getLogger(__name__)

# The export document's header: an import refuses another format or a newer
# version (docs/storage-format.md, "The export file").
EXPORT_FORMAT = "replayhub-recording"
EXPORT_VERSION = 1
# The columns of a recording's rows that its export carries and an import restores.
MARKER_FIELDS = ("kind", "timestamp", "offset_ms", "window_id", "label", "details")
EVENT_FIELDS = ("uuid", "name", "distinct_id", "session_id", "timestamp", "properties")
PERSON_FIELDS = ("distinct_id", "properties", "anon_distinct_ids", "created", "updated")
COMMENT_FIELDS = ("text", "offset_ms", "window_id", "created", "edited")
# Recording columns an import does not take from the document: its own row id and
# project, and what describes the storage it writes (computed again).
_NOT_RESTORED = frozenset({"id", "project", "code", "size_bytes", "compacted"})
# Compaction measures these again per window; the document's values are kept.
_WINDOW_CHECKS = ("window_checks", "lost_changes", "checked_gap_ms")


class ImportRefused(Exception):
    """An export document that cannot be imported; the message says why."""


def recordings_export_audit(
    *,
    recordings: Iterable[Recording],
    actor: User | None,
    file_format: str,
    via: str,
) -> int:
    """Note in each project's privacy audit log who exported which of its
    recordings on legal hold (evidence), how and in what format; returns how many.

    Recordings not on hold leave no entry: only evidence is accounted for.
    """
    held: dict[Project, list[str]] = {}
    for recording in recordings:
        if recording.legal_hold:
            held.setdefault(recording.project, []).append(str(recording.code))
    for project, codes in held.items():
        PrivacyAuditEntry.objects.create(
            project=project,
            actor=actor,
            actor_name=actor.get_username() if actor else via,
            changes={
                "legal_hold_export": [None, {"format": file_format, "via": via}],
                "recordings": [None, codes],
            },
        )
    return sum(map(len, held.values()))


def recording_import(
    *,
    project: Project,
    document: Any,
    windows: Iterable[tuple[str, Any]] | None = None,
) -> Recording | None:
    """Recreate an exported recording in `project`; None when it is here already.

    `windows` are the document's windows as (id, events), when they are read
    apart (recordings.playback.archives.document_read); by default its `windows` member.
    Raises ImportRefused for a document that is not a ReplayHub export or holds
    values that do not fit. The rows are committed first (a live recording, as
    capture leaves one), then each window is compacted into its blob; a storage
    failure then leaves it live, for the compaction sweeper, and is raised.
    """
    meta = _checked(document, has_windows=windows is not None)
    if windows is None:
        windows = document["windows"].items()
    code = _uuid(meta.get("code"))
    session_id = meta.get("session_id")
    if not isinstance(session_id, str) or not session_id:
        raise ImportRefused(f"recording {code}: session_id is not a text")
    if (
        Recording.objects.filter(code=code).exists()
        or Recording.objects.filter(project=project, session_id=session_id).exists()
    ):
        return None
    try:
        recording = _rows_create(project, code, meta, windows, document)
    except (
        ValidationError,
        IngestError,
        IntegrityError,
        KeyError,
        TypeError,
        ValueError,
    ) as exc:
        raise ImportRefused(f"recording {code}: {_message(exc)}") from exc
    recording_compact_windows(recording=recording)
    checks = {name: getattr(recording, name) for name in _WINDOW_CHECKS}
    Recording.objects.filter(pk=recording.pk).update(**checks)
    recording.refresh_from_db()
    return recording


def _checked(document: Any, *, has_windows: bool) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise ImportRefused("not an export document: a JSON object is expected")
    if document.get("format") != EXPORT_FORMAT:
        raise ImportRefused(
            f"not an export document: its format is {document.get('format')!r}, "
            f"not {EXPORT_FORMAT!r}"
        )
    version = document.get("version")
    if not isinstance(version, int) or not 1 <= version <= EXPORT_VERSION:
        raise ImportRefused(
            f"export version {version!r} is not one this ReplayHub reads "
            f"(1 to {EXPORT_VERSION})"
        )
    meta = document.get("recording")
    if not isinstance(meta, dict):
        raise ImportRefused("the document has no `recording` object")
    if not has_windows and not isinstance(document.get("windows"), dict):
        raise ImportRefused("the document has no `windows` object")
    for name in ("markers", "comments", "tags", "events"):
        if not isinstance(document.get(name, []), list):
            raise ImportRefused(f"`{name}` is not a list")
    return meta


def _uuid(value: Any) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ImportRefused(f"recording code {value!r} is not a UUID") from None


def _message(exc: Exception) -> str:
    if isinstance(exc, ValidationError) and hasattr(exc, "message_dict"):
        return "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
    if isinstance(exc, KeyError):
        return f"missing {exc}"
    return str(exc)


@transaction.atomic
def _rows_create(
    project: Project,
    code: uuid.UUID,
    meta: dict[str, Any],
    windows: Iterable[tuple[str, Any]],
    document: dict[str, Any],
) -> Recording:
    recording = Recording(project=project, code=code, **_values(Recording, meta))
    recording.full_clean()
    recording.save()
    recording.size_bytes = 0
    for index, (window_id, events) in enumerate(windows):  # one in memory at a time
        if events:
            chunk = _chunk(recording, index, window_id, events)
            chunk.save()
            recording.size_bytes += chunk.size_bytes
    recording.save(update_fields=["size_bytes"])
    _related_create(recording, document)
    return recording


def _values(
    model: type[models.Model], data: dict[str, Any], names: Iterable[str] = ()
) -> dict[str, Any]:
    """Column values from JSON (ISO times parsed), for the named fields or all."""
    wanted = set(names)
    values = {}
    for field in model._meta.concrete_fields:
        name = field.name
        if (wanted and name not in wanted) or (not wanted and name in _NOT_RESTORED):
            continue
        if name in data:
            try:
                values[name] = field.to_python(data[name])
            except ValidationError as exc:
                raise ValidationError({name: exc.messages}) from exc
        elif wanted:
            raise KeyError(name)
    return values


def _chunk(
    recording: Recording, index: int, window_id: str, events: Any
) -> SnapshotChunk:
    """One window's events as a live chunk, as capture stores a batch."""
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise ValueError(f"window {window_id!r} is not a list of rrweb events")
    stamps = [event.get("timestamp") for event in events]
    if not all(isinstance(s, int | float) and not isinstance(s, bool) for s in stamps):
        raise ValueError(f"window {window_id!r} has an event without a timestamp")
    data = blobs.compress(blobs.dumps(events))
    return SnapshotChunk(
        recording=recording,
        batch_id=f"import-{index}",
        window_id=window_id,
        data=data,
        size_bytes=len(data),
        event_count=len(events),
        first_timestamp=ms_to_datetime(min(stamps)),
        last_timestamp=ms_to_datetime(max(stamps)),
    )


def _related_create(recording: Recording, document: dict[str, Any]) -> None:
    project = recording.project
    Marker.objects.bulk_create(
        Marker(recording=recording, **_values(Marker, row, MARKER_FIELDS))
        for row in document.get("markers", [])
    )
    comments = document.get("comments", [])
    # An author is kept when a user of that name is here; else the comment has none.
    names = [row.get("author") for row in comments if isinstance(row, dict)]
    authors = {u.username: u for u in User.objects.filter(username__in=names)}
    Comment.objects.bulk_create(
        Comment(
            recording=recording,
            author=authors.get(row.get("author")),
            **_values(Comment, row, COMMENT_FIELDS),
        )
        for row in comments
    )
    for row in document.get("tags", []):
        tag = tag_get_or_create(project=project, name=row["name"], colour=row["colour"])
        RecordingTag.objects.create(
            recording=recording, tag=tag, **_values(RecordingTag, row, ["created"])
        )
    Event.objects.bulk_create(
        (
            Event(project=project, **_values(Event, row, EVENT_FIELDS))
            for row in document.get("events", [])
        ),
        ignore_conflicts=True,  # events of the session this installation has
    )
    _person_create(project, document.get("person"))


def _person_create(project: Project, row: Any) -> None:
    if not isinstance(row, dict):
        return
    values = _values(Person, row, PERSON_FIELDS)
    distinct_id = values.pop("distinct_id")
    # A person already known here keeps what this installation knows of them.
    Person.objects.get_or_create(
        project=project, distinct_id=distinct_id, defaults=values
    )
