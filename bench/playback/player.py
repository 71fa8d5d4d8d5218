"""How fast a long recording starts playing in the admin, segmented or whole (issue 15).

Builds recordings of 1, 10 and 30 minutes from the real 72-second posthog-js session
(`sessions/main.0.*`: three pages, browse → sign up → checkout) and one of the live
dashboard shape (`sessions/idle-rotation.0.*`: live.html rewrites its DOM twice a
second), by repeating the incremental events after the session's last full snapshot,
moved later in time, with the ids of the nodes they add renumbered on each pass (so
each pass adds new nodes and changes them, as the page did, and never refers to a
node the replay does not have). It sends them to a real ReplayHub (the Procfile's
gunicorn, a scratch PostgreSQL database, blobs on local disk) as a plain rrweb
client would (`/api/v1/ingest/rrweb/`, one batch per 5 s of events), compacts them
with `manage.py compact_recordings`, then opens each recording's admin player page in
headless Chromium (Playwright, /usr/bin/chromium), logged in, with a fresh cache:

* **whole** (the baseline): the player page with its timeline rewritten to one
  segment per window, the window's whole blob, as recordings were read before
  segments (the same player, recordings/static/recordings/watch.js);
* **segmented**: the page as it is: the first segment of each window first (the
  very first preloaded from the page's head), the rest in the background.

Measured per page load (median of --repeats): page opened → first frame (the replay
iframe's document has a body with children), → fully loaded (every event handed to
the player), the server's time to first byte for the first data request (Resource
Timing responseStart - requestStart), body bytes of the data requests, the tab's JS
heap once loaded (CDP Performance.getMetrics JSHeapUsedSize) and the longest main
thread block while loading (Long Tasks API; none means under 50 ms).

    .venv/bin/python -m bench.playback.player           # 1, 10, 30 min + dashboard
    .venv/bin/python -m bench.playback.player --minutes 1 10 --repeats 1 --no-dashboard
    .venv/bin/python -m bench.playback.player --minutes 30

Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust) and Debian's chromium.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from playwright.sync_api import Browser, sync_playwright

from bench.harness.corpus import FIXTURES, ROOT
from bench.harness.servers import (
    PYTHON,
    base_env,
    free_port,
    gunicorn,
    log,
    manage,
    procfile_web_command,
    run_cleanly,
    scratch_database,
)

TOKEN = "phc_bench_playback_token"
USER = "bench"
PASSWORD = "bench-playback-password"
CHROMIUM = "/usr/bin/chromium"
TODAYS_PLAYER = ROOT / "recordings" / "static" / "recordings" / "player.js"
BATCH_MS = 5_000  # a plain rrweb client's flush period, as the fixtures' clients
PAGE_TIMEOUT_MS = 180_000
# Keys of an rrweb incremental event's data that name a node.
ID_KEYS = ("id", "parentId", "nextId", "previousId")
SHAPES = {
    "main": "main.0.*.rrweb.json",
    "dashboard": "idle-rotation.0.*.rrweb.json",
}

# Installed before any page script: the fallback hooks for the page as it is
# (first frame: the replay iframe has a body with children; loaded: the status
# line shows the event count) and the long tasks seen while it loads.
INIT_SCRIPT = """
(() => {
  if (window.top !== window) return;
  const b = window.__bench = {firstFrameAt: null, loadedAt: null, longTasks: []};
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) b.longTasks.push([e.startTime, e.duration]);
    }).observe({type: "longtask", buffered: true});
  } catch (e) {}
  function tick() {
    const iframe = document.querySelector("#player iframe");
    const body = iframe && iframe.contentDocument && iframe.contentDocument.body;
    if (b.firstFrameAt === null && body && body.children.length > 0) {
      b.firstFrameAt = performance.now();
    }
    const status = document.getElementById("player-status");
    if (b.loadedAt === null && status && /^\\d+ events/.test(status.textContent)) {
      b.loadedAt = performance.now();
    }
    if (b.loadedAt === null || b.firstFrameAt === null) requestAnimationFrame(tick);
  }
  requestAnimationFrame(tick);
})();
"""
LOADED = """() => {
  const hooks = window.replayhubPlayer || {};
  return (hooks.loadedAt || window.__bench.loadedAt) != null
    && (hooks.firstFrameAt || window.__bench.firstFrameAt) != null;
}"""
COLLECT = """() => {
  const hooks = window.replayhubPlayer || {};
  const b = window.__bench;
  const loadedAt = hooks.loadedAt || b.loadedAt;
  const data = performance.getEntriesByType("resource")
    .filter((e) => e.name.includes("/snapshots/"))
    .sort((x, y) => x.startTime - y.startTime);
  const first = data[0];
  const nav = performance.getEntriesByType("navigation")[0];
  return {
    pageTtfb: nav.responseStart,
    dataStart: first ? first.startTime : null,
    dataEnd: first ? first.responseEnd : null,
    firstFrameAt: hooks.firstFrameAt || b.firstFrameAt,
    loadedAt: loadedAt,
    hooks: !!window.replayhubPlayer,
    ttfb: first ? first.responseStart - first.requestStart : null,
    view: first
      ? (first.serverTiming.find((t) => t.name === "view") || {}).duration
      : null,
    bytes: data.reduce((sum, e) => sum + e.encodedBodySize, 0),
    requests: data.length,
    longest: Math.max(
      0, ...b.longTasks.filter(([s]) => s < loadedAt).map(([, d]) => d)
    ),
  };
}"""


SEEK_TO_END = """() => {
  const player = window.replayhubPlayer.player;
  player.goto(player.getMetaData().totalTime - 1, false);
}"""


@dataclass
class Built:
    name: str
    session_id: str
    events: list[dict[str, Any]]
    json_bytes: int = 0
    info: dict[str, Any] = field(default_factory=dict)  # from the server, after


@dataclass
class Sample:
    first_frame: float
    loaded: float
    ttfb: float
    view: float  # the events view's own time for that request (Server-Timing)
    bytes: int
    requests: int
    heap: float  # JS heap used once loaded
    kept: float  # and after a garbage collection
    longest: float
    page_ttfb: float  # when the page's HTML began to arrive
    data_start: float  # when the first data request was sent
    data_end: float  # and when its answer had arrived


# --- recordings ---------------------------------------------------------------------


def _session(shape: str) -> list[dict[str, Any]]:
    (path,) = (FIXTURES / "sessions").glob(SHAPES[shape])
    events: list[dict[str, Any]] = orjson.loads(path.read_bytes())
    return sorted(events, key=lambda event: event["timestamp"])


def _ids(value: Any) -> Iterator[int]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ID_KEYS and isinstance(item, int):
                yield item
            else:
                yield from _ids(item)
    elif isinstance(value, list):
        for item in value:
            yield from _ids(item)


def _renumbered(value: Any, above: int, shift: int) -> Any:
    """The value with every node id over `above` moved up by `shift`."""
    if isinstance(value, dict):
        return {
            key: (
                item + shift
                if key in ID_KEYS and isinstance(item, int) and item > above
                else _renumbered(item, above, shift)
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_renumbered(item, above, shift) for item in value]
    return value


def stretched(shape: str, minutes: float) -> list[dict[str, Any]]:
    """The session, then its last page's incremental events again and again."""
    base = _session(shape)
    last_snapshot = max(i for i, event in enumerate(base) if event["type"] == 2)
    snapshot_max = max(_ids(base[last_snapshot]["data"]))
    tail = [e for e in base[last_snapshot + 1 :] if e["type"] in (3, 5, 6)]
    span_ids = max(max(_ids([e["data"] for e in tail]), default=0) - snapshot_max, 1)
    pass_ms = tail[-1]["timestamp"] - tail[0]["timestamp"] + 1_000
    end = base[0]["timestamp"] + int(minutes * 60_000)
    out = [event for event in base if event["timestamp"] <= end]
    start = base[-1]["timestamp"] + 1_000 - tail[0]["timestamp"]
    number = 1
    while start + tail[0]["timestamp"] <= end:
        for event in tail:
            moved = event["timestamp"] + start
            if moved > end:
                break
            data = _renumbered(event["data"], snapshot_max, number * span_ids)
            out.append({**event, "data": data, "timestamp": moved})
        start += pass_ms
        number += 1
    return out


