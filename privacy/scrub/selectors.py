"""The small CSS selector language of mask, block and unmask rules."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

# One simple selector; a compound is several of them glued together ("a.b[c]").
_SELECTOR_TOKEN = re.compile(
    r"""(?P<tag>[A-Za-z][A-Za-z0-9-]*)
    |\.(?P<cls>-?[_A-Za-z][\w-]*)
    |\#(?P<id>[\w-]+)
    |\[\s*(?P<attr>[A-Za-z_][\w:.-]*)\s*
        (?:=\s*(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<bare>[\w-]+))\s*)?\]""",
    re.VERBOSE,
)
_SELECTOR_SPACE = re.compile(r"\s*")
_SELECTOR_HELP = (
    "supported: tag, .class, #id, [attr], [attr=value], combined without spaces "
    "(div.note[data-x]) and separated by commas"
)


@dataclass(frozen=True, slots=True)
class _Selector:
    """A compound selector: every part must hold for the element itself."""

    tag: str | None
    classes: frozenset[str]
    # (name, value); value None means "present". `#x` is ("id", "x").
    attributes: tuple[tuple[str, str | None], ...]

    def matches(self, tag: str, attributes: dict[str, Any]) -> bool:
        if self.tag is not None and self.tag != tag:
            return False
        if self.classes:
            names = attributes.get("class")
            if not isinstance(names, str) or not self.classes.issubset(names.split()):
                return False
        for name, wanted in self.attributes:
            if name not in attributes:
                return False
            if wanted is not None and attributes[name] != wanted:
                return False
        return True


@dataclass(frozen=True, slots=True)
class SelectorList:
    selectors: tuple[_Selector, ...]

    def matches(self, tag: str, attributes: dict[str, Any]) -> bool:
        return any(s.matches(tag, attributes) for s in self.selectors)


def parse_selectors(texts: tuple[str, ...], setting: str) -> SelectorList:
    selectors: list[_Selector] = []
    for text in texts:
        # A blank entry is an empty setting, not a syntax error.
        if text.strip():
            selectors.extend(_parse_selector_list(text, setting))
    return SelectorList(tuple(selectors))


def _parse_selector_list(text: str, setting: str) -> Iterator[_Selector]:
    position = _skip_space(text, 0)
    while True:
        selector, position = _parse_compound(text, position, setting)
        yield selector
        position = _skip_space(text, position)
        if position == len(text):
            return
        if text[position] != ",":
            # A space here is a descendant combinator; ">", "~", ":" are unsupported.
            raise _selector_error(text, position, setting)
        position = _skip_space(text, position + 1)


def _parse_compound(text: str, position: int, setting: str) -> tuple[_Selector, int]:
    tag: str | None = None
    classes: set[str] = set()
    attributes: list[tuple[str, str | None]] = []
    start = position
    while (token := _SELECTOR_TOKEN.match(text, position)) is not None:
        if token["tag"] is not None:
            if position != start:
                break  # "a.b" then "c": a tag only leads a compound.
            # rrweb serialises HTML tag names in lower case.
            tag = token["tag"].lower()
        elif token["cls"] is not None:
            classes.add(token["cls"])
        elif token["id"] is not None:
            attributes.append(("id", token["id"]))
        else:
            value = next(
                (v for v in (token["dq"], token["sq"], token["bare"]) if v is not None),
                None,
            )
            attributes.append((token["attr"].lower(), value))
        position = token.end()
    if position == start:
        raise _selector_error(text, position, setting)
    return _Selector(tag, frozenset(classes), tuple(attributes)), position


def _skip_space(text: str, position: int) -> int:
    match = _SELECTOR_SPACE.match(text, position)
    return match.end() if match else position


def _selector_error(text: str, position: int, setting: str) -> ValueError:
    where = text[position : position + 20] or "end of selector"
    return ValueError(
        f"{setting}: unsupported selector {text!r} at {where!r} ({_SELECTOR_HELP})"
    )
