"""recordings.ingest.storable: NUL-free text and JSON, nesting depth (no DB)."""

from __future__ import annotations

import doctest
from typing import Any

import pytest

from recordings.ingest import storable
from recordings.ingest.storable import clean_json, clean_text, nesting_depth


def test_the_doctests_hold() -> None:
    assert doctest.testmod(storable).failed == 0


def test_it_replaces_each_nul_in_text() -> None:
    assert clean_text("a\x00b\x00") == "a\ufffdb\ufffd"
    plain = "no nul here"
    assert clean_text(plain) is plain


def test_it_cleans_keys_and_strings_at_every_level_in_place() -> None:
    value: dict[str, Any] = {
        "first": 1,
        "k\x00": "v\x00",
        "list": ["\x00", 2, {"deep\x00": ["x\x00"]}],
        "last": None,
    }
    inner = value["list"]
    assert clean_json(value) == 4
    assert value == {
        "first": 1,
        "k\ufffd": "v\ufffd",
        "list": ["\ufffd", 2, {"deep\ufffd": ["x\ufffd"]}],
        "last": None,
    }
    assert list(value) == ["first", "k\ufffd", "list", "last"]  # order kept
    assert value["list"] is inner


def test_it_keeps_apart_keys_that_differ_only_by_a_nul() -> None:
    value = {"a": 1, "a\x00": 2}
    clean_json(value)
    assert value == {"a": 1, "a\ufffd": 2}


@pytest.mark.parametrize(
    ("value", "depth"),
    [
        pytest.param("text", 0, id="scalar"),
        pytest.param({}, 1, id="empty-object"),
        pytest.param([[], {"a": [1]}], 3, id="mixed"),
    ],
)
def test_it_measures_depth(value: Any, depth: int) -> None:
    assert nesting_depth(value) == depth
    assert clean_json(value) == depth


def test_it_walks_any_depth_without_recursion() -> None:
    value: Any = "x\x00"
    for _ in range(50_000):
        value = [value]
    assert nesting_depth(value) == 50_000
    assert nesting_depth(value, stop_past=512) == 513
    assert clean_json(value) == 50_000
