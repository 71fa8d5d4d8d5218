"""What capture may hand the database: column limits, NUL-free text, bounded nesting.

No Django here (house style 2). The limits repeat the max_length of the model fields
capture fills from client data; tests/recordings/test_capture_edges.py checks them
against the models, column by column, so they cannot drift apart.

PostgreSQL refuses a NUL character (U+0000) in text and in jsonb, keys included,
while browsers do send them (console output, exception messages, scraped page
text). Text that is stored for reading has each NUL replaced by U+FFFD, the
replacement character, as PostHog's ingestion does: unlike removing it, this keeps
the length and shows that something was there, and two keys that differ only by a
NUL do not collapse into one. Blobs keep the events as sent (JSON escapes NUL).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

__all__ = [
    "BATCH_ID_MAX",
    "DISTINCT_ID_MAX",
    "EARLIEST",
    "EVENT_NAME_MAX",
    "EVENT_UUID_MAX",
    "LIB_MAX",
    "LATEST",
    "LIB_VERSION_MAX",
    "MAX_DEPTH",
    "PLAUSIBLE_YEARS",
    "SESSION_ID_MAX",
    "URL_MAX",
    "WINDOW_ID_MAX",
    "clean_json",
    "clean_text",
    "nesting_depth",
]

# Ids are refused when longer: a cut id is another id, which could merge two
# sessions, people or events (ids with control characters are refused too).
SESSION_ID_MAX = 200  # Recording, SessionLedger, Event .session_id
WINDOW_ID_MAX = 200  # SnapshotChunk.window_id
DISTINCT_ID_MAX = 200  # Recording, SessionLedger, Event, Person .distinct_id
BATCH_ID_MAX = 100  # SnapshotChunk.batch_id: the $snapshot uuid or rrweb batch_id
EVENT_UUID_MAX = 100  # Event.uuid
EVENT_NAME_MAX = 400  # Event.name: refused when longer, as before
# Labels are cut to fit: the batch is worth more than the end of a label.
LIB_MAX = 50  # Recording.lib
LIB_VERSION_MAX = 50  # Recording, SessionLedger .lib_version
URL_MAX = 2048  # Recording.first_url (a Meta event's href)

# Event times capture takes: anything outside is a broken client clock or garbage,
# and near Python's year 1 or 9999 no longer fits a datetime once moved to UTC.
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
PLAUSIBLE_YEARS = "2000-2099 (UTC)"

# How deep one rrweb or analytics event may nest. The standard library's JSON
# encoder and decoder (Django's JSONField, blobs.dumps past orjson's 254 levels)
# recurse, and with Python's default limit of 1000 frames they fail somewhere past
# 900 levels, depending on how deep the caller already is (a request, an admin
# page, a Celery task); 512 leaves that margin. It still takes a page whose DOM is
# about 250 elements deep (two JSON levels each); browsers' HTML parsers stop
# nesting at 512 elements, and a DOM past a few dozen levels is rare.
MAX_DEPTH = 512

_NUL = "\x00"
_REPLACEMENT = "\ufffd"


def clean_text(value: str) -> str:
    """`value` with each NUL replaced, ready for a text column.

    >>> clean_text("a\\x00b") == "a\\ufffdb"
    True
    """
    return value.replace(_NUL, _REPLACEMENT) if _NUL in value else value


def clean_json(value: Any) -> int:
    """Replace each NUL in the keys and strings inside `value`, in place; return how
    deep it nests (a scalar is 0, `{}` is 1).

    Top-level strings cannot be changed in place: pass containers. Walks level by
    level with a list, not recursion, so any depth orjson decodes is safe here.
    """
    depth = 0
    level = [value] if isinstance(value, dict | list) else []
    while level:
        depth += 1
        below: list[Any] = []
        for node in level:
            if isinstance(node, dict):
                _clean_dict(node)
                children: Any = node.values()
            else:
                _clean_list(node)
                children = node
            below.extend(c for c in children if isinstance(c, dict | list))
        level = below
    return depth


def _clean_dict(node: dict[Any, Any]) -> None:
    dirty = any(
        (isinstance(k, str) and _NUL in k) or (isinstance(v, str) and _NUL in v)
        for k, v in node.items()
    )
    if dirty:
        # Rebuilt whole, so that a cleaned key keeps its place in the order.
        items = [(_cleaned(k), _cleaned(v)) for k, v in node.items()]
        node.clear()
        node.update(items)


def _clean_list(node: list[Any]) -> None:
    for index, item in enumerate(node):
        if isinstance(item, str) and _NUL in item:
            node[index] = clean_text(item)


def _cleaned(value: Any) -> Any:
    return clean_text(value) if isinstance(value, str) else value


def nesting_depth(value: Any, stop_past: int | None = None) -> int:
    """How deep `value` nests (a scalar is 0, `[]` is 1), without recursion.

    With `stop_past`, stops counting once the depth exceeds it.

    >>> nesting_depth({"a": [1, {"b": []}]})
    4
    """
    depth = 0
    level = [value] if isinstance(value, dict | list) else []
    while level and (stop_past is None or depth <= stop_past):
        depth += 1
        below: list[Any] = []
        for node in level:
            children = node.values() if isinstance(node, dict) else node
            below.extend(c for c in children if isinstance(c, dict | list))
        level = below
    return depth
