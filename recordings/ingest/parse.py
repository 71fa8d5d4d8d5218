"""Decode posthog-js and plain-rrweb capture requests into validated batches.

No Django here: the ingest view hands over the raw body and a few headers, and gets
back `SnapshotBatch` values or an `IngestError` whose `status` it answers with. The
wire format is described in shared/docs/wire-protocol.md (§2 body encodings, §4 the
`$snapshot` event and its `cv` compression, §8 plain rrweb).

Every gunzip here is bounded *while* it inflates, so a small body can never make the
server allocate much more than `max_decompressed` bytes.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import re
import urllib.parse
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from recordings.ingest import clock, storable
from recordings.ingest.lean_json import TooDeep, count_values, loads_lean
from recordings.ingest.rrweb import (
    FULL_SNAPSHOT,
    INCREMENTAL,
    KNOWN_EVENT_TYPES,
    KNOWN_INCREMENTAL_SOURCES,
    SOURCE_MUTATION,
    SOURCE_STYLE_SHEET_RULE,
    TYPES_WITH_DATA,
)

__all__ = [
    "Budget",
    "IngestError",
    "PayloadTooLarge",
    "SnapshotBatch",
    "check_depth",
    "decode_body",
    "expand_event",
    "parse_rrweb_request",
    "parse_snapshot_request",
]

# Distinct kinds of unknown event counted per batch; a client inventing thousands
# of types must not grow the ledger with them.
_MAX_DROPPED_KINDS = 20
_OTHER_KINDS = "other"

# Python objects a JSON value may cost, on average, for the bound to hold; and the
# fewest values any bound allows (small bounds are for tests of byte budgets).
_BYTES_PER_VALUE = 64
_MIN_VALUES = 65_536
# Big documents made mostly of strings are parsed by lean_json (about twice their
# size in memory), others by orjson: it holds a second copy of the document, three
# times one long string, but parses dense documents five times faster, and those
# grow mostly by their Python objects anyway (which the values bound caps).
_LEAN_JSON_BYTES = 4 * 1024 * 1024
_LEAN_JSON_BYTES_PER_VALUE = 32  # real recordings: 11-15

_GZIP_MAGIC = b"\x1f\x8b"
_GZIP_WBITS = 16 + zlib.MAX_WBITS
# Small steps keep the budget check close behind the inflater, so a bomb is stopped
# a few KiB past the limit; feeding input in steps of the same size keeps zlib's
# copies of the not-yet-consumed input small.
_CHUNK = 64 * 1024

_GZIP_ENCODINGS = frozenset({"gzip", "x-gzip"})
_IDENTITY_ENCODINGS = frozenset({"", "identity"})
_GZIP_COMPRESSIONS = frozenset({"gzip", "gzip-js"})
_FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

_CV_VERSION = "2024-10"
_BAD_CV = "invalid_compressed_event"
# Which fields posthog gzips inside an IncrementalSnapshot, by `data.source`
# (Mutation, StyleSheetRule); a FullSnapshot has its whole `data` gzipped.
_CV_FIELDS_BY_SOURCE: dict[int | None, frozenset[str]] = {
    SOURCE_MUTATION: frozenset({"texts", "attributes", "removes", "adds"}),
    SOURCE_STYLE_SHEET_RULE: frozenset({"adds", "removes"}),
}

_MAX_ID_LEN = storable.SESSION_ID_MAX
# Ids end up in database columns and URLs; NUL alone breaks PostgreSQL text.
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
# orjson's JSONDecodeError for input nested past its 1024 levels.
_ORJSON_TOO_DEEP = "depth limit exceeded"
# Timestamps become datetimes downstream, and Python's datetime ends at year 9999.
_MAX_TIMESTAMP_MS = 253_402_300_800_000


class IngestError(Exception):
    """A request body ReplayHub refuses.

    `code` is machine-readable, str(e) is a human message, `status` the HTTP answer.
    """

    status: int = 400

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class PayloadTooLarge(IngestError):
    """The request inflates past its `max_decompressed` byte budget."""

    status = 413


@dataclass(frozen=True, slots=True)
class SnapshotBatch:
    """One batch of rrweb events of one (session, window), ready to store."""

    uuid: str
    token: str
    session_id: str
    window_id: str
    distinct_id: str
    lib: str
    lib_version: str
    events: tuple[dict[str, Any], ...]
    # Events of a type or incremental source ReplayHub does not know, not kept:
    # ("type 9", 2), ("source 17", 1), sorted by kind.
    dropped: tuple[tuple[str, int], ...] = ()
    # When the client says it sent the batch, by its own clock (epoch ms): with the
    # time it arrived, this measures the device clock's skew (ingest/clock.py).
    sent_at_ms: int | None = None


# --- bounded gunzip --------------------------------------------------------------


class Budget:
    """Decompressed bytes one request may still produce, shared by all its gunzips.

    Pass the same Budget to decode_body and parse_snapshot_request, so that the
    body and the `cv` fields inside it together inflate to at most `limit` bytes.
    The JSON values they hold are counted too (spend_values).
    """

    __slots__ = ("limit", "used", "values", "values_limit")

    def __init__(self, limit: int) -> None:
        if limit < 0:
            raise ValueError(f"max_decompressed must be >= 0, not {limit}")
        self.limit = limit
        self.used = 0
        self.values = 0
        self.values_limit = max(limit // _BYTES_PER_VALUE, _MIN_VALUES)

    def spend_values(self, raw: bytes | bytearray) -> None:
        """Count the values in a JSON document about to be parsed; refuse a
        request whose documents hold more than the bound's share.

        Parsed, a JSON value costs some 36-110 bytes of Python objects (a dict,
        a str, a list slot) however few bytes it took in the JSON: `[{},{},...]`
        grows 25 times when parsed. One value per 64 bytes of the bound keeps what
        a request's documents parse into near the bound itself. Real recordings
        hold one value per 11-15 bytes of JSON, so a real request meets this
        only past ~15 MB of JSON under the default bound.
        """
        self.values += count_values(raw)
        if self.values > self.values_limit:
            raise PayloadTooLarge(
                "too_many_values",
                f"the data holds more than {self.values_limit} JSON values",
            )

    def next_step(self) -> int:
        # One byte past the limit proves it is exceeded. Never 0: zlib reads a
        # max_length of 0 as "unlimited".
        return min(_CHUNK, self.limit - self.used + 1)

    def spend(self, size: int) -> None:
        self.used += size
        if self.used > self.limit:
            raise PayloadTooLarge(
                "decompressed_too_large",
                f"the data inflates to more than {self.limit} bytes",
            )


def _as_budget(limit: int | Budget) -> Budget:
    return limit if isinstance(limit, Budget) else Budget(limit)


def _gunzip(data: bytes, budget: Budget, error_code: str) -> bytearray:
    """Inflate `data` within `budget`.

    Concatenated gzip members are inflated and joined, as RFC 1952 allows and
    `gzip.decompress` does. NUL padding after the last member is ignored; any other
    trailing bytes are refused, since they mean a cut or spliced body.
    """
    out = bytearray()
    view = memoryview(data)
    pos = 0
    while True:
        pos += _inflate_member(view[pos:], out, budget, error_code)
        if view[pos : pos + 2] != _GZIP_MAGIC:
            break
    if bytes(view[pos:]).strip(b"\x00"):
        raise IngestError(error_code, f"{len(view) - pos} stray bytes after gzip data")
    # Not bytes(out): that copy would double the request's peak memory.
    return out


def _inflate_member(
    data: memoryview, out: bytearray, budget: Budget, error_code: str
) -> int:
    """Inflate the gzip member at the start of `data` into `out`; return its size."""
    inflater = zlib.decompressobj(_GZIP_WBITS)
    pos = 0
    while not inflater.eof:
        piece = data[pos : pos + _CHUNK]
        pos += len(piece)
        produced = _inflate_piece(inflater, piece, out, budget, error_code)
        if not piece and not produced and not inflater.eof:
            raise IngestError(error_code, "the gzip data is truncated")
    return pos - len(inflater.unused_data)


def _inflate_piece(
    inflater: zlib._Decompress,
    piece: memoryview,
    out: bytearray,
    budget: Budget,
    code: str,
) -> int:
    """Feed one piece of input, taking the output in budget-checked steps."""
    produced = 0
    pending: bytes | memoryview = piece
    while True:
        try:
            chunk = inflater.decompress(pending, budget.next_step())
        except zlib.error as exc:
            raise IngestError(code, f"broken gzip data: {exc}") from exc
        budget.spend(len(chunk))
        out += chunk
        produced += len(chunk)
        pending = inflater.unconsumed_tail
        if not pending:
            return produced


# --- request bodies --------------------------------------------------------------


def decode_body(
    body: bytes,
    *,
    content_type: str = "",
    content_encoding: str = "",
    compression: str = "",
    max_decompressed: int | Budget,
) -> Any:
    """Bytes of a capture request -> the JSON value it carries.

    `compression` is the `compression` query parameter. posthog-js sends gzip with
    no marker but its magic bytes, so the body is sniffed first (wire-protocol §2).
    `max_decompressed` is a byte limit, or a Budget the request shares with
    parse_snapshot_request.
    """
    if not body:
        raise IngestError("empty_body", "the request body is empty")
    budget = _as_budget(max_decompressed)
    encoding = content_encoding.strip().lower()
    raw = _unwrap_body(body, encoding, content_type, compression.lower(), budget)
    budget.spend_values(raw)
    return _loads(raw, "invalid_json", "the body is not valid JSON")


def _unwrap_body(
    body: bytes, encoding: str, content_type: str, compression: str, budget: Budget
) -> bytes | bytearray:
    if encoding not in _GZIP_ENCODINGS | _IDENTITY_ENCODINGS:
        raise IngestError(
            "unsupported_encoding", f"Content-Encoding {encoding!r} is not supported"
        )
    if (
        body.startswith(_GZIP_MAGIC)
        or encoding in _GZIP_ENCODINGS
        or compression in _GZIP_COMPRESSIONS
    ):
        return _gunzip(body, budget, "invalid_gzip")
    if body.startswith(b"data=") or _is_form(content_type):
        return _form_payload(body, compression, budget)
    return body


def _is_form(content_type: str) -> bool:
    return content_type.strip().lower().startswith(_FORM_CONTENT_TYPE)


def _form_payload(body: bytes, compression: str, budget: Budget) -> bytes | bytearray:
    """The bytes carried by the `data` field of a form-encoded body."""
    # latin-1 both ways maps each byte to one code point, so percent-escapes come
    # back as the exact bytes they encode (UTF-8 would mangle binary data).
    fields = urllib.parse.parse_qs(body.decode("latin-1"), encoding="latin-1")
    if not fields.get("data"):
        raise IngestError("missing_data_field", "the form body has no `data` field")
    data = fields["data"][0].encode("latin-1")
    # Old SDKs put `compression` in the form rather than in the query string.
    compression = compression or fields.get("compression", [""])[0].lower()
    if compression == "base64" or data.lstrip()[:1] not in (b"[", b"{"):
        data = _b64decode(data)
    if data.startswith(_GZIP_MAGIC):
        return _gunzip(data, budget, "invalid_gzip")
    return data


def _b64decode(text: bytes) -> bytes:
    # A "+" the client forgot to percent-encode arrives as a space after form
    # decoding, and some clients drop the "=" padding; both are harmless to undo.
    cleaned = text.strip().replace(b" ", b"+")
    cleaned += b"=" * (-len(cleaned) % 4)
    try:
        return base64.b64decode(cleaned, validate=True)
    except binascii.Error as exc:
        raise IngestError("invalid_base64", f"`data` is not base64: {exc}") from exc


def _loads(raw: bytes | bytearray, code: str, what: str) -> Any:
    if _mostly_strings(raw):
        return _loads_lean(raw, code, what)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if _ORJSON_TOO_DEEP in str(exc):
            # Past orjson's 1024 levels is past MAX_DEPTH too: the same refusal.
            raise _too_deep("the JSON") from exc
        raise IngestError(code, f"{what}: {exc}") from exc


def check_depth(value: Any, what: str) -> None:
    """Refuse `value` (one event) if it nests deeper than storable.MAX_DEPTH."""
    if storable.nesting_depth(value, stop_past=storable.MAX_DEPTH) > storable.MAX_DEPTH:
        raise _too_deep(what)


def _too_deep(what: str) -> IngestError:
    return IngestError(
        "too_deep", f"{what} nests more than {storable.MAX_DEPTH} levels deep"
    )


def _mostly_strings(raw: bytes | bytearray) -> bool:
    if len(raw) < _LEAN_JSON_BYTES:
        return False
    return len(raw) > _LEAN_JSON_BYTES_PER_VALUE * count_values(raw)


def _loads_lean(raw: bytes | bytearray, code: str, what: str) -> Any:
    """A big document, parsed at about twice its size (empties a bytearray)."""
    try:
        return loads_lean(raw)
    except TooDeep as exc:
        # As orjson's refusal of the same document (_loads).
        raise _too_deep("the JSON") from exc
    except ValueError as exc:
        raise IngestError(code, f"{what}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class SessionRef:
    """Who a refused request was about, as far as can be told."""

    token: str
    session_id: str
    distinct_id: str


def peek_sessions(payload: Any) -> list[SessionRef]:
    """Best-effort token and session ids of a request that failed to parse.

    Used only to note a refusal in the session's ledger; never raises, and returns
    nothing for shapes it does not recognise.
    """
    if isinstance(payload, dict):
        payload = payload.get("batch", payload.get("data", [payload]))
    if not isinstance(payload, list):
        return []
    refs = {ref for item in payload[:100] if (ref := _peek_item(item)) is not None}
    return sorted(refs, key=lambda ref: ref.session_id)


def _peek_item(item: Any) -> SessionRef | None:
    if not isinstance(item, dict):
        return None
    props = item.get("properties")
    source = props if isinstance(props, dict) else item
    session_id = source.get("$session_id", item.get("session_id"))
    token = source.get("token", item.get("api_key", item.get("token")))
    distinct_id = source.get("distinct_id", item.get("distinct_id", ""))
    if not (
        isinstance(session_id, str)
        and isinstance(token, str)
        and isinstance(distinct_id, str)
    ):
        return None
    if not 0 < len(session_id) <= _MAX_ID_LEN or len(distinct_id) > _MAX_ID_LEN:
        return None
    if _CONTROL_CHARS.search(session_id + distinct_id):
        return None  # not ids the ledger could hold (NUL breaks PostgreSQL text)
    return SessionRef(token=token, session_id=session_id, distinct_id=distinct_id)


# --- posthog-js /s/ requests ----------------------------------------------------


def parse_snapshot_request(
    payload: Any, *, max_decompressed: int | Budget
) -> list[SnapshotBatch]:
    """The decoded JSON of a posthog-js /s/ request -> its $snapshot batches.

    All `cv` fields of the request draw on one `max_decompressed` budget, so a bomb
    spread over many events is refused like one hidden in a single field; pass the
    Budget decode_body used, and the body's own inflation counts too.
    """
    budget = _as_budget(max_decompressed)
    return [_snapshot_batch(item, budget) for item in _batch_items(payload)]


def _batch_items(payload: Any) -> list[Any]:
    # Older SDKs wrapped the array as {"batch": [...]} or {"data": [...]}.
    if isinstance(payload, dict):
        payload = payload.get("batch", payload.get("data"))
    if not isinstance(payload, list) or not payload:
        raise IngestError(
            "not_a_batch", "expected a non-empty array of $snapshot events"
        )
    return payload


def _snapshot_batch(item: Any, budget: Budget) -> SnapshotBatch:
    uuid = _snapshot_uuid(item)
    props = item.get("properties")
    if not isinstance(props, dict):
        raise IngestError("missing_session_id", "a $snapshot has no `properties`")
    events, dropped = _snapshot_events(props, budget)
    return SnapshotBatch(
        uuid=uuid,
        token=_snapshot_token(item, props),
        session_id=_required_str(props, "$session_id", "missing_session_id"),
        window_id=_optional_str(props, "$window_id", storable.WINDOW_ID_MAX),
        distinct_id=_optional_str(props, "distinct_id", storable.DISTINCT_ID_MAX),
        lib=_label(props, "$lib", storable.LIB_MAX),
        lib_version=_label(props, "$lib_version", storable.LIB_VERSION_MAX),
        events=events,
        dropped=dropped,
        sent_at_ms=clock.iso_to_ms(item.get("sent_at")),
    )


def _snapshot_uuid(item: Any) -> str:
    if not isinstance(item, dict):
        raise IngestError("not_a_batch", f"a batch item is {_preview(item)}")
    if item.get("event") != "$snapshot":
        event = _preview(item.get("event"))
        raise IngestError("unexpected_event", f"expected $snapshot events, got {event}")
    return _required_str(item, "uuid", "missing_uuid", storable.BATCH_ID_MAX)


def _snapshot_token(item: dict[str, Any], props: dict[str, Any]) -> str:
    # posthog-js puts it in properties; other clients send the analytics-style
    # top-level `api_key` (wire-protocol §4).
    for source, key in ((props, "token"), (item, "api_key"), (item, "token")):
        token = _token(source, key)
        if token:
            return token
    return ""


def _snapshot_events(props: dict[str, Any], budget: Budget) -> _KeptEvents:
    data = props.get("$snapshot_data")
    if not isinstance(data, list):
        raise IngestError("missing_snapshot_data", "`$snapshot_data` is not a list")
    return _known_events(data, lambda event: _expand(event, budget))


# --- posthog's per-event compression (cv) ----------------------------------------


def expand_event(event: dict[str, Any], *, budget: int) -> dict[str, Any]:
    """Undo posthog's per-event `cv: "2024-10"` compression (a no-op for plain events).

    `budget` bounds the bytes inflated for this event alone; the returned event is a
    new dict, except for plain events, which come back as they are.
    """
    return _expand(event, Budget(budget))


def _expand(event: dict[str, Any], budget: Budget) -> dict[str, Any]:
    if "cv" not in event:
        return event
    if event["cv"] != _CV_VERSION:
        raise IngestError(
            "unknown_compression_version",
            f"unknown event compression cv={_preview(event['cv'])}",
        )
    expanded = {key: value for key, value in event.items() if key != "cv"}
    event_type = _as_int(event.get("type"))
    data = event.get("data")
    if event_type == FULL_SNAPSHOT and isinstance(data, str):
        expanded["data"] = _inflate_json(data, budget)
    elif event_type == INCREMENTAL and isinstance(data, dict):
        expanded["data"] = _expand_incremental(data, budget)
    return expanded


def _expand_incremental(data: dict[str, Any], budget: Budget) -> dict[str, Any]:
    packed = _CV_FIELDS_BY_SOURCE.get(_as_int(data.get("source")), frozenset())
    # Fields that are not strings were never compressed; keep them as sent.
    return {
        key: _inflate_json(value, budget)
        if key in packed and isinstance(value, str)
        else value
        for key, value in data.items()
    }


def _inflate_json(text: str, budget: Budget) -> Any:
    """Decode one compressed field: gzip bytes carried one char per byte."""
    try:
        raw = text.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise IngestError(_BAD_CV, "a compressed field is not a byte string") from exc
    inflated = _gunzip(raw, budget, _BAD_CV)
    budget.spend_values(inflated)
    return _loads(inflated, _BAD_CV, "a compressed field")


# --- plain rrweb requests --------------------------------------------------------


def parse_rrweb_request(payload: Any) -> SnapshotBatch:
    """ReplayHub's plain-rrweb endpoint body -> one batch."""
    if not isinstance(payload, dict):
        raise IngestError("not_a_batch", "expected an object with session_id, events")
    session_id = _required_str(payload, "session_id", "missing_session_id")
    events, dropped = _rrweb_events(payload.get("events"))
    batch_id = _optional_str(payload, "batch_id", storable.BATCH_ID_MAX)
    return SnapshotBatch(
        # Hashed as kept: a resend drops the same unknown events again.
        uuid=batch_id or _content_id(session_id, events),
        token=_token(payload, "token"),
        session_id=session_id,
        window_id=_optional_str(payload, "window_id", storable.WINDOW_ID_MAX),
        distinct_id=_optional_str(payload, "distinct_id", storable.DISTINCT_ID_MAX),
        lib="rrweb",
        lib_version="",
        events=events,
        dropped=dropped,
        # Optional: epoch ms or ISO 8601, for clients whose clocks may be wrong.
        sent_at_ms=clock.iso_to_ms(payload.get("sent_at")),
    )


