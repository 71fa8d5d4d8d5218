"""Readers of rrweb's nodes and events for the firewall.

The vocabulary itself (event types, sources, node types) is
`recordings.ingest.rrweb`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

INPUT_TAGS = frozenset({"input", "textarea", "select"})
RAW_TEXT_TAGS = frozenset({"style", "script"})
_LABEL_INPUT_TYPES = frozenset({"button", "submit", "reset", "image"})
# Inputs whose `value` is fixed by the page and never shown: what replays is their
# checked state (rrweb leaves both alone too).
_CHOICE_INPUT_TYPES = frozenset({"checkbox", "radio"})
# What rrweb itself keeps on a blocked element.
PLACEHOLDER_ATTRIBUTES = (
    "class",
    "rr_width",
    "rr_height",
    "rr_left",
    "rr_top",
    "rr_position",
)


def parents_first(items: list[dict[str, Any]]) -> Iterator[int]:
    """Indexes of mutation adds, each after the add of its parent if in the list.

    rrweb does not promise that order, and whether a node is blocked or masked
    depends on its parent's fate.
    """
    index_of: dict[int, int] = {}
    for index, item in enumerate(items):
        node = item.get("node")
        node_id = as_node_id(node.get("id")) if isinstance(node, dict) else None
        if node_id is not None:
            index_of.setdefault(node_id, index)
    waiting: dict[int, list[int]] = {}
    ready: list[int] = []
    for index, item in enumerate(items):
        parent = as_node_id(item.get("parentId"))
        if parent is not None and index_of.get(parent, index) != index:
            waiting.setdefault(parent, []).append(index)
        else:
            ready.append(index)
    stack = ready[::-1]
    while stack:
        index = stack.pop()
        yield index
        node = items[index].get("node")
        node_id = as_node_id(node.get("id")) if isinstance(node, dict) else None
        if node_id is not None:
            stack.extend(waiting.pop(node_id, [])[::-1])
    # A parent cycle (malformed input): what is left goes in list order.
    yield from sorted(index for indexes in waiting.values() for index in indexes)


def as_node_id(value: Any) -> int | None:
    # bool is an int subclass; True is no node id.
    return value if type(value) is int else None


def is_password(tag: str, attributes: dict[str, Any]) -> bool:
    kind = attributes.get("type")
    return tag == "input" and isinstance(kind, str) and kind.lower() == "password"


def shows_label(tag: str, attributes: dict[str, Any]) -> bool:
    """Whether an element's value is its visible label, not something typed."""
    kind = attributes.get("type")
    return (
        tag == "input" and isinstance(kind, str) and kind.lower() in _LABEL_INPUT_TYPES
    )


def is_choice(tag: str, attributes: dict[str, Any]) -> bool:
    """Whether an element is a checkbox or radio button."""
    kind = attributes.get("type")
    return (
        tag == "input" and isinstance(kind, str) and kind.lower() in _CHOICE_INPUT_TYPES
    )


def dicts(value: Any) -> Iterator[dict[str, Any]]:
    """The objects in a JSON list; anything malformed is skipped."""
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                yield item
