"""Server-side PII firewall: mask, block and scrub rrweb events before storage.

Every batch passes through `scrub_events` before it is written, whatever the SDK was
told to do: a client with masking switched off (or an old or hostile one) must not
get a card number or a typed email into storage. The rules follow rrweb's own
privacy options (wire-protocol §5), so a recording masked here looks like one masked
in the browser:

* input values (Input events' `text`, the `value` attribute of input/textarea/select
  in snapshots and attribute mutations) become one `*` per character, as rrweb's
  maskInputValue does. `mask_all_inputs` masks all of them, except the value of
  button-like inputs (submit, reset, button, image: a visible label, not typed data)
  and inputs under an unmask selector; password inputs and inputs under a mask
  selector are masked whatever the switches say.
* text (text nodes, Mutation `texts`) under a mask selector, or everywhere with
  `mask_all_text`, has each non-whitespace character replaced by `*`, as rrweb's
  maskTextClass does. CSS (`<style>`, `isStyle`) and `<script>` text is never masked:
  it is not user content and masking it would break the replay's layout.
* an element matching a block selector becomes rrweb's own placeholder: the element
  node is kept with its id, tag, `class` and any `rr_width`/`rr_height`/`rr_left`/
  `rr_top`/`rr_position` the client measured, and no children, so the replay keeps
  the layout hole. (The server cannot measure: an element the client did not block
  gets no size and takes whatever its class gives it.) Its descendants are gone, and
  later mutations, Input events and other events aimed at any id in the subtree are
  dropped; so are mutation adds under it.
* card numbers in any string the recording stores (text, attributes, input
  values, console and network plugin payloads, Meta `href`, custom events) get
  each digit replaced by `*`, separators kept ("**** **** **** ****"), so a replay
  still shows where a number was. A card number is 13-19 digits, bare or in groups
  split by single spaces or dashes, Luhn-valid, with an issuer prefix some card
  has (see `_could_be_card`: this keeps millisecond timestamps in URLs intact).
  Admin patterns are replaced by the fixed `[REDACTED]`: their matches have no
  shape worth keeping. Numbers in numeric JSON fields (timestamps, ids,
  coordinates) are never touched: only strings are.
* a cross-origin iframe (unless `record_cross_origin_iframes`) keeps its element
  and attributes but never its document: rrweb sends a frame's document as
  children of the iframe node or as a mutation add under the iframe's id (with
  `recordCrossOriginIframes`, the child page's own snapshot arrives that way), and
  both are dropped, with every node that later arrives inside them. A frame is
  cross-origin when the origin of its `src` (or `rr_src`, where rrweb puts the URL
  of a frame it could not read) differs from the page's, taken from the window's
  Meta `href` and kept in `ScrubState`; a `data:` frame or one sandboxed without
  `allow-same-origin` has an opaque origin, so it is cross-origin too; a frame
  with no URL (about:blank, `srcdoc`) has the page's origin. A page whose origin
  is unknown treats every frame with a URL as cross-origin. A frame whose `src`
  changes to another origin is treated as cross-origin from then on; it is not
  let back in until the next FullSnapshot. Console logs a frame's rrweb forwards
  carry no node id and cannot be told apart from the page's: they are kept,
  scrubbed like the page's own.

Cards typed into a field arrive one keystroke per Input event, and the 15-digit
prefix of a 16-digit card gives the card away (the last digit is the checksum). So
when card scrubbing is on, a field into which a whole card was typed is masked as an
input in the whole batch and in later ones (`ScrubState.card_inputs`), and an input
value made only of 12-19 digits and separators (not starting with 0) is taken for a
card being typed. What earlier batches stored of a card still being typed holds at
most 11 digits.

Mutation adds only name their parent (`parentId`), so which added nodes fall under a
blocked, masked or unmasked element is known from the ids seen before: `ScrubState`
keeps them, and the caller stores it (`to_dict`/`from_dict`) with the recording and
passes it back with the session's next batch — one state per replay track
(`$session_id` + `$window_id`), since every window numbers its nodes itself. A
FullSnapshot starts the sets again: the replayer rebuilds the whole DOM from it (and
rrweb numbers nodes from 1 again after a page load). Selectors are evaluated when a
node is serialised (snapshot or add): an element that only gains a blocking class
later is not blocked (rrweb would stop recording inside it from then on).

Events must be plain rrweb events: posthog's compressed `cv` fields are strings the
firewall cannot read, so a FullSnapshot or Mutation still carrying one is dropped
rather than stored unchecked (expand it first with
`recordings.ingest.parse.expand_event`; compressed StyleSheetRule CSS passes).
Events are changed in place; the list returned holds the events kept.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

__all__ = [
    "MAX_TRACKED_IDS",
    "REDACTED",
    "CompiledRules",
    "MaskRules",
    "ScrubReport",
    "ScrubState",
    "compile_rules",
    "luhn_valid",
    "scrub_events",
    "scrub_text",
]

REDACTED = "[REDACTED]"

# Ids remembered per replay track (blocked + masked + unmasked + styles). Real pages
# have a few thousand nodes; past this the state stops guessing and fails closed
# (see ScrubState.saturated) until the next FullSnapshot.
MAX_TRACKED_IDS = 100_000
# Card fields are few; past this only the "card being typed" check protects them.
_MAX_CARD_INPUTS = 1_000

# rrweb enums (wire-protocol §5).
_FULL_SNAPSHOT = 2
_INCREMENTAL = 3
_META = 4
_DOCUMENT_NODE = 0
_ELEMENT_NODE = 2
_TEXT_NODE = 3
_SOURCE_MUTATION = 0
_SOURCE_MOUSE_MOVE = 1
_SOURCE_INPUT = 5
_SOURCE_CANVAS_MUTATION = 9
_SOURCE_LOG = 11
# Custom, Plugin, Asset, Annotation: free-form payloads, scrubbed string by string.
_PAYLOAD_EVENTS = frozenset({5, 6, 7, 8})
# What a saturated state drops: the sources that carry page content.
_CONTENT_SOURCES = frozenset({_SOURCE_MUTATION, _SOURCE_INPUT, _SOURCE_CANVAS_MUTATION})
_MUTATION_FIELDS = ("adds", "texts", "attributes", "removes")

_INPUT_TAGS = frozenset({"input", "textarea", "select"})
_RAW_TEXT_TAGS = frozenset({"style", "script"})
_LABEL_INPUT_TYPES = frozenset({"button", "submit", "reset", "image"})
# What rrweb itself keeps on a blocked element.
_PLACEHOLDER_ATTRIBUTES = (
    "class",
    "rr_width",
    "rr_height",
    "rr_left",
    "rr_top",
    "rr_position",
)

# Inherited masking mode of a subtree.
_PLAIN = 0
_MASKED = 1
_UNMASKED = 2

# --- card numbers ------------------------------------------------------------------

_MIN_CARD_DIGITS = 13
_MAX_CARD_DIGITS = 19
# A run of 13+ ASCII digits, single spaces/dashes (or a no-break space) allowed
# between them. This is the cheap precheck: most strings fail it at once.
_CARD_RUN = re.compile(r"[0-9](?:[ \-\u00a0]?[0-9]){12,}")
_DIGIT_GROUP = re.compile(r"[0-9]+")
# A whole input value that is only digits and separators, 12-19 digits: a card
# being typed (12 known digits leave ~1000 candidates for a 16-digit card). No
# card starts with 0, phone numbers often do ("0049 ...", "030 ...").
_CARD_BEING_TYPED = re.compile(r"\s*[1-9](?:[ \-\u00a0]?[0-9]){11,18}\s*")
_STAR_DIGITS = str.maketrans("0123456789", "*" * 10)
_NON_SPACE = re.compile(r"\S")


def luhn_valid(digits: str) -> bool:
    """Whether an all-ASCII-digit string passes the Luhn checksum (any length >= 1).

    >>> luhn_valid("4242424242424242"), luhn_valid("4242424242424241")
    (True, False)
    """
    if not digits or not digits.isascii() or not digits.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = ord(char) - 48
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _card_spans(run: str) -> Iterator[tuple[int, int]]:
    """Card numbers in one digit run, as (start, end) offsets into the run.

    A card is a sequence of whole digit groups holding 13-19 digits in all; the
    longest Luhn-valid one from each group wins. Groups never split, so a long
    unbroken run (an id, a hash) hides no card inside it, while "card 4242 4242 4242
    4242 123" still finds the card before the CVC.
    """
    groups = [match.span() for match in _DIGIT_GROUP.finditer(run)]
    first = 0
    while first < len(groups):
        last = _longest_card(run, groups, first)
        if last is None:
            first += 1
            continue
        yield groups[first][0], groups[last][1]
        first = last + 1


def _longest_card(run: str, groups: list[tuple[int, int]], first: int) -> int | None:
    digits = ""
    candidates: list[tuple[int, str]] = []
    for index in range(first, len(groups)):
        start, end = groups[index]
        digits += run[start:end]
        if len(digits) > _MAX_CARD_DIGITS:
            break
        if len(digits) >= _MIN_CARD_DIGITS:
            candidates.append((index, digits))
    for index, number in reversed(candidates):
        if _could_be_card(number) and luhn_valid(number):
            return index
    return None


def _could_be_card(number: str) -> bool:
    """Whether an issuer could have given out this number (Luhn checked apart).

    Rules out what Luhn lets through one time in ten and strings are full of:
    millisecond timestamps (13 digits from 1), micro- and nanosecond ones (16 and
    19 from 1) and zero-padded numbers. No payment card starts with 0; only UATP
    (15 digits) starts with 1; only Visa ever issued 13-digit numbers.
    """
    first = number[0]
    if first == "0":
        return False
    if first == "1":
        return len(number) == 15
    return len(number) != _MIN_CARD_DIGITS or first == "4"


def _scrub_cards(value: str) -> tuple[str, int]:
    if len(value) < _MIN_CARD_DIGITS:
        return value, 0
    first = _CARD_RUN.search(value)
    if first is None:
        return value, 0
    pieces: list[str] = []
    done = 0
    count = 0
    for match in _CARD_RUN.finditer(value, first.start()):
        offset, run = match.start(), match.group()
        for start, end in _card_spans(run):
            pieces.append(value[done : offset + start])
            pieces.append(run[start:end].translate(_STAR_DIGITS))
            done = offset + end
            count += 1
    if not count:
        return value, 0
    pieces.append(value[done:])
    return "".join(pieces), count


def _redact(pattern: re.Pattern[str], value: str) -> tuple[str, int]:
    if pattern.search(value) is None:
        return value, 0
    hits = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal hits
        # An empty match (a pattern like `\b`) would insert text, not remove it.
        if match.start() == match.end():
            return ""
        hits += 1
        return REDACTED

    redacted = pattern.sub(replace, value)
    return (redacted, hits) if hits else (value, 0)


# --- selectors ---------------------------------------------------------------------

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
class _SelectorList:
    selectors: tuple[_Selector, ...]

    def matches(self, tag: str, attributes: dict[str, Any]) -> bool:
        return any(s.matches(tag, attributes) for s in self.selectors)


def _parse_selectors(texts: tuple[str, ...], setting: str) -> _SelectorList:
    selectors: list[_Selector] = []
    for text in texts:
        # A blank entry is an empty setting, not a syntax error.
        if text.strip():
            selectors.extend(_parse_selector_list(text, setting))
    return _SelectorList(tuple(selectors))


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


# --- rules -------------------------------------------------------------------------


@dataclass(frozen=True)
class MaskRules:
    """A project's privacy rules, as plain values (see privacy.models)."""

    mask_all_inputs: bool = True
    mask_all_text: bool = False
    mask_selectors: tuple[str, ...] = (".ph-mask", "[data-ph-mask]")
    block_selectors: tuple[str, ...] = (".ph-no-capture", "[data-ph-no-capture]")
    unmask_selectors: tuple[str, ...] = (".ph-no-mask",)
    scrub_card_numbers: bool = True
    extra_patterns: tuple[str, ...] = ()  # regexes, compiled once
    record_cross_origin_iframes: bool = False


