"""Every column capture fills from client data, through every capture endpoint.

Generated from one table (FIELDS): each client field, the columns it lands in and
what capture does with a value that does not fit (an id is refused, a label cut,
text cleaned of NULs). Each field is sent, on a real posthog-js or rrweb request,
with a NUL and with one character past its column, and every endpoint gets the
extreme timestamps, an event nested past the depth limit and impossible tokens.
Whatever is sent, the answer is never a 5xx and never HTML: either the batch is
stored (the rows and the blob are read back) or a 4xx JSON names what was wrong.

Runs on SQLite and on PostgreSQL (DATABASE_URL), which is the one that refuses a
NUL in text and jsonb and a value longer than its column.
"""

from __future__ import annotations

import copy
import gzip
import itertools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, models, transaction

from recordings.ingest import storable
from recordings.models import Event, Person, Recording, SessionLedger
from recordings.models import SnapshotChunk as Chunk
from recordings.services.compaction import recording_compact
from recordings.services.storage import recording_events
from tests.base import ReplayTestCase
from tests.capture import FIXTURE_TOKEN, decoded, posthog_dir
from tests.fixtures import fixtures_dir

NUL = "\x00"
CAPTURE_MODELS: tuple[type[models.Model], ...] = (
    Recording,
    Chunk,
    SessionLedger,
    Event,
    Person,
)
# Text and JSON columns of those models that capture fills with what it made
# itself, never with client data.
SERVER_MADE = {
    (Chunk, "blob_key"),  # from the ids, each hashed unless short and plain
    (Chunk, "compacted_into"),  # written by compaction
    (SessionLedger, "refusals"),  # refusal codes
    (SessionLedger, "last_refusal"),
    (SessionLedger, "events_dropped"),  # "type 42": from numbers, kinds capped
    (Recording, "window_checks"),  # written by compaction
    # Signals (services/recording_signals.py), computed from the stored events: cut
    # to their columns and cleaned of NULs there
    # (tests/recordings/test_recording_signals.py).
    (Recording, "slowest_request_url"),
    (Recording, "last_url"),
    (Recording, "urls"),
    # Folded from the stored events' properties, which capture cleaned already;
    # flag counts and value lengths are capped (recordings/ingest/flags.py).
    (Recording, "feature_flags"),
    (Recording, "browser"),
    (Recording, "browser_version"),
    (Recording, "os"),
    (Recording, "device_type"),
    (Recording, "country"),  # a checked ISO code (recordings/capture/geo.py), or ""
    # A header, not a body field: cut and cleaned in recordings/capture/endpoints.py,
    # tried in tests/recordings/test_client_environment.py.
    (Recording, "user_agent"),
}

Column = tuple[type[models.Model], str]
Put = Callable[[Any, Any], None]


@dataclass(frozen=True)
class Field:
    """A value a client sends, and where capture stores it."""

    endpoint: str  # a key of ENDPOINTS
    name: str  # what a refusal must mention
    columns: tuple[Column, ...]
    put: Put
    kind: str  # "id": refused; "label": cut to fit; "text"/"json": NULs replaced
    limit: int | None = None  # capture's limit (the columns' max_length)


# --- the requests, built from real captures ---------------------------------------

_serial = itertools.count()


def snapshot_payload() -> list[dict[str, Any]]:
    """posthog-js's first /s/ request of a session (Meta, FullSnapshot, ...)."""
    body = (posthog_dir() / "04-s-gzip-fullsnapshot.body").read_bytes()
    items: list[dict[str, Any]] = json.loads(gzip.decompress(body))
    n = next(_serial)
    for i, item in enumerate(items):
        item["uuid"] = f"edge-batch-{n}-{i}"
        item["properties"]["$session_id"] = f"edge-session-{n}"
        item["properties"]["distinct_id"] = f"edge-person-{n}"
    return items


def events_payload() -> dict[str, Any]:
    """posthog-js's analytics request with an `$exception`, plus a `$set`."""
    payload: dict[str, Any] = copy.deepcopy(decoded("09a-i-v0-e-exception"))
    n = next(_serial)
    for i, item in enumerate(payload["batch"]):
        item["uuid"] = f"edge-event-{n}-{i}"
        item["properties"]["distinct_id"] = f"edge-person-{n}"
        item["$set"] = {"plan": "pro"}
    return payload


