"""Recording rules that need no database: pure functions over plain values."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_META = 4  # rrweb EventType.Meta: starts a page, carries its URL


def person_excluded(properties: Mapping[str, Any], rules: list[Any]) -> bool:
    """Whether a person's properties match a "do not record" rule.

    A rule is {"property": name, "value": v}; values compare as strings, so the
    rule "42" matches the property 42, and a missing property never matches.

    >>> person_excluded({"email_domain": "example.com"}, [{"property": "email_domain", "value": "example.com"}])
    True
    >>> person_excluded({"plan": "pro"}, [{"property": "plan", "value": "free"}])
    False
    """  # noqa: E501
    for rule in rules:
        if not isinstance(rule, Mapping) or "property" not in rule:
            continue
        name = rule["property"]
        if name in properties and str(properties[name]) == str(rule.get("value")):
            return True
    return False


def url_blocked(url: str, patterns: list[re.Pattern[str]]) -> bool:
    return any(pattern.search(url) for pattern in patterns)


def drop_blocked_pages(
    events: list[dict[str, Any]], patterns: list[re.Pattern[str]], current_url: str
) -> tuple[list[dict[str, Any]], str]:
    """Drop the events recorded while the page's URL matched the blocklist.

    A page starts with its Meta event (type 4, data.href) and lasts until the next
    one, across batches: `current_url` is the page the window was on before this
    batch, and the page it is on after it is returned with the kept events.
    """
    if not patterns:
        return events, current_url
    kept = []
    for event in events:
        if event.get("type") == _META and isinstance(event.get("data"), dict):
            href = event["data"].get("href")
            current_url = href if isinstance(href, str) else current_url
        if not url_blocked(current_url, patterns):
            kept.append(event)
    return kept, current_url
