"""recordings.ingest.parse against real browser captures and hostile bodies (no DB)."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import gzip
import json
import tracemalloc
import urllib.parse
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recordings.ingest import storable
from recordings.ingest.parse import (
    IngestError,
    PayloadTooLarge,
    SnapshotBatch,
    check_depth,
    decode_body,
    expand_event,
    parse_rrweb_request,
    parse_snapshot_request,
    peek_sessions,
)
from recordings.ingest.rrweb import KNOWN_EVENT_TYPES, KNOWN_INCREMENTAL_SOURCES
from tests.fixtures import fixtures_dir

LIMIT = 16 << 20
BOMB_LIMIT = 8 << 20
FORM = "application/x-www-form-urlencoded"
TOKEN = "phc_replayhub_demo_token"

SNAPSHOT_CAPTURES = [
    "04-s-gzip-fullsnapshot",
    "05-s-gzip-incremental-console-network",
    "06-s-plain-json",
    "07-s-base64-form",
    "08a-s-idle-rotation-session-ending",
    "08b-s-idle-rotation-new-session",
    "10a-s-retry-first-attempt-500",
    "10b-s-retry-attempt-1",
]
OTHER_POST_CAPTURES = [
    "03-flags-gzip",
    "09a-i-v0-e-exception",
    "09b-i-v0-e-rageclick-batch",
    "09c-i-v0-e-dead-click",
    "09d-i-v0-e-custom-event-beacon",
]

META = {"type": 4, "data": {"href": "http://shop.test/", "width": 1}, "timestamp": 1000}
CLICK = {"type": 3, "data": {"source": 2, "type": 2, "id": 7}, "timestamp": 1001}


# --- helpers ---------------------------------------------------------------------


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def packed(value: Any) -> str:
    """A value compressed the way posthog's `cv: "2024-10"` does it."""
    return gz(orjson.dumps(value)).decode("latin-1")


def zeros_gzip(size_mb: int) -> bytes:
    """`size_mb` MiB of zeros, gzipped without ever holding them in memory."""
    compressor = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1 << 20)
    parts = [compressor.compress(block) for _ in range(size_mb)]
    return b"".join([*parts, compressor.flush()])


def snapshot(events: Any, **props: Any) -> dict[str, Any]:
    properties = {
        "$session_id": "sess-1",
        "$window_id": "win-1",
        "$snapshot_data": events,
        "token": TOKEN,
        **props,
    }
    return {"uuid": "uuid-1", "event": "$snapshot", "properties": properties}


def form_body(data: bytes) -> bytes:
    return b"data=" + urllib.parse.quote_from_bytes(data, safe="").encode()


def posthog_dir() -> Path:
    return fixtures_dir() / "posthog-js"


def capture_request(name: str) -> tuple[bytes, dict[str, str]]:
    """A capture's body and the decode_body arguments its request carried."""
    sidecar = json.loads((posthog_dir() / f"{name}.json").read_text())
    headers = {key.lower(): value for key, value in sidecar["headers"]}
    query = urllib.parse.parse_qs(sidecar["query"])
    kwargs = {
        "content_type": headers.get("content-type", ""),
        "content_encoding": headers.get("content-encoding", ""),
        "compression": query.get("compression", [""])[0],
    }
    return (posthog_dir() / f"{name}.body").read_bytes(), kwargs


def decode_capture(name: str) -> Any:
    body, kwargs = capture_request(name)
    return decode_body(body, max_decompressed=LIMIT, **kwargs)


def decoded_copy(name: str) -> Any:
    return json.loads((posthog_dir() / "decoded" / f"{name}.json").read_text())


def parse_capture(name: str) -> list[SnapshotBatch]:
    return parse_snapshot_request(decode_capture(name), max_decompressed=LIMIT)


def refusal(call: Callable[[], object]) -> IngestError:
    with pytest.raises(IngestError) as caught:
        call()
    return caught.value