def rrweb_payload() -> dict[str, Any]:
    """Plain rrweb's first batch of the signup flow (Meta, FullSnapshot, ...)."""
    events = json.loads((fixtures_dir() / "rrweb" / "signup.json").read_text())
    n = next(_serial)
    return {
        "token": FIXTURE_TOKEN,
        "session_id": f"edge-session-{n}",
        "window_id": f"edge-window-{n}",
        "distinct_id": f"edge-person-{n}",
        "batch_id": f"edge-batch-{n}",
        "events": events[:12],
    }


ENDPOINTS: dict[str, tuple[Callable[[], Any], tuple[str, ...]]] = {
    "snapshot": (snapshot_payload, ("/s/",)),
    "events": (events_payload, ("/e/", "/i/v0/e/", "/batch/")),
    "rrweb": (rrweb_payload, ("/api/v1/ingest/rrweb/",)),
}


def rrweb_events(payload: Any) -> Iterator[dict[str, Any]]:
    if isinstance(payload, dict):
        yield from payload["events"]
    else:
        for item in payload:
            yield from item["properties"]["$snapshot_data"]


def metas(payload: Any) -> Iterator[dict[str, Any]]:
    return (event for event in rrweb_events(payload) if event["type"] == 4)


def first_event(payload: dict[str, Any]) -> dict[str, Any]:
    event: dict[str, Any] = payload["batch"][0]
    return event


# --- where each client field goes -------------------------------------------------


def snapshot_prop(key: str) -> Put:
    def put(payload: Any, value: Any) -> None:
        for item in payload:
            item["properties"][key] = value

    return put


def rrweb_key(key: str) -> Put:
    def put(payload: Any, value: Any) -> None:
        payload[key] = value

    return put


def set_href(payload: Any, value: Any) -> None:
    for meta in metas(payload):
        meta["data"]["href"] = value


def set_uuid(payload: Any, value: Any) -> None:
    payload[0]["uuid"] = value


def event_key(key: str) -> Put:
    def put(payload: Any, value: Any) -> None:
        first_event(payload)[key] = value

    return put


def event_prop(key: str) -> Put:
    def put(payload: Any, value: Any) -> None:
        first_event(payload)["properties"][key] = value

    return put


def property_key(payload: Any, value: Any) -> None:
    first_event(payload)["properties"][value] = "value"


def set_key(payload: Any, value: Any) -> None:
    first_event(payload)["$set"][value] = "pro"


def set_value(payload: Any, value: Any) -> None:
    first_event(payload)["$set"]["plan"] = value


def set_once_value(payload: Any, value: Any) -> None:
    first_event(payload)["$set_once"] = {"first_seen": value}


