"""Regular expressions a project admin writes, run by RE2: linear time, always.

Python's `re` backtracks: a pattern such as `(a+)+$` takes exponential time on a
string that almost matches, and capture runs the admin's scrub patterns and URL
blocklist on every string of every batch, so one such line would hold every
capture worker of the project. RE2 (google-re2, module `re2`) matches in time
linear in the text whatever the pattern, and refuses at compile time what it
cannot do that way: backreferences, lookahead and lookbehind, possessive
quantifiers, atomic groups, `\\Z`. Its `\\w`, `\\d`, `\\s` and `\\b` are ASCII-only;
`\\pL` and `\\p{N}` match letters and digits of every script.

The firewall's own patterns (cards.py, selectors.py) stay on `re`: they are ours,
fixed, and written so that matching stays linear in the text.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Protocol, cast

import re2

__all__ = ["Match", "Regex", "compile_regex"]

_WHY = (
    "cannot be run by RE2, the engine ReplayHub runs patterns with so that matching "
    "takes linear time: it has no lookahead or lookbehind, backreferences, "
    "possessive quantifiers or atomic groups, and repeats at most 1000 times"
)


class Match(Protocol):
    def start(self) -> int: ...

    def end(self) -> int: ...


class Regex(Protocol):
    """What the firewall and the recording rules use of a compiled pattern."""

    @property
    def pattern(self) -> str: ...

    def search(self, text: str) -> Match | None: ...

    def fullmatch(self, text: str) -> Match | None: ...

    def sub(self, repl: Callable[[Match], str], text: str) -> str: ...


@functools.cache
def _options() -> object:
    options = re2.Options()
    # Refusals are answered with a message; RE2 need not also print them.
    options.log_errors = False
    return options


def compile_regex(pattern: str) -> Regex:
    """`pattern` compiled by RE2; ValueError saying why when RE2 cannot run it."""
    try:
        return cast(Regex, re2.compile(pattern, options=_options()))
    except re2.error as exc:
        raise ValueError(_refusal(pattern, exc)) from None


def _refusal(pattern: str, exc: Exception) -> str:
    detail = exc.args[0] if exc.args else ""
    if isinstance(detail, bytes):
        detail = detail.decode("utf-8", "replace")
    # The line as the admin typed it, backslashes and all (repr would double them).
    if _python_compiles(pattern):
        return f"'{pattern}' {_WHY} (RE2 says: {detail})"
    return f"'{pattern}' is not a valid regular expression: {detail}"


def _python_compiles(pattern: str) -> bool:
    # Only compiled, never matched: tells "a feature RE2 lacks" from a typo.
    try:
        re.compile(pattern)
    except re.error:
        return False
    return True
