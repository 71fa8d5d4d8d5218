"""The pure fold of a session's `$feature/<flag>` values (recordings.ingest.flags)."""

from __future__ import annotations

from typing import Any
from unittest import TestCase

from recordings.ingest.flags import MAX_FLAGS, feature_flags_of, flag_value_key


class FeatureFlagsFoldTests(TestCase):
    def test_every_value_a_session_saw_is_kept_per_flag(self) -> None:
        events = [
            {"$feature/beta": True, "$feature/plan-test": "control", "$pathname": "/"},
            {"$feature/beta": False, "$feature/plan-test": "control"},
            {"$feature/limit": 3.0, "$active_feature_flags": ["beta"]},
        ]
        self.assertEqual(
            feature_flags_of(events),
            {
                # "*": the flag was active (had a value other than false).
                "beta": {"true": True, "false": True, "*": True},
                "plan-test": {"s:control": True, "*": True},
                "limit": {"n:3": True, "*": True},
            },
        )

    def test_a_flag_only_ever_false_was_not_active(self) -> None:
        self.assertEqual(
            feature_flags_of([{"$feature/off": False}, {"$feature/off": False}]),
            {"off": {"false": True}},
        )

    def test_keys_never_hold_a_quote_or_backslash(self) -> None:
        # SQLite's JSON paths cannot address such a key (the term reads it by key).
        key = flag_value_key('say "hi" \\ there')
        self.assertEqual(key, "s:say%20%22hi%22%20%5C%20there")
        self.assertNotEqual(flag_value_key("true"), flag_value_key(True))
        self.assertEqual(flag_value_key(1.0), flag_value_key(1))

    def test_payloads_nulls_and_runaway_clients_are_bounded(self) -> None:
        events: list[dict[str, Any]] = [
            {
                "$feature/": True,
                "$feature/payload": {"a": 1},
                "$feature/none": None,
                "$feature/nan": float("nan"),
            },
            {f"$feature/f{i}": True for i in range(MAX_FLAGS + 50)},
        ]
        flags = feature_flags_of(events)
        self.assertEqual(len(flags), MAX_FLAGS)
        self.assertNotIn("payload", flags)
        self.assertNotIn("none", flags)
        self.assertNotIn("nan", flags)
