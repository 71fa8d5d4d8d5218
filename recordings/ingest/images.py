"""Swap big inline `data:image/...` URLs in rrweb events for a tiny placeholder.

A page that inlines its pictures (or a canvas snapshot, `rr_dataURL`) can push a
single batch to several MB (wire-protocol §2: one 1.24 MB image). For such a batch
ingest keeps the DOM and swaps the pictures for a grey "image removed" box, rather
than refusing it and losing the recording.

The events must be plain rrweb events: posthog's `cv` fields still compressed are
strings and pass through untouched, so expand them first (`parse.expand_event`).
Work is done in place in one pass; a string is rebuilt only if it holds an image.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import Any, cast

import re2

from recordings.ingest.rrweb import (
    ELEMENT_NODE,
    FULL_SNAPSHOT,
    INCREMENTAL,
    SOURCE_ADOPTED_STYLE_SHEET,
    SOURCE_MUTATION,
    SOURCE_STYLE_DECLARATION,
    SOURCE_STYLE_SHEET_RULE,
    TEXT_NODE,
)

__all__ = [
    "LARGE_PAYLOAD_BYTES",
    "PLACEHOLDER_IMAGE",
    "payload_is_large",
    "replace_data_url_images",
]

# A grey box with a crossed-out picture. The outer <svg> has no viewBox so the box
# fills whatever size the page gave the image; the nested one keeps the icon square.
_PLACEHOLDER_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg">'
    '<rect width="100%" height="100%" fill="#e5e7eb"/>'
    '<svg viewBox="0 0 24 24" fill="none" stroke="#6b7280" stroke-width="1.5">'
    '<rect x="4" y="6" width="16" height="12"/>'
    '<path d="M4 16l5-5 4 4 2-2 5 5M3 3l18 18"/>'
    "</svg></svg>"
)
# base64 rather than utf8: its alphabet has no quotes, parentheses, spaces or
# commas, so it can stand in unescaped in an attribute, a srcset and CSS url().
PLACEHOLDER_IMAGE = "data:image/svg+xml;base64," + base64.b64encode(
    _PLACEHOLDER_SVG.encode()
).decode("ascii")

LARGE_PAYLOAD_BYTES = 5 * 1024 * 1024

# rrweb puts inlined stylesheets in `_cssText` (link and style elements).
_CSS_ATTRIBUTES = frozenset({"style", "_cssText"})
_SRCSET_ATTRIBUTES = frozenset({"srcset", "imagesrcset"})

_DATA_IMAGE_START = re.compile(r"\s*data:image/", re.IGNORECASE)
# A srcset candidate's URL runs to the next whitespace; it starts the value or
# follows a separator, so a data URL inside a query string is left alone.
_SRCSET_DATA_IMAGE = re.compile(r"(?<![^\s,])data:image/\S*", re.IGNORECASE)
# In CSS: url(data:...) unquoted, or a quoted data URL, which covers url("...")
# and image-set("..."). Quoted bodies skip backslash escapes, since browsers
# serialise a `"` inside an SVG data URL as `\"`. Run by RE2, not `re`: a quote
# never closed is scanned to the end of the text from every quote that opens a
# data URL, so `'data:image/\'data:image/\'...` took `re` time quadratic in
# its length (100 KB: 11 s); RE2 scans the text once. (google-re2 mirrors the
# Pattern and Match API of `re`, hence the type.)
_CSS_DATA_IMAGE = cast(
    "re.Pattern[str]",
    re2.compile(
        r"""(?is)url\(\s*(data:image/[^\s"'()]*)"""
        r"""|"(data:image/[^"\\]*(?:\\.[^"\\]*)*)\""""
        r"""|'(data:image/[^'\\]*(?:\\.[^'\\]*)*)'"""
    ),
)


def payload_is_large(decompressed_bytes: int) -> bool:
    """Whether a request's fully expanded size calls for image replacement."""
    return decompressed_bytes >= LARGE_PAYLOAD_BYTES


def replace_data_url_images(
    events: list[dict[str, Any]], *, min_length: int = 1024
) -> int:
    """Replace inline data: images of at least min_length chars by the placeholder.

    Works in place; returns how many images were replaced. Other data: URLs (fonts,
    HTML, ...) are kept, and in CSS only the URL itself changes.
    """
    replacer = _Replacer(min_length)
    for event in events:
        if isinstance(event, dict):
            replacer.event(event)
    return replacer.count


class _Replacer:
    """Walks rrweb events and counts the images it replaces."""

    __slots__ = ("count", "min_length")

    def __init__(self, min_length: int) -> None:
        self.min_length = min_length
        self.count = 0

    # --- events ------------------------------------------------------------------

    def event(self, event: dict[str, Any]) -> None:
        data = event.get("data")
        if not isinstance(data, dict):
            return
        if event.get("type") == FULL_SNAPSHOT:
            self.tree(data.get("node"))
        elif event.get("type") == INCREMENTAL:
            self.incremental(data)

    def incremental(self, data: dict[str, Any]) -> None:
        # CanvasMutation (9) is left alone: its images are drawImage arguments
        # and typed-array blobs, which a picture of another size would distort.
        source = data.get("source")
        if source == SOURCE_MUTATION:
            self.mutation(data)
        elif source == SOURCE_STYLE_SHEET_RULE:
            self.sheet_rules(data)
        elif source == SOURCE_STYLE_DECLARATION:
            declaration = data.get("set")
            if isinstance(declaration, dict):
                self.css_field(declaration, "value")
        elif source == SOURCE_ADOPTED_STYLE_SHEET:
            for sheet in _dicts(data.get("styles")):
                self.rules(sheet.get("rules"))

    def mutation(self, data: dict[str, Any]) -> None:
        for add in _dicts(data.get("adds")):
            self.tree(add.get("node"))
        for change in _dicts(data.get("attributes")):
            attributes = change.get("attributes")
            if isinstance(attributes, dict):
                self.attributes(attributes)
        # Text changes carry no isStyle flag, and a <style>'s text changes this
        # way (CSS-in-JS); the CSS pattern rarely matches text that is not CSS.
        for text in _dicts(data.get("texts")):
            self.css_field(text, "value")

    def sheet_rules(self, data: dict[str, Any]) -> None:
        self.rules(data.get("adds"))
        # CSSStyleSheet.replace()/replaceSync() of a constructed sheet.
        self.css_field(data, "replace")
        self.css_field(data, "replaceSync")

    def rules(self, rules: Any) -> None:
        for rule in _dicts(rules):
            self.css_field(rule, "rule")

    # --- serialised DOM ------------------------------------------------------------

    def tree(self, root: Any) -> None:
        # An explicit stack: a DOM can nest deeper than Python's recursion limit.
        stack = [root]
        while stack:
            node = stack.pop()
            if not isinstance(node, dict):
                continue
            kind = node.get("type")
            if kind == ELEMENT_NODE and isinstance(node.get("attributes"), dict):
                self.attributes(node["attributes"])
            elif kind == TEXT_NODE and node.get("isStyle"):
                self.css_field(node, "textContent")
            children = node.get("childNodes")
            if isinstance(children, list):
                stack.extend(children)

    def attributes(self, attributes: dict[str, Any]) -> None:
        # Replacing values of existing keys is safe while iterating a dict.
        for name, value in attributes.items():
            if isinstance(value, str):
                attributes[name] = self.attribute(name, value)
            elif isinstance(value, dict):
                self.style_diff(value)

    def attribute(self, name: str, value: str) -> str:
        if len(value) < self.min_length:
            return value
        if name in _CSS_ATTRIBUTES:
            return self.css(value)
        if name in _SRCSET_ATTRIBUTES:
            return self.srcset(value)
        # Any other attribute holding a whole data:image URL is a picture: src,
        # href, poster, rr_dataURL, but also data-src, xlink:href on SVG <image>.
        if _DATA_IMAGE_START.match(value) and self.claim(value.strip()):
            return PLACEHOLDER_IMAGE
        return value

    def style_diff(self, diff: dict[str, Any]) -> None:
        # A Mutation's changed `style`: property -> value, [value, priority], or
        # false for a removed property.
        for prop, value in diff.items():
            if isinstance(value, str):
                diff[prop] = self.css(value)
            elif isinstance(value, list) and value and isinstance(value[0], str):
                value[0] = self.css(value[0])

    # --- strings -------------------------------------------------------------------

    def css_field(self, container: dict[str, Any], key: str) -> None:
        value = container.get(key)
        if isinstance(value, str):
            container[key] = self.css(value)

    def css(self, text: str) -> str:
        if len(text) < self.min_length:
            return text
        return _CSS_DATA_IMAGE.sub(self._css_match, text)

    def srcset(self, text: str) -> str:
        return _SRCSET_DATA_IMAGE.sub(self._srcset_match, text)

    def _css_match(self, match: re.Match[str]) -> str:
        group = match.lastindex or 0
        if not self.claim(match.group(group)):
            return match.group(0)
        # Keep the url( and quotes around the URL.
        start, end = match.span(group)
        whole, offset = match.group(0), match.start()
        return whole[: start - offset] + PLACEHOLDER_IMAGE + whole[end - offset :]

    def _srcset_match(self, match: re.Match[str]) -> str:
        # A comma glued to the URL separates candidates; it is not part of it.
        found = match.group(0)
        url = found.rstrip(",")
        if not self.claim(url):
            return found
        return PLACEHOLDER_IMAGE + found[len(url) :]

    def claim(self, url: str) -> bool:
        """Whether `url` is to be replaced; counts it if so."""
        # The placeholder itself never counts, so a second pass reports 0.
        if len(url) < self.min_length or url == PLACEHOLDER_IMAGE:
            return False
        self.count += 1
        return True


def _dicts(value: Any) -> Iterator[dict[str, Any]]:
    """The objects in a JSON list; anything malformed is skipped."""
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                yield item
