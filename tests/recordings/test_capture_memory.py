"""One capture request grows a worker by at most ~2x the decompressed bound.

Each case runs in a fresh process: its peak resident size (VmHWM) is reset right
before the request, so the figure is what handling that request cost. The bodies
are small on the wire and inflate to just under the bound, as in issue 10 (a
61 KB body carrying one 60 MiB string grew a worker by 260-330 MiB); they are
built by streaming into the compressor, so the probe never holds them inflated.

And the worker gives that memory back: under sustained hostile load a gunicorn
worker stays under its idle size plus twice the per-request bound (issue 24; the
last test, and bench/ingest/worker_memory.py at full scale).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BOUND = 32 * 1024 * 1024
MIB = 1024 * 1024
PROBE = r"""
import json, sys, zlib
from pathlib import Path
import django
django.setup()
from django.core.management import call_command
from django.test import Client

TOKEN = "phc_memory_probe"
T0 = 1_790_000_000_000
case = json.loads(sys.argv[1])

def status_kb(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])

def dumps(value):
    return json.dumps(value, ensure_ascii=False).encode()

def page(text):
    meta = {"type": 4, "timestamp": T0, "data": {"href": "https://shop.test/"}}
    node = {"type": 2, "id": 2, "tagName": "p", "attributes": {},
            "childNodes": [{"type": 3, "id": 3, "textContent": text}]}
    full = {"type": 2, "timestamp": T0 + 1,
            "data": {"node": {"type": 0, "id": 1, "childNodes": [node]}}}
    return [meta, full]

def envelope(path, events, session):
    if path == "/s/":
        props = {"$session_id": session, "$window_id": "w", "token": TOKEN,
                 "$snapshot_data": events}
        return [{"uuid": session + "-1", "event": "$snapshot", "properties": props}]
    return {"token": TOKEN, "session_id": session, "window_id": "w",
            "batch_id": session + "-1", "events": events}

def analytics(texts):
    batch = [{"uuid": f"e{i}", "event": "big", "properties": {
        "distinct_id": "d", "$session_id": "s", "text": text}}
        for i, text in enumerate(texts)]
    return {"api_key": TOKEN, "batch": batch}

def streamed(template, pieces):
    # `template` has one "@@" per run of pieces; a run is (bytes, times).
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts, size = [], 0
    for head, (piece, times) in zip(template.split(b"@@"), pieces + [(b"", 0)]):
        parts.append(compressor.compress(head))
        size += len(head)
        for _ in range(times):
            parts.append(compressor.compress(piece))
        size += len(piece) * times
    parts.append(compressor.flush())
    return b"".join(parts), size

def text_run(nbytes):
    unit = case.get("unit", "lorem ipsum ").encode()
    piece = unit * (65536 // len(unit))
    return piece, nbytes // len(piece)

def body(kind, path, nbytes, session):
    if kind == "string":
        if path in ("/s/", "/api/v1/ingest/rrweb/"):
            template = dumps(envelope(path, page("@@"), session))
        else:
            template = dumps(analytics(["@@"]))
        return streamed(template, [text_run(nbytes)])
    if kind == "events":  # many analytics events, each under the event cap
        count = nbytes // case["event_bytes"]
        template = dumps(analytics(["@@"] * count))
        return streamed(template, [text_run(case["event_bytes"])] * count)
    if kind == "nodes":  # many small DOM nodes: what grows most when parsed
        document = {"type": 0, "id": 1, "childNodes": ["@@"]}
        full = {"type": 2, "timestamp": T0 + 1, "data": {"node": document}}
        template = dumps(envelope(path, page("")[:1] + [full], session))
        node = b'{"type":2,"id":7,"tagName":"div","attributes":{"class":"c"},'
        node += b'"childNodes":[]}'
        # [node,node,...,node]: the run, then the last node without its comma.
        template = template.replace(b'"@@"', b"@@" + node)
        return streamed(template, [(node + b",", case["nodes"] - 1)])
    raise ValueError(kind)

call_command("migrate", verbosity=0)
from recordings.models import Project
Project.objects.create(name="memory probe", token=TOKEN)
client = Client()
# Warm up imports, caches and the first session with a small body.
small, _ = body("string", case["path"], 1 << 17, "warm")
warm = client.post(case["path"], data=small, content_type="text/plain")
assert warm.status_code == 200, warm.content
data, inflated = body(case["kind"], case["path"], case.get("bytes", 0), "probe")
Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to now
before = status_kb("VmRSS")
response = client.post(case["path"], data=data, content_type="text/plain")
print(json.dumps({
    "status": response.status_code,
    "body": response.content[:300].decode(),
    "wire": len(data),
    "inflated": inflated,
    "growth": (status_kb("VmHWM") - before) * 1024,
}))
"""
BOMB_PROBE = r"""
import json, zlib
from pathlib import Path
import django
django.setup()
from django.test import Client

def status_kb(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])

compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing
zeros = b"\0" * (1 << 20)
parts = [compressor.compress(zeros) for _ in range(1024)]
bomb = b"".join(parts) + compressor.flush()
client = Client()
client.get("/healthz")  # warm up imports and lazy state
Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to now
before = status_kb("VmRSS")
response = client.post("/s/", data=bomb, content_type="text/plain")
print(json.dumps({
    "status": response.status_code,
    "error": response.json()["error"],
    "bomb_bytes": len(bomb),
    "growth": (status_kb("VmHWM") - before) * 1024,
}))
"""
linux_only = pytest.mark.skipif(
    not Path("/proc/self/clear_refs").exists(), reason="Linux only"
)


def run_probe(tmp_path: Path, probe: str, *args: str) -> dict[str, object]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "replayhub.settings",
        "REPLAYHUB_DATA_DIR": str(tmp_path),
        "REPLAYHUB_INGEST_MAX_DECOMPRESSED_BYTES": str(BOUND),
        "REPLAYHUB_INGEST_RATE_PER_MINUTE": "0",
        "ALLOWED_HOSTS": "testserver",
    }
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-c", probe, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


@linux_only
def test_a_gzip_bomb_is_refused_within_twice_the_bound(tmp_path: Path) -> None:
    report = run_probe(tmp_path, BOMB_PROBE)
    assert report["status"] == 413
    assert report["error"] == "decompressed_too_large"
    assert report["bomb_bytes"] < 2 * MIB  # type: ignore[operator]  # 1 GiB of zeros
    assert report["growth"] < 2 * BOUND, report  # type: ignore[operator]


STRING = BOUND - 4 * MIB  # one string, with room for the rest of the body
CASES = {
    # One long string in a page: stored (it is one text node).
    "/s/ string": ({"path": "/s/", "kind": "string", "bytes": STRING}, 200),
    "rrweb string": (
        {"path": "/api/v1/ingest/rrweb/", "kind": "string", "bytes": STRING},
        200,
    ),
    # One analytics event is one database row: over 1 MiB it is refused.
    "/e/ string": ({"path": "/e/", "kind": "string", "bytes": STRING}, 413),
    "/i/v0/e/ string": ({"path": "/i/v0/e/", "kind": "string", "bytes": STRING}, 413),
    # As much, in events under the cap: stored.
    "/i/v0/e/ events": (
        {"path": "/i/v0/e/", "kind": "events", "bytes": STRING, "event_bytes": 900_000},
        200,
    ),
    # Nearly as many JSON values as the bound allows (one per 64 bytes of it), in
    # DOM nodes of 8 values each: the shape that grows most when parsed.
    "/s/ nodes": (
        {"path": "/s/", "kind": "nodes", "nodes": BOUND // 64 // 8 - 16},
        200,
    ),
    "/s/ nodes over the values bound": (
        {"path": "/s/", "kind": "nodes", "nodes": BOUND // 64 // 8 + 16},
        413,
    ),
}


@linux_only
@pytest.mark.parametrize("name", list(CASES))
def test_a_request_grows_the_worker_by_at_most_twice_the_bound(
    tmp_path: Path, name: str
) -> None:
    case, status = CASES[name]
    report = run_probe(tmp_path, PROBE, json.dumps(case))
    assert report["status"] == status, report
    assert report["wire"] < 2 * MIB, report  # type: ignore[operator]
    assert report["growth"] < 2 * BOUND, report  # type: ignore[operator]


@linux_only
def test_a_long_non_ascii_string_costs_a_little_more(tmp_path: Path) -> None:
    # The known excess (README): once orjson has encoded a non-ASCII str, CPython
    # keeps a UTF-8 copy of it on the str for as long as it lives. Measured: 2.6x.
    case = {"path": "/s/", "kind": "string", "bytes": STRING, "unit": "é漢 "}
    report = run_probe(tmp_path, PROBE, json.dumps(case))
    assert report["status"] == 200, report
    assert report["growth"] < 2.75 * BOUND, report  # type: ignore[operator]


# --- a worker under sustained hostile load (issue 24) ---------------------------------
#
# The Procfile's gunicorn, one worker with its 4 threads, takes 40 hostile requests
# (as in bench/ingest/worker_memory.py, which sends 200 + 200 with the default
# bound): small gzip bodies inflating to just under the bound, to every capture
# endpoint, one after the other and then 8 at once. The worker must stay under its
# idle size plus twice the per-request bound (the README's "about twice the
# decompressed bound"), and give back what the requests took: before the fixes it
# kept each request's parsed payload until the cyclic collector's next full pass,
# and glibc kept freed blocks in its threads' heaps (docs/benchmarks/memory.md).

PER_REQUEST = 2 * BOUND
LOAD_TOKEN = "phc_worker_memory"
T0 = 1_790_000_000_000
_PROCFILE_VAR = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")
_NODE = b'{"type":2,"id":7,"tagName":"div","attributes":{"class":"c"},"childNodes":[]}'


def _gzip_runs(template: bytes, runs: list[tuple[bytes, int]]) -> bytes:
    """Gzip `template` with its k-th "@@" replaced by runs[k] (a piece, so many
    times), streamed: the inflated body is never held here."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = []
    for head, (piece, times) in zip(
        template.split(b"@@"), [*runs, (b"", 0)], strict=True
    ):
        parts.append(compressor.compress(head))
        parts.extend(compressor.compress(piece) for _ in range(times))
    parts.append(compressor.flush())
    return b"".join(parts)


