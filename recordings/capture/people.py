"""Analytics events and the people they identify."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from django.db import transaction
from django.utils.timezone import now

from privacy.models import PrivacySettings
from privacy.policy import (
    mask_rules_for,
    privacy_for,
    scrub_json,
)
from privacy.rules import (
    drop_ip,
)
from recordings import blobs
from recordings.ingest.events import AnalyticsEvent
from recordings.ingest.limits import EVENT_BYTES, TooManyItems
from recordings.ingest.parse import IngestError
from recordings.models import (
    Event,
    Person,
    Project,
)


def events_ingest(
    *,
    project: Project,
    events: list[AnalyticsEvent],
    ip: str = "",
    max_event_bytes: int = EVENT_BYTES,
    privacy: PrivacySettings | None = None,
) -> int:
    """Store analytics events once each (a retried request repeats uuids).

    `ip` is the sender's address: stored as `$ip` only if the project stores IP
    addresses; otherwise no `$ip` is kept, whatever the client sent. Raises
    IngestError, before anything is written, for an event whose JSON is over
    `max_event_bytes`. `privacy` is the project's settings when the caller has
    them already (capture admission read them).
    """
    privacy = privacy if privacy is not None else privacy_for(project)
    rules = mask_rules_for(privacy)
    stored_ip = ip if privacy.store_ip_addresses else None
    for event in events:
        _set_ip(event, stored_ip)
        # Card numbers and patterns in URLs, element texts and custom properties.
        scrub_json(event.properties, rules)
        scrub_json(event.person_set, rules)
        scrub_json(event.person_set_once, rules)
    sizes = [_event_size(event, max_event_bytes) for event in events]
    rows = [
        Event(
            project=project,
            uuid=event.uuid,
            name=event.name,
            distinct_id=event.distinct_id,
            session_id=event.session_id,
            timestamp=event.timestamp,
            properties=event.properties,
        )
        for event in events
    ]
    created = 0
    with transaction.atomic():
        for chunk in _by_json_size(rows, sizes):
            created += len(Event.objects.bulk_create(chunk, ignore_conflicts=True))
        _people_update(project, events, stored_ip)
    return created


def _event_size(event: AnalyticsEvent, limit: int) -> int:
    """The JSON size of what an event stores; refused over `limit`."""
    try:
        size = len(blobs.dumps(event.properties))
        if event.person_set or event.person_set_once:
            size += len(blobs.dumps([event.person_set, event.person_set_once]))
    except ValueError as exc:
        raise IngestError("invalid_event", str(exc)) from exc
    if size > limit:
        raise TooManyItems(
            "event_too_large",
            f"event {event.uuid!r} ({event.name[:40]!r}) is {size} bytes of JSON; "
            f"at most {limit} are taken",
        )
    return size


T = TypeVar("T")
# Rows a statement carries: at most this many, and this much JSON (or one row).
# The database driver copies a statement's parameters, so one statement must never
# carry a whole big request.
_ROWS_PER_QUERY = 500
_JSON_PER_QUERY = 2 * 1024 * 1024


def _by_json_size(items: Sequence[T], sizes: Sequence[int]) -> Iterator[list[T]]:
    chunk: list[T] = []
    held = 0
    for item, size in zip(items, sizes, strict=True):
        if chunk and (held + size > _JSON_PER_QUERY or len(chunk) == _ROWS_PER_QUERY):
            yield chunk
            chunk, held = [], 0
        chunk.append(item)
        held += size
    if chunk:
        yield chunk


def _set_ip(event: AnalyticsEvent, ip: str | None) -> None:
    """`$ip` is the server's to set: `ip`, or none at all when None (not stored)."""
    drop_ip(event.properties)
    event.person_set.pop("$ip", None)
    event.person_set_once.pop("$ip", None)
    if ip:
        event.properties["$ip"] = ip


_PEOPLE_PER_QUERY = 500


def _people_update(
    project: Project,
    events: list[AnalyticsEvent],
    ip: str | None,
) -> None:
    """Fold `$set` / `$set_once` / `$identify` into the people (idempotent on retry).

    A few queries for the whole request, however many events and people it names:
    the people are created where missing, locked, folded in Python and written
    back together. `ip` becomes each person's `$ip`; None (the project stores no IP
    addresses) removes one stored earlier.
    """
    by_person: dict[str, list[AnalyticsEvent]] = {}
    for event in events:
        if event.distinct_id and (
            event.person_set or event.person_set_once or event.anon_distinct_id
        ):
            by_person.setdefault(event.distinct_id, []).append(event)
    if not by_person:
        return
    people = _lock_or_create_people(project, sorted(by_person))
    for person in people:
        for event in by_person[person.distinct_id]:
            _fold_person(person, event)
        if ip is None:
            person.properties.pop("$ip", None)
        elif ip:
            person.properties["$ip"] = ip
        person.updated = now()
    sizes = [_json_size(person.properties) for person in people]
    for chunk in _by_json_size(people, sizes):
        _people_write(chunk)


def _people_write(people: list[Person]) -> None:
    """Write back people read (and locked) in this transaction: one statement.

    An upsert on (project, distinct_id) rather than bulk_update, whose CASE WHEN
    per row and field cost ~0.5 ms a person to build in the ORM. Every row
    exists, so each insert becomes the update of its row.
    """
    fields = ["properties", "anon_distinct_ids", "updated"]
    rows = [
        Person(project_id=p.project_id, distinct_id=p.distinct_id, created=p.created)
        for p in people
    ]
    for row, person in zip(rows, people, strict=True):
        for field in fields:
            setattr(row, field, getattr(person, field))
    Person.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["project", "distinct_id"],
        update_fields=fields,
    )


def _lock_or_create_people(project: Project, distinct_ids: list[str]) -> list[Person]:
    """The project's people with these ids, created where missing, locked until
    the transaction ends, in id order: two requests naming the same people queue
    on the first of them rather than deadlock."""
    Person.objects.bulk_create(
        [Person(project=project, distinct_id=d) for d in distinct_ids],
        ignore_conflicts=True,  # made by an earlier (or concurrent) request
        batch_size=_PEOPLE_PER_QUERY,
    )
    people: list[Person] = []
    for start in range(0, len(distinct_ids), _PEOPLE_PER_QUERY):
        chunk = distinct_ids[start : start + _PEOPLE_PER_QUERY]
        locked = Person.objects.select_for_update().filter(
            project=project, distinct_id__in=chunk
        )
        people += locked.order_by("distinct_id")
    return people


def _json_size(value: Any) -> int:
    try:
        return len(blobs.dumps(value))
    except ValueError:
        return _JSON_PER_QUERY  # too deep for orjson and json: a statement alone


def _fold_person(person: Person, event: AnalyticsEvent) -> None:
    person.properties = {
        **event.person_set_once,
        **person.properties,
        **event.person_set,
    }
    anon = event.anon_distinct_id
    if anon and anon != event.distinct_id and anon not in person.anon_distinct_ids:
        person.anon_distinct_ids = [*person.anon_distinct_ids, anon][-20:]
