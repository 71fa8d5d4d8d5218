"""Parse a big JSON document at about twice its size in memory, as orjson would.

orjson holds the input, its own copy of it (yyjson's) and the result at once:
three times a document that is one long string. The standard library's parser
reads a str, so the bytes can go before it starts: a bytearray (what the bounded
gunzip makes) is emptied as soon as it is decoded. Slower than orjson, which is
why capture uses this only for big documents (parse.py).

The answers are orjson's, so that a document is taken or refused the same way
whatever its size: invalid UTF-8, a byte order mark, NaN and infinities (also as
numbers too big for a double), control characters in strings, trailing commas and
lone surrogates are refused; integers outside what orjson keeps as int (-2**63 to
2**64 - 1) become floats, as orjson makes them.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson
import re2

__all__ = ["TooDeep", "count_values", "loads_lean"]

# A \u escape of a UTF-16 surrogate, paired or not (case-insensitive hex).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
# A number orjson would not keep as written: an int of 20 digits or more (or 19
# after a minus sign: outside -2**63 .. 2**64 - 1), or a three-digit exponent (a
# float that may overflow). Not inside a word, so ids and hashes rarely match;
# when a string does, the document only pays for the slower number hooks. RE2 on
# the bytes: Python's `re` takes 35 ms a MB for this pattern, RE2 1.5.
_HUGE_NUMBER = re2.compile(
    rb"(?:^|[^\w.-])(?:-[0-9]{19}|[0-9]{20}|-?[0-9]+(?:\.[0-9]*)?[eE][-+]?[0-9]{3})"
)
_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1
# Past this many digits an int is outside orjson's range anyway; int() of a
# very long digit string is also refused by Python (sys.set_int_max_str_digits).
_MAX_INT_DIGITS = 20


# orjson's JSONDecodeError for input nested past its 1024 levels.
_ORJSON_TOO_DEEP = "depth limit exceeded"


class TooDeep(ValueError):
    """Nested deeper than the parser goes: past orjson's 1024 levels, or past
    Python's recursion limit (some 990 levels) for the standard library's."""


def count_values(raw: bytes | bytearray) -> int:
    """An upper bound on the values in a JSON document, without parsing it.

    Every value but the first of an array or object follows a comma, and every
    array and object opens with a bracket; commas and brackets inside strings
    make it an overestimate. Three scans at memchr speed.
    """
    return raw.count(b",") + raw.count(b"{") + raw.count(b"[") + 1


def loads_lean(raw: bytes | bytearray) -> Any:
    """The JSON value in `raw`; ValueError (with orjson's verdict) if refused.

    A bytearray is emptied: the caller must not need it afterwards.
    """
    # Number hooks make the parser call Python for every number: only a document
    # with a number orjson would not keep as it is (or a string like one) pays.
    numbers: dict[str, Any] = {}
    if _HUGE_NUMBER.search(raw) is not None:
        numbers = {"parse_int": _int, "parse_float": _float}
    text = raw.decode("utf-8")  # strict: invalid UTF-8 raises, as orjson does
    if isinstance(raw, bytearray):
        raw.clear()
    if _SURROGATE_ESCAPE.search(text):
        # Rare: let orjson judge lone and paired surrogates, whatever it costs.
        return _loads_orjson(text)
    try:
        return json.loads(text, parse_constant=_constant, **numbers)
    except RecursionError:
        raise TooDeep("the document is nested too deeply") from None


def _loads_orjson(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        if _ORJSON_TOO_DEEP in str(exc):
            raise TooDeep(str(exc)) from None
        raise


def _int(digits: str) -> int | float:
    if len(digits.lstrip("-")) <= _MAX_INT_DIGITS:
        value = int(digits)
        if _INT_MIN <= value <= _INT_MAX:
            return value
    return _float(digits)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number is infinity when parsed as double: {text[:40]}")
    return value


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")
