"""Stored bytes per recorded minute: ReplayHub's gzip blobs against zstd.

The 72-second main session is stored three ways: one blob per `$snapshot` as
ReplayHub ingests it (28 chunks from 18 requests), one blob per request, and one
compacted blob of the whole session. Each is encoded as ReplayHub stores it
(`recordings.blobs.encode_events`: gzip level 6 of the orjson JSON array) and with
a few other codecs on the same JSON bytes.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import zstandard

from bench.harness.corpus import (
    FIXTURES,
    MAIN_SESSION_GLOB,
    ensure_repo_importable,
    main_session_events,
    session_request_bodies,
)

Codec = Callable[[bytes], bytes]
Events = list[dict[str, Any]]

# A zstd dictionary is trained on *other* recordings of the same demo site (never
# on the session measured), in samples of a few events, as a per-project
# dictionary would be.
DICT_BYTES = 16 * 1024
DICT_SAMPLE_EVENTS = 5


def _other_recordings() -> list[Events]:
    paths = sorted((FIXTURES.parent / "rrweb").glob("*.json"))
    paths += [
        path
        for path in sorted((FIXTURES / "sessions").glob("*.rrweb.json"))
        if not path.match(MAIN_SESSION_GLOB)
    ]
    return [orjson.loads(path.read_bytes()) for path in paths]


def train_dictionary() -> zstandard.ZstdCompressionDict:
    samples: list[bytes | bytearray | memoryview] = [
        orjson.dumps(events[i : i + DICT_SAMPLE_EVENTS])
        for events in _other_recordings()
        for i in range(0, len(events), DICT_SAMPLE_EVENTS)
    ]
    return zstandard.train_dictionary(DICT_BYTES, samples)


def other_codecs() -> dict[str, Codec]:
    """Codecs to compare with ReplayHub's; each takes the same JSON bytes."""
    zdict = train_dictionary()
    return {
        "gzip-9": lambda raw: gzip.compress(raw, compresslevel=9, mtime=0),
        "zstd-3": zstandard.ZstdCompressor(level=3).compress,
        "zstd-9": zstandard.ZstdCompressor(level=9).compress,
        "zstd-19": zstandard.ZstdCompressor(level=19).compress,
        "zstd-3 + 16K dict": zstandard.ZstdCompressor(
            level=3, dict_data=zdict
        ).compress,
        "zstd-9 + 16K dict": zstandard.ZstdCompressor(
            level=9, dict_data=zdict
        ).compress,
    }


@dataclass(frozen=True, slots=True)
class StorageRow:
    layout: str
    codec: str
    blobs: int
    json_bytes: int
    stored_bytes: int
    minutes: float
    encode_ms: float  # encoding the whole session in this layout, JSON included

    @property
    def per_minute(self) -> float:
        return self.stored_bytes / self.minutes

    @property
    def ratio(self) -> float:
        return self.json_bytes / self.stored_bytes


def _parsed_requests() -> list[list[Events]]:
    """Per `/s/` request, the events of each `$snapshot` as ReplayHub parses them."""
    ensure_repo_importable()
    from recordings.ingest.parse import decode_body, parse_snapshot_request

    limit = 64 * 1024 * 1024
    requests = []
    for _name, body in session_request_bodies():
        payload = decode_body(body, max_decompressed=limit)
        batches = parse_snapshot_request(payload, max_decompressed=limit)
        requests.append([list(batch.events) for batch in batches])
    return requests


def _layouts() -> dict[str, list[Events]]:
    requests = _parsed_requests()
    return {
        "per $snapshot (as ingested)": [chunk for req in requests for chunk in req],
        "per /s/ request": [[e for chunk in req for e in chunk] for req in requests],
        "one compacted blob": [main_session_events()],
    }


EventCodec = Callable[[Events], bytes]


def _on_json(codec: Codec) -> EventCodec:
    return lambda events: codec(orjson.dumps(events))


def replayhub_encoder() -> EventCodec:
    """ReplayHub's own blob encoder, whichever shape recordings/blobs.py has now."""
    ensure_repo_importable()
    from recordings import blobs

    encode: EventCodec | None = getattr(blobs, "encode_events", None)
    if encode is not None:
        return encode
    return lambda events: blobs.compress(blobs.dumps(events))


def _codecs() -> dict[str, EventCodec]:
    codecs = {"gzip-6 (ReplayHub)": replayhub_encoder()}
    codecs |= {name: _on_json(codec) for name, codec in other_codecs().items()}
    return codecs


def recorded_minutes(events: Events) -> float:
    stamps = [float(event["timestamp"]) for event in events]
    return (max(stamps) - min(stamps)) / 60_000


def storage_rows() -> list[StorageRow]:
    layouts = _layouts()
    minutes = recorded_minutes(main_session_events())
    sent = [body for _name, body in session_request_bodies()]
    wire = sum(map(len, sent))
    rows = [
        StorageRow(
            "as sent (wire, nested cv gzip)", "gzip", len(sent), 0, wire, minutes, 0.0
        )
    ]
    codecs = _codecs()
    for layout, chunks in layouts.items():
        json_bytes = sum(len(orjson.dumps(chunk)) for chunk in chunks)
        for codec_name, encode in codecs.items():
            start = time.perf_counter()
            stored = sum(len(encode(chunk)) for chunk in chunks)
            encode_ms = (time.perf_counter() - start) * 1000
            rows.append(
                StorageRow(
                    layout,
                    codec_name,
                    len(chunks),
                    json_bytes,
                    stored,
                    minutes,
                    encode_ms,
                )
            )
    return rows


def format_storage(rows: list[StorageRow]) -> str:
    header = (
        f"{'layout':<30} {'codec':<19} {'blobs':>5} {'JSON B':>8} "
        f"{'stored B':>9} {'B/rec-min':>10} {'ratio':>6} {'enc ms':>7}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        ratio = f"{row.ratio:6.1f}" if row.json_bytes else f"{'-':>6}"
        json_b = f"{row.json_bytes:>8,}" if row.json_bytes else f"{'-':>8}"
        enc = f"{row.encode_ms:7.2f}" if row.json_bytes else f"{'-':>7}"
        lines.append(
            f"{row.layout:<30} {row.codec:<19} {row.blobs:>5} {json_b} "
            f"{row.stored_bytes:>9,} {row.per_minute:>10,.0f} {ratio} {enc}"
        )
    return "\n".join(lines)