def recordings(minutes: list[float], dashboard: float | None) -> list[Built]:
    built = [
        Built(f"{m:g} min", f"bench-main-{m:g}-{uuid.uuid4().hex[:8]}", [])
        for m in minutes
    ]
    for one, m in zip(built, minutes, strict=True):
        one.events = stretched("main", m)
    if dashboard:
        name = f"dashboard {dashboard:g} min"
        session = f"bench-dash-{uuid.uuid4().hex[:8]}"
        built.append(Built(name, session, stretched("dashboard", dashboard)))
    for one in built:
        one.json_bytes = len(orjson.dumps(one.events))
    return built


# --- ReplayHub ----------------------------------------------------------------------


def send(port: int, recording: Built) -> None:
    """Post the events as a plain rrweb client would: a batch per 5 s of events."""
    batches: list[list[dict[str, Any]]] = []
    for event in recording.events:
        if not batches or event["timestamp"] - batches[-1][0]["timestamp"] >= BATCH_MS:
            batches.append([])
        batches[-1].append(event)
    for number, batch in enumerate(batches):
        body = {
            "token": TOKEN,
            "session_id": recording.session_id,
            "window_id": "w-" + recording.session_id,
            "distinct_id": "bench",
            "batch_id": f"{recording.session_id}-{number}",
            "events": batch,
        }
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/ingest/rrweb/",
            data=orjson.dumps(body),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()


