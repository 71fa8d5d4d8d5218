"""The filter document's parser alone (pure: no database)."""

from __future__ import annotations

import datetime as dt

from django.test import SimpleTestCase

from recordings.search.language import (
    FilterInvalid,
    parse_document,
    parse_json_document,
)
from recordings.search.language.document import (
    MAX_DOCUMENT_BYTES,
    ColumnRange,
    Condition,
    FollowedBy,
    Group,
    Not,
    Performed,
    Started,
    When,
)

NOW = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)


def problems(data: object) -> list[tuple[str, str]]:
    try:
        parse_document(data)
    except FilterInvalid as exc:
        return [(p.pointer, p.message) for p in exc.problems]
    raise AssertionError(f"{data!r} was accepted")


class DocumentTests(SimpleTestCase):
    def test_the_model_of_a_document(self) -> None:
        document = parse_document(
            {
                "version": 1,
                "where": {
                    "all": [
                        {"term": "duration", "gte": 180},
                        {
                            "not": {
                                "term": "event",
                                "name": "checkout_completed",
                                "where": [{"key": "cart", "op": "gt", "value": 2}],
                                "followed_by": {
                                    "within": 1.5,
                                    "target": {"error": True},
                                },
                            }
                        },
                    ]
                },
                "order": "longest",
            }
        )
        assert isinstance(document.where, Group)
        duration, negated = document.where.nodes
        assert isinstance(duration, ColumnRange)
        self.assertEqual(duration.column, "duration_ms")
        self.assertEqual(duration.bounds.gte, 180_000)  # seconds become ms
        assert isinstance(negated, Not) and isinstance(negated.node, Performed)
        self.assertEqual(negated.node.event.where, (Condition("cart", "gt", 2),))
        assert isinstance(negated.node.followed_by, FollowedBy)
        self.assertEqual(negated.node.followed_by.within_ms, 1500)
        self.assertEqual(document.order, "longest")

    def test_relative_and_absolute_times(self) -> None:
        document = parse_document(
            {
                "version": 1,
                "where": {"term": "started", "from": "-2w", "to": "2026-12-05"},
            }
        )
        assert isinstance(document.where, Started)
        start, end = document.where.span.start, document.where.span.end
        assert isinstance(start, When) and isinstance(end, When)
        self.assertEqual(start.resolve(NOW), NOW - dt.timedelta(weeks=2))
        self.assertEqual(end.resolve(NOW), dt.datetime(2026, 12, 5, tzinfo=dt.UTC))

    def test_pointers_name_the_part(self) -> None:
        self.assertEqual(problems([]), [("", "must be an object")])
        self.assertIn(("/version", "is required"), problems({}))
        found = problems(
            {"version": 1, "where": {"term": "started", "from": "2026-12-01T10:00"}}
        )
        self.assertEqual(found[0][0], "/where/from")
        self.assertIn("offset", found[0][1])
        found = problems(
            {"version": 1, "where": {"term": "duration", "gte": 5, "lte": 1}}
        )
        self.assertEqual(found[0][0], "/where/gte")

    def test_pointers_escape_slashes_and_tildes(self) -> None:
        data = {
            "version": 1,
            "where": {"term": "person", "key": "a", "op": "gt", "value": "x"},
        }
        self.assertEqual(problems(data)[0][0], "/where/value")
        bad_key = {"version": 1, "where": {"term": "browser", "in": ["x"], "a/b~c": 1}}
        self.assertEqual(problems(bad_key)[0][0], "/where/a~1b~0c")

    def test_values_are_checked(self) -> None:
        nul = {"version": 1, "where": {"term": "browser", "in": ["Safari", "x\x00"]}}
        self.assertEqual(problems(nul)[0][0], "/where/in/1")
        many = {"version": 1, "where": {"term": "distinct_id", "in": ["u"] * 1001}}
        self.assertIn("at most 1000", problems(many)[0][1])
        true = {"version": 1, "where": {"term": "duration", "gte": True}}
        self.assertEqual(problems(true)[0], ("/where/gte", "must be a number"))
        both = {
            "version": 1,
            "where": {
                "term": "event",
                "name": "x",
                "count": {"gte": 2},
                "followed_by": {"within": 3, "target": {"error": True}},
            },
        }
        self.assertIn("do not combine", problems(both)[0][1])

    def test_json_text(self) -> None:
        self.assertEqual(parse_json_document('{"version": 1}').where, None)
        with self.assertRaises(FilterInvalid) as caught:
            parse_json_document("x" * (MAX_DOCUMENT_BYTES + 1))
        self.assertIn("at most", caught.exception.problems[0].message)
        with self.assertRaises(FilterInvalid):
            parse_json_document("{")