SESSION = ((Recording, "session_id"), (SessionLedger, "session_id"))
DISTINCT = ((Recording, "distinct_id"), (SessionLedger, "distinct_id"))
PAGE = ((Recording, "first_url"), (SessionLedger, "scrub_state"))
S = storable
FIELDS = (
    Field(
        "snapshot",
        "$session_id",
        SESSION,
        snapshot_prop("$session_id"),
        "id",
        S.SESSION_ID_MAX,
    ),
    Field(
        "snapshot",
        "$window_id",
        ((Chunk, "window_id"),),
        snapshot_prop("$window_id"),
        "id",
        S.WINDOW_ID_MAX,
    ),
    Field(
        "snapshot",
        "distinct_id",
        DISTINCT,
        snapshot_prop("distinct_id"),
        "id",
        S.DISTINCT_ID_MAX,
    ),
    Field("snapshot", "uuid", ((Chunk, "batch_id"),), set_uuid, "id", S.BATCH_ID_MAX),
    Field(
        "snapshot",
        "$lib",
        ((Recording, "lib"),),
        snapshot_prop("$lib"),
        "label",
        S.LIB_MAX,
    ),
    Field(
        "snapshot",
        "$lib_version",
        ((Recording, "lib_version"), (SessionLedger, "lib_version")),
        snapshot_prop("$lib_version"),
        "label",
        S.LIB_VERSION_MAX,
    ),
    Field("snapshot", "href", PAGE, set_href, "label", S.URL_MAX),
    Field(
        "rrweb", "session_id", SESSION, rrweb_key("session_id"), "id", S.SESSION_ID_MAX
    ),
    Field(
        "rrweb",
        "window_id",
        ((Chunk, "window_id"),),
        rrweb_key("window_id"),
        "id",
        S.WINDOW_ID_MAX,
    ),
    Field(
        "rrweb",
        "distinct_id",
        DISTINCT,
        rrweb_key("distinct_id"),
        "id",
        S.DISTINCT_ID_MAX,
    ),
    Field(
        "rrweb",
        "batch_id",
        ((Chunk, "batch_id"),),
        rrweb_key("batch_id"),
        "id",
        S.BATCH_ID_MAX,
    ),
    Field("rrweb", "href", PAGE, set_href, "label", S.URL_MAX),
    Field(
        "events", "uuid", ((Event, "uuid"),), event_key("uuid"), "id", S.EVENT_UUID_MAX
    ),
    # Longer names were refused before (invalid_event); NULs are replaced.
    Field(
        "events",
        "event",
        ((Event, "name"),),
        event_key("event"),
        "text",
        S.EVENT_NAME_MAX,
    ),
    Field(
        "events",
        "distinct_id",
        ((Event, "distinct_id"), (Person, "distinct_id")),
        event_prop("distinct_id"),
        "id",
        S.DISTINCT_ID_MAX,
    ),
    Field(
        "events",
        "$session_id",
        ((Event, "session_id"),),
        event_prop("$session_id"),
        "id",
        S.SESSION_ID_MAX,
    ),
    Field(
        "events",
        "$anon_distinct_id",
        ((Person, "anon_distinct_ids"),),
        event_prop("$anon_distinct_id"),
        "id",
        S.DISTINCT_ID_MAX,
    ),
    Field(
        "events",
        "property value",
        ((Event, "properties"),),
        event_prop("$exception_message"),
        "json",
    ),
    Field("events", "property key", ((Event, "properties"),), property_key, "json"),
    Field("events", "$set key", ((Person, "properties"),), set_key, "json"),
    Field("events", "$set value", ((Person, "properties"),), set_value, "json"),
    Field("events", "$set_once", ((Person, "properties"),), set_once_value, "json"),
)

# Tokens no project can hold: answered like any unknown token.
TOKEN_PLACES: dict[str, tuple[tuple[str, Put], ...]] = {
    "snapshot": (("properties.token", snapshot_prop("token")),),
    "events": (("api_key", rrweb_key("api_key")),),
    "rrweb": (("token", rrweb_key("token")),),
}
BAD_TOKENS = {
    "nul": FIXTURE_TOKEN + NUL,
    "over the column": FIXTURE_TOKEN + "x" * 64,
}
# At the edges of what Python's datetime takes, moved past them by the offset.
ISO_EXTREMES = (
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+23:59",
    "9999-12-31T23:59:59.999999",
    "0001-01-01T00:00:00Z",
    "1970-01-01T00:00:00Z",
)
# rrweb event times that are no time at all: refused.
MS_EXTREMES = (
    253_402_300_800_000,  # past Python's last millisecond
    -62_135_596_800_000,  # 0001-01-01
    1e300,
)
# Times a wrong or typo'd clock gives: corrected (recordings/ingest/clock.py).
MS_WRONG_CLOCK = (
    253_402_300_799_999,  # 9999-12-31T23:59:59.999Z, Python's last millisecond
    0,
)


def nested(levels: int) -> str:
    """A stand-in for a value nested `levels` deep, which `as_json` expands: the
    test's own json.dumps would hit Python's recursion limit on the deepest."""
    return f"@deep:{levels}@"


def nested_list(levels: int) -> str:
    """As `nested`, a list in a list..., as_json expands it."""
    return f"@deep-list:{levels}@"


def as_json(payload: Any) -> bytes:
    text = json.dumps(payload)
    text = re.sub(
        r'"@deep:(\d+)@"',
        lambda m: '{"a":' * int(m[1]) + '"deep"' + "}" * int(m[1]),
        text,
    )
    return re.sub(
        r'"@deep-list:(\d+)@"',
        lambda m: "[" * int(m[1]) + '"deep"' + "]" * int(m[1]),
        text,
    ).encode()