@dataclass(frozen=True, slots=True)
class CompiledRules:
    """MaskRules with selectors parsed and patterns compiled; see compile_rules."""

    rules: MaskRules
    mask: _SelectorList
    block: _SelectorList
    unmask: _SelectorList
    patterns: tuple[re.Pattern[str], ...]


@functools.lru_cache(maxsize=256)
def compile_rules(rules: MaskRules) -> CompiledRules:
    """Parse and compile `rules`; cached, since every batch of a project needs them.

    Raises ValueError naming the setting and the bad selector or pattern, so the
    admin can validate a form with it. `rules` is the cache key: its fields must be
    tuples, not lists. Blank selector and pattern entries are ignored.
    """
    return CompiledRules(
        rules=rules,
        mask=_parse_selectors(rules.mask_selectors, "mask selectors"),
        block=_parse_selectors(rules.block_selectors, "block selectors"),
        unmask=_parse_selectors(rules.unmask_selectors, "unmask selectors"),
        patterns=tuple(_compile_pattern(p) for p in rules.extra_patterns if p),
    )


def _compile_pattern(pattern: str) -> re.Pattern[str]:
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ValueError(
            f"scrub pattern {pattern!r} is not a valid regular expression: {exc}"
        ) from None
    if compiled.fullmatch("") is not None:
        raise ValueError(f"scrub pattern {pattern!r} matches the empty string")
    return compiled