PREPARE = f"""
from django.contrib.auth.models import User
from recordings.models import Project
Project.objects.create(name="playback benchmark", token={TOKEN!r})
User.objects.create_superuser({USER!r}, "bench@example.org", {PASSWORD!r})
"""

DESCRIBE = """
import json, sys
from django.urls import reverse
from recordings import blobs
from recordings.playback import responses
from recordings.services.storage import recording_events
from recordings.models import Recording, WindowBlob
out = {}
for session_id in sys.argv[1:]:
    r = Recording.objects.get(session_id=session_id)
    url = reverse("admin:recordings_recording_snapshots", args=[r.code])
    index = WindowBlob.objects.get(recording=r)
    events = recording_events(recording=r)
    out[session_id] = {
        "code": str(r.code),
        "player": reverse("admin:recordings_recording_play", args=[r.code]),
        "timeline": responses.segments_timeline(recording=r, events_url=url),
        "events": len(events),
        "stored": blobs.size(index.key),
        "unsegmented": len(blobs.encode_events(events)),
    }
print(json.dumps(out))
"""


def describe(env: dict[str, str], built: list[Built]) -> None:
    script = "import sys; sys.argv = ['describe', *sys.argv[1:]]\n" + DESCRIBE
    result = subprocess.run(
        [str(PYTHON), "-c", _django_wrapped(script), *(b.session_id for b in built)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    found = json.loads(result.stdout.strip().splitlines()[-1])
    for one in built:
        one.info = found[one.session_id]


def _django_wrapped(script: str) -> str:
    return "import django; django.setup()\n" + script


# --- the browser --------------------------------------------------------------------


def login(browser: Browser, base: str) -> Any:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{base}/admin/login/?next=/admin/")
    page.fill("#id_username", USER)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/")
    state = context.storage_state()
    context.close()
    return state


def measure(
    browser: Browser,
    base: str,
    state: Any,
    recording: Built,
    mode: str,
    check_replay: bool = False,
) -> Sample:
    context = browser.new_context(
        storage_state=state, viewport={"width": 1280, "height": 900}
    )
    context.add_init_script(INIT_SCRIPT)
    # The same player on both sides (recordings/static/recordings/watch.js); the
    # baseline's page is told each window is one segment, the whole window blob,
    # as recordings were read before segments. Both pages go through Playwright.
    page_url = "**" + recording.info["player"] + "*"
    context.route(page_url, lambda route: _page(route, mode == "whole"))
    try:
        page = context.new_page()
        console: list[str] = []
        page.on(
            "console",
            lambda m: (
                console.append(m.text) if m.type in ("error", "warning") else None
            ),
        )
        cdp = context.new_cdp_session(page)
        cdp.send("Performance.enable")
        # Not the load event: it also waits on the recorded pages' own assets
        # (their host does not resolve here), which can take the full timeout.
        page.goto(base + recording.info["player"], wait_until="domcontentloaded")
        page.wait_for_function(LOADED, timeout=PAGE_TIMEOUT_MS, polling=50)
        found = page.evaluate(COLLECT)
        if check_replay and mode != "whole":
            # Play the rest at once: rrweb warns of any event that refers to a node
            # the replay does not have (a recording built wrong).
            page.evaluate(SEEK_TO_END)
            page.wait_for_timeout(2_000)
        metrics = _metrics(cdp)
        cdp.send("HeapProfiler.collectGarbage")
        kept = _metrics(cdp)
    finally:
        context.close()
    if console:  # rrweb says so when an event refers to a node it does not have
        log(
            f"{recording.name} {mode}: {len(console)} console warning(s), first: "
            f"{console[0][:200]!r}"
        )
    return Sample(
        first_frame=found["firstFrameAt"],
        loaded=found["loadedAt"],
        ttfb=found["ttfb"] or 0.0,
        view=found["view"] or 0.0,
        bytes=found["bytes"],
        requests=found["requests"],
        heap=metrics["JSHeapUsedSize"] / 2**20,
        kept=kept["JSHeapUsedSize"] / 2**20,
        longest=found["longest"],
        page_ttfb=found["pageTtfb"],
        data_start=found["dataStart"] or 0.0,
        data_end=found["dataEnd"] or 0.0,
    )


_TIMELINE = re.compile(
    r'(<script id="replayhub-timeline" type="application/json">)(.*?)(</script>)', re.S
)
_PRELOAD = re.compile(r'<link rel="preload"[^>]*>')


def _page(route: Any, whole: bool) -> None:
    """The player page; for the baseline, with one segment per window (its whole
    blob, as stored) and no preloaded first segment."""
    answer = route.fetch()
    if not whole:
        route.fulfill(response=answer)
        return
    html = answer.text()
    found = _TIMELINE.search(html)
    assert found, "the player page holds no timeline"
    document = json.loads(found[2])
    for window in document["windows"]:
        base = window["segments"][0]["url"].split("?", 1)[0]
        whole_url = f"{base}?{urllib.parse.urlencode({'window': window['id']})}"
        size = sum(s["bytes"] or 0 for s in window["segments"])
        window["segments"] = [
            {
                "url": whole_url,
                "first_ms": window["first_ms"],
                "last_ms": window["last_ms"],
                "bytes": size,
            }
        ]
    text = json.dumps(document).replace("<", "\\u003c").replace(">", "\\u003e")
    html = html[: found.start(2)] + text + html[found.end(2) :]
    route.fulfill(response=answer, body=_PRELOAD.sub("", html))


def _metrics(cdp: Any) -> dict[str, float]:
    answer = cdp.send("Performance.getMetrics")
    return {metric["name"]: metric["value"] for metric in answer["metrics"]}


def median_sample(samples: list[Sample]) -> Sample:
    def med(name: str) -> Any:
        return statistics.median(getattr(s, name) for s in samples)

    return Sample(*(med(name) for name in Sample.__dataclass_fields__))


# --- report -------------------------------------------------------------------------


def table(results: list[tuple[Built, str, Sample]]) -> str:
    lines = [
        "| recording | page | page HTML at (ms) | first frame (ms) | loaded (ms) "
        "| server TTFB (ms) | view (ms) | data requests | bytes sent (KiB) "
        "| JS heap, kept after GC (MiB) | longest block (ms) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for built, mode, s in results:
        longest = f"{s.longest:.0f}" if s.longest else "< 50"
        lines.append(
            f"| {built.name} | {mode} | {s.page_ttfb:.0f} | {s.first_frame:.0f} "
            f"| {s.loaded:.0f} | {s.ttfb:.1f} | {s.view:.1f} | {s.requests:.0f} "
            f"| {s.bytes / 1024:,.0f} | {s.heap:.1f}, {s.kept:.1f} | {longest} |"
        )
    return "\n".join(lines)


def ratios(results: list[tuple[Built, str, Sample]]) -> str:
    lines = [
        "| recording | first frame | loaded | server TTFB | bytes | JS heap |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    by_name: dict[str, dict[str, Sample]] = {}
    for built, mode, sample in results:
        by_name.setdefault(built.name, {})[mode] = sample
    for name, modes in by_name.items():
        if "segmented" in modes and "whole" in modes:
            lines.append(
                _ratio_row(f"{name}, segmented", modes["segmented"], modes["whole"])
            )
    return "\n".join(lines)


def _ratio_row(name: str, seg: Sample, whole: Sample) -> str:
    def r(a: float, b: float) -> str:
        return f"{a / b:.2f}×" if b else "–"

    return (
        f"| {name} | {r(seg.first_frame, whole.first_frame)} "
        f"| {r(seg.loaded, whole.loaded)} | {r(seg.ttfb, whole.ttfb)} "
        f"| {r(seg.bytes, whole.bytes)} | {r(seg.heap, whole.heap)} |"
    )


def shapes_table(built: list[Built]) -> str:
    lines = [
        "| recording | events | JSON (MiB) | stored, segmented (KiB) "
        "| stored, one stream (KiB) | segments (first: events, KiB) |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for one in built:
        segments = one.info["timeline"][0]["segments"]
        first = segments[0]
        lines.append(
            f"| {one.name} | {one.info['events']:,} | {one.json_bytes / 2**20:.1f} "
            f"| {one.info['stored'] / 1024:,.0f} "
            f"| {one.info['unsegmented'] / 1024:,.0f} "
            f"| {len(segments)} ({first['last_ms'] - first['first_ms']} ms, "
            f"{first['bytes'] / 1024:.0f}) |"
        )
    return "\n".join(lines)


# --- main ---------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 10, 30])
    parser.add_argument(
        "--dashboard", type=float, default=30, help="minutes of the dashboard shape"
    )
    parser.add_argument("--no-dashboard", action="store_true")
    parser.add_argument(
        "--check-replay",
        action="store_true",
        help="after each segmented load, play to the end and report rrweb's warnings",
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--db-name", default="replayhub_bench_playback")
    return parser.parse_args()


def run(opts: argparse.Namespace) -> None:
    built = recordings(opts.minutes, None if opts.no_dashboard else opts.dashboard)
    for one in built:
        log(f"built {one.name}: {len(one.events):,} events, {one.json_bytes:,} B JSON")
    with (
        tempfile.TemporaryDirectory(prefix="bench-playback-") as tmp,
        scratch_database(opts.db_name) as db_url,
    ):
        env = base_env() | {
            "DJANGO_SETTINGS_MODULE": "replayhub.settings",
            "DATABASE_URL": db_url,
            "REPLAYHUB_DATA_DIR": tmp,
            "REPLAYHUB_INGEST_RATE_PER_MINUTE": "0",
        }
        log("manage.py migrate, collectstatic; project and admin user")
        manage(["migrate", "--noinput", "--verbosity", "0"], env)
        manage(["collectstatic", "--noinput", "--verbosity", "0"], env)
        manage(["shell", "--command", PREPARE], env)
        port = free_port()
        flags = {"REPLAYHUB_BIND": f"127.0.0.1:{port}"}
        flags["REPLAYHUB_WEB_WORKERS"] = str(opts.workers)
        command = procfile_web_command(env | flags)
        with gunicorn("replayhub", command, env, port, Path(tmp) / "gunicorn.log"):
            for one in built:
                started = time.monotonic()
                send(port, one)
                log(f"sent {one.name} in {time.monotonic() - started:.1f} s")
            started = time.monotonic()
            manage(["compact_recordings", "--idle-minutes", "0"], env)
            log(f"compacted in {time.monotonic() - started:.1f} s")
            describe(env, built)
            results = browse(opts, port, built)
    print()  # noqa: T201
    print(shapes_table(built))  # noqa: T201
    print()  # noqa: T201
    print(table(results))  # noqa: T201
    print()  # noqa: T201
    print("Segmented against whole, same recording (lower is better):")  # noqa: T201
    print(ratios(results))  # noqa: T201


def browse(
    opts: argparse.Namespace, port: int, built: list[Built]
) -> list[tuple[Built, str, Sample]]:
    base = f"http://127.0.0.1:{port}"
    results: list[tuple[Built, str, Sample]] = []
    modes = ("whole", "segmented")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        state = login(browser, base)
        # Every gunicorn worker has served the pages once (imports, caches).
        for _warm_up in range(2 * opts.workers):
            for mode in modes:
                measure(browser, base, state, built[0], mode)
        log("warmed up")
        for one in built:
            for mode in modes:
                samples = []
                for attempt in range(opts.repeats):
                    sample = measure(browser, base, state, one, mode, opts.check_replay)
                    log(
                        f"{one.name} {mode} #{attempt + 1}: first frame "
                        f"{sample.first_frame:.0f} ms, loaded {sample.loaded:.0f} ms, "
                        f"TTFB {sample.ttfb:.1f} ms (view {sample.view:.1f}), longest "
                        f"{sample.longest:.0f} ms (page at {sample.page_ttfb:.0f}, "
                        f"data {sample.data_start:.0f}–{sample.data_end:.0f} ms)"
                    )
                    samples.append(sample)
                results.append((one, mode, median_sample(samples)))
        browser.close()
    return results


def main() -> int:
    opts = parse_args()
    return run_cleanly(lambda: run(opts))


if __name__ == "__main__":
    raise SystemExit(main())
