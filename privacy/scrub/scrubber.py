"""The walk over one batch's events: what the firewall does to each."""

from __future__ import annotations

import re
from typing import Any

from privacy.scrub.cards import CARD_BEING_TYPED, STAR_DIGITS, scrub_cards, scrub_string
from privacy.scrub.iframes import is_cross_origin_frame, url_origin
from privacy.scrub.rrweb import (
    INPUT_TAGS,
    PLACEHOLDER_ATTRIBUTES,
    RAW_TEXT_TAGS,
    as_node_id,
    dicts,
    is_choice,
    is_password,
    parents_first,
    shows_label,
)
from privacy.scrub.rules import CompiledRules
from privacy.scrub.state import ScrubReport, ScrubState, as_text
from recordings.ingest.rrweb import (
    ANNOTATION,
    ASSET,
    CUSTOM,
    DOCUMENT_NODE,
    ELEMENT_NODE,
    FULL_SNAPSHOT,
    INCREMENTAL,
    META,
    PLUGIN,
    SOURCE_CANVAS_MUTATION,
    SOURCE_INPUT,
    SOURCE_LOG,
    SOURCE_MOUSE_MOVE,
    SOURCE_MUTATION,
    TEXT_NODE,
)

# Custom, Plugin, Asset, Annotation: free-form payloads, scrubbed string by string.
_PAYLOAD_EVENTS = frozenset({CUSTOM, PLUGIN, ASSET, ANNOTATION})
# What a saturated state drops: the sources that carry page content.
_CONTENT_SOURCES = frozenset({SOURCE_MUTATION, SOURCE_INPUT, SOURCE_CANVAS_MUTATION})
_MUTATION_FIELDS = ("adds", "texts", "attributes", "removes")

# Inherited masking mode of a subtree.
_PLAIN = 0
_MASKED = 1
_UNMASKED = 2
# rrweb's maskTextClass stars every character but whitespace.
_NON_SPACE = re.compile(r"\S")


