"""The filter language (docs/filter-language.md): one JSON document that finds
recordings the same way in the admin, the API and playlists.

Pure: the document's model, validation and JSON Schema. The compilation into one
ORM query lives next to the recording queryset (recordings/models/search.py).
"""

from recordings.search.document import (
    Document,
    FilterInvalid,
    Problem,
    decode_json_document,
    parse_document,
    parse_json_document,
)
from recordings.search.schema import DOCUMENT_SCHEMA

__all__ = [
    "DOCUMENT_SCHEMA",
    "Document",
    "FilterInvalid",
    "Problem",
    "decode_json_document",
    "parse_document",
    "parse_json_document",
]
