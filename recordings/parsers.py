"""The management API's JSON parser: DRF's, bounded in how deep a body nests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from recordings.ingest.storable import nesting_depth

# Lists and objects a management API body may nest. The deepest body the API
# takes is a filter document inside `{"filter": …}`, 17 levels; what walks a body
# after the parser (Python's JSON encoder, for one) recurses once per level.
MAX_BODY_DEPTH = 64


class BodyTooDeep(ParseError):
    default_code = "too_deep"
    default_detail = f"the JSON body nests more than {MAX_BODY_DEPTH} levels deep"


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser, answering 400 `too_deep` past MAX_BODY_DEPTH levels.

    The standard library's parser recurses once per level: about 1,000 levels
    were a RecursionError, a 500. A body it does take is measured without
    recursion before anything else walks it.
    """

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise BodyTooDeep() from None
        if nesting_depth(data, stop_past=MAX_BODY_DEPTH) > MAX_BODY_DEPTH:
            raise BodyTooDeep()
        return data
