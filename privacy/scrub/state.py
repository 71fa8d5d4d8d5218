"""What one replay track's batches carry over to the next, and what a scrub did."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Ids remembered per replay track (blocked + masked + unmasked + styles). Real pages
# have a few thousand nodes; past this the state stops guessing and fails closed
# (see ScrubState.saturated) until the next FullSnapshot.
MAX_TRACKED_IDS = 100_000
# Card fields are few; past this only the "card being typed" check protects them.
_MAX_CARD_INPUTS = 1_000


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
    # Checkboxes and radio buttons: their `value` is the page's, not typed.
    choices: set[int] = field(default_factory=set)

    def to_dict(self) -> dict[str, Any]:
        return {
            "blocked": sorted(self.blocked),
            "masked": sorted(self.masked),
            "unmasked": sorted(self.unmasked),
            "styles": sorted(self.styles),
            "choices": sorted(self.choices),
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
            choices=_id_set(data.get("choices")),
            card_inputs=set(
                sorted(_id_set(data.get("card_inputs")))[:_MAX_CARD_INPUTS]
            ),
            saturated=data.get("saturated") is True,
            page_origin=as_text(data.get("page_origin")),
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
            + len(self.choices)
            + len(self.frames)
            + len(self.foreign_frames)
        )

    def reset(self) -> None:
        """Forget the page's nodes (a FullSnapshot describes them all again)."""
        self.blocked.clear()
        self.masked.clear()
        self.unmasked.clear()
        self.styles.clear()
        self.choices.clear()
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


def as_text(value: Any) -> str:
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
