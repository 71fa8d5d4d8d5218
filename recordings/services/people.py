"""Analytics events and the people they identify."""

from __future__ import annotations

from django.db import transaction
from django.utils.timezone import now

from privacy.rules import (
    drop_ip,
    person_excluded,
)
from privacy.services import (
    mask_rules_for,
    privacy_for,
    scrub_json,
)
from recordings.ingest.events import AnalyticsEvent
from recordings.models import (
    Event,
    Person,
    Project,
    Recording,
)
from recordings.services.compaction import recording_discard
from recordings.services.ledger import _lock_or_create


def events_ingest(
    *, project: Project, events: list[AnalyticsEvent], ip: str = ""
) -> int:
    """Store analytics events once each (a retried request repeats uuids).

    `ip` is the sender's address: stored as `$ip` only if the project stores IP
    addresses; otherwise no `$ip` is kept, whatever the client sent.
    """
    privacy = privacy_for(project)
    rules = mask_rules_for(privacy)
    stored_ip = ip if privacy.store_ip_addresses else None
    for event in events:
        _set_ip(event, stored_ip)
        # Card numbers and patterns in URLs, element texts and custom properties.
        scrub_json(event.properties, rules)
        scrub_json(event.person_set, rules)
        scrub_json(event.person_set_once, rules)
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
    with transaction.atomic():
        created = Event.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
        for event in events:
            if event.person_set or event.person_set_once or event.anon_distinct_id:
                _person_update(project, event, stored_ip)
    return len(created)


def _set_ip(event: AnalyticsEvent, ip: str | None) -> None:
    """`$ip` is the server's to set: `ip`, or none at all when None (not stored)."""
    drop_ip(event.properties)
    event.person_set.pop("$ip", None)
    event.person_set_once.pop("$ip", None)
    if ip:
        event.properties["$ip"] = ip


def _person_update(project: Project, event: AnalyticsEvent, ip: str | None) -> None:
    """Fold `$set` / `$set_once` / `$identify` into the person (idempotent on retry).

    `ip` becomes the person's `$ip`; None (the project stores no IP addresses)
    removes one stored earlier.
    """
    if not event.distinct_id:
        return
    person = _lock_or_create(
        Person, {"project": project, "distinct_id": event.distinct_id}, {}
    )
    person.properties = {
        **event.person_set_once,
        **person.properties,
        **event.person_set,
    }
    if ip is None:
        person.properties.pop("$ip", None)
    elif ip:
        person.properties["$ip"] = ip
    anon = event.anon_distinct_id
    if anon and anon != event.distinct_id and anon not in person.anon_distinct_ids:
        person.anon_distinct_ids = [*person.anon_distinct_ids, anon][-20:]
    person.updated = now()
    person.save()
    if person_excluded(person.properties, privacy_for(project).excluded_people):
        _discard_person_recordings(project, person)


def _discard_person_recordings(project: Project, person: Person) -> None:
    """A person the rules exclude (e.g. internal users): drop what was recorded."""
    ids = [person.distinct_id, *person.anon_distinct_ids]
    for recording in Recording.objects.filter(project=project, distinct_id__in=ids):
        recording_discard(recording=recording, reason="excluded_person")


def person_is_excluded(*, project: Project, distinct_ids: set[str]) -> bool:
    """Whether batches from these distinct ids belong to an excluded person."""
    rules = privacy_for(project).excluded_people
    if not rules or not distinct_ids:
        return False
    people = Person.objects.filter(project=project, distinct_id__in=distinct_ids)
    return any(person_excluded(p.properties, rules) for p in people)
