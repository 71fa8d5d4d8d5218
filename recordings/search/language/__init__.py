"""The filter language (docs/filter-language.md): one JSON document that finds
recordings the same way in the admin, the API and playlists.

Pure: the document's model, validation and JSON Schema; it imports no Django and
no app (make lint). Its compilation into one ORM query is recordings/search/compiler.py.
"""

from recordings.search.language.document import (
    Document,
    FilterInvalid,
    Problem,
    decode_json_document,
    parse_document,
    parse_json_document,
)
from recordings.search.language.schema import DOCUMENT_SCHEMA

__all__ = [
    "DOCUMENT_SCHEMA",
    "Document",
    "FilterInvalid",
    "Problem",
    "decode_json_document",
    "parse_document",
    "parse_json_document",
]
