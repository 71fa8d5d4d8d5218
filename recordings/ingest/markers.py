"""The records signals.py hands out: marker kinds, markers, pages, analytics rows.

Also the few readers every signals module shares: labels cut to LABEL_MAX, JSON
values read defensively. Pure: no Django.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard
from urllib.parse import urlsplit

LABEL_MAX = 200
URL_MAX = 2048
_TEXT_IN_LABEL = 40


class Kind:
    """Marker kinds (stored in a CharField(max_length=20))."""

    CUSTOM_EVENT = "custom_event"
    EXCEPTION = "exception"
    CONSOLE_ERROR = "console_error"
    NETWORK_ERROR = "network_error"
    RAGE_CLICK = "rage_click"
    DEAD_CLICK = "dead_click"
    MOUSE_THRASH = "mouse_thrash"
    U_TURN = "u_turn"
    ERROR_CLICK = "error_click"
    PAGE = "page_change"
    ALL: tuple[str, ...] = (
        CUSTOM_EVENT,
        EXCEPTION,
        CONSOLE_ERROR,
        NETWORK_ERROR,
        RAGE_CLICK,
        DEAD_CLICK,
        MOUSE_THRASH,
        U_TURN,
        ERROR_CLICK,
        PAGE,
    )


@dataclass(frozen=True, slots=True)
class Marker:
    timestamp_ms: int
    window_id: str
    kind: str
    label: str  # short, human, <= LABEL_MAX characters
    details: dict[str, Any]  # JSON-able


@dataclass(frozen=True, slots=True)
class AnalyticsEvent:
    """A row of the session's analytics events (posthog-js /e/ events)."""

    name: str
    timestamp_ms: int
    window_id: str  # properties["$window_id"] or ""
    properties: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Page:
    url: str
    timestamp_ms: int
    window_id: str


def element_label(element: Mapping[str, Any]) -> str:
    """`button#pay "Pay now"`, as much of it as is known."""
    label = text_of(element.get("tag")) or "element"
    if element_id := text_of(element.get("id")):
        label += f"#{element_id}"
    if text := text_of(element.get("text")):
        label += f' "{text[:_TEXT_IN_LABEL]}"'
    return label


def url_path(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    return parts.path or url


def cut(label: str) -> str:
    label = " ".join(label.split())
    return label if len(label) <= LABEL_MAX else label[: LABEL_MAX - 1] + "…"


def text_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, Mapping | list):
        return ""
    return str(value)


def mapping_of(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
