"""The feature flags a session ran with, as the recording keeps them for filtering.

posthog-js puts `$feature/<flag>: <value>` on every analytics event for each flag
it has evaluated. The filter language's `feature_flag` term asks whether any event
of the session had a flag at a value; reading every event of every session for
that is the slowest term at a million recordings (docs/benchmarks/query.md). So the
signals computation, which reads the session's events anyway, folds them into one
small object on the recording:

    {"<flag>": {"<value key>": true, ..., "*": true}, ...}

Values are keys so that "had the value V" is a key lookup, which SQLite and
PostgreSQL evaluate the same way: `true` and `false` for booleans (most flags),
`s:<text>` for a variant (percent-encoded: SQLite's JSON paths cannot address a
key holding a quote or a backslash), `n:<number>` for a number; and `*` when the
flag had any value other than false (it was active), so that "active" is a key
lookup too. Pure: no Django.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

FLAG_PREFIX = "$feature/"
# A session rarely evaluates more than a few dozen flags; a runaway client's
# thousands must not grow the recording's row without bound.
MAX_FLAGS = 200
MAX_VALUES_PER_FLAG = 10
MAX_VALUE_CHARS = 200

FlagValues = dict[str, dict[str, bool]]
# The key that says a flag was active (had a value other than false).
ACTIVE = "*"


def flag_value_key(value: bool | str | float) -> str:
    """The key a flag's value is kept under (1.0 is 1, as jsonb compares them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "s:" + quote(value, safe="")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return "n:" + json.dumps(value)


def feature_flags_of(properties: Iterable[Mapping[str, Any]]) -> FlagValues:
    """Every `$feature/<flag>` value seen in these events' properties, per flag."""
    flags: FlagValues = {}
    for props in properties:
        for key, value in props.items():
            if not key.startswith(FLAG_PREFIX):
                continue
            flag = key.removeprefix(FLAG_PREFIX)
            if not flag or not _plain(value):
                continue
            values = flags.get(flag)
            if values is None:
                if len(flags) >= MAX_FLAGS:
                    continue
                values = flags[flag] = {}
            seen = flag_value_key(value)
            if len(seen) <= MAX_VALUE_CHARS and len(values) < MAX_VALUES_PER_FLAG:
                values[seen] = True
            if value is not False:
                values[ACTIVE] = True
    return flags


def _plain(value: Any) -> bool:
    """Flag values are booleans, strings (variants) or numbers; payloads are not."""
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, bool | str | int)