def _text(nbytes: int) -> tuple[bytes, int]:
    piece = b"lorem ipsum " * (65536 // 12)
    return piece, nbytes // len(piece)


def _dumps(value: object) -> bytes:
    return json.dumps(value).encode()


def _snapshot_items(session: str, events: object) -> bytes:
    props = {
        "$session_id": session,
        "$window_id": "w",
        "token": LOAD_TOKEN,
        "distinct_id": "d",
        "$snapshot_data": events,
    }
    item = {"uuid": session, "event": "$snapshot", "properties": props}
    return _dumps([item])


def _page_with(text: str) -> list[dict[str, object]]:
    text_node = {"type": 3, "id": 3, "textContent": text}
    node = {"type": 2, "id": 2, "tagName": "p", "attributes": {}}
    root = {"type": 0, "id": 1, "childNodes": [{**node, "childNodes": [text_node]}]}
    return [
        {"type": 4, "timestamp": T0, "data": {"href": "https://shop.test/"}},
        {"type": 2, "timestamp": T0 + 1, "data": {"node": root}},
    ]


def _analytics_with(texts: list[str]) -> bytes:
    batch = [
        {"uuid": f"e{i}", "event": "big", "properties": {"distinct_id": "d", "t": t}}
        for i, t in enumerate(texts)
    ]
    return _dumps({"api_key": LOAD_TOKEN, "batch": batch})


def hostile_requests() -> list[tuple[str, bytes, int]]:
    """(path, gzip body, expected status): each asks the most one request may."""
    string = STRING
    nodes = BOUND // 64 // 8 - 16  # 8 JSON values a node, one per 64 bytes of bound
    dom = [{"type": 2, "timestamp": T0, "data": {"node": {"childNodes": ["@@"]}}}]
    dom_template = _snapshot_items("n", dom).replace(b'"@@"', b"@@" + _NODE)
    rrweb = {"token": LOAD_TOKEN, "session_id": "r", "events": _page_with("@@")}
    events = string // 900_000
    page = _snapshot_items("s", _page_with("@@"))
    many = _analytics_with(["@@"] * events)
    return [
        ("/s/", _gzip_runs(page, [_text(string)]), 200),
        ("/s/", _gzip_runs(dom_template, [(_NODE + b",", nodes - 1)]), 200),
        ("/api/v1/ingest/rrweb/", _gzip_runs(_dumps(rrweb), [_text(string)]), 200),
        ("/i/v0/e/", _gzip_runs(many, [_text(900_000)] * events), 200),
        # One event over the 1 MiB event cap: parsed whole, then refused.
        ("/e/", _gzip_runs(_analytics_with(["@@"]), [_text(string)]), 413),
    ]


def _procfile_web(env: dict[str, str]) -> list[str]:
    """The Procfile's web command, its ${VAR:-default}s expanded from `env`."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith("web:"):
            words = shlex.split(line.removeprefix("web:"))
            return [
                _PROCFILE_VAR.sub(lambda m: env.get(m[1]) or m[2] or "", word)
                for word in words
            ]
    raise AssertionError("the Procfile has no web: line")


@contextlib.contextmanager
def _database(tmp_path: Path) -> Iterator[str]:
    """SQLite in tmp_path; on PostgreSQL runs, a scratch database beside the tests'."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        yield f"sqlite:///{tmp_path / 'replayhub.sqlite3'}"
        return
    import psycopg

    server, _, name = url.rpartition("/")
    scratch = f"{name}_worker_memory"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{scratch}"')
    try:
        yield f"{server}/{scratch}"
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')


@contextlib.contextmanager
def _gunicorn(tmp_path: Path, database_url: str) -> Iterator[tuple[int, int]]:
    """The Procfile's web command with one worker: (port, the worker's pid)."""
    port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("REPLAYHUB_", "MALLOC_"))
        and key not in {"DATABASE_URL", "REDIS_URL", "DEBUG", "ALLOWED_HOSTS"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="replayhub.settings",
        DATABASE_URL=database_url,
        REPLAYHUB_DATA_DIR=str(tmp_path),
        REPLAYHUB_INGEST_MAX_DECOMPRESSED_BYTES=str(BOUND),
        REPLAYHUB_INGEST_RATE_PER_MINUTE="0",
        REPLAYHUB_BIND=f"127.0.0.1:{port}",
        REPLAYHUB_WEB_WORKERS="1",
        ALLOWED_HOSTS="127.0.0.1",
    )
    setup = (
        "from django.core.management import call_command; "
        "call_command('migrate', verbosity=0); "
        "from recordings.models import Project; "
        f"Project.objects.create(name='memory', token='{LOAD_TOKEN}')"
    )
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", setup],
        cwd=ROOT,
        env=env,
        check=True,
    )
    log = (tmp_path / "gunicorn.log").open("wb")
    server = subprocess.Popen(
        _procfile_web(env), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        worker = _wait_for_worker(server, port)
        yield port, worker
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_worker(server: subprocess.Popen[bytes], port: int) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, "gunicorn exited"
        with contextlib.suppress(OSError):
            if _post(port, "GET", "/healthz", b"") == 200:
                (worker,) = _children(server.pid)
                return worker
        time.sleep(0.2)
    raise AssertionError("gunicorn did not answer within 60 s")


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if int(text[text.rindex(")") + 2 :].split()[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _post(port: int, method: str, path: str, body: bytes) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "text/plain"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


@linux_only
def test_a_worker_gives_back_what_hostile_requests_took(tmp_path: Path) -> None:
    requests = hostile_requests()
    assert all(len(body) < 2 * MIB for _, body, _ in requests)
    with _database(tmp_path) as url, _gunicorn(tmp_path, url) as (port, worker):
        warm = _gzip_runs(_snapshot_items("warm", _page_with("@@")), [_text(1 << 17)])
        assert _post(port, "POST", "/s/", warm) == 200
        idle = _rss(worker)
        after: list[int] = []
        statuses: list[tuple[int, int]] = []
        for i in range(24):  # one after the other
            path, body, status = requests[i % len(requests)]
            statuses.append((_post(port, "POST", path, body), status))
            after.append(_rss(worker))
        with ThreadPoolExecutor(8) as pool:  # 8 at once, twice: the 4 threads busy
            for _ in range(2):
                round_ = [requests[i % len(requests)] for i in range(8)]
                answers = pool.map(lambda r: _post(port, "POST", r[0], r[1]), round_)
                statuses += zip(answers, [r[2] for r in round_], strict=True)
                after.append(_rss(worker))
        time.sleep(0.5)
        final = _rss(worker)
    assert all(got == want for got, want in statuses), statuses
    mib = [round(size / MIB) for size in after]
    assert max(after) < idle + 2 * PER_REQUEST, (idle // MIB, mib)
    # And it gave the memory back: before the fixes, 40 requests left ~120 MiB.
    assert final < idle + PER_REQUEST / 2, (idle // MIB, final // MIB, mib)