def scrub_text(value: str, rules: CompiledRules) -> tuple[str, int]:
    """Card numbers and admin patterns removed from one string, and how many."""
    scrubbed, cards, patterns = _scrub_string(value, rules)
    return scrubbed, cards + patterns


def _scrub_string(value: str, rules: CompiledRules) -> tuple[str, int, int]:
    cards = patterns = 0
    if rules.rules.scrub_card_numbers:
        value, cards = _scrub_cards(value)
    for pattern in rules.patterns:
        value, hits = _redact(pattern, value)
        patterns += hits
    return value, cards, patterns


# --- state and report --------------------------------------------------------------


@dataclass
class ScrubState:
    """Node ids of one replay track that later batches' mutations may refer to.

    Store `to_dict()` with the recording and pass `from_dict()` of it with the
    session's next batch.
    """

    # Placeholders and everything that was (or was added) under them.
    blocked: set[int] = field(default_factory=set)
    # Nodes under a mask selector, and password inputs.
    masked: set[int] = field(default_factory=set)
    # Nodes under an unmask selector (kept only when a mask-all switch is on).
    unmasked: set[int] = field(default_factory=set)
    # <style>/<script> elements and their text: never text-masked.
    styles: set[int] = field(default_factory=set)
    # Inputs a whole card number was typed into; kept across FullSnapshots.
    card_inputs: set[int] = field(default_factory=set)
    # Too many ids to track: content events are dropped until the next FullSnapshot.
    saturated: bool = False
    # Origin of the window's page ("https://shop.test"), from its last Meta event;
    # kept across FullSnapshots. Only the origin: the URL may hold personal data.
    page_origin: str = ""
    # Same-origin iframe elements (a later `src` change may make them cross-origin).
    frames: set[int] = field(default_factory=set)
    # Cross-origin iframe elements: kept, but nothing is stored inside them.
    foreign_frames: set[int] = field(default_factory=set)

    def to_dict(self) -> dict[str, Any]:
        return {
            "blocked": sorted(self.blocked),
            "masked": sorted(self.masked),
            "unmasked": sorted(self.unmasked),
            "styles": sorted(self.styles),
            "card_inputs": sorted(self.card_inputs),
            "saturated": self.saturated,
            "page_origin": self.page_origin,
            "frames": sorted(self.frames),
            "foreign_frames": sorted(self.foreign_frames),
        }

    @classmethod
    def from_dict(cls, data: Any) -> ScrubState:
        """The state stored by to_dict; tolerant of missing keys and junk values."""
        if not isinstance(data, dict):
            return cls()
        state = cls(
            blocked=_id_set(data.get("blocked")),
            masked=_id_set(data.get("masked")),
            unmasked=_id_set(data.get("unmasked")),
            styles=_id_set(data.get("styles")),
            card_inputs=set(
                sorted(_id_set(data.get("card_inputs")))[:_MAX_CARD_INPUTS]
            ),
            saturated=data.get("saturated") is True,
            page_origin=_text(data.get("page_origin")),
            frames=_id_set(data.get("frames")),
            foreign_frames=_id_set(data.get("foreign_frames")),
        )
        state.check_size()
        return state

    def tracked(self) -> int:
        return (
            len(self.blocked)
            + len(self.masked)
            + len(self.unmasked)
            + len(self.styles)
            + len(self.frames)
            + len(self.foreign_frames)
        )

    def reset(self) -> None:
        """Forget the page's nodes (a FullSnapshot describes them all again)."""
        self.blocked.clear()
        self.masked.clear()
        self.unmasked.clear()
        self.styles.clear()
        self.frames.clear()
        self.foreign_frames.clear()
        self.saturated = False

    def check_size(self) -> None:
        if self.tracked() > MAX_TRACKED_IDS:
            self.reset()
            self.saturated = True

    def add_card_input(self, node_id: int) -> None:
        if len(self.card_inputs) < _MAX_CARD_INPUTS:
            self.card_inputs.add(node_id)