def peak_bytes_during(call: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        refusal(call)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# --- real posthog-js captures ----------------------------------------------------


@pytest.mark.parametrize("name", SNAPSHOT_CAPTURES)
def test_it_expands_captures_exactly_like_the_decoded_copies(name: str) -> None:
    expected = decoded_copy(name)["payload"]
    batches = parse_capture(name)
    assert [list(b.events) for b in batches] == [
        item["properties"]["$snapshot_data"] for item in expected
    ]
    assert not any("cv" in event for b in batches for event in b.events)


@pytest.mark.parametrize("name", SNAPSHOT_CAPTURES)
def test_it_reads_batch_identity_from_the_snapshot(name: str) -> None:
    expected = decoded_copy(name)["payload"]
    batches = parse_capture(name)
    assert [
        (b.uuid, b.session_id, b.window_id, b.distinct_id, b.lib, b.lib_version)
        for b in batches
    ] == [
        (
            item["uuid"],
            item["properties"]["$session_id"],
            item["properties"]["$window_id"],
            item["properties"]["distinct_id"],
            "web",
            "1.449.2",
        )
        for item in expected
    ]
    assert {b.token for b in batches} == {TOKEN}


@pytest.mark.parametrize("name", SNAPSHOT_CAPTURES)
def test_it_decodes_the_body_around_the_snapshot_data(name: str) -> None:
    def without_data(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {**item, "properties": {**item["properties"], "$snapshot_data": None}}
            for item in items
        ]

    decoded = decode_capture(name)
    assert without_data(decoded) == without_data(decoded_copy(name)["payload"])


def test_it_gives_a_retried_batch_the_same_uuids() -> None:
    first_body, _ = capture_request("10a-s-retry-first-attempt-500")
    retry_body, _ = capture_request("10b-s-retry-attempt-1")
    assert first_body != retry_body
    first_batches = parse_capture("10a-s-retry-first-attempt-500")
    retry_batches = parse_capture("10b-s-retry-attempt-1")
    assert [b.uuid for b in first_batches] == [b.uuid for b in retry_batches]
    # The same events; only the time the attempt was sent differs (clock skew is
    # measured against it, so a retry sent later is measured right too).
    unsent = [dataclasses.replace(b, sent_at_ms=None) for b in first_batches]
    assert unsent == [dataclasses.replace(b, sent_at_ms=None) for b in retry_batches]
    sent = [
        (b.sent_at_ms, r.sent_at_ms)
        for b, r in zip(first_batches, retry_batches, strict=True)
    ]
    assert all(f is not None and r is not None and f < r for f, r in sent)


@pytest.mark.parametrize("name", OTHER_POST_CAPTURES)
def test_it_decodes_analytics_and_flags_bodies(name: str) -> None:
    payload = decode_capture(name)
    assert payload == decoded_copy(name)["payload"]


@pytest.mark.parametrize("name", [n for n in OTHER_POST_CAPTURES if "-e-" in n])
def test_analytics_bodies_carry_a_key_and_a_batch(name: str) -> None:
    payload = decode_capture(name)
    assert set(payload) == {"api_key", "batch", "sent_at"}
    assert payload["api_key"] == TOKEN
    assert payload["batch"]


def full_session_snapshot_requests() -> Iterator[tuple[bytes, dict[str, str]]]:
    session = posthog_dir() / "full-session-main"
    for line in (session / "requests.jsonl").read_text().splitlines():
        request = json.loads(line)
        if request["path"] == "/s/":
            headers = {key.lower(): value for key, value in request["headers"]}
            body = (session / request["body_file"]).read_bytes()
            yield body, {"content_type": headers.get("content-type", "")}


def test_a_whole_session_reassembles_into_its_rrweb_recording() -> None:
    events: list[dict[str, Any]] = []
    requests = list(full_session_snapshot_requests())
    for body, kwargs in requests:
        payload = decode_body(body, max_decompressed=LIMIT, **kwargs)
        for batch in parse_snapshot_request(payload, max_decompressed=LIMIT):
            events.extend(batch.events)
    (recording,) = (fixtures_dir() / "posthog-js" / "sessions").glob("main.0.*.json")
    assert len(requests) == 18
    assert events == json.loads(recording.read_text())


# --- encodings -------------------------------------------------------------------

SMALL = orjson.dumps([snapshot([META, CLICK])])


@pytest.mark.parametrize(
    ("body", "kwargs"),
    [
        pytest.param(SMALL, {}, id="plain-json"),
        pytest.param(SMALL, {"content_type": "application/json"}, id="json-type"),
        pytest.param(gz(SMALL), {"content_type": "text/plain"}, id="gzip-sniffed"),
        pytest.param(gz(SMALL), {"content_encoding": "gzip"}, id="content-encoding"),
        pytest.param(gz(SMALL), {"compression": "gzip-js"}, id="gzip-js"),
        pytest.param(gz(SMALL[:50]) + gz(SMALL[50:]), {}, id="two-gzip-members"),
        pytest.param(gz(SMALL) + bytes(16), {}, id="nul-padding"),
        pytest.param(
            form_body(base64.b64encode(SMALL)),
            {"content_type": FORM, "compression": "base64"},
            id="form-base64",
        ),
        pytest.param(form_body(base64.b64encode(SMALL)), {}, id="form-sniffed"),
        pytest.param(
            form_body(base64.b64encode(SMALL).rstrip(b"=")), {}, id="form-no-padding"
        ),
        pytest.param(form_body(base64.b64encode(gz(SMALL))), {}, id="form-gzip"),
        pytest.param(form_body(SMALL), {"content_type": FORM}, id="form-plain-json"),
        pytest.param(
            b"compression=base64&" + form_body(base64.b64encode(SMALL)),
            {"content_type": FORM},
            id="form-compression-field",
        ),
    ],
)
def test_it_decodes_every_encoding(body: bytes, kwargs: dict[str, str]) -> None:
    assert decode_body(body, max_decompressed=LIMIT, **kwargs) == orjson.loads(SMALL)


@pytest.mark.parametrize(
    ("body", "kwargs", "code"),
    [
        pytest.param(b"", {}, "empty_body", id="empty"),
        pytest.param(
            b"\x1f\x8b\x08\x00" + bytes(range(200)),
            {},
            "invalid_gzip",
            id="broken-gzip",
        ),
        pytest.param(
            gz(SMALL)[: len(gz(SMALL)) // 2], {}, "invalid_gzip", id="cut-gzip"
        ),
        pytest.param(gz(SMALL)[:-4], {}, "invalid_gzip", id="gzip-without-size"),
        pytest.param(gz(SMALL) + b"junk", {}, "invalid_gzip", id="trailing-junk"),
        pytest.param(
            SMALL, {"content_encoding": "gzip"}, "invalid_gzip", id="false-gzip-header"
        ),
        pytest.param(
            SMALL, {"content_encoding": "br"}, "unsupported_encoding", id="brotli"
        ),
        pytest.param(b"data=%%%not-base64!", {}, "invalid_base64", id="bad-base64"),
        pytest.param(
            b"other=1", {"content_type": FORM}, "missing_data_field", id="no-data"
        ),
        pytest.param(
            form_body(base64.b64encode(gz(SMALL)[:-9])),
            {},
            "invalid_gzip",
            id="form-cut-gzip",
        ),
        pytest.param(b"hello", {}, "invalid_json", id="not-json"),
        pytest.param(b'[{"uuid": 1}', {}, "invalid_json", id="unclosed-json"),
        pytest.param(gz(b"\xff\xfe"), {}, "invalid_json", id="gzip-not-utf8"),
        pytest.param(
            form_body(base64.b64encode(b"nope")), {}, "invalid_json", id="form-not-json"
        ),
    ],
)
def test_it_refuses_undecodable_bodies(
    body: bytes, kwargs: dict[str, str], code: str
) -> None:
    error = refusal(lambda: decode_body(body, max_decompressed=LIMIT, **kwargs))
    assert (error.code, error.status, type(error)) == (code, 400, IngestError)
    assert str(error) == error.message != ""


def test_it_restores_plus_signs_a_client_did_not_escape() -> None:
    encoded = base64.b64encode(orjson.dumps({"q": ">>>???"}))
    assert b"+" in encoded  # which form decoding turns into a space
    body = b"data=" + encoded
    assert decode_body(body, max_decompressed=LIMIT) == {"q": ">>>???"}


def test_a_json_error_says_where() -> None:
    error = refusal(lambda: decode_body(b'[{"a": 1,}]', max_decompressed=LIMIT))
    assert "column" in str(error)


def test_the_limit_is_on_decompressed_bytes_and_is_inclusive() -> None:
    body = gz(b"[" + b" " * 998 + b"]")
    assert decode_body(body, max_decompressed=1000) == []
    error = refusal(lambda: decode_body(body, max_decompressed=999))
    assert (type(error), error.code, error.status) == (
        PayloadTooLarge,
        "decompressed_too_large",
        413,
    )


def test_it_counts_every_gzip_member_against_the_limit() -> None:
    body = gz(b"[" + b" " * 600) + gz(b" " * 600 + b"]")
    assert decode_body(body, max_decompressed=1202) == []
    assert refusal(lambda: decode_body(body, max_decompressed=1201)).status == 413


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    return zeros_gzip(256)


def test_it_refuses_a_gzip_bomb_without_inflating_it(gzip_bomb: bytes) -> None:
    assert len(gzip_bomb) < 2 << 20  # 256 MiB of zeros in a ~1 MiB body

    def call() -> object:
        return decode_body(gzip_bomb, max_decompressed=BOMB_LIMIT)

    assert isinstance(refusal(call), PayloadTooLarge)
    assert peak_bytes_during(call) < 3 * BOMB_LIMIT


def test_it_refuses_a_gzip_bomb_inside_base64_form(gzip_bomb: bytes) -> None:
    body = form_body(base64.b64encode(gzip_bomb))

    def call() -> object:
        return decode_body(body, max_decompressed=BOMB_LIMIT, content_type=FORM)

    assert isinstance(refusal(call), PayloadTooLarge)


# --- $snapshot requests ----------------------------------------------------------


def test_it_accepts_the_older_wrapped_shapes() -> None:
    for payload in ({"batch": [snapshot([META])]}, {"data": [snapshot([META])]}):
        (batch,) = parse_snapshot_request(payload, max_decompressed=LIMIT)
        assert batch.events == (META,)


def test_optional_properties_default_to_empty() -> None:
    item = {
        "uuid": "u",
        "event": "$snapshot",
        "api_key": "phc_from_top_level",
        "properties": {"$session_id": "s", "$snapshot_data": [META]},
    }
    (batch,) = parse_snapshot_request([item], max_decompressed=LIMIT)
    assert batch == SnapshotBatch(
        uuid="u",
        token="phc_from_top_level",
        session_id="s",
        window_id="",
        distinct_id="",
        lib="",
        lib_version="",
        events=(META,),
    )


def test_it_accepts_every_known_event_type() -> None:
    events = [{"type": t, "data": {}, "timestamp": 1000 + t} for t in range(9)]
    events[3]["data"] = {"source": 1, "positions": []}
    (batch,) = parse_snapshot_request([snapshot(events)], max_decompressed=LIMIT)
    assert [e["type"] for e in batch.events] == sorted(KNOWN_EVENT_TYPES)
    assert batch.dropped == ()


def test_it_accepts_every_known_incremental_source() -> None:
    events = [
        {"type": 3, "data": {"source": s}, "timestamp": 1000 + s}
        for s in sorted(KNOWN_INCREMENTAL_SOURCES)
    ]
    (batch,) = parse_snapshot_request([snapshot(events)], max_decompressed=LIMIT)
    assert len(batch.events) == 17 and batch.dropped == ()


def test_it_drops_and_counts_events_of_unknown_kinds_keeping_the_rest() -> None:
    """A newer SDK's event types and incremental sources cost only those events."""
    sent = decode_capture("04-s-gzip-fullsnapshot")
    events = sent[0]["properties"]["$snapshot_data"]
    known = len(events)
    events += [
        {"type": 42, "data": {"text": "4242 4242 4242 4242"}, "timestamp": 1},
        {"type": 42, "timestamp": 2},
        {"type": 3, "data": {"source": 99, "text": "x"}, "timestamp": 3},
        {"type": 3, "data": {"text": "no source"}, "timestamp": 4},
    ]
    batches = parse_snapshot_request(sent, max_decompressed=LIMIT)
    assert len(batches[0].events) == known
    assert batches[0].dropped == (("source 99", 1), ("source ?", 1), ("type 42", 2))
    assert all(e["type"] != 42 for e in batches[0].events)


def test_it_counts_at_most_twenty_kinds_of_unknown_events() -> None:
    events = [META, *({"type": 100 + n, "timestamp": 1} for n in range(50))]
    (batch,) = parse_snapshot_request([snapshot(events)], max_decompressed=LIMIT)
    counts = dict(batch.dropped)
    assert len(counts) == 21 and counts["other"] == 30
    assert sum(counts.values()) == 50


def long(n: int) -> str:
    return "x" * n


@pytest.mark.parametrize(
    ("payload", "code", "mentions"),
    [
        pytest.param([], "not_a_batch", "", id="empty-list"),
        pytest.param({}, "not_a_batch", "", id="empty-object"),
        pytest.param("hello", "not_a_batch", "", id="string"),
        pytest.param([1], "not_a_batch", "", id="list-of-ints"),
        pytest.param({"batch": {}}, "not_a_batch", "", id="batch-not-list"),
        pytest.param(
            [{**snapshot([META]), "event": "$pageview"}],
            "unexpected_event",
            "$pageview",
            id="pageview",
        ),
        pytest.param(
            [{k: v for k, v in snapshot([META]).items() if k != "uuid"}],
            "missing_uuid",
            "uuid",
            id="no-uuid",
        ),
        pytest.param(
            [{**snapshot([META]), "uuid": ""}], "missing_uuid", "uuid", id="empty-uuid"
        ),
        pytest.param(
            [{**snapshot([META]), "uuid": long(101)}],
            "invalid_field",
            "uuid",
            id="long-uuid",
        ),
        pytest.param(
            [{"uuid": "u", "event": "$snapshot"}],
            "missing_session_id",
            "",
            id="no-properties",
        ),
        pytest.param(
            [snapshot([META], **{"$session_id": None})],
            "missing_session_id",
            "$session_id",
            id="no-session",
        ),
        pytest.param(
            [snapshot([META], **{"$session_id": 7})],
            "missing_session_id",
            "$session_id",
            id="int-session",
        ),
        pytest.param(
            [snapshot([META], **{"$session_id": long(201)})],
            "invalid_field",
            "$session_id",
            id="long-session",
        ),
        pytest.param(
            [snapshot([META], **{"$session_id": "a\x00b"})],
            "invalid_field",
            "control",
            id="nul-session",
        ),
        pytest.param(
            [snapshot([META], **{"$window_id": 5})],
            "invalid_field",
            "$window_id",
            id="int-window",
        ),
        pytest.param(
            [snapshot([META], distinct_id=long(201))],
            "invalid_field",
            "distinct_id",
            id="long-distinct",
        ),
        pytest.param([snapshot(None)], "missing_snapshot_data", "", id="no-data"),
        pytest.param(
            [snapshot({"0": META})], "missing_snapshot_data", "", id="data-object"
        ),
        pytest.param(
            [snapshot(["event"])], "invalid_event", "'event'", id="event-string"
        ),
        pytest.param(
            [snapshot([{**META, "type": "4"}])],
            "invalid_event",
            "'4'",
            id="type-str",
        ),
        pytest.param(
            [snapshot([{**META, "type": True}])],
            "invalid_event",
            "True",
            id="type-bool",
        ),
        pytest.param(
            [snapshot([{"data": {}, "timestamp": 1}])],
            "invalid_event",
            "None",
            id="no-type",
        ),
        pytest.param(
            [snapshot([{**META, "timestamp": "1795340654740"}])],
            "invalid_timestamp",
            "1795340654740",
            id="string-ts",
        ),
        pytest.param(
            [snapshot([{**META, "timestamp": True}])],
            "invalid_timestamp",
            "True",
            id="bool-ts",
        ),
        pytest.param(
            [snapshot([{**META, "timestamp": -1}])],
            "invalid_timestamp",
            "-1",
            id="negative-ts",
        ),
        pytest.param(
            [snapshot([{**META, "timestamp": 1e300}])],
            "invalid_timestamp",
            "1e+300",
            id="huge-ts",
        ),
        pytest.param(
            [snapshot([{"type": 4, "timestamp": 1}])],
            "invalid_event",
            "type 4",
            id="meta-without-data",
        ),
        pytest.param(
            [snapshot([{**CLICK, "data": [1]}])],
            "invalid_event",
            "type 3",
            id="data-list",
        ),
    ],
)
def test_it_refuses_malformed_snapshot_requests(
    payload: Any, code: str, mentions: str
) -> None:
    error = refusal(lambda: parse_snapshot_request(payload, max_decompressed=LIMIT))
    assert (error.code, error.status) == (code, 400)
    assert mentions in str(error)


# --- cv expansion ----------------------------------------------------------------

NODE = {"type": 0, "childNodes": [], "id": 1}
FULL = {"type": 2, "data": {"node": NODE, "initialOffset": {"left": 0}}, "timestamp": 2}
MUTATION = {
    "type": 3,
    "data": {"source": 0, "texts": [], "attributes": [], "removes": [], "adds": [NODE]},
    "timestamp": 3,
}
STYLE_RULE = {
    "type": 3,
    "data": {"source": 8, "id": 4, "adds": [{"rule": "a{}"}]},
    "timestamp": 4,
}


def cv_event(event: dict[str, Any], fields: tuple[str, ...] = ()) -> dict[str, Any]:
    """`event` compressed as posthog-js does: whole data, or the named data fields."""
    if not fields:
        return {**event, "data": packed(event["data"]), "cv": "2024-10"}
    data = {k: packed(v) if k in fields else v for k, v in event["data"].items()}
    return {**event, "data": data, "cv": "2024-10"}


@pytest.mark.parametrize(
    ("compressed", "plain"),
    [
        pytest.param(cv_event(FULL), FULL, id="full-snapshot"),
        pytest.param(
            cv_event(MUTATION, ("texts", "attributes", "removes", "adds")),
            MUTATION,
            id="mutation",
        ),
        pytest.param(cv_event(MUTATION, ("adds",)), MUTATION, id="mutation-partly"),
        pytest.param(cv_event(STYLE_RULE, ("adds",)), STYLE_RULE, id="stylesheet-rule"),
        pytest.param({**CLICK, "cv": "2024-10"}, CLICK, id="cv-on-plain-event"),
        pytest.param(CLICK, CLICK, id="no-cv"),
    ],
)
def test_it_expands_cv_events(
    compressed: dict[str, Any], plain: dict[str, Any]
) -> None:
    assert expand_event(compressed, budget=LIMIT) == plain


def test_expanding_a_plain_event_is_a_no_op() -> None:
    assert expand_event(CLICK, budget=0) is CLICK


def test_it_only_inflates_the_fields_posthog_compresses() -> None:
    # A string in a field posthog never packs is user data, not gzip.
    event = {"type": 3, "data": {"source": 5, "text": "\x1f\x8bhi"}, "timestamp": 5}
    assert expand_event({**event, "cv": "2024-10"}, budget=LIMIT) == event


def garbled(event: dict[str, Any], field: str, value: str) -> dict[str, Any]:
    if field == "data":
        return {**event, "data": value, "cv": "2024-10"}
    return {**event, "data": {**event["data"], field: value}, "cv": "2024-10"}


@pytest.mark.parametrize(
    ("event", "code"),
    [
        pytest.param(
            garbled(FULL, "data", "not gzip at all"),
            "invalid_compressed_event",
            id="text",
        ),
        pytest.param(
            garbled(FULL, "data", "\u2603 snowman"),
            "invalid_compressed_event",
            id="wide-chars",
        ),
        pytest.param(garbled(FULL, "data", ""), "invalid_compressed_event", id="empty"),
        pytest.param(
            garbled(FULL, "data", packed(NODE)[:-6]),
            "invalid_compressed_event",
            id="cut",
        ),
        pytest.param(
            garbled(FULL, "data", gz(b"{nope").decode("latin-1")),
            "invalid_compressed_event",
            id="not-json",
        ),
        pytest.param(
            garbled(MUTATION, "adds", "\x1f\x8b garbage"),
            "invalid_compressed_event",
            id="mutation-adds",
        ),
        pytest.param(
            garbled(STYLE_RULE, "removes", "x"),
            "invalid_compressed_event",
            id="rule-removes",
        ),
        pytest.param(
            garbled(FULL, "data", packed([NODE])), "invalid_event", id="data-not-object"
        ),
        pytest.param(
            {**cv_event(FULL), "cv": "2025-01"},
            "unknown_compression_version",
            id="cv-2025",
        ),
        pytest.param(
            {**cv_event(FULL), "cv": None}, "unknown_compression_version", id="cv-null"
        ),
    ],
)
def test_it_refuses_bad_compressed_events(event: dict[str, Any], code: str) -> None:
    payload = [snapshot([META, event])]
    error = refusal(lambda: parse_snapshot_request(payload, max_decompressed=LIMIT))
    assert (error.code, error.status) == (code, 400)


def test_it_refuses_a_bomb_inside_a_cv_field(gzip_bomb: bytes) -> None:
    bomb = {
        "type": 2,
        "data": gzip_bomb.decode("latin-1"),
        "timestamp": 2,
        "cv": "2024-10",
    }
    payload = [snapshot([META, bomb])]

    def call() -> object:
        return parse_snapshot_request(payload, max_decompressed=BOMB_LIMIT)

    assert isinstance(refusal(call), PayloadTooLarge)
    assert peak_bytes_during(call) < 3 * BOMB_LIMIT


def test_cv_fields_of_one_request_share_one_budget() -> None:
    blob = {"node": {"type": 3, "textContent": "a" * (3 << 20)}}
    full = cv_event({"type": 2, "data": blob, "timestamp": 2})
    assert expand_event(full, budget=BOMB_LIMIT)["data"] == blob
    payload = [snapshot([full, full]), snapshot([full])]  # three times ~3 MiB
    error = refusal(
        lambda: parse_snapshot_request(payload, max_decompressed=BOMB_LIMIT)
    )
    assert isinstance(error, PayloadTooLarge)


def test_expand_event_enforces_its_own_budget() -> None:
    error = refusal(lambda: expand_event(cv_event(FULL), budget=10))
    assert isinstance(error, PayloadTooLarge)


# --- big documents and the values bound ------------------------------------------

# Big documents are parsed by lean_json (memory), small ones by orjson: a value
# must get the same answer either way. PAD makes a document big.
PAD = "x" * (5 << 20)


def parsed_or_refused(doc: bytes) -> object:
    try:
        return decode_body(doc, max_decompressed=LIMIT)
    except IngestError as exc:
        return exc.code


@pytest.mark.parametrize(
    "value",
    [
        b"NaN",
        b"-Infinity",
        b"1e400",
        b"-1e400",
        b"18446744073709551615",  # 2**64 - 1: an int
        b"18446744073709551616",  # 2**64: a float, as orjson makes it
        b"-9223372036854775809",
        b"1" * 5000,
        b"-0",
        b"1.5e3",
        b'"\\ud800"',  # a lone surrogate
        b'"\\udc00x"',
        b'"\\ud83d\\ude00"',  # a pair
        b'"a\x01b"',  # a raw control character
        b'"\xff"',  # not UTF-8
        b"[1,]",
        b'{"a": 1, "a": 2}',
        b'"\\u0000"',
        b"[" * 1_100 + b"]" * 1_100,  # past orjson's depth and Python's recursion
        # A surrogate pair: lean_json hands the document to orjson.
        b"[" + b"[" * 1_100 + b"]" * 1_100 + b', "\\ud83d\\ude00"]',
    ],
)
def test_a_big_document_is_parsed_as_a_small_one_is(value: bytes) -> None:
    small = parsed_or_refused(b"[" + value + b"]")
    big = parsed_or_refused(b"[" + value + b', "' + PAD.encode() + b'"]')
    if isinstance(small, str):
        assert big == small
    else:
        assert isinstance(small, list) and isinstance(big, list)
        assert big[:-1] == small
        assert type(big[0]) is type(small[0])


def test_a_big_document_with_a_byte_order_mark_is_refused() -> None:
    doc = b"\xef\xbb\xbf[" + b'"' + PAD.encode() + b'"]'
    assert parsed_or_refused(doc) == "invalid_json"


def test_a_big_gzip_body_is_parsed_at_twice_its_size() -> None:
    # The inflated bytes go once decoded; orjson would hold them, its own copy of
    # them and the result at once.
    body = gzip.compress(orjson.dumps([{"t": PAD}]))
    tracemalloc.start()
    try:
        assert decode_body(body, max_decompressed=LIMIT) == [{"t": PAD}]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2.5 * len(PAD)


def test_it_refuses_more_json_values_than_the_bound_allows() -> None:
    limit = 8 << 20  # one value per 64 bytes: 131,072 values
    within = orjson.dumps([0] * 131_000)
    assert len(decode_body(within, max_decompressed=limit)) == 131_000
    over = gzip.compress(orjson.dumps([0] * 132_000))
    error = refusal(lambda: decode_body(over, max_decompressed=limit))
    assert isinstance(error, PayloadTooLarge)
    assert error.code == "too_many_values"


def test_values_inside_cv_fields_count_too() -> None:
    limit = 8 << 20
    nodes = [{"type": 2, "id": i} for i in range(50_000)]  # ~150,000 values
    full = cv_event(
        {"type": 2, "data": {"node": {"childNodes": nodes}}, "timestamp": 2}
    )
    error = refusal(
        lambda: parse_snapshot_request([snapshot([full])], max_decompressed=limit)
    )
    assert isinstance(error, PayloadTooLarge)
    assert error.code == "too_many_values"


# --- plain rrweb requests --------------------------------------------------------


def rrweb_fixture(name: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = json.loads(
        (fixtures_dir() / "rrweb" / name).read_text()
    )
    return events


@pytest.mark.parametrize("name", ["signup.json", "checkout.json", "browse.json"])
def test_it_parses_plain_rrweb_recordings(name: str) -> None:
    events = rrweb_fixture(name)
    batch = parse_rrweb_request({"session_id": "s-1", "events": events})
    assert batch.events == tuple(events)
    assert (batch.lib, batch.session_id, batch.token) == ("rrweb", "s-1", "")
    assert batch.uuid.startswith("sha256:") and len(batch.uuid) == 71


def test_an_exact_resend_gets_the_same_content_id() -> None:
    events = rrweb_fixture("signup.json")
    reordered = [dict(reversed(list(event.items()))) for event in events]
    first = parse_rrweb_request({"session_id": "s-1", "events": events})
    resent = parse_rrweb_request({"events": reordered, "session_id": "s-1"})
    other_session = parse_rrweb_request({"session_id": "s-2", "events": events})
    fewer = parse_rrweb_request({"session_id": "s-1", "events": events[:-1]})
    assert first.uuid == resent.uuid
    assert len({first.uuid, other_session.uuid, fewer.uuid}) == 3


def test_it_keeps_the_client_batch_id_and_optional_fields() -> None:
    body = {
        "session_id": "s-1",
        "window_id": "w-1",
        "distinct_id": "jane",
        "batch_id": "b-42",
        "token": "tok",
        "events": [META],
    }
    assert parse_rrweb_request(body) == SnapshotBatch(
        uuid="b-42",
        token="tok",
        session_id="s-1",
        window_id="w-1",
        distinct_id="jane",
        lib="rrweb",
        lib_version="",
        events=(META,),
    )


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        pytest.param([META], "not_a_batch", id="bare-list"),
        pytest.param({"events": [META]}, "missing_session_id", id="no-session"),
        pytest.param({"session_id": "s", "events": []}, "not_a_batch", id="no-events"),
        pytest.param(
            {"session_id": "s", "events": {}}, "not_a_batch", id="events-object"
        ),
        pytest.param(
            {"session_id": "s", "events": [{**META, "type": "4"}]},
            "invalid_event",
            id="type-str",
        ),
        pytest.param(
            {"session_id": "s", "events": [{**META, "timestamp": "1"}]},
            "invalid_timestamp",
            id="string-ts",
        ),
        pytest.param(
            {"session_id": "s", "batch_id": 5, "events": [META]},
            "invalid_field",
            id="int-batch-id",
        ),
        pytest.param(
            {"session_id": "s", "batch_id": long(101), "events": [META]},
            "invalid_field",
            id="long-batch-id",
        ),
        pytest.param(
            {"session_id": long(201), "events": [META]},
            "invalid_field",
            id="long-session",
        ),
    ],
)
def test_it_refuses_malformed_rrweb_requests(payload: Any, code: str) -> None:
    assert refusal(lambda: parse_rrweb_request(payload)).code == code


# --- properties: any input either parses or is refused with an IngestError --------

orjson_safe = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
anything = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
byte_strings = st.binary(max_size=64).map(lambda b: b.decode("latin-1"))
packed_values = orjson_safe.map(packed) | byte_strings | st.text(max_size=8)
ids = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1)
stamps = st.integers(0, 2**41)
objects = st.dictionaries(st.text(max_size=6), orjson_safe, max_size=3)
# Events posthog-js could really send, so that deep paths run, not just the guards.
good_events = (
    st.fixed_dictionaries(
        {"type": st.sampled_from([0, 1, 4, 5, 6, 7, 8]), "timestamp": stamps},
        optional={"data": objects},
    )
    | st.fixed_dictionaries(
        {"type": st.just(2), "timestamp": stamps, "data": objects.map(packed)},
        optional={"cv": st.just("2024-10")},
    )
    | st.fixed_dictionaries(
        {
            "type": st.just(3),
            "timestamp": stamps,
            "cv": st.just("2024-10"),
            "data": st.fixed_dictionaries(
                {"source": st.sampled_from([0, 1, 2, 5, 8])},
                optional={k: orjson_safe.map(packed) for k in ("adds", "removes")},
            ),
        }
    )
)
wild_events = st.fixed_dictionaries(
    {
        "type": st.integers(-1, 9) | anything,
        "timestamp": st.integers(-1, 2**62) | st.floats() | anything,
        "data": st.fixed_dictionaries(
            {"source": st.sampled_from([0, 2, 5, 8]) | anything},
            optional={k: packed_values | anything for k in ("texts", "adds")},
        )
        | packed_values
        | anything,
    },
    optional={"cv": st.sampled_from(["2024-10", "2023-01"]) | anything},
)
good_items = st.fixed_dictionaries(
    {
        "event": st.just("$snapshot"),
        "uuid": ids,
        "properties": st.fixed_dictionaries(
            {
                "$session_id": ids,
                "$snapshot_data": st.lists(good_events | wild_events, max_size=4),
            },
            optional={key: ids | anything for key in ("$window_id", "token")},
        ),
    }
)
wild_items = st.fixed_dictionaries(
    {
        "event": st.just("$snapshot") | anything,
        "uuid": st.text(max_size=110) | anything,
        "properties": st.fixed_dictionaries(
            {
                "$session_id": st.text(max_size=210) | anything,
                "$snapshot_data": st.lists(wild_events, max_size=4) | anything,
            },
        )
        | anything,
    }
)
snapshot_items = good_items | wild_items
payloads = (
    st.lists(snapshot_items, max_size=3)
    | st.fixed_dictionaries({"batch": st.lists(snapshot_items, max_size=3)})
    | anything
)