def _rrweb_events(raw: Any) -> _KeptEvents:
    if not isinstance(raw, list) or not raw:
        raise IngestError("not_a_batch", "`events` must be a non-empty list")
    return _known_events(raw, lambda event: event)


# The events kept, and what was dropped (see SnapshotBatch.dropped).
_KeptEvents = tuple[tuple[dict[str, Any], ...], tuple[tuple[str, int], ...]]


def _known_events(
    raw: list[Any], expand: Callable[[dict[str, Any]], dict[str, Any]]
) -> _KeptEvents:
    """The events of kinds ReplayHub knows, validated; the others counted.

    A newer SDK adds event types and incremental sources. The privacy firewall
    cannot vouch for fields it does not know, so such events are not stored; but
    refusing the batch would lose the rest of it for good (posthog-js never retries
    a 4xx), so they are dropped, and counted for the session's ledger.
    """
    kept: list[dict[str, Any]] = []
    dropped: dict[str, int] = {}
    for item in raw:
        event = _as_event(item)
        kind = _unknown_kind(event)
        if kind is None:
            kept.append(_validated(expand(event)))
            continue
        if kind not in dropped and len(dropped) >= _MAX_DROPPED_KINDS:
            kind = _OTHER_KINDS
        dropped[kind] = dropped.get(kind, 0) + 1
    return tuple(kept), tuple(sorted(dropped.items()))


