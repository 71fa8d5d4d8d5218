"""The filter document's JSON Schema, published in the OpenAPI schema so that API
clients can build filters. It describes what `parse_document` accepts; the parser
is the authority (it also checks the limits and cross-field rules)."""

from __future__ import annotations

from typing import Any

from recordings.search.language.document import (
    MARKER_KINDS,
    MAX_TEXT,
    MAX_VALUES,
    MAX_WITHIN_S,
    NUMBER_OPS,
    ORDERS,
    PROBLEMS,
    SET_OPS,
    SIGNALS,
    TEXT_OPS,
    VALUE_TERMS,
    VERSION,
)

_TEXT: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": MAX_TEXT}
_WHEN: dict[str, Any] = {
    "type": "string",
    "description": 'ISO-8601 date or date-time with offset, or relative: "-30m", '
    '"-24h", "-7d", "-2w".',
    "example": "-7d",
}
_NUMBER: dict[str, Any] = {"type": "number", "minimum": 0}
_SCALAR: dict[str, Any] = {"oneOf": [_TEXT, {"type": "number"}, {"type": "boolean"}]}


def _object(
    properties: dict[str, Any], required: tuple[str, ...] = ()
) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = list(required)
    return schema


def _term(
    name: str | list[str], properties: dict[str, Any], *required: str
) -> dict[str, Any]:
    term = {"enum": name if isinstance(name, list) else [name]}
    return _object({"term": term, **properties}, ("term", *required))


_CONDITION = {
    "oneOf": [
        _object(
            {"key": _TEXT, "op": {"enum": list(TEXT_OPS[:4])}, "value": _SCALAR},
            ("key", "op", "value"),
        ),
        _object(
            {
                "key": _TEXT,
                "op": {"enum": list(NUMBER_OPS)},
                "value": {"type": "number"},
            },
            ("key", "op", "value"),
        ),
        _object({"key": _TEXT, "op": {"enum": list(SET_OPS)}}, ("key", "op")),
    ]
}
_CONDITIONS = {"type": "array", "items": _CONDITION, "maxItems": 20}
_SPAN = {"from": _WHEN, "to": _WHEN}
_BOUNDS = {"gte": _NUMBER, "lte": _NUMBER}
_TARGET = {
    "oneOf": [
        _object({"event": _TEXT, "where": _CONDITIONS}, ("event",)),
        _object({"error": {"enum": [True]}}, ("error",)),
        _object({"marker": {"enum": list(MARKER_KINDS)}}, ("marker",)),
    ]
}
_FOLLOWED_BY = _object(
    {
        "within": {
            "type": "number",
            "minimum": 0.001,
            "maximum": MAX_WITHIN_S,
            "description": "Seconds after the event, inclusive.",
        },
        "target": _TARGET,
        "absent": {"type": "boolean"},
    },
    ("within", "target"),
)
_TEXT_MATCH = {"op": {"enum": list(TEXT_OPS)}, "value": _TEXT}
_VALUES = {"type": "array", "items": _TEXT, "minItems": 1, "maxItems": MAX_VALUES}

TERMS: list[dict[str, Any]] = [
    _term("started", _SPAN),
    _term(["duration", "active_time"], _BOUNDS),
    _term(list(VALUE_TERMS), {"in": _VALUES}, "in"),
    _term(
        "person",
        {
            "key": _TEXT,
            "op": {"enum": [*TEXT_OPS[:4], *NUMBER_OPS, *SET_OPS]},
            "value": _SCALAR,
        },
        "key",
        "op",
    ),
    _term("person_first_seen", _SPAN),
    _term(
        "event",
        {
            "name": _TEXT,
            "where": _CONDITIONS,
            "count": _object(_BOUNDS),
            "followed_by": _FOLLOWED_BY,
        },
        "name",
    ),
    _term("feature_flag", {"flag": _TEXT, "value": _SCALAR}, "flag"),
    _term(["url", "first_url"], _TEXT_MATCH, "op", "value"),
    _term("signal", {"signal": {"enum": list(SIGNALS)}, **_BOUNDS}, "signal"),
    _term(
        "sdk",
        {
            "lib": _TEXT,
            "version": _object(
                {"op": {"enum": ["equals", "starts_with"]}, "value": _TEXT},
                ("op", "value"),
            ),
        },
    ),
    _term("playability", {"problem": {"enum": list(PROBLEMS)}}, "problem"),
    _term("legal_hold", {"value": {"type": "boolean"}}, "value"),
    _term("tag", {"in": _VALUES}, "in"),
    _term("commented", {"by": {"enum": ["anyone", "me"]}, "contains": _TEXT}),
    _term("viewed", {"by": {"enum": ["me"]}}),
    _term(
        "in_playlist", {"playlist": {"type": "string", "format": "uuid"}}, "playlist"
    ),
]


def _document(node_ref: str) -> dict[str, Any]:
    return {
        "title": "RecordingFilter",
        "description": "A filter over recordings (docs/filter-language.md), version 1.",
        "type": "object",
        "properties": {
            "version": {"enum": [VERSION]},
            "where": {"$ref": node_ref},
            "order": {"enum": list(ORDERS), "default": "newest"},
        },
        "required": ["version"],
        "additionalProperties": False,
    }


def _node(node_ref: str) -> dict[str, Any]:
    groups = [
        _object({"all": {"type": "array", "items": {"$ref": node_ref}}}, ("all",)),
        _object({"any": {"type": "array", "items": {"$ref": node_ref}}}, ("any",)),
        _object({"not": {"$ref": node_ref}}, ("not",)),
    ]
    return {
        "description": "A group (all, any, not) or a term.",
        "oneOf": [*groups, *TERMS],
    }


# A standalone JSON Schema (draft 2020-12) of the document.
DOCUMENT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    **_document("#/$defs/node"),
    "$defs": {"node": _node("#/$defs/node")},
}


def openapi_components() -> dict[str, dict[str, Any]]:
    """The document as OpenAPI schema components: RecordingFilter and its node."""
    node_ref = "#/components/schemas/RecordingFilterNode"
    return {
        "RecordingFilter": _document(node_ref),
        "RecordingFilterNode": _node(node_ref),
    }