def _id_set(value: Any) -> set[int]:
    if not isinstance(value, list):
        return set()
    return {item for item in value if type(item) is int}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


@dataclass(frozen=True)
class ScrubReport:
    """What one scrub_events call changed (counts of values, not characters)."""

    inputs_masked: int
    texts_masked: int
    # Placeholders made plus mutation adds dropped under blocked elements.
    nodes_blocked: int
    cards_scrubbed: int
    patterns_scrubbed: int
    events_dropped: int
    # Cross-origin frame documents not kept (snapshot children or mutation adds).
    frames_dropped: int = 0


# --- the scrubber ------------------------------------------------------------------


def scrub_events(
    events: list[dict[str, Any]], rules: CompiledRules, state: ScrubState
) -> tuple[list[dict[str, Any]], ScrubReport]:
    """Apply `rules` to a batch of plain rrweb events, in place and in order.

    Returns the events kept (the same dicts, changed) and what was done; `state` is
    updated for the next batch of the same replay track.
    """
    scrubber = _Scrubber(rules, state)
    scrubber.find_card_inputs(events)
    kept: list[dict[str, Any]] = []
    dropped = 0
    for event in events:
        if not isinstance(event, dict) or scrubber.event(event):
            kept.append(event)
        else:
            dropped += 1
        state.check_size()
    return kept, scrubber.report(dropped)


