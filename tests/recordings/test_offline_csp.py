"""The offline HTML file's own Content-Security-Policy: first in its head, it lets
only the file's own inline scripts run (by hash) and loads nothing.

tests/e2e/test_recorded_code_never_runs.py opens such a file in Chromium with
planted payloads; this checks the policy the page carries against its scripts.
"""

from __future__ import annotations

import base64
import hashlib
from html.parser import HTMLParser

from recordings.models import Recording
from recordings.playback.offline import offline_html
from tests.base import ReplayTestCase
from tests.capture import FIXTURE_TOKEN, send_rrweb, session_events


class PageParser(HTMLParser):
    """The head's first element, and the texts of the scripts that run."""

    def __init__(self) -> None:
        super().__init__()
        self.first_in_head: tuple[str, dict[str, str | None]] | None = None
        self.scripts: list[str] = []
        self._in_head = False
        self._script: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._in_head and self.first_in_head is None:
            self.first_in_head = (tag, dict(attrs))
        self._in_head = self._in_head or tag == "head"
        if tag == "script" and dict(attrs).get("type") in (None, "text/javascript"):
            self._script = []

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self._script.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._script is not None:
            self.scripts.append("".join(self._script))
            self._script = None


def sha256(text: str) -> str:
    digest = hashlib.sha256(text.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


class OfflineCspTests(ReplayTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.make_project("Shop", token=FIXTURE_TOKEN)
        send_rrweb(self.client, FIXTURE_TOKEN, "a1", session_events("main.0")[:40])
        self.recording = Recording.objects.get()

    def page(self) -> PageParser:
        parser = PageParser()
        parser.feed(b"".join(offline_html(self.recording)).decode())
        parser.close()
        return parser

    def policy(self, parser: PageParser) -> dict[str, list[str]]:
        assert parser.first_in_head is not None
        tag, attrs = parser.first_in_head
        self.assertEqual(tag, "meta")
        self.assertEqual(attrs["http-equiv"], "Content-Security-Policy")
        content = attrs["content"] or ""
        directives = (part.split() for part in content.split(";") if part.strip())
        return {name: values for name, *values in directives}

    def test_it_runs_only_its_own_scripts_by_hash(self) -> None:
        parser = self.page()
        policy = self.policy(parser)
        self.assertEqual(len(parser.scripts), 2)  # rrweb and watch.js
        self.assertEqual(policy["script-src"], [sha256(s) for s in parser.scripts])
        self.assertEqual(policy["default-src"], ["'none'"])

    def test_it_loads_nothing_and_submits_nowhere(self) -> None:
        policy = self.policy(self.page())
        for name in ("connect-src", "frame-src", "object-src", "base-uri"):
            self.assertEqual(policy[name], ["'none'"], name)
        self.assertEqual(policy["form-action"], ["'none'"])
        self.assertEqual(policy["img-src"], ["data:", "blob:"])