def deep_event(endpoint: str, depth: int) -> tuple[str, Put]:
    """An event nesting exactly `depth` levels (the event object counts as one)."""
    if endpoint == "events":

        def put(payload: Any, _: Any) -> None:
            first_event(payload)["properties"]["deep"] = nested(depth - 2)

    else:
        # A custom event: {type, timestamp, data: {tag, payload: ...}}.
        def put(payload: Any, _: Any) -> None:
            events = next(iter(metas(payload)))
            stamp = events["timestamp"]
            custom = {"type": 5, "timestamp": stamp, "data": {"tag": "deep"}}
            custom["data"]["payload"] = nested(depth - 2)
            if isinstance(payload, dict):
                payload["events"].append(custom)
            else:
                payload[0]["properties"]["$snapshot_data"].append(custom)

    return f"an event nested {depth} levels", put


def set_timestamp(endpoint: str, value: Any) -> Put:
    def put(payload: Any, _: Any) -> None:
        if endpoint == "events":
            first_event(payload)["timestamp"] = value
        else:
            next(iter(rrweb_events(payload)))["timestamp"] = value

    return put


# --- checking what was stored -----------------------------------------------------


def strings_in(value: Any) -> Iterator[str]:
    """Every key and string inside a JSON value."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            yield node
        elif isinstance(node, dict):
            yield from (k for k in node if isinstance(k, str))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def column_value(column: Column, payload: Any, endpoint: str) -> Any:
    """The column's stored value for the request's session, event or person."""
    model, name = column
    lookup = row_lookup(model, payload, endpoint)
    row = model._default_manager.filter(**lookup).values(name).get()
    return row[name]


def row_lookup(
    model: type[models.Model], payload: Any, endpoint: str
) -> dict[str, Any]:
    if endpoint == "events":
        event = first_event(payload)
        if model is Person:
            return {"distinct_id": event["properties"]["distinct_id"]}
        return {"uuid": event["uuid"]}
    session_id = (
        payload["session_id"]
        if endpoint == "rrweb"
        else payload[0]["properties"]["$session_id"]
    )
    if model is Chunk:
        return {"recording__session_id": session_id}
    return {"session_id": session_id}


class CaptureEdgeTests(ReplayTestCase):
    """Never a 5xx, never HTML: stored as documented, or refused naming the field."""

    def setUp(self) -> None:
        super().setUp()
        self.project = self.make_project("Shop", token=FIXTURE_TOKEN)

    def send(
        self, path: str, payload: Any, query: str = "", gzipped: bool = False
    ) -> Any:
        body = as_json(payload)
        if path == "/s/" or gzipped:
            body = gzip.compress(body)  # as posthog-js sends it
        self.client.raise_request_exception = False  # a crash must show as a 500
        # A savepoint per request: on PostgreSQL a failed statement the server
        # answered for would otherwise break every later subtest too.
        try:
            with transaction.atomic():
                return self.client.post(
                    path + query, data=body, content_type="text/plain"
                )
        except DatabaseError as exc:
            self.fail(f"the request left a failed database transaction: {exc}")

    def assert_answered(self, response: Any) -> dict[str, Any]:
        self.assertLess(response.status_code, 500, response.content[:300])
        self.assertTrue(
            response["Content-Type"].startswith("application/json"),
            (response["Content-Type"], response.content[:300]),
        )
        body: dict[str, Any] = response.json()
        return body

    def assert_refused(self, response: Any, names: str, status: int = 400) -> None:
        body = self.assert_answered(response)
        self.assertEqual(response.status_code, status, body)
        said = f"{body.get('error')} {body.get('detail')}"
        self.assertIn(names, said, body)

    def counts(self) -> tuple[int, ...]:
        # Not the ledger: it notes refusals too.
        stored = (Recording, Chunk, Event, Person)
        return tuple(model._default_manager.count() for model in stored)

    def test_it_decides_every_column_capture_fills_from_client_data(self) -> None:
        fed = {column for field in FIELDS for column in field.columns}
        for model in CAPTURE_MODELS:
            for column in model._meta.concrete_fields:
                if isinstance(
                    column, models.CharField | models.TextField | models.JSONField
                ):
                    with self.subTest(f"{model.__name__}.{column.name}"):
                        self.assertIn((model, column.name), fed | SERVER_MADE)

    def test_its_limits_are_the_columns_max_length(self) -> None:
        for field in FIELDS:
            for model, name in field.columns:
                column = model._meta.get_field(name)
                if isinstance(column, models.CharField):
                    with self.subTest(f"{field.endpoint} {field.name} -> {name}"):
                        self.assertEqual(column.max_length, field.limit)

    def test_it_stores_or_refuses_a_nul_in_any_field(self) -> None:
        for field in FIELDS:
            value = "a" + NUL + "b"
            if field.name == "href":
                # In the host too, so the page's origin kept in jsonb holds it.
                value = "https://shop" + NUL + ".test/page" + NUL
            self.check_field(field, value, "nul")

    def test_it_cuts_or_refuses_one_character_past_any_column(self) -> None:
        for field in FIELDS:
            if field.limit is None:
                continue  # jsonb: no length limit
            value = "x" * (field.limit + 1)
            if field.name == "href":
                value = "https://shop.test/" + value[18:]
            self.check_field(field, value, "long")

    def check_field(self, field: Field, value: str, variant: str) -> None:
        make, paths = ENDPOINTS[field.endpoint]
        for path in paths:
            with self.subTest(path=path, field=field.name, value=variant):
                payload = make()
                field.put(payload, value)
                before = self.counts()
                response = self.send(path, payload)
                refused = field.kind == "id" or (
                    field.kind == "text" and variant == "long"
                )
                if refused:
                    self.assert_refused(response, field.name)
                    self.assertEqual(self.counts(), before)
                    continue
                self.assertEqual(self.assert_answered(response), {"status": 1})
                self.assert_stored(field, payload, value)

    def assert_stored(self, field: Field, payload: Any, value: str) -> None:
        for column in field.columns:
            stored = column_value(column, payload, field.endpoint)
            self.assertNotIn(NUL, "".join(strings_in(stored)), column)
            if isinstance(stored, str):
                want = storable.clean_text(value[: field.limit])
                self.assertEqual(stored, want, column)
            elif field.kind == "json":
                cleaned = storable.clean_text(value)
                self.assertIn(cleaned, list(strings_in(stored)), column)
        if field.endpoint != "events":
            # The blob keeps the events as the privacy rules left them, NUL and all.
            session_id = row_lookup(Recording, payload, field.endpoint)["session_id"]
            recording = Recording.objects.get(session_id=session_id)
            stored_events = recording_events(recording=recording)
            hrefs = [e["data"]["href"] for e in stored_events if e["type"] == 4]
            sent = [m["data"]["href"] for m in metas(payload)]
            self.assertEqual(sorted(hrefs), sorted(sent))

    def test_it_answers_a_token_no_project_can_hold_as_unknown(self) -> None:
        for endpoint, places in TOKEN_PLACES.items():
            make, paths = ENDPOINTS[endpoint]
            for (where, put), (what, token) in itertools.product(
                places, BAD_TOKENS.items()
            ):
                for path in paths:
                    with self.subTest(path=path, token=f"{what} in {where}"):
                        payload = make()
                        put(payload, token)
                        response = self.send(path, payload)
                        self.assert_refused(response, "token", 401)
        for what, token in BAD_TOKENS.items():
            with self.subTest(path="/api/v1/ingest/rrweb/", token=f"{what} in ?token="):
                payload = rrweb_payload()
                del payload["token"]
                query = "?token=" + token.replace(NUL, "%00")
                response = self.send("/api/v1/ingest/rrweb/", payload, query)
                self.assert_refused(response, "token", 401)

    def test_it_refuses_extreme_timestamps(self) -> None:
        for endpoint, (make, paths) in ENDPOINTS.items():
            extremes = ISO_EXTREMES if endpoint == "events" else MS_EXTREMES
            for value, path in itertools.product(extremes, paths):
                with self.subTest(path=path, timestamp=value):
                    payload = make()
                    set_timestamp(endpoint, value)(payload, None)
                    before = self.counts()
                    response = self.send(path, payload)
                    self.assert_refused(response, "timestamp")
                    self.assertEqual(self.counts(), before)

    def test_it_corrects_event_times_from_a_wrong_clock(self) -> None:
        for endpoint, (make, paths) in ENDPOINTS.items():
            if endpoint == "events":
                continue  # analytics times are ISO strings, refused above
            for value, path in itertools.product(MS_WRONG_CLOCK, paths):
                with self.subTest(path=path, timestamp=value):
                    payload = make()
                    set_timestamp(endpoint, value)(payload, None)
                    response = self.send(path, payload)
                    self.assertEqual(response.status_code, 200, response.content)
                    # The typo'd event took its neighbour's time: nothing stretched.
                    recording = Recording.objects.latest("id")
                    self.assertLess(recording.duration_ms, 24 * 3600 * 1000)

    def test_it_refuses_events_past_the_depth_limit(self) -> None:
        for endpoint, (make, paths) in ENDPOINTS.items():
            for depth, path in itertools.product(
                (S.MAX_DEPTH, S.MAX_DEPTH + 1, 1030), paths
            ):
                what, put = deep_event(endpoint, depth)
                with self.subTest(path=path, event=what):
                    payload = make()
                    put(payload, None)
                    response = self.send(path, payload)
                    if depth <= S.MAX_DEPTH:
                        self.assertEqual(self.assert_answered(response), {"status": 1})
                    else:
                        self.assert_refused(response, "too_deep")

    def test_it_refuses_an_analytics_id_nested_at_any_depth(self) -> None:
        # Past MAX_DEPTH (600) as past Python's recursion limit (1,000) and
        # orjson's (10,000), as an object or a list, gzipped or not: too_deep.
        _, paths = ENDPOINTS["events"]
        for field, depth, make, path, gzipped in itertools.product(
            ("distinct_id", "$session_id", "$anon_distinct_id"),
            (600, 1_000, 10_000),
            (nested, nested_list),
            paths,
            (False, True),
        ):
            with self.subTest(
                path=path, field=field, depth=depth, kind=make.__name__, gz=gzipped
            ):
                payload = events_payload()
                first_event(payload)["properties"][field] = make(depth)
                before = self.counts()
                response = self.send(path, payload, gzipped=gzipped)
                self.assert_refused(response, "too_deep")
                self.assertEqual(self.counts(), before)

    def test_it_refuses_an_analytics_id_that_is_a_list_or_an_object(self) -> None:
        for field, value in itertools.product(
            ("distinct_id", "$session_id", "$anon_distinct_id"), (["a"], {"a": 1})
        ):
            with self.subTest(field=field, value=value):
                payload = events_payload()
                first_event(payload)["properties"][field] = value
                before = self.counts()
                response = self.send("/i/v0/e/", payload)
                self.assert_refused(response, "invalid_field")
                self.assertIn(field, response.json()["detail"])
                self.assertEqual(self.counts(), before)

    def test_it_shows_and_compacts_events_at_the_depth_limit(self) -> None:
        # The limit leaves room for the frames of an admin page and a compaction.
        _, put = deep_event("events", S.MAX_DEPTH)
        events = events_payload()
        put(events, None)
        first_event(events)["$set"]["deep"] = nested(S.MAX_DEPTH - 3)
        self.assertEqual(self.send("/i/v0/e/", events).status_code, 200)
        _, put = deep_event("rrweb", S.MAX_DEPTH)
        batch = rrweb_payload()
        put(batch, None)
        self.assertEqual(self.send("/api/v1/ingest/rrweb/", batch).status_code, 200)
        self.client.force_login(self.alice)
        event = Event.objects.get(uuid=first_event(events)["uuid"])
        person = Person.objects.get(distinct_id=event.distinct_id)
        for url in (
            f"/admin/recordings/event/{event.pk}/change/",
            f"/admin/recordings/person/{person.pk}/change/",
        ):
            with self.subTest(url):
                self.assertEqual(self.client.get(url).status_code, 200)
        recording = Recording.objects.get(session_id=batch["session_id"])
        recording_compact(recording=recording)
        recording.refresh_from_db()
        self.assertTrue(recording.compacted)
        stored = recording_events(recording=recording)
        self.assertEqual(len(stored), len(batch["events"]))