def _unknown_kind(event: dict[str, Any]) -> str | None:
    """ "type 9" or "source 17" for an event of a kind ReplayHub does not know."""
    event_type = _as_int(event.get("type"))
    if event_type is None:
        return None  # not an rrweb event at all: _validated refuses it
    if event_type not in KNOWN_EVENT_TYPES:
        return f"type {_preview(event_type)}"
    if event_type != INCREMENTAL:
        return None
    data = event.get("data")
    source = _as_int(data.get("source")) if isinstance(data, dict) else None
    if source is None:
        # The firewall would not know what its fields hold either.
        return "source ?" if isinstance(data, dict) else None
    return None if source in KNOWN_INCREMENTAL_SOURCES else f"source {_preview(source)}"


def _content_id(session_id: str, events: tuple[dict[str, Any], ...]) -> str:
    """Idempotency key for a batch sent without `batch_id`.

    Hashing canonical JSON (sorted keys) makes an exact resend of a batch whose
    response was lost map to the same key, whatever key order the client used.
    """
    doc = {"session_id": session_id, "events": events}
    try:
        canonical = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        # orjson stops at 254 levels of nesting (a deep DOM); the stdlib goes deeper
        # but recurses, which check_depth keeps within Python's recursion limit.
        for event in events:
            check_depth(event, "an rrweb event")
        canonical = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


