"""Recording rules that need no database: pure functions over plain values."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from privacy.scrub.regex import Regex
from recordings.ingest.rrweb import CUSTOM, META


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


def url_blocked(url: str, patterns: list[Regex]) -> bool:
    return any(pattern.search(url) for pattern in patterns)


def drop_blocked_pages(
    events: list[dict[str, Any]], patterns: list[Regex], current_url: str
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
        if event.get("type") == META and isinstance(event.get("data"), dict):
            href = event["data"].get("href")
            current_url = href if isinstance(href, str) else current_url
        if not url_blocked(current_url, patterns):
            kept.append(event)
    return kept, current_url


# --- URL triggers and the linked flag (checked when a recording is finished) -------

# posthog-js custom events naming the page after an SPA navigation (no new Meta).
_PAGE_TAGS = frozenset({"$pageview", "$url_changed"})


def page_urls(events: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """The URLs a window showed: Meta hrefs, and the `href` of posthog-js's
    `$pageview` / `$url_changed` custom events."""
    for event in events:
        data = event.get("data")
        if not isinstance(data, Mapping):
            continue
        kind = event.get("type")
        if kind == CUSTOM and data.get("tag") in _PAGE_TAGS:
            data = data.get("payload")
            if not isinstance(data, Mapping):
                continue
        elif kind != META:
            continue
        href = data.get("href")
        if isinstance(href, str) and href:
            yield href


def url_triggered(urls: Iterable[str], triggers: list[Regex]) -> bool:
    """Whether one of a recording's URLs matches a URL trigger (True without any).

    >>> from privacy.scrub.regex import compile_regex
    >>> url_triggered(["https://shop.test/", "https://shop.test/checkout"], [compile_regex("/checkout")])
    True
    >>> url_triggered(["https://shop.test/"], [compile_regex("/checkout")])
    False
    """  # noqa: E501
    if not triggers:
        return True
    return any(url_blocked(url, triggers) for url in urls)


def flag_active(properties: Mapping[str, Any], flag: str) -> bool:
    """Whether an analytics event says `flag` was on for the person who sent it.

    posthog-js puts `$feature/<flag>` (true, false or a variant name) and the list
    `$active_feature_flags` on every event once flags are loaded; a variant counts
    as on, as posthog-js's linked-flag check has it. The explicit value wins.

    >>> flag_active({"$feature/beta": "test-group"}, "beta")
    True
    >>> flag_active({"$feature/beta": False, "$active_feature_flags": ["beta"]}, "beta")
    False
    >>> flag_active({"$active_feature_flags": ["beta"]}, "beta")
    True
    """
    value = properties.get(f"$feature/{flag}")
    if value is not None:
        return value is True or (isinstance(value, str) and value != "")
    active = properties.get("$active_feature_flags")
    return isinstance(active, list) and flag in active


# --- IP addresses ------------------------------------------------------------------

_IP_PROPERTY = "$ip"


def drop_ip(properties: dict[str, Any]) -> int:
    """Remove `$ip` from event properties, and from `$set` / `$set_once` in them;
    return how many were removed."""
    removed = 0
    for holder in (properties, properties.get("$set"), properties.get("$set_once")):
        if isinstance(holder, dict) and holder.pop(_IP_PROPERTY, None) is not None:
            removed += 1
    return removed