class _Scrubber:
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
                and event.get("type") == _INCREMENTAL
                and data.get("source") == _SOURCE_INPUT
                and (node_id := _node_id(data.get("id"))) is not None
                and isinstance(text := data.get("text"), str)
                and _scrub_cards(text)[1]
            ):
                self.state.add_card_input(node_id)

    # --- events --------------------------------------------------------------------

    def event(self, event: dict[str, Any]) -> bool:
        """Scrub one event; False if it must be dropped."""
        kind = event.get("type")
        data = event.get("data")
        if kind == _FULL_SNAPSHOT:
            return self.full_snapshot(data)
        if not isinstance(data, dict):
            return True
        if kind == _INCREMENTAL:
            return self.incremental(data)
        if kind == _META:
            self.field(data, "href")
            # From the scrubbed URL: a host a pattern redacted makes frames foreign.
            self.state.page_origin = _origin(_text(data.get("href")))
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
        if source == _SOURCE_MUTATION:
            return self.mutation(data)
        if source == _SOURCE_INPUT:
            return self.input(data)
        if source == _SOURCE_LOG:
            self.strings(data)
            return True
        # Mouse moves only carry coordinates; anything else aimed at a blocked node
        # (canvas drawing, media, scroll, style changes) goes.
        return source == _SOURCE_MOUSE_MOVE or not self.is_blocked(data.get("id"))

    def input(self, data: dict[str, Any]) -> bool:
        node_id = _node_id(data.get("id"))
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
                for r in _dicts(data["removes"])
                if not self.is_blocked(r.get("parentId"))
                and r.get("parentId") not in self.state.foreign_frames
            ]
        return not had_changes or any(data[name] for name in present)

    def adds(self, adds: list[Any]) -> list[Any]:
        items = list(_dicts(adds))
        keep = [True] * len(items)
        for index in _parents_first(items):
            keep[index] = self.add(items[index])
        return [item for item, kept in zip(items, keep, strict=True) if kept]

    def add(self, add: dict[str, Any]) -> bool:
        parent = _node_id(add.get("parentId"))
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
        for change in _dicts(changes):
            node_id = _node_id(change.get("id"))
            if self.is_blocked(node_id):
                continue
            value = change.get("value")
            if isinstance(value, str):
                change["value"] = self.text(value, self.text_masked_by_id(node_id))
            kept.append(change)
        return kept

    def attribute_changes(self, changes: list[Any]) -> list[Any]:
        kept: list[Any] = []
        for change in _dicts(changes):
            node_id = _node_id(change.get("id"))
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
        if node_id is not None and _is_password("input", attributes):
            self.state.masked.add(node_id)
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
        node_id = _node_id(node.get("id"))
        if kind == _ELEMENT_NODE:
            return self.element(node, node_id, inherited)
        if kind == _TEXT_NODE:
            self.text_node(node, node_id, inherited, parent_tag)
        elif kind != _DOCUMENT_NODE:
            # Comments, CDATA: not shown, but stored.
            self.field(node, "textContent")
        self.remember(node_id, inherited, parent_tag in _RAW_TEXT_TAGS)
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
            _is_password(tag, attributes) or self.compiled.mask.matches(tag, attributes)
        ):
            mode = _MASKED
        elif inherited == _PLAIN and self.compiled.unmask.matches(tag, attributes):
            mode = _UNMASKED
        self.remember(node_id, mode, tag in _RAW_TEXT_TAGS)
        for key, value in attributes.items():
            if not isinstance(value, str):
                continue
            if key == "value" and tag in _INPUT_TAGS:
                masked = self.input_masked(mode, node_id, _shows_label(tag, attributes))
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
        raw = parent_tag in _RAW_TEXT_TAGS or bool(node.get("isStyle"))
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
            for name in _PLACEHOLDER_ATTRIBUTES
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
        node_id = _node_id(node.get("id"))
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
        return _is_cross_origin_frame(attributes, self.state.page_origin)

    def block_ids(self, root: Any) -> None:
        """Remember every id in a subtree that is not stored."""
        stack = [root]
        while stack:
            node = stack.pop()
            if not isinstance(node, dict):
                continue
            node_id = _node_id(node.get("id"))
            if node_id is not None:
                self.state.blocked.add(node_id)
            children = node.get("childNodes")
            if isinstance(children, list):
                stack.extend(children)

    # --- decisions -----------------------------------------------------------------

    def is_blocked_element(self, node: Any) -> bool:
        if not self.compiled.block.selectors or not isinstance(node, dict):
            return False
        if node.get("type") != _ELEMENT_NODE:
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

    def input_masked(self, mode: int, node_id: int | None, shows_label: bool) -> bool:
        if mode == _MASKED or node_id in self.state.card_inputs:
            return True
        return self.rules.mask_all_inputs and mode != _UNMASKED and not shows_label

    def input_masked_by_id(self, node_id: int | None) -> bool:
        return self.input_masked(self.mode_of(node_id), node_id, False)

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
        if self.rules.scrub_card_numbers and _CARD_BEING_TYPED.fullmatch(value):
            self.cards_scrubbed += 1
            return value.translate(_STAR_DIGITS)
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
        value, cards, patterns = _scrub_string(value, self.compiled)
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


