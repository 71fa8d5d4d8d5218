"""A project's privacy rules, and their compiled form the scrubber uses."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from privacy.scrub.regex import Regex, compile_regex
from privacy.scrub.selectors import SelectorList, parse_selectors


@dataclass(frozen=True)
class MaskRules:
    """A project's privacy rules, as plain values (see privacy.models)."""

    mask_all_inputs: bool = True
    mask_all_text: bool = False
    mask_selectors: tuple[str, ...] = (".ph-mask", "[data-ph-mask]")
    block_selectors: tuple[str, ...] = (".ph-no-capture", "[data-ph-no-capture]")
    unmask_selectors: tuple[str, ...] = (".ph-no-mask",)
    scrub_card_numbers: bool = True
    extra_patterns: tuple[str, ...] = ()  # regexes for RE2 (regex.py), compiled once
    record_cross_origin_iframes: bool = False


@dataclass(frozen=True, slots=True)
class CompiledRules:
    """MaskRules with selectors parsed and patterns compiled; see compile_rules."""

    rules: MaskRules
    mask: SelectorList
    block: SelectorList
    unmask: SelectorList
    patterns: tuple[Regex, ...]


@functools.lru_cache(maxsize=256)
def compile_rules(rules: MaskRules) -> CompiledRules:
    """Parse and compile `rules`; cached, since every batch of a project needs them.

    Raises ValueError naming the setting and the bad selector or pattern, so the
    admin can validate a form with it. `rules` is the cache key: its fields must be
    tuples, not lists. Blank selector and pattern entries are ignored.
    """
    return CompiledRules(
        rules=rules,
        mask=parse_selectors(rules.mask_selectors, "mask selectors"),
        block=parse_selectors(rules.block_selectors, "block selectors"),
        unmask=parse_selectors(rules.unmask_selectors, "unmask selectors"),
        patterns=tuple(_compile_pattern(p) for p in rules.extra_patterns if p),
    )


def _compile_pattern(pattern: str) -> Regex:
    try:
        compiled = compile_regex(pattern)
    except ValueError as exc:
        raise ValueError(f"scrub pattern {exc}") from None
    if compiled.fullmatch("") is not None:
        raise ValueError(f"scrub pattern {pattern!r} matches the empty string")
    return compiled
