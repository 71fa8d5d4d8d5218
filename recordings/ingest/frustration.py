"""Frustration found in one window's rrweb events: rage clicks, dead clicks, thrashing.

Each detector is fed the window's events in time order by signals.py and keeps a
bounded look-back (the current click burst, the clicks still waiting for a
reaction, the last second of pointer turns), so a recording of any length is read
in one linear pass. The thresholds are module constants; the definitions are in
the docstrings of ClickWatch and Thrash. Pure: no Django.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from recordings.ingest.nodes import NodeMap

# Rage click, as posthog-js's RageClick (extensions/rageclick.ts) defines it: each
# click within RAGE_CLICK_GAP_MS of the one before and less than
# RAGE_CLICK_RADIUS_PX away from it (|dx| + |dy|), RAGE_CLICK_COUNT clicks or more.
RAGE_CLICK_COUNT = 3
RAGE_CLICK_GAP_MS = 1000
RAGE_CLICK_RADIUS_PX = 30
# Dead click: no visible reaction this long after the click. posthog-js's
# dead-clicks autocapture waits 2.5 s for a mutation (`mutation_threshold_ms`);
# Sentry waits 7 s but calls a click "slow", not dead, from 3 s on. We take
# posthog-js's 2.5 s: its `$dead_click` events are merged with ours, and a longer
# wait starts crediting the click with what the user's *next* action caused (in
# the browse fixture a 500 response 5.6 s after the dead click).
DEAD_CLICK_WAIT_MS = 2500
# Sentry's rule (replay `getClosestInteractive`): only a click on, or inside, a
# control whose effect must show on the page can be dead. A text field's
# reaction is the caret, which rrweb does not record; checkboxes record an Input.
_CONTROL_TAGS = frozenset({"a", "button", "summary"})
_BUTTON_INPUT_TYPES = frozenset({"button", "submit", "reset", "image"})
_CONTROL_DEPTH = 10  # ancestors searched for the control
# Mouse thrashing: the pointer reverses direction THRASH_TURNS times on one axis
# within THRASH_SPAN_MS, each leg at least THRASH_LEG_PX long (a shake of two
# full back-and-forths in a second, each over a thumb's width of screen).
THRASH_TURNS = 4
THRASH_SPAN_MS = 1000
THRASH_LEG_PX = 50


@dataclass(slots=True)
class Burst:
    """Clicks in quick succession at one spot; a rage click at RAGE_CLICK_COUNT."""

    first_ms: int
    last_ms: int
    node_id: Any
    x: float | None
    y: float | None
    element: dict[str, Any]
    count: int = 1

    def joins(self, stamp: int, node_id: Any, x: float | None, y: float | None) -> bool:
        if stamp - self.last_ms >= RAGE_CLICK_GAP_MS:
            return False
        if node_id is not None and node_id == self.node_id:
            return True
        if x is None or y is None or self.x is None or self.y is None:
            return False
        return abs(x - self.x) + abs(y - self.y) < RAGE_CLICK_RADIUS_PX


@dataclass(frozen=True, slots=True)
class Click:
    timestamp_ms: int
    element: dict[str, Any]


@dataclass(slots=True)
class _Waiting:
    click: Click
    burst: Burst


@dataclass(slots=True)
class ClickWatch:
    """Rage and dead clicks of one window.

    - **Rage click**: RAGE_CLICK_COUNT or more clicks, each less than
      RAGE_CLICK_GAP_MS after the previous one and on the same element (node id)
      or less than RAGE_CLICK_RADIUS_PX from it. Counted once per burst, at its
      first click; `count` grows with the burst.
    - **Dead click**: a click on a control (a link, a button, a button-like input,
      or inside one) after which the window shows no reaction for
      DEAD_CLICK_WAIT_MS: no DOM mutation, navigation (Meta, FullSnapshot, SPA
      navigation event), scroll, input, selection, media or style change. Only the
      first click of a burst is judged (later ones are the user insisting, as in
      posthog-js), and a burst that becomes a rage click is reported as that
      instead. A click whose window has no event after its wait cannot be judged
      and is not counted.
    """

    nodes: NodeMap
    clicks: list[Click] = field(default_factory=list)
    rage: list[Burst] = field(default_factory=list)
    dead: list[Click] = field(default_factory=list)
    _burst: Burst | None = None
    _waiting: deque[_Waiting] = field(default_factory=deque)

    def click(self, stamp: int, data: Mapping[str, Any]) -> None:
        node_id = data.get("id") if _is_int(data.get("id")) else None
        x, y = _number(data.get("x")), _number(data.get("y"))
        element = self.nodes.describe(node_id)
        self.clicks.append(Click(stamp, element))
        burst = self._burst
        if burst is not None and burst.joins(stamp, node_id, x, y):
            burst.count += 1
            burst.last_ms, burst.node_id, burst.x, burst.y = stamp, node_id, x, y
            if burst.count == RAGE_CLICK_COUNT:
                self.rage.append(burst)
            return
        self._burst = Burst(stamp, stamp, node_id, x, y, element)
        control = self._control(node_id)
        if control is not None:
            self._waiting.append(_Waiting(Click(stamp, control), self._burst))

    def tick(self, stamp: int) -> None:
        """Time has reached `stamp`: clicks whose wait ended before it are dead."""
        waiting = self._waiting
        while waiting and waiting[0].click.timestamp_ms + DEAD_CLICK_WAIT_MS < stamp:
            item = waiting.popleft()
            if item.burst.count < RAGE_CLICK_COUNT:
                self.dead.append(item.click)

    def react(self) -> None:
        """The page changed visibly: every click waiting so far had an effect."""
        self._waiting.clear()

    def _control(self, node_id: Any) -> dict[str, Any] | None:
        """The control the click hit (the node or an ancestor), described."""
        current = node_id
        for _ in range(_CONTROL_DEPTH):
            if current is None:
                return None
            tag, kind = self.nodes.input_type(current)
            if tag in _CONTROL_TAGS or (tag == "input" and kind in _BUTTON_INPUT_TYPES):
                return self.nodes.describe(current)
            current = self.nodes.parent(current)
        return None


@dataclass(slots=True)
class _Axis:
    """Direction changes of the pointer along one axis, with LEG_PX hysteresis."""

    direction: int = 0
    extreme: float | None = None

    def turned(self, value: float) -> bool:
        if self.extreme is None:
            self.extreme = value
            return False
        delta = value - self.extreme
        if delta * self.direction > 0:
            self.extreme = value  # still going the same way
            return False
        if abs(delta) < THRASH_LEG_PX:
            return False
        turned = self.direction != 0
        self.direction = 1 if delta > 0 else -1
        self.extreme = value
        return turned


@dataclass(slots=True)
class Episode:
    start_ms: int
    turns: int


@dataclass(slots=True)
class Thrash:
    """Mouse thrashing episodes of one window.

    **Mouse thrashing**: the pointer (mouse move, touch move or drag positions)
    turns back THRASH_TURNS times or more on the same axis within THRASH_SPAN_MS,
    each leg between turns at least THRASH_LEG_PX long. An episode starts at its
    first counted turn and lasts while turns (on either axis) keep coming less
    than THRASH_SPAN_MS apart; it is counted once.
    """

    episodes: list[Episode] = field(default_factory=list)
    _axes: tuple[_Axis, _Axis] = field(default_factory=lambda: (_Axis(), _Axis()))
    _turns: tuple[deque[int], deque[int]] = field(
        default_factory=lambda: (deque(), deque())
    )
    _episode_end: int | None = None

    def move(self, stamp: int, x: float, y: float) -> None:
        for axis, turns, value in zip(self._axes, self._turns, (x, y), strict=True):
            if axis.turned(value):
                self._turn(stamp, turns)

    def _turn(self, stamp: int, turns: deque[int]) -> None:
        if self._episode_end is not None and stamp <= self._episode_end:
            self._episode_end = stamp + THRASH_SPAN_MS
            self.episodes[-1].turns += 1
            return
        turns.append(stamp)
        while stamp - turns[0] > THRASH_SPAN_MS:
            turns.popleft()
        if len(turns) >= THRASH_TURNS:
            self.episodes.append(Episode(turns[0], len(turns)))
            self._episode_end = stamp + THRASH_SPAN_MS
            for axis_turns in self._turns:
                axis_turns.clear()


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if value == value else None  # NaN is no position


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