def _parents_first(items: list[dict[str, Any]]) -> Iterator[int]:
    """Indexes of mutation adds, each after the add of its parent if in the list.

    rrweb does not promise that order, and whether a node is blocked or masked
    depends on its parent's fate.
    """
    index_of: dict[int, int] = {}
    for index, item in enumerate(items):
        node = item.get("node")
        node_id = _node_id(node.get("id")) if isinstance(node, dict) else None
        if node_id is not None:
            index_of.setdefault(node_id, index)
    waiting: dict[int, list[int]] = {}
    ready: list[int] = []
    for index, item in enumerate(items):
        parent = _node_id(item.get("parentId"))
        if parent is not None and index_of.get(parent, index) != index:
            waiting.setdefault(parent, []).append(index)
        else:
            ready.append(index)
    stack = ready[::-1]
    while stack:
        index = stack.pop()
        yield index
        node = items[index].get("node")
        node_id = _node_id(node.get("id")) if isinstance(node, dict) else None
        if node_id is not None:
            stack.extend(waiting.pop(node_id, [])[::-1])
    # A parent cycle (malformed input): what is left goes in list order.
    yield from sorted(index for indexes in waiting.values() for index in indexes)


def _node_id(value: Any) -> int | None:
    # bool is an int subclass; True is no node id.
    return value if type(value) is int else None