# --- validation helpers ----------------------------------------------------------


def _as_event(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise IngestError("invalid_event", f"an rrweb event is {_preview(raw)}")
    return raw


def _validated(event: dict[str, Any]) -> dict[str, Any]:
    """Check the fields every consumer of an rrweb event relies on."""
    event_type = _as_int(event.get("type"))
    if event_type is None:
        raise IngestError(
            "invalid_event",
            f"an event's type must be a number, not {_preview(event.get('type'))}",
        )
    _check_timestamp(event.get("timestamp"))
    if event_type in TYPES_WITH_DATA and not isinstance(event.get("data"), dict):
        raise IngestError("invalid_event", f"a type {event_type} event needs `data`")
    return event


def _check_timestamp(value: Any) -> None:
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    # NaN and infinities fail the range test too, so no separate isfinite().
    if not (is_number and 0 <= value < _MAX_TIMESTAMP_MS):
        # Only what cannot be a time at all: a wrong clock is corrected later.
        raise IngestError(
            "invalid_timestamp",
            f"an event's timestamp must be epoch milliseconds, not {_preview(value)}",
        )


def _as_int(value: Any) -> int | None:
    # JSON true/false are Python ints; an event type must not be one.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _required_str(
    obj: dict[str, Any], key: str, missing_code: str, max_len: int = _MAX_ID_LEN
) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise IngestError(missing_code, f"`{key}` must be a non-empty string")
    return _checked_str(key, value, max_len)


