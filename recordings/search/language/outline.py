"""What an audit entry keeps of a filter: its shape, never its values.

A filter may name a person (`distinct_id`, an email in a person property), and the
privacy audit log outlives an erasure; so a deletion's entry keeps the terms the
filter used and a hash that tells whether two deletions used the same document.

>>> outline({"version": 1, "where": {"term": "distinct_id", "in": ["ann@example.com"]}})
{'terms': ['distinct_id'], 'sha256': 'bc6f012caa704602'}
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any


def outline(document: Any) -> dict[str, Any]:
    """The terms a filter document uses (sorted, once each) and its hash."""
    canonical = json.dumps(document, sort_keys=True, ensure_ascii=True)
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    return {"terms": sorted(set(_terms(document))), "sha256": digest}


def _terms(node: Any) -> Iterator[str]:
    pending = [node]
    while pending:  # no recursion: documents are validated, but not always yet
        value = pending.pop()
        if isinstance(value, dict):
            term = value.get("term")
            if isinstance(term, str):
                yield term
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
