"""Whether a person is excluded from recording by the project's privacy rules."""

from __future__ import annotations

from privacy.models import PrivacySettings
from privacy.policy import privacy_for
from privacy.rules import person_excluded
from recordings.models import Person, Project


def person_is_excluded(
    *,
    project: Project,
    distinct_ids: set[str],
    privacy: PrivacySettings | None = None,
) -> bool:
    """Whether batches from these distinct ids belong to an excluded person."""
    if privacy is None:
        privacy = privacy_for(project)
    rules = privacy.excluded_people
    if not rules or not distinct_ids:
        return False
    people = Person.objects.filter(project=project, distinct_id__in=distinct_ids)
    return any(person_excluded(p.properties, rules) for p in people)
