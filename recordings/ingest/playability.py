"""Will a window's events replay whole? Checks over its events in play order.

Two signs of lost data, both found the way the player would meet them:

- **Lost changes**: a DOM mutation that refers to an element the window never
  recorded since its last full snapshot (a removal or a text or attribute change
  of an unknown node, or an addition under an unknown parent). rrweb's mutations
  only ever refer to nodes the page was shown to have, so each one means a batch
  in between never arrived; the player skips it and shows a page that is wrong
  from there on (until the next full snapshot). posthog-js takes a new full
  snapshot when it wakes from idle after dropping events, so idle alone does not
  cause them.
- **Unexplained gaps**: the longest stretch with no events that the client did
  not declare idle. posthog-js marks idle with a `sessionIdle` custom event,
  stamped at the start of the idle time plus its threshold, and marks the return
  with `sessionNoLongerIdle`; the stretch before and after `sessionIdle`, up to
  the return, is accounted for. Plain rrweb declares nothing, so its quiet pages
  count as gaps.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from recordings.ingest.rrweb import (
    CUSTOM,
    FULL_SNAPSHOT,
    INCREMENTAL,
    SOURCE_MUTATION,
)

# posthog-js recorder's idle markers (wire-protocol §7).
IDLE_TAG = "sessionIdle"
AWAKE_TAG = "sessionNoLongerIdle"


@dataclass(frozen=True, slots=True)
class WindowCheck:
    lost_changes: int
    longest_gap_ms: int

    def as_dict(self) -> dict[str, int]:
        return {
            "lost_changes": self.lost_changes,
            "longest_gap_ms": self.longest_gap_ms,
        }


def check_window(events: Iterable[Mapping[str, Any]]) -> WindowCheck:
    """Check one window's events, given sorted by timestamp (as the player plays)."""
    seen: set[int] | None = None  # node ids since the last full snapshot
    lost = 0
    gaps = _Gaps()
    for event in events:
        if not isinstance(event, Mapping):
            continue
        kind, data = event.get("type"), event.get("data")
        gaps.add(event.get("timestamp"), _custom_tag(kind, data))
        if kind == FULL_SNAPSHOT and isinstance(data, Mapping):
            seen = set(_tree_ids(data.get("node")))
        elif seen is not None and kind == INCREMENTAL and _is_mutation(data):
            lost += _unknown_references(data, seen)
    return WindowCheck(lost_changes=lost, longest_gap_ms=gaps.longest)


class _Gaps:
    """The longest stretch between events that no idle marker accounts for."""

    def __init__(self) -> None:
        self.longest = 0
        self.last: int | None = None
        self.idle = False

    def add(self, timestamp: Any, tag: str) -> None:
        if not isinstance(timestamp, int | float) or isinstance(timestamp, bool):
            return
        stamp = int(timestamp)
        # Idle time ends at the marker's stamp: the gap up to it is idle too.
        explained = self.idle or tag == IDLE_TAG
        if self.last is not None and not explained:
            self.longest = max(self.longest, stamp - self.last)
        if tag == IDLE_TAG:
            self.idle = True
        elif tag == AWAKE_TAG or (self.idle and tag == ""):
            # Any recorded event means the recorder is awake again; the marker may
            # come after the interaction that woke it (wire-protocol §0.10).
            self.idle = False
        self.last = stamp if self.last is None else max(self.last, stamp)


def _custom_tag(kind: Any, data: Any) -> str:
    if kind == CUSTOM and isinstance(data, Mapping):
        tag = data.get("tag")
        return tag if isinstance(tag, str) and tag else "custom"
    return ""


def _is_mutation(data: Any) -> TypeGuard[Mapping[str, Any]]:
    return isinstance(data, Mapping) and data.get("source") == SOURCE_MUTATION


def _tree_ids(node: Any) -> Iterable[int]:
    """Every node id in a serialized rrweb node tree (iteratively: DOMs are deep)."""
    stack = [node]
    while stack:
        current = stack.pop()
        if not isinstance(current, Mapping):
            continue
        node_id = current.get("id")
        if isinstance(node_id, int):
            yield node_id
        children = current.get("childNodes")
        if isinstance(children, list):
            stack.extend(children)


def _unknown_references(data: Mapping[str, Any], seen: set[int]) -> int:
    """References of one mutation to nodes never seen; adds its new nodes to `seen`.

    rrweb applies a mutation's adds in an order of its own choosing (a parent
    added in the same mutation may come later in the list), so the nodes it adds
    count as known for every reference in it.
    """
    added = [node_id for add in _items(data, "adds") for node_id in _add_ids(add)]
    seen.update(added)
    unknown = 0
    for add in _items(data, "adds"):
        unknown += _is_unknown(add.get("parentId"), seen)
    for key in ("removes", "texts", "attributes"):
        for change in _items(data, key):
            unknown += _is_unknown(change.get("id"), seen)
    return unknown


def _items(data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    items = data.get(key)
    if not isinstance(items, list):
        return []
    return [item for item in items if isinstance(item, Mapping)]


def _add_ids(add: Mapping[str, Any]) -> Iterable[int]:
    return _tree_ids(add.get("node"))


def _is_unknown(node_id: Any, seen: set[int]) -> bool:
    return isinstance(node_id, int) and node_id not in seen
