"""rrweb's wire vocabulary: event types, incremental sources, node types.

One place for the numbers rrweb puts on the wire (wire-protocol §5; rrweb's
`EventType`, `IncrementalSource`, `NodeType`, `MouseInteractions`), read by
capture's parsing and stats and by the privacy firewall. Plain int constants, not
an IntEnum: events come from JSON as plain ints, and the hot path compares each
event's `type` and `source` against module globals, which costs no attribute
lookup on a class. Pure: imports nothing from Django or the apps.
"""

from __future__ import annotations

__all__ = [
    "ANNOTATION",
    "ASSET",
    "CONSOLE_PLUGIN",
    "CUSTOM",
    "DOCUMENT_NODE",
    "ELEMENT_NODE",
    "FULL_SNAPSHOT",
    "INCREMENTAL",
    "INTERACTION_CLICK",
    "KNOWN_EVENT_TYPES",
    "KNOWN_INCREMENTAL_SOURCES",
    "META",
    "NETWORK_PLUGIN",
    "PLUGIN",
    "SOURCE_ADOPTED_STYLE_SHEET",
    "SOURCE_CANVAS_MUTATION",
    "SOURCE_CUSTOM_ELEMENT",
    "SOURCE_DRAG",
    "SOURCE_FONT",
    "SOURCE_INPUT",
    "SOURCE_LOG",
    "SOURCE_MEDIA_INTERACTION",
    "SOURCE_MOUSE_INTERACTION",
    "SOURCE_MOUSE_MOVE",
    "SOURCE_MUTATION",
    "SOURCE_SCROLL",
    "SOURCE_SELECTION",
    "SOURCE_STYLE_DECLARATION",
    "SOURCE_STYLE_SHEET_RULE",
    "SOURCE_TOUCH_MOVE",
    "SOURCE_VIEWPORT_RESIZE",
    "TEXT_NODE",
    "TYPES_WITH_DATA",
]

# EventType
FULL_SNAPSHOT = 2
INCREMENTAL = 3  # IncrementalSnapshot
META = 4  # starts a page, carries its URL
CUSTOM = 5
PLUGIN = 6
ASSET = 7  # rrweb >= 2.2
ANNOTATION = 8  # rrweb >= 2.2
# EventType 0 (DomContentLoaded) .. 8 (Annotation).
KNOWN_EVENT_TYPES: frozenset[int] = frozenset(range(9))
# rrweb always gives these event types a `data` object.
TYPES_WITH_DATA: frozenset[int] = frozenset(
    {FULL_SNAPSHOT, INCREMENTAL, META, CUSTOM, PLUGIN}
)

# IncrementalSource (an Incremental event's `data.source`)
SOURCE_MUTATION = 0
SOURCE_MOUSE_MOVE = 1
SOURCE_MOUSE_INTERACTION = 2
SOURCE_SCROLL = 3
SOURCE_VIEWPORT_RESIZE = 4
SOURCE_INPUT = 5
SOURCE_TOUCH_MOVE = 6
SOURCE_MEDIA_INTERACTION = 7
SOURCE_STYLE_SHEET_RULE = 8
SOURCE_CANVAS_MUTATION = 9
SOURCE_FONT = 10
SOURCE_LOG = 11
SOURCE_DRAG = 12
SOURCE_STYLE_DECLARATION = 13
SOURCE_SELECTION = 14
SOURCE_ADOPTED_STYLE_SHEET = 15
SOURCE_CUSTOM_ELEMENT = 16
# IncrementalSource 0 (Mutation) .. 16 (CustomElement).
KNOWN_INCREMENTAL_SOURCES: frozenset[int] = frozenset(range(17))

# MouseInteractions (a MouseInteraction event's `data.type`)
INTERACTION_CLICK = 2

# NodeType (a serialised node's `type`)
DOCUMENT_NODE = 0
ELEMENT_NODE = 2
TEXT_NODE = 3

# The console plugin's name in a Plugin event's `data.plugin`.
CONSOLE_PLUGIN = "rrweb/console@1"
# posthog-js's network plugin (wire-protocol §5): `payload.requests[]`.
NETWORK_PLUGIN = "rrweb/network@1"