def gzip_or_cut(data: bytes, cut: int) -> bytes:
    packed_data = gz(data)
    return packed_data[: max(cut, 0)] if cut else packed_data


# stdlib json: it writes what orjson refuses (huge ints, NaN), which is the point.
json_bodies = payloads.map(lambda p: json.dumps(p).encode())
bodies = (
    st.binary(max_size=256)
    | json_bodies
    | st.builds(gzip_or_cut, json_bodies | st.binary(max_size=64), st.integers(-1, 64))
    | json_bodies.map(lambda b: form_body(base64.b64encode(b)))
    | st.binary(max_size=64).map(lambda b: b"data=" + b)
)
property_settings = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@property_settings
@given(payload=payloads)
def test_any_payload_parses_or_is_refused(payload: Any) -> None:
    try:
        batches = parse_snapshot_request(payload, max_decompressed=1 << 16)
    except IngestError:
        return
    for batch in batches:
        assert all(e["type"] in KNOWN_EVENT_TYPES for e in batch.events)
        assert not any("cv" in e for e in batch.events)


@property_settings
@given(
    body=bodies,
    content_type=st.sampled_from(["", "text/plain", FORM, "application/json"]),
    content_encoding=st.sampled_from(["", "gzip", "identity", "br"]),
    compression=st.sampled_from(["", "base64", "gzip-js", "gzip", "lz64"]),
)
def test_any_body_decodes_or_is_refused(
    body: bytes, content_type: str, content_encoding: str, compression: str
) -> None:
    with contextlib.suppress(IngestError):
        payload = decode_body(
            body,
            content_type=content_type,
            content_encoding=content_encoding,
            compression=compression,
            max_decompressed=1 << 16,
        )
        parse_snapshot_request(payload, max_decompressed=1 << 16)


