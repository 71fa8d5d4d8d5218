"""What the page's elements were, by rrweb node id: to name the element a click hit.

A window's node map starts from each FullSnapshot (which replaces it) and follows
the Mutation events: adds (with their subtrees), removes (the whole subtree goes),
text changes and `id`/`class`/`type` attribute changes. Only what a marker shows
is kept per element: tag, `id`, classes, input `type`, and the text of its direct
text children (as posthog-js's autocapture reads an element's text), so the map
stays small on large pages. Pure: no Django, tolerant of any JSON it is given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from recordings.ingest.rrweb import ELEMENT_NODE, TEXT_NODE

TEXT_MAX = 100  # characters of an element's text in a marker
# Text children kept per element: a button or link has one or two.
_TEXTS_PER_ELEMENT = 8


class _Element:
    __slots__ = ("tag", "attrs", "texts", "children")

    def __init__(self, tag: str, attrs: dict[str, str]) -> None:
        self.tag = tag
        self.attrs = attrs  # only id, class and type
        self.texts: dict[int, str] = {}  # text node id -> its text
        self.children: set[int] = set()


class NodeMap:
    """Element descriptions by node id, kept up to date with one window's events."""

    def __init__(self) -> None:
        self._elements: dict[int, _Element] = {}
        self._parents: dict[int, int] = {}  # node id -> parent element id

    def reset(self, root: Any) -> None:
        """Start again from a FullSnapshot's `data.node`."""
        self._elements.clear()
        self._parents.clear()
        self._add_tree(None, root)

    def mutate(self, data: Mapping[str, Any]) -> None:
        """Apply a Mutation event's `data`: removes, adds, texts, attributes."""
        for change in _items(data, "removes"):
            self._remove(change.get("id"))
        for add in _items(data, "adds"):
            parent = add.get("parentId")
            self._add_tree(parent if _is_id(parent) else None, add.get("node"))
        for change in _items(data, "texts"):
            self._set_text(change.get("id"), change.get("value"))
        for change in _items(data, "attributes"):
            self._set_attributes(change.get("id"), change.get("attributes"))

    def describe(self, node_id: Any) -> dict[str, Any]:
        """`{node_id, tag, id, classes, text}` of an element; unknown parts empty."""
        element = self._elements.get(node_id) if _is_id(node_id) else None
        if element is None:
            return {"node_id": node_id if _is_id(node_id) else None, "tag": ""}
        text = " ".join(" ".join(element.texts.values()).split())
        return {
            "node_id": node_id,
            "tag": element.tag,
            "id": element.attrs.get("id", ""),
            "classes": element.attrs.get("class", "").split(),
            "text": text[:TEXT_MAX],
        }

    def input_type(self, node_id: Any) -> tuple[str, str]:
        """(tag, `type` attribute) of an element, both lower case; "" if unknown."""
        element = self._elements.get(node_id) if _is_id(node_id) else None
        if element is None:
            return "", ""
        return element.tag, element.attrs.get("type", "").lower()

    def parent(self, node_id: Any) -> int | None:
        """The id of a node's parent element, if known."""
        return self._parents.get(node_id) if _is_id(node_id) else None

    def _add_tree(self, parent: int | None, node: Any) -> None:
        stack = [(parent, node)]
        while stack:  # iteratively: DOMs are deep
            parent_id, current = stack.pop()
            node_id = self._add_node(parent_id, current)
            if node_id is None:
                continue
            children = current.get("childNodes")
            if isinstance(children, list):
                stack.extend((node_id, child) for child in reversed(children))

    def _add_node(self, parent: int | None, node: Any) -> int | None:
        """Record one serialized node; its id, or None if it is not a node."""
        if not isinstance(node, Mapping) or not _is_id(node.get("id")):
            return None
        node_id: int = node["id"]
        kind = node.get("type")
        if kind == ELEMENT_NODE:
            self._elements[node_id] = _Element(_tag(node), _kept_attrs(node))
        elif kind == TEXT_NODE:
            self._adopt_text(parent, node_id, node.get("textContent"))
        if parent is not None:
            self._parents[node_id] = parent
            holder = self._elements.get(parent)
            if holder is not None:
                holder.children.add(node_id)
        return node_id

    def _adopt_text(self, parent: int | None, node_id: int, text: Any) -> None:
        holder = self._elements.get(parent) if parent is not None else None
        if holder is not None and len(holder.texts) < _TEXTS_PER_ELEMENT:
            holder.texts[node_id] = _short_text(text)

    def _remove(self, node_id: Any) -> None:
        if not _is_id(node_id):
            return
        parent = self._elements.get(self._parents.get(node_id, -1))
        if parent is not None:
            parent.children.discard(node_id)
            parent.texts.pop(node_id, None)
        stack = [node_id]
        while stack:
            current = stack.pop()
            self._parents.pop(current, None)
            element = self._elements.pop(current, None)
            if element is not None:
                stack.extend(element.children)

    def _set_text(self, node_id: Any, value: Any) -> None:
        if not _is_id(node_id):
            return
        holder = self._elements.get(self._parents.get(node_id, -1))
        if holder is not None and node_id in holder.texts:
            holder.texts[node_id] = _short_text(value)

    def _set_attributes(self, node_id: Any, attributes: Any) -> None:
        element = self._elements.get(node_id) if _is_id(node_id) else None
        if element is None or not isinstance(attributes, Mapping):
            return
        for name in _KEPT_ATTRS:
            if name not in attributes:
                continue
            value = attributes[name]
            if isinstance(value, str):
                element.attrs[name] = value[:_ATTR_MAX]
            else:  # rrweb sends null for a removed attribute
                element.attrs.pop(name, None)


_KEPT_ATTRS = ("id", "class", "type")
_ATTR_MAX = 500


def _kept_attrs(node: Mapping[str, Any]) -> dict[str, str]:
    attributes = node.get("attributes")
    if not isinstance(attributes, Mapping):
        return {}
    return {
        name: attributes[name][:_ATTR_MAX]
        for name in _KEPT_ATTRS
        if isinstance(attributes.get(name), str)
    }


def _tag(node: Mapping[str, Any]) -> str:
    tag = node.get("tagName")
    return tag.lower()[:50] if isinstance(tag, str) else ""


def _short_text(value: Any) -> str:
    return value[: TEXT_MAX * 2] if isinstance(value, str) else ""


def _items(data: Mapping[str, Any], key: str) -> Iterable[Mapping[str, Any]]:
    items = data.get(key)
    if not isinstance(items, list):
        return ()
    return (item for item in items if isinstance(item, Mapping))


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
