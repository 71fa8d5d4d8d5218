"""Recording rules that need no database: pure functions over plain values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


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