@property_settings
@given(
    payload=anything
    | st.fixed_dictionaries({"session_id": anything, "events": anything})
)
def test_any_rrweb_payload_parses_or_is_refused(payload: Any) -> None:
    with contextlib.suppress(IngestError):
        parse_rrweb_request(payload)


# --- what reaches the database (issue 10) ----------------------------------------


def test_it_cuts_sdk_labels_to_their_columns_and_cleans_their_nuls() -> None:
    item = snapshot([META], **{"$lib": "web" + "x" * 60, "$lib_version": "1.\x002"})
    (batch,) = parse_snapshot_request([item], max_decompressed=LIMIT)
    assert batch.lib == ("web" + "x" * 60)[: storable.LIB_MAX]
    assert batch.lib_version == "1.\ufffd2"


def test_it_leaves_a_token_no_project_holds_to_the_token_lookup() -> None:
    # Answered 401 like any unknown token, not 400 as a malformed field.
    odd = TOKEN + "\x00" + "x" * 300
    (batch,) = parse_snapshot_request(
        [snapshot([META], token=odd)], max_decompressed=LIMIT
    )
    assert batch.token == odd
    body = {"session_id": "s", "token": odd, "events": [META]}
    assert parse_rrweb_request(body).token == odd


def test_it_peeks_no_session_whose_ids_the_ledger_could_not_hold() -> None:
    items = [
        snapshot([META], **{"$session_id": "a\x00b"}),
        snapshot([META], distinct_id="jane\x00"),
        snapshot([META], **{"$session_id": "fine"}),
    ]
    assert [ref.session_id for ref in peek_sessions(items)] == ["fine"]