def _optional_str(obj: dict[str, Any], key: str, max_len: int = _MAX_ID_LEN) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise IngestError("invalid_field", f"`{key}` must be a string")
    return _checked_str(key, value, max_len)


def _token(obj: dict[str, Any], key: str) -> str:
    """A project token as sent: one no project holds (too long, NUL) is not refused
    here but answered like any unknown token (401), where tokens are looked up."""
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise IngestError("invalid_field", f"`{key}` must be a string")
    return value


def _label(obj: dict[str, Any], key: str, max_len: int) -> str:
    """An SDK name or version: informative only, so cut to its column and cleaned
    of NULs rather than refused, which would lose the batch over a label."""
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise IngestError("invalid_field", f"`{key}` must be a string")
    return storable.clean_text(value[:max_len])


def _checked_str(key: str, value: str, max_len: int) -> str:
    if len(value) > max_len:
        raise IngestError("invalid_field", f"`{key}` is over {max_len} characters")
    if _CONTROL_CHARS.search(value):
        raise IngestError("invalid_field", f"`{key}` contains control characters")
    return value


def _preview(value: Any) -> str:
    """Name a refused value in a message without echoing big or nested data."""
    if isinstance(value, str):
        return repr(value[:40]) + ("..." if len(value) > 40 else "")
    small_int = isinstance(value, int) and value.bit_length() <= 64
    if small_int or isinstance(value, float) or value is None:
        return repr(value)
    return f"a {type(value).__name__}"


# rrweb timestamps are epoch milliseconds; anything outside these years is a broken
# client clock or garbage, and would not fit a database datetime anyway.
_MIN_TS_MS = int(storable.EARLIEST.timestamp() * 1000)  # 2000-01-01
_MAX_TS_MS = int(storable.LATEST.timestamp() * 1000)  # 2100-01-01


def ms_to_datetime(ms: int | float) -> dt.datetime:
    if not _MIN_TS_MS <= ms <= _MAX_TS_MS:
        raise IngestError(
            "invalid_timestamp", f"event timestamp {ms!r} is out of range"
        )
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
