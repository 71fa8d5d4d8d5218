"""Privacy settings: reading them for a project, changing them with an audit trail."""

from __future__ import annotations

import logging
import re
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction
from django.utils.timezone import now

from privacy.models import (
    PrivacyAuditEntry,
    PrivacySettings,
    split_lines,
    split_selectors,
)
from privacy.scrub import CompiledRules, MaskRules, compile_rules, scrub_text
from recordings.models import Project

logger = logging.getLogger(__name__)


def privacy_for(project: Project) -> PrivacySettings:
    """The project's settings; defaults (saved) for a project that has none yet."""
    try:
        # Loaded with select_related("privacy") on hot paths. django-stubs does not
        # always see this reverse one-to-one across apps (it does with every app
        # loaded, as in `mypy .`), hence the ignore.
        cached: PrivacySettings = project.privacy  # type: ignore[attr-defined,unused-ignore]
        return cached
    except PrivacySettings.DoesNotExist:
        settings, _ = PrivacySettings.objects.get_or_create(project=project)
        return settings


def _plain(value: Any) -> Any:
    """A JSON-friendly copy of a field value for the audit log."""
    if value is None or isinstance(value, bool | int | float | str | list | dict):
        return value
    return str(value)


@transaction.atomic
def privacy_settings_update(
    *,
    settings: PrivacySettings,
    actor: User | AnonymousUser | None,
    before: dict[str, Any],
) -> PrivacyAuditEntry | None:
    """Save settings already changed in memory, and record what changed and who.

    `before` holds the field values as they were; unchanged fields leave no trace,
    and a save that changes nothing writes no audit entry.
    """
    changes = {
        name: [_plain(old), _plain(getattr(settings, name))]
        for name, old in before.items()
        if old != getattr(settings, name)  # Decimal("1.000") == Decimal("1")
    }
    settings.updated = now()
    settings.save()
    if not changes:
        return None
    user = actor if isinstance(actor, User) else None
    return PrivacyAuditEntry.objects.create(
        project=settings.project,
        actor=user,
        actor_name=user.get_username() if user else "",
        changes=changes,
    )


def audited_fields() -> list[str]:
    return [
        f.name
        for f in PrivacySettings._meta.concrete_fields
        if f.name not in {"id", "project", "updated"}
    ]


# When a project's saved selectors or patterns no longer compile (a newer parser, a
# hand-edited row), capture must neither crash nor store more than asked: fall back
# to masking everything, and say so in the log.
_STRICTEST = MaskRules(mask_all_inputs=True, mask_all_text=True)


def mask_rules_for(privacy: PrivacySettings) -> CompiledRules:
    """The project's masking rules, compiled (and cached by their values)."""
    rules = MaskRules(
        mask_all_inputs=privacy.mask_all_inputs,
        mask_all_text=privacy.mask_all_text,
        mask_selectors=tuple(split_selectors(privacy.mask_selectors)),
        block_selectors=tuple(split_selectors(privacy.block_selectors)),
        unmask_selectors=tuple(split_selectors(privacy.unmask_selectors)),
        scrub_card_numbers=privacy.scrub_card_numbers,
        extra_patterns=tuple(split_lines(privacy.scrub_patterns)),
    )
    try:
        return compile_rules(rules)
    except ValueError:
        logger.exception("privacy rules of %s do not compile; masking all", privacy)
        return compile_rules(_STRICTEST)


def scrub_json(value: Any, rules: CompiledRules) -> int:
    """Scrub card numbers and patterns from every string inside a JSON value, in
    place (an analytics event's properties); return how many were found."""
    found = 0
    stack = [value]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in list(items):
            if isinstance(child, str):
                cleaned, hits = scrub_text(child, rules)
                if hits:
                    node[key] = cleaned
                    found += hits
            elif isinstance(child, dict | list):
                stack.append(child)
    return found


def url_blocklist_for(privacy: PrivacySettings) -> list[re.Pattern[str]]:
    """The blocklist's regexes; a line that no longer compiles is skipped, loudly."""
    patterns = []
    for line in split_lines(privacy.url_blocklist):
        try:
            patterns.append(re.compile(line))
        except re.error:
            logger.error("URL blocklist entry %r of %s does not compile", line, privacy)
    return patterns
