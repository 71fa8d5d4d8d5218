"""Peak memory of a recording's export, built whole (before) and streamed (after).

Issue 11: the management API's export (/api/v1/recordings/<code>/export/) built the
whole JSON file in memory. This captures the largest real recording in the shared
fixtures (posthog-js/sessions/idle-rotation.0, plain rrweb events) as COPIES
batches of one session, each moved later in time so that they follow each other as
a long session's batches do, then measures with tracemalloc the peak Python memory
of exporting it:

* before: the export as it was (every window's events read into memory, then one
  `blobs.dumps` of the document, as recordings/viewsets.py did up to issue 11);
* after: the streamed export (recordings.playback.responses), consumed chunk by chunk
  as the server sends it, through the API with Django's test client (after one warm-up
  request, so that the first request's imports and caches are not counted).

With --compacted the recording is compacted first (one blob for its window, as
every recording is 15 minutes after its last batch), which the export passes on
as stored; without it the batches stay loose chunks, which it merges in time order.
"One chunk" below is one batch's events as JSON (the fixture's size); reading and
parsing one such batch takes about 3.5 MiB by itself.

Both documents are checked to be the same bytes. Figures are given in MiB and as a
ratio of the export's size.

    .venv/bin/python -m bench.playback.export_memory      # 100 copies, loose chunks
    .venv/bin/python -m bench.playback.export_memory --copies 20 --compacted

SQLite and blobs in a temp dir; nothing else is needed.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import tracemalloc
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from bench.harness.corpus import FIXTURES, ensure_repo_importable

TOKEN = "phc_bench_export_memory"
FIXTURE_GLOB = "idle-rotation.0.*.rrweb.json"


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def setup_django(data_dir: str) -> None:
    ensure_repo_importable()
    warnings.filterwarnings("ignore", message="No directory at")
    os.environ["REPLAYHUB_DATA_DIR"] = data_dir
    os.environ["DJANGO_SETTINGS_MODULE"] = "replayhub.settings"
    os.environ["REPLAYHUB_INGEST_RATE_PER_MINUTE"] = "0"
    os.environ["ALLOWED_HOSTS"] = "testserver"
    for name in ("DATABASE_URL", "REDIS_URL", "REPLAYHUB_S3_BUCKET", "DEBUG"):
        os.environ.pop(name, None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def fixture_events() -> list[dict[str, Any]]:
    (path,) = (FIXTURES / "sessions").glob(FIXTURE_GLOB)
    events: list[dict[str, Any]] = orjson.loads(path.read_bytes())
    return events


def capture(copies: int) -> Any:
    """A recording of `copies` batches, each the fixture moved after the last."""
    from django.test import Client

    from recordings.models import Project, Recording

    Project.objects.create(name="export memory", token=TOKEN)
    events = fixture_events()
    stamps = [e["timestamp"] for e in events]
    span = max(stamps) - min(stamps) + 1000
    client = Client()
    for copy in range(copies):
        moved = [{**e, "timestamp": e["timestamp"] + copy * span} for e in events]
        body: dict[str, Any] = {"token": TOKEN, "session_id": "export-memory"}
        body |= {"window_id": "w"}
        body |= {"batch_id": f"copy-{copy}", "events": moved}
        response = client.post(
            "/api/v1/ingest/rrweb/", data=body, content_type="application/json"
        )
        assert response.status_code == 200, response.content
    return Recording.objects.get(session_id="export-memory")


def peak(work: Callable[[], bytes]) -> tuple[int, bytes]:
    """tracemalloc's peak above what was allocated before, and what work returned."""
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        result = work()
        return tracemalloc.get_traced_memory()[1] - start, result
    finally:
        tracemalloc.stop()


def export_before(recording: Any) -> bytes:
    """The export as recordings/viewsets.py built it before issue 11."""
    from recordings import blobs
    from recordings.serializers import RecordingSerializer
    from recordings.services.storage import recording_events

    windows: dict[str, Any] = {}
    for window in recording.window_ids():
        windows[window] = recording_events(recording=recording, window_id=window)
    meta = RecordingSerializer(recording, context={"request": _api_request()}).data
    return blobs.dumps({"recording": meta, "windows": windows})


def _api_request() -> Any:
    """A request as the API sees one, for the metadata's absolute URLs."""
    from django.test import RequestFactory
    from rest_framework.request import Request

    return Request(RequestFactory().get("/api/v1/"))


def export_after(recording: Any) -> Callable[[], bytes]:
    """The streamed export through the API; only its size and a digest are kept."""
    import hashlib

    from django.contrib.auth.models import User
    from django.test import Client

    user = User.objects.create_superuser("bench", "bench@example.org", "pw")
    client = Client()
    client.force_login(user)
    url = f"/api/v1/recordings/{recording.code}/export/"

    def work() -> bytes:
        response = client.get(url)
        assert response.status_code == 200, response.status_code
        digest, size = hashlib.sha256(), 0
        streamed: Iterable[bytes] = response.streaming_content  # type: ignore[attr-defined]
        for chunk in streamed:
            digest.update(chunk)
            size += len(chunk)
        return f"{size}:{digest.hexdigest()}".encode()

    return work


def run(copies: int, compacted: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="rh-export-") as data_dir:
        setup_django(data_dir)
        import hashlib

        from recordings.services.compaction import recording_compact

        recording = capture(copies)
        if compacted:
            recording_compact(recording=recording)
            recording.refresh_from_db()  # its metadata is exported too
        chunk = len(orjson.dumps(fixture_events()))
        before, document = peak(lambda: export_before(recording))
        streamed = export_after(recording)
        streamed()  # warm up: the first request imports and caches what it needs
        after, summary = peak(streamed)
        whole = f"{len(document)}:{hashlib.sha256(document).hexdigest()}".encode()
        assert summary == whole, "the streamed export is not the same document"
        size = len(document)
        say(f"[export] {copies} batch(es) of the largest fixture, {chunk} B each")
        say(f"[export] blobs: {'compacted' if compacted else 'loose chunks'}")
        say(f"[export] export size: {size / 2**20:.1f} MiB")
        say(
            f"[export] before (built whole): peak {before / 2**20:.1f} MiB"
            f" = {before / size:.2f} x the export, {before / chunk:.1f} x one chunk"
        )
        say(
            f"[export] after (streamed):     peak {after / 2**20:.1f} MiB"
            f" = {after / size:.2f} x the export, {after / chunk:.1f} x one chunk"
        )
        say(f"[export] before/after: {before / after:.1f}x less memory")
        say(f"[export] same bytes both ways: {summary.decode()} (size:sha256)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=100)
    parser.add_argument("--compacted", action="store_true", help="compact first")
    args = parser.parse_args()
    run(args.copies, args.compacted)


if __name__ == "__main__":
    main()
