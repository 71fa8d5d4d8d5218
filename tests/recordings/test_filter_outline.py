"""A deletion's audit entry keeps a filter's shape, never the values that may name
a person (the privacy audit log outlives an erasure)."""

from __future__ import annotations

import doctest
import json

from recordings.search.language import outline as outline_module
from recordings.search.language.outline import outline

PERSONAL = {
    "version": 1,
    "where": {
        "all": [
            {"term": "distinct_id", "in": ["ann@example.com"]},
            {"not": {"term": "person", "property": "email", "eq": "bo@example.com"}},
        ]
    },
}


def test_it_keeps_the_terms_and_no_value() -> None:
    kept = outline(PERSONAL)
    assert kept["terms"] == ["distinct_id", "person"]
    assert "example.com" not in json.dumps(kept)


def test_the_same_document_has_the_same_hash_and_another_one_another() -> None:
    reordered = json.loads(json.dumps(PERSONAL, sort_keys=True))
    assert outline(reordered)["sha256"] == outline(PERSONAL)["sha256"]
    other = {**PERSONAL, "order": "oldest"}
    assert outline(other)["sha256"] != outline(PERSONAL)["sha256"]


def test_the_doctests_hold() -> None:
    assert doctest.testmod(outline_module).failed == 0