# --- origins -----------------------------------------------------------------------

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
# A frame with one of these URLs (or none) shows a document of the page's origin.
_INHERITING_URLS = ("about:", "javascript:")


def _origin(url: str) -> str:
    """The origin of an absolute URL, as scheme://host[:port]; "" if it has none.

    >>> _origin("HTTPS://Shop.Test:443/cart?id=7"), _origin("http://a.test:8080/")
    ('https://shop.test', 'http://a.test:8080')
    >>> _origin("blob:https://shop.test/0f3c"), _origin("data:text/html,hi")
    ('https://shop.test', '')
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:  # a port that is no number, a bracket left open
        return ""
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme == "blob":  # a blob: URL has the origin of the page that made it
        return _origin(parts.path)
    if not scheme or not host:
        return ""
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def _is_cross_origin_frame(attributes: dict[str, Any], page_origin: str) -> bool:
    """Whether an iframe with these attributes shows another origin's document.

    >>> page = "https://shop.test"
    >>> _is_cross_origin_frame({"rr_src": "https://pay.test/card"}, page)
    True
    >>> _is_cross_origin_frame({"src": "/help", "sandbox": "allow-same-origin"}, page)
    False
    """
    sandbox = attributes.get("sandbox")
    if isinstance(sandbox, str) and "allow-same-origin" not in sandbox.lower().split():
        return True  # an opaque origin, foreign to every other
    if isinstance(attributes.get("srcdoc"), str):
        return False
    url = next(
        (
            value.strip()
            for name in ("src", "rr_src")
            if isinstance(value := attributes.get(name), str) and value.strip()
        ),
        "",
    )
    if not url or url.lower().startswith(_INHERITING_URLS):
        return False
    if not page_origin:
        return True  # cannot tell: fail closed
    try:
        absolute = urljoin(page_origin + "/", url)
    except ValueError:  # an unclosed IPv6 bracket: no origin at all
        return True
    return _origin(absolute) != page_origin


def _is_password(tag: str, attributes: dict[str, Any]) -> bool:
    kind = attributes.get("type")
    return tag == "input" and isinstance(kind, str) and kind.lower() == "password"


def _shows_label(tag: str, attributes: dict[str, Any]) -> bool:
    """Whether an element's value is its visible label, not something typed."""
    kind = attributes.get("type")
    return (
        tag == "input" and isinstance(kind, str) and kind.lower() in _LABEL_INPUT_TYPES
    )


def _dicts(value: Any) -> Iterator[dict[str, Any]]:
    """The objects in a JSON list; anything malformed is skipped."""
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                yield item
