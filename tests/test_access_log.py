"""gunicorn's access log keeps no client address unless the operator turns it on.

Projects store IP addresses only when their privacy settings say so; the access
log is the installation's, and outlives any erasure. It keeps neither the peer's
address nor X-Forwarded-For, nor what a request says of the person (query string,
Referer, User-Agent), unless REPLAYHUB_ACCESS_LOG_IPS turns the addresses on.
These tests run the Procfile's `web:` line (real gunicorn) and read its log.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.processes import (
    embedded_env,
    free_port,
    get,
    procfile,
    running,
    shell,
    wait_until,
)

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="starts the Procfile's web process"
)

PAGE = "/no-such-page"  # answered 404 by Django, with no database needed
VISITOR = "203.0.113.9"  # what a proxy in front says the client was
HEADERS = {
    "X-Forwarded-For": VISITOR,
    "Referer": "https://shop.test/account?email=jane@example.org",
    "User-Agent": "JanesBrowser/1.0",
}


def access_line(tmp_path: Path, **env: str) -> str:
    """Start the web process, send one request, and return its access log line."""
    port = free_port()
    environ = embedded_env(
        tmp_path, REPLAYHUB_BIND=f"127.0.0.1:{port}", REPLAYHUB_WEB_WORKERS="1", **env
    )
    out, err = tmp_path / "access.log", tmp_path / "error.log"
    with running(shell(procfile()["web"]), environ, out, err) as process:
        wait_until(
            lambda: process.poll() is not None or get(port, "/healthz") is not None,
            "gunicorn",
        )
        assert process.poll() is None, err.read_text()[-2000:]
        assert get(port, f"{PAGE}?q=jane@example.org", HEADERS) == 404
        wait_until(lambda: PAGE in out.read_text(), "the access log line")
    (line,) = [line for line in out.read_text().splitlines() if PAGE in line]
    return line


def test_it_logs_no_address_and_nothing_of_the_person_by_default(
    tmp_path: Path,
) -> None:
    line = access_line(tmp_path)
    assert '"GET /no-such-page HTTP/1.1" 404 ' in line
    for kept in ("127.0.0.1", VISITOR, "jane", "JanesBrowser", "shop.test"):
        assert kept not in line, line


def test_an_operator_turns_the_peer_address_on(tmp_path: Path) -> None:
    line = access_line(tmp_path, REPLAYHUB_ACCESS_LOG_IPS="true")
    assert line.startswith("127.0.0.1 "), line
    assert VISITOR not in line  # the header is not believed: ReplayHub ignores it
    assert '"GET /no-such-page HTTP/1.1" 404 ' in line


def test_behind_a_trusted_proxy_it_logs_the_forwarded_address_too(
    tmp_path: Path,
) -> None:
    line = access_line(
        tmp_path, REPLAYHUB_ACCESS_LOG_IPS="1", REPLAYHUB_TRUST_X_FORWARDED_FOR="true"
    )
    assert line.startswith(f'127.0.0.1 "{VISITOR}" '), line


def test_a_switch_that_is_not_a_boolean_stops_the_server(tmp_path: Path) -> None:
    environ = embedded_env(tmp_path, REPLAYHUB_ACCESS_LOG_IPS="maybe")
    out, err = tmp_path / "out.log", tmp_path / "err.log"
    with running(shell(procfile()["web"]), environ, out, err) as process:
        process.wait(30)
    assert process.returncode != 0
    assert "REPLAYHUB_ACCESS_LOG_IPS='maybe' is not a boolean" in err.read_text()