class Scrubber:
    """Walks the events of one batch and counts what it changes."""

    __slots__ = (
        "cards_scrubbed",
        "compiled",
        "frames_dropped",
        "inputs_masked",
        "nodes_blocked",
        "patterns_scrubbed",
        "rules",
        "state",
        "texts_masked",
        "track_unmasked",
    )

    def __init__(self, compiled: CompiledRules, state: ScrubState) -> None:
        self.compiled = compiled
        self.rules = compiled.rules
        self.state = state
        # Unmasking only matters against a mask-all switch; don't grow the state
        # for nothing.
        self.track_unmasked = self.rules.mask_all_inputs or self.rules.mask_all_text
        self.inputs_masked = 0
        self.texts_masked = 0
        self.nodes_blocked = 0
        self.cards_scrubbed = 0
        self.patterns_scrubbed = 0
        self.frames_dropped = 0

    def report(self, dropped: int) -> ScrubReport:
        return ScrubReport(
            inputs_masked=self.inputs_masked,
            texts_masked=self.texts_masked,
            nodes_blocked=self.nodes_blocked,
            cards_scrubbed=self.cards_scrubbed,
            patterns_scrubbed=self.patterns_scrubbed,
            events_dropped=dropped,
            frames_dropped=self.frames_dropped,
        )

    def find_card_inputs(self, events: list[dict[str, Any]]) -> None:
        # Looked up before the main pass, so the keystrokes that came before the
        # card was complete are masked too, not only the ones after.
        if not self.rules.scrub_card_numbers:
            return
        for event in events:
            data = event.get("data") if isinstance(event, dict) else None
            if (
                isinstance(data, dict)
                and event.get("type") == INCREMENTAL
                and data.get("source") == SOURCE_INPUT
                and (node_id := as_node_id(data.get("id"))) is not None
                and isinstance(text := data.get("text"), str)
                and scrub_cards(text)[1]
            ):
                self.state.add_card_input(node_id)

    # --- events --------------------------------------------------------------------

    def event(self, event: dict[str, Any]) -> bool:
        """Scrub one event; False if it must be dropped."""
        kind = event.get("type")
        data = event.get("data")
        if kind == FULL_SNAPSHOT:
            return self.full_snapshot(data)
        if not isinstance(data, dict):
            return True
        if kind == INCREMENTAL:
            return self.incremental(data)
        if kind == META:
            self.field(data, "href")
            # From the scrubbed URL: a host a pattern redacted makes frames foreign.
            self.state.page_origin = url_origin(as_text(data.get("href")))
        elif kind in _PAYLOAD_EVENTS:
            self.strings(data)
        return True

    def full_snapshot(self, data: Any) -> bool:
        # A string is posthog's compressed snapshot: unreadable, so not stored.
        if not isinstance(data, dict):
            return False
        self.state.reset()
        data["node"] = self.tree(data.get("node"), _PLAIN, None)
        return True

    def incremental(self, data: dict[str, Any]) -> bool:
        source = data.get("source")
        if self.state.saturated and source in _CONTENT_SOURCES:
            return False
        if source == SOURCE_MUTATION:
            return self.mutation(data)
        if source == SOURCE_INPUT:
            return self.input(data)
        if source == SOURCE_LOG:
            self.strings(data)
            return True
        # Mouse moves only carry coordinates; anything else aimed at a blocked node
        # (canvas drawing, media, scroll, style changes) goes.
        return source == SOURCE_MOUSE_MOVE or not self.is_blocked(data.get("id"))

    def input(self, data: dict[str, Any]) -> bool:
        node_id = as_node_id(data.get("id"))
        if self.is_blocked(node_id):
            return False
        text = data.get("text")
        if isinstance(text, str):
            data["text"] = self.input_value(text, self.input_masked_by_id(node_id))
        return True

    def mutation(self, data: dict[str, Any]) -> bool:
        present = [name for name in _MUTATION_FIELDS if data.get(name) is not None]
        # A string is a compressed field (posthog `cv`): unreadable, so not stored.
        if any(not isinstance(data[name], list) for name in present):
            return False
        had_changes = any(data[name] for name in present)
        if "adds" in present:
            data["adds"] = self.adds(data["adds"])
        if "texts" in present:
            data["texts"] = self.texts(data["texts"])
        if "attributes" in present:
            data["attributes"] = self.attribute_changes(data["attributes"])
        if "removes" in present:
            # Children of a placeholder never reached the replay.
            data["removes"] = [
                r
                for r in dicts(data["removes"])
                if not self.is_blocked(r.get("parentId"))
                and r.get("parentId") not in self.state.foreign_frames
            ]
        return not had_changes or any(data[name] for name in present)

    def adds(self, adds: list[Any]) -> list[Any]:
        items = list(dicts(adds))
        keep = [True] * len(items)
        for index in parents_first(items):
            keep[index] = self.add(items[index])
        return [item for item, kept in zip(items, keep, strict=True) if kept]

    def add(self, add: dict[str, Any]) -> bool:
        parent = as_node_id(add.get("parentId"))
        node = add.get("node")
        if self.is_blocked(parent):
            self.block_ids(node)
            self.nodes_blocked += 1
            return False
        if parent is not None and parent in self.state.foreign_frames:
            # A cross-origin frame's document (rrweb's attachIframe add).
            self.block_ids(node)
            self.frames_dropped += 1
            return False
        parent_tag = "style" if parent in self.state.styles else None
        add["node"] = self.tree(node, self.mode_of(parent), parent_tag)
        return True

    def texts(self, changes: list[Any]) -> list[Any]:
        kept: list[Any] = []
        for change in dicts(changes):
            node_id = as_node_id(change.get("id"))
            if self.is_blocked(node_id):
                continue
            value = change.get("value")
            if isinstance(value, str):
                change["value"] = self.text(value, self.text_masked_by_id(node_id))
            kept.append(change)
        return kept

    def attribute_changes(self, changes: list[Any]) -> list[Any]:
        kept: list[Any] = []
        for change in dicts(changes):
            node_id = as_node_id(change.get("id"))
            if self.is_blocked(node_id):
                continue
            attributes = change.get("attributes")
            if isinstance(attributes, dict):
                self.changed_attributes(node_id, attributes)
            kept.append(change)
        return kept

    def changed_attributes(
        self, node_id: int | None, attributes: dict[str, Any]
    ) -> None:
        # A field turned into a password field stays masked, as in rrweb.
        if node_id is not None and is_password("input", attributes):
            self.state.masked.add(node_id)
        if node_id is not None and "type" in attributes:
            # A changed type decides whether the value is the page's or typed.
            self.state.choices.discard(node_id)
            if is_choice("input", attributes):
                self.state.choices.add(node_id)
        if node_id in self.state.frames and self.is_foreign_frame(attributes):
            # Navigated to another origin. Never the other way back: the change
            # holds only the attributes that changed, not the whole picture.
            self.state.frames.discard(node_id)
            self.state.foreign_frames.add(node_id)
        # The target's tag is unknown here: any `value` change is taken for an
        # input's. Style diffs (dicts) are CSS and left alone.
        for name, value in attributes.items():
            if not isinstance(value, str):
                continue
            if name == "value":
                masked = self.input_masked_by_id(node_id)
                attributes[name] = self.input_value(value, masked)
            else:
                attributes[name] = self.scrub(value)

    # --- serialised DOM ------------------------------------------------------------

    def tree(self, root: Any, mode: int, parent_tag: str | None) -> Any:
        """Scrub a serialised subtree whose parent has `mode`; returns its new root."""
        if self.is_blocked_element(root):
            return self.placeholder(root)
        # An explicit stack: a DOM can nest deeper than Python's recursion limit.
        stack: list[tuple[Any, int, str | None]] = [(root, mode, parent_tag)]
        while stack:
            node, inherited, parent = stack.pop()
            if not isinstance(node, dict):
                continue
            own_mode, tag = self.node(node, inherited, parent)
            if tag == "iframe" and self.frame(node):
                continue
            children = node.get("childNodes")
            if not isinstance(children, list):
                continue
            for index, child in enumerate(children):
                if self.is_blocked_element(child):
                    children[index] = self.placeholder(child)
                else:
                    stack.append((child, own_mode, tag))
        return root

    def node(
        self, node: dict[str, Any], inherited: int, parent_tag: str | None
    ) -> tuple[int, str | None]:
        """Scrub one node; returns the mode and tag its children inherit."""
        kind = node.get("type")
        node_id = as_node_id(node.get("id"))
        if kind == ELEMENT_NODE:
            return self.element(node, node_id, inherited)
        if kind == TEXT_NODE:
            self.text_node(node, node_id, inherited, parent_tag)
        elif kind != DOCUMENT_NODE:
            # Comments, CDATA: not shown, but stored.
            self.field(node, "textContent")
        self.remember(node_id, inherited, parent_tag in RAW_TEXT_TAGS)
        return inherited, parent_tag

    def element(
        self, node: dict[str, Any], node_id: int | None, inherited: int
    ) -> tuple[int, str]:
        name = node.get("tagName")
        tag = name.lower() if isinstance(name, str) else ""
        attributes = node.get("attributes")
        if not isinstance(attributes, dict):
            attributes = {}
        mode = inherited
        # An explicit mask beats an unmask above it; an unmask only lifts the
        # mask-all switches, never a mask selector or a password field.
        if inherited != _MASKED and (
            is_password(tag, attributes) or self.compiled.mask.matches(tag, attributes)
        ):
            mode = _MASKED
        elif inherited == _PLAIN and self.compiled.unmask.matches(tag, attributes):
            mode = _UNMASKED
        self.remember(node_id, mode, tag in RAW_TEXT_TAGS)
        choice = is_choice(tag, attributes)
        if choice and node_id is not None:
            self.state.choices.add(node_id)
        fixed_value = choice or shows_label(tag, attributes)
        for key, value in attributes.items():
            if not isinstance(value, str):
                continue
            if key == "value" and tag in INPUT_TAGS:
                masked = self.input_masked(mode, node_id, fixed_value)
                attributes[key] = self.input_value(value, masked)
            else:
                attributes[key] = self.scrub(value)
        return mode, tag

    def text_node(
        self,
        node: dict[str, Any],
        node_id: int | None,
        mode: int,
        parent_tag: str | None,
    ) -> None:
        text = node.get("textContent")
        if not isinstance(text, str):
            return
        if parent_tag == "textarea":
            # A textarea's text is its initial value: an input, not page text.
            node["textContent"] = self.input_value(
                text, self.input_masked(mode, node_id, False)
            )
            return
        raw = parent_tag in RAW_TEXT_TAGS or bool(node.get("isStyle"))
        masked = not raw and (
            mode == _MASKED or (self.rules.mask_all_text and mode != _UNMASKED)
        )
        node["textContent"] = self.text(text, masked)

    def placeholder(self, node: dict[str, Any]) -> dict[str, Any]:
        """rrweb's stand-in for a blocked element: tag, class and measured size."""
        self.block_ids(node)
        self.nodes_blocked += 1
        attributes = node.get("attributes")
        if not isinstance(attributes, dict):
            attributes = {}
        kept = {
            name: self.scrub(value)
            for name in PLACEHOLDER_ATTRIBUTES
            if isinstance(value := attributes.get(name), str)
        }
        # Other keys are structure (id, tagName, isSVG, rootId...), never content.
        stand_in = {
            key: value
            for key, value in node.items()
            if key not in ("attributes", "childNodes")
        }
        stand_in["attributes"] = kept
        stand_in["childNodes"] = []
        return stand_in

    def frame(self, node: dict[str, Any]) -> bool:
        """Remember an iframe element; empty it if cross-origin (then True)."""
        if self.rules.record_cross_origin_iframes:
            return False
        node_id = as_node_id(node.get("id"))
        attributes = node.get("attributes")
        foreign = self.is_foreign_frame(
            attributes if isinstance(attributes, dict) else {}
        )
        if node_id is not None:
            (self.state.foreign_frames if foreign else self.state.frames).add(node_id)
        if not foreign:
            return False
        children = node.get("childNodes")
        if isinstance(children, list) and children:
            for child in children:
                self.block_ids(child)
            self.frames_dropped += 1
            node["childNodes"] = []
        return True

    def is_foreign_frame(self, attributes: dict[str, Any]) -> bool:
        return is_cross_origin_frame(attributes, self.state.page_origin)

    def block_ids(self, root: Any) -> None:
        """Remember every id in a subtree that is not stored."""
        stack = [root]
        while stack:
            node = stack.pop()
            if not isinstance(node, dict):
                continue
            node_id = as_node_id(node.get("id"))
            if node_id is not None:
                self.state.blocked.add(node_id)
            children = node.get("childNodes")
            if isinstance(children, list):
                stack.extend(children)

    # --- decisions -----------------------------------------------------------------

    def is_blocked_element(self, node: Any) -> bool:
        if not self.compiled.block.selectors or not isinstance(node, dict):
            return False
        if node.get("type") != ELEMENT_NODE:
            return False
        name = node.get("tagName")
        attributes = node.get("attributes")
        return self.compiled.block.matches(
            name.lower() if isinstance(name, str) else "",
            attributes if isinstance(attributes, dict) else {},
        )

    def is_blocked(self, node_id: Any) -> bool:
        return type(node_id) is int and node_id in self.state.blocked

    def mode_of(self, node_id: int | None) -> int:
        if node_id is None:
            return _PLAIN
        if node_id in self.state.masked:
            return _MASKED
        if node_id in self.state.unmasked:
            return _UNMASKED
        return _PLAIN

    def remember(self, node_id: int | None, mode: int, raw_text: bool) -> None:
        if node_id is None:
            return
        if mode == _MASKED:
            self.state.masked.add(node_id)
        elif mode == _UNMASKED and self.track_unmasked:
            self.state.unmasked.add(node_id)
        if raw_text:
            self.state.styles.add(node_id)

    def input_masked(self, mode: int, node_id: int | None, fixed_value: bool) -> bool:
        """Whether an input's value is masked.

        `fixed_value` marks values the page wrote and the person cannot type: a
        button's label, a checkbox's or radio's `value` (what replays there is the
        checked state). The mask-all switch leaves them alone, as rrweb does; a mask
        selector, a password field or a card typed in masks them all the same.
        """
        if mode == _MASKED or node_id in self.state.card_inputs:
            return True
        return self.rules.mask_all_inputs and mode != _UNMASKED and not fixed_value

    def input_masked_by_id(self, node_id: int | None) -> bool:
        fixed_value = node_id in self.state.choices
        return self.input_masked(self.mode_of(node_id), node_id, fixed_value)

    def text_masked_by_id(self, node_id: int | None) -> bool:
        mode = self.mode_of(node_id)
        if mode == _MASKED:
            return node_id not in self.state.styles
        return (
            self.rules.mask_all_text
            and mode != _UNMASKED
            and node_id not in self.state.styles
        )

    # --- strings -------------------------------------------------------------------

    def input_value(self, value: str, masked: bool) -> str:
        if masked:
            if value and value.count("*") != len(value):
                self.inputs_masked += 1
            # rrweb's maskInputValue: one star per character, so length survives.
            return "*" * len(value)
        value = self.scrub(value)
        if self.rules.scrub_card_numbers and CARD_BEING_TYPED.fullmatch(value):
            self.cards_scrubbed += 1
            return value.translate(STAR_DIGITS)
        return value

    def text(self, value: str, masked: bool) -> str:
        if not masked:
            return self.scrub(value)
        # rrweb's maskTextClass: whitespace kept, every other character starred.
        starred = _NON_SPACE.sub("*", value)
        if starred != value:
            self.texts_masked += 1
        return starred

    def scrub(self, value: str) -> str:
        value, cards, patterns = scrub_string(value, self.compiled)
        self.cards_scrubbed += cards
        self.patterns_scrubbed += patterns
        return value

    def field(self, container: dict[str, Any], key: str) -> None:
        value = container.get(key)
        if isinstance(value, str):
            container[key] = self.scrub(value)

    def strings(self, root: dict[str, Any]) -> None:
        """Scrub every string value (not key) in a JSON object, however nested."""
        stack: list[Any] = [root]
        while stack:
            container = stack.pop()
            if isinstance(container, dict):
                # Replacing values of existing keys is safe while iterating a dict.
                for key, value in container.items():
                    if isinstance(value, str):
                        container[key] = self.scrub(value)
                    elif isinstance(value, dict | list):
                        stack.append(value)
            elif isinstance(container, list):
                for index, value in enumerate(container):
                    if isinstance(value, str):
                        container[index] = self.scrub(value)
                    elif isinstance(value, dict | list):
                        stack.append(value)
