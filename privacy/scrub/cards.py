"""Card numbers and admin patterns: found and scrubbed in any one string."""

from __future__ import annotations

import re
from collections.abc import Iterator

from privacy.scrub.regex import Match, Regex
from privacy.scrub.rules import CompiledRules

REDACTED = "[REDACTED]"

_MIN_CARD_DIGITS = 13
_MAX_CARD_DIGITS = 19
# A run of 13+ ASCII digits, single spaces/dashes (or a no-break space) allowed
# between them. This is the cheap precheck: most strings fail it at once. These
# patterns are ours and stay on `re`: every repetition must take a digit and
# nothing follows the open-ended one, so a start that fails gives up within 13
# digits and matching stays linear in the text.
_CARD_RUN = re.compile(r"[0-9](?:[ \-\u00a0]?[0-9]){12,}")
_DIGIT_GROUP = re.compile(r"[0-9]+")
# A whole input value that is only digits and separators, 12-19 digits: a card
# being typed (12 known digits leave ~1000 candidates for a 16-digit card). No
# card starts with 0, phone numbers often do ("0049 ...", "030 ...").
CARD_BEING_TYPED = re.compile(r"\s*[1-9](?:[ \-\u00a0]?[0-9]){11,18}\s*")
STAR_DIGITS = str.maketrans("0123456789", "*" * 10)


def luhn_valid(digits: str) -> bool:
    """Whether an all-ASCII-digit string passes the Luhn checksum (any length >= 1).

    >>> luhn_valid("4242424242424242"), luhn_valid("4242424242424241")
    (True, False)
    """
    if not digits or not digits.isascii() or not digits.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = ord(char) - 48
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _card_spans(run: str) -> Iterator[tuple[int, int]]:
    """Card numbers in one digit run, as (start, end) offsets into the run.

    A card is a sequence of whole digit groups holding 13-19 digits in all; the
    longest Luhn-valid one from each group wins. Groups never split, so a long
    unbroken run (an id, a hash) hides no card inside it, while "card 4242 4242 4242
    4242 123" still finds the card before the CVC.
    """
    groups = [match.span() for match in _DIGIT_GROUP.finditer(run)]
    first = 0
    while first < len(groups):
        last = _longest_card(run, groups, first)
        if last is None:
            first += 1
            continue
        yield groups[first][0], groups[last][1]
        first = last + 1


def _longest_card(run: str, groups: list[tuple[int, int]], first: int) -> int | None:
    digits = ""
    candidates: list[tuple[int, str]] = []
    for index in range(first, len(groups)):
        start, end = groups[index]
        digits += run[start:end]
        if len(digits) > _MAX_CARD_DIGITS:
            break
        if len(digits) >= _MIN_CARD_DIGITS:
            candidates.append((index, digits))
    for index, number in reversed(candidates):
        if _could_be_card(number) and luhn_valid(number):
            return index
    return None


def _could_be_card(number: str) -> bool:
    """Whether an issuer could have given out this number (Luhn checked apart).

    Rules out what Luhn lets through one time in ten and strings are full of:
    millisecond timestamps (13 digits from 1), micro- and nanosecond ones (16 and
    19 from 1) and zero-padded numbers. No payment card starts with 0; only UATP
    (15 digits) starts with 1; only Visa ever issued 13-digit numbers.
    """
    first = number[0]
    if first == "0":
        return False
    if first == "1":
        return len(number) == 15
    return len(number) != _MIN_CARD_DIGITS or first == "4"


def scrub_cards(value: str) -> tuple[str, int]:
    if len(value) < _MIN_CARD_DIGITS:
        return value, 0
    first = _CARD_RUN.search(value)
    if first is None:
        return value, 0
    pieces: list[str] = []
    done = 0
    count = 0
    for match in _CARD_RUN.finditer(value, first.start()):
        offset, run = match.start(), match.group()
        for start, end in _card_spans(run):
            pieces.append(value[done : offset + start])
            pieces.append(run[start:end].translate(STAR_DIGITS))
            done = offset + end
            count += 1
    if not count:
        return value, 0
    pieces.append(value[done:])
    return "".join(pieces), count


def _redact(pattern: Regex, value: str) -> tuple[str, int]:
    if pattern.search(value) is None:
        return value, 0
    hits = 0

    def replace(match: Match) -> str:
        nonlocal hits
        # An empty match (a pattern like `\b`) would insert text, not remove it.
        if match.start() == match.end():
            return ""
        hits += 1
        return REDACTED

    redacted = pattern.sub(replace, value)
    return (redacted, hits) if hits else (value, 0)


def scrub_text(value: str, rules: CompiledRules) -> tuple[str, int]:
    """Card numbers and admin patterns removed from one string, and how many."""
    scrubbed, cards, patterns = scrub_string(value, rules)
    return scrubbed, cards + patterns


def scrub_string(value: str, rules: CompiledRules) -> tuple[str, int, int]:
    cards = patterns = 0
    if rules.rules.scrub_card_numbers:
        value, cards = scrub_cards(value)
    for pattern in rules.patterns:
        value, hits = _redact(pattern, value)
        patterns += hits
    return value, cards, patterns
