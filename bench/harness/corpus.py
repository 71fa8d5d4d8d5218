"""Realistic posthog-js `/s/` request bodies, built from the real captures.

Every body is a real captured `/s/` body, decoded, given a fresh `uuid` per
`$snapshot`, moved to a fresh `$session_id`/`$window_id`/`distinct_id` and the
benchmark project's token, and gzipped again. The `cv` (posthog per-event gzip)
fields inside are kept exactly as captured, so the server does all the real work.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import os
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[2]
# The shared fixtures: REPLAYHUB_FIXTURES (as for the tests), else shared/ beside
# the work tree (/work/main and /work/shared).
FIXTURES = (
    Path(os.environ.get("REPLAYHUB_FIXTURES") or ROOT.parent / "shared" / "fixtures")
    / "posthog-js"
)
FULL_SESSION = FIXTURES / "full-session-main"
MAIN_SESSION_GLOB = "main.0.*.rrweb.json"
# Other gzip `/s/` captures worth mixing in (idle rotation, retried batch, ...).
EXTRA_CAPTURES = (
    "04-s-gzip-fullsnapshot",
    "05-s-gzip-incremental-console-network",
    "08a-s-idle-rotation-session-ending",
    "08b-s-idle-rotation-new-session",
    "10a-s-retry-first-attempt-500",
)
# posthog-js compresses with fflate's default level.
WIRE_GZIP_LEVEL = 6


def ensure_repo_importable() -> None:
    """Let `import recordings...` work wherever the benchmark was started from."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


@dataclass(frozen=True, slots=True)
class Template:
    """One captured `/s/` body, decoded."""

    name: str
    wire_bytes: int
    items: list[dict[str, Any]]


def session_request_bodies() -> list[tuple[str, bytes]]:
    """The raw `/s/` bodies of the 72-second main session, in arrival order."""
    bodies = []
    for line in (FULL_SESSION / "requests.jsonl").read_text().splitlines():
        request = orjson.loads(line)
        if request["method"] == "POST" and request["path"] == "/s/":
            path = FULL_SESSION / request["body_file"]
            bodies.append((f"main/{request['seq']:05d}", path.read_bytes()))
    return bodies


def load_templates() -> list[Template]:
    """Every distinct gzip `/s/` capture: the main session's 18 plus a few extras."""
    raw = session_request_bodies()
    raw += [(name, (FIXTURES / f"{name}.body").read_bytes()) for name in EXTRA_CAPTURES]
    seen: set[str] = set()
    templates = []
    for name, body in raw:
        digest = hashlib.sha256(body).hexdigest()
        if digest in seen:  # 04 and 05 are copies of main-session requests
            continue
        seen.add(digest)
        items = orjson.loads(gzip.decompress(body))
        templates.append(Template(name=name, wire_bytes=len(body), items=items))
    return templates


@dataclass(frozen=True, slots=True)
class Session:
    session_id: str
    window_id: str
    distinct_id: str


def _fresh_session() -> Session:
    return Session(str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4()))


def _rewrite(template: Template, session: Session, token: str) -> bytes:
    # posthog-js stamps each $snapshot with the time it sends it. The captures'
    # own stamps are weeks old: kept, every batch would look like a device with a
    # wrong clock, and the server would move (and log) every event of every batch,
    # which real traffic never makes it do.
    sent_at = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
    items = []
    for item in template.items:
        props = dict(item["properties"])
        props["$session_id"] = session.session_id
        props["$window_id"] = session.window_id
        props["distinct_id"] = session.distinct_id
        props["token"] = token
        fresh = {**item, "uuid": str(uuid.uuid4()), "properties": props}
        if "sent_at" in item:
            fresh["sent_at"] = sent_at.replace("+00:00", "Z")
        items.append(fresh)
    return gzip.compress(orjson.dumps(items), compresslevel=WIRE_GZIP_LEVEL, mtime=0)


def generate_bodies(
    templates: list[Template], *, count: int, sessions: int, token: str
) -> list[bytes]:
    """`count` distinct gzip bodies spread round-robin over `sessions` sessions.

    Body i belongs to session i % sessions; each session walks through the
    templates from its own starting point, so that any prefix of the list (a run
    that stops early) holds an even mix of small and large batches.
    """
    return list(_iter_bodies(templates, count=count, sessions=sessions, token=token))


def _iter_bodies(
    templates: list[Template], *, count: int, sessions: int, token: str
) -> Iterator[bytes]:
    pool = [_fresh_session() for _ in range(max(1, sessions))]
    for i in range(count):
        s = i % len(pool)
        step = i // len(pool)
        template = templates[(step + s) % len(templates)]
        yield _rewrite(template, pool[s], token)


def auto_sessions(count: int, templates: list[Template]) -> int:
    """One session per pass through the templates: each sends ~20 batches."""
    return max(1, count // len(templates))


def main_session_events() -> list[dict[str, Any]]:
    """The plain rrweb events of the 72-second session (cv fields expanded)."""
    path = next((FIXTURES / "sessions").glob(MAIN_SESSION_GLOB))
    events: list[dict[str, Any]] = orjson.loads(path.read_bytes())
    return events