def nested_json(levels: int) -> bytes:
    return b'{"a":' * levels + b"1" + b"}" * levels


def test_it_refuses_json_past_orjsons_depth_as_too_deep() -> None:
    body = b'[{"uuid":"u","event":"$snapshot","properties":' + nested_json(1100) + b"}]"
    assert refusal(lambda: decode_body(body, max_decompressed=LIMIT)).code == "too_deep"
    # A FullSnapshot's `cv` field is decoded on its own, so it may go as deep.
    data = gz(b'{"node":' + nested_json(1030) + b"}").decode("latin-1")
    item = snapshot([{**FULL, "data": data, "cv": "2024-10"}])
    code = refusal(lambda: parse_snapshot_request([item], max_decompressed=LIMIT)).code
    assert code == "too_deep"


def test_it_counts_the_event_itself_in_its_depth() -> None:
    def event(levels: int) -> dict[str, Any]:
        payload: Any = 1
        for _ in range(levels - 2):
            payload = {"a": payload}
        return {"type": 5, "timestamp": 1, "data": {"tag": "t", "payload": payload}}

    check_depth(event(storable.MAX_DEPTH), "an event")
    error = refusal(lambda: check_depth(event(storable.MAX_DEPTH + 1), "an event"))
    assert error.code == "too_deep"
    assert error.message == "an event nests more than 512 levels deep"


def test_it_refuses_a_content_id_for_events_past_the_depth_limit() -> None:
    payload: Any = 1
    for _ in range(storable.MAX_DEPTH):
        payload = [payload]
    events = [{"type": 5, "timestamp": 1, "data": {"payload": payload}}]
    error = refusal(lambda: parse_rrweb_request({"session_id": "s", "events": events}))
    assert error.code == "too_deep"
