"""Privacy policy: what capture reads of a project's privacy rules.

The settings of a project, its mask rules and URL rules compiled, and its
tombstones (the people erased from it). Capture (recordings) reads these; the
workflows that act on stored recordings (privacy.services' redaction,
privacy.retention, privacy.erasure) sit above recordings and call its services.
This module imports only privacy's models and pure code, and recordings' models.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import logging
from collections.abc import Iterable
from typing import Any

from privacy.models import (
    PrivacyAuditEntry,
    PrivacySettings,
    Tombstone,
    split_lines,
    split_selectors,
)
from privacy.scrub import CompiledRules, MaskRules, compile_rules, scrub_text
from privacy.scrub.regex import Regex, compile_regex
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


# When a project's saved selectors or patterns no longer compile (a newer parser, a
# row saved before patterns ran on RE2, a hand-edited row), capture must neither
# crash nor store more than asked: fall back to masking every text and input,
# keeping the card scrubbing and the patterns that do compile, and say so in the log.
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
        record_cross_origin_iframes=privacy.record_cross_origin_iframes,
    )
    try:
        return compile_rules(rules)
    except ValueError as exc:
        return _strictest_rules(rules, str(exc))


@functools.lru_cache(maxsize=64)
def _strictest_rules(rules: MaskRules, error: str) -> CompiledRules:
    # Cached like compile_rules, so the log says it once per process, not per batch.
    logger.error(
        "privacy rules do not compile (%s); masking all text and inputs", error
    )
    return compile_rules(
        dataclasses.replace(_STRICTEST, extra_patterns=_runnable(rules.extra_patterns))
    )


def _runnable(patterns: tuple[str, ...]) -> tuple[str, ...]:
    def runs(pattern: str) -> bool:
        try:
            compile_rules(MaskRules(extra_patterns=(pattern,)))
        except ValueError:
            return False
        return True

    return tuple(filter(runs, patterns))


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


def url_blocklist_for(privacy: PrivacySettings) -> list[Regex]:
    """The blocklist's regexes. A line RE2 cannot run blocks every page (logged):
    what it was meant to keep out cannot be told apart from the rest."""
    return [
        _regex(line, "URL blocklist") or _EVERY_URL
        for line in split_lines(privacy.url_blocklist)
    ]


def url_triggers_for(privacy: PrivacySettings) -> list[Regex]:
    """The URL triggers' regexes; a line RE2 cannot run is skipped (logged)."""
    compiled = (
        _regex(line, "URL trigger") for line in split_lines(privacy.url_triggers)
    )
    return [regex for regex in compiled if regex is not None]


_EVERY_URL = compile_regex("")  # the empty pattern matches every URL


@functools.lru_cache(maxsize=256)
def _regex(line: str, what: str) -> Regex | None:
    # Cached: every batch asks, and a line that cannot run is logged once per process.
    try:
        return compile_regex(line)
    except ValueError as exc:
        logger.error("%s entry cannot be used: %s", what, exc)
        return None


def rules_changed_since(
    project_id: int, since: dt.datetime, fields: tuple[str, ...]
) -> frozenset[str]:
    """Which of these settings were saved with another value after `since`.

    The privacy audit log has an entry for every change made through the admin
    (privacy.services.privacy_settings_update), so it says when each rule came
    into force; a rule newer than a recording does not apply to it.
    """
    entries = PrivacyAuditEntry.objects.filter(
        project_id=project_id, created__gt=since, changes__has_any_keys=list(fields)
    )
    changed: set[str] = set()
    for changes in entries.values_list("changes", flat=True):
        changed.update(name for name in fields if name in changes)
    return frozenset(changed)


def subject_hash(project: Project, distinct_id: str) -> str:
    """The tombstone of a distinct id: a hash salted with the project's code."""
    return hashlib.sha256(f"{project.code}:{distinct_id}".encode()).hexdigest()


def tombstones(project: Project) -> frozenset[str]:
    """The hashes of every distinct id erased from the project (capture caches it)."""
    rows = Tombstone.objects.filter(project=project)
    return frozenset(rows.values_list("subject_hash", flat=True))


def erased_among(
    project: Project, distinct_ids: Iterable[str], hashes: frozenset[str]
) -> set[str]:
    """Which of these distinct ids are in `hashes` (see tombstones())."""
    if not hashes:
        return set()
    return {d for d in distinct_ids if d and subject_hash(project, d) in hashes}
