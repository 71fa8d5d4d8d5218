"""Deleting what was recorded of the people a project's rules exclude.

Saving a rule such as "do not record people whose is_internal = true" only
refuses what those people send next (and a session that started under the rule
is not kept when it ends). What was recorded before stays until someone asks
for it to go: this finds it, for a page that counts it (legal holds kept and
counted) and asks for a confirmation; recordings.services.recordings_purge
then deletes exactly the set that was counted, audited as `ACTION`.
"""

from __future__ import annotations

from django.db.models import QuerySet

from privacy.policy import privacy_for
from privacy.rules import person_excluded
from recordings.models import Person, Project, Recording

# The privacy audit log's name for this deletion.
ACTION = "delete_excluded_people"
_PEOPLE_PER_READ = 500


def excluded_distinct_ids(project: Project) -> list[str]:
    """The ids (and earlier anonymous ids) of the people the rules exclude."""
    rules = privacy_for(project).excluded_people
    if not rules:
        return []
    people = Person.objects.filter(project=project).only(
        "distinct_id", "properties", "anon_distinct_ids"
    )
    found: list[str] = []
    for person in people.iterator(chunk_size=_PEOPLE_PER_READ):
        if person_excluded(person.properties, rules):
            anon = [a for a in person.anon_distinct_ids or [] if isinstance(a, str)]
            found += [person.distinct_id, *anon]
    return list(dict.fromkeys(found))


def excluded_recordings(project: Project) -> QuerySet[Recording]:
    """The project's recordings of people its rules exclude, held ones included."""
    ids = excluded_distinct_ids(project)
    return Recording.objects.filter(project=project, distinct_id__in=ids)
