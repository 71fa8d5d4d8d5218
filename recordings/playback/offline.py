"""A recording as one self-contained HTML file that plays offline, from disk.

The page is the admin's player (the same markup, watch.js and rrweb's Replayer)
with everything inlined: the scripts and styles, the timeline document (markers
included) and each window's events as a `<script type="application/json">` that
watch.js reads instead of fetching. Nothing is loaded from anywhere.

The recorded pages are someone else's HTML, planted by whoever holds the public
capture token, and the file is opened from disk where no server sends headers: its
Content-Security-Policy is a `<meta>` first in its head (`offline_csp`).

Written as a stream: the memory held is about one stored blob's events, whatever
the recording's size (recordings.playback.responses.windows_json). The zip export of
several recordings calls `offline_html` too.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from django.contrib.staticfiles import finders
from django.http import StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe
from django.utils.timezone import now

from recordings.blobs import BlobMissing, StorageError
from recordings.models import Recording
from recordings.playback import responses
from recordings.playback.timeline import recording_timeline

# Static files inlined in the page, by their static path.
SCRIPTS = ("vendor/rrweb/rrweb.umd.min.cjs", "recordings/watch.js")
STYLES = ("vendor/rrweb/style.css", "recordings/watch.css")
# The file's Content-Security-Policy; `{scripts}` are its own inline scripts' hashes.
# The replay iframe is about:blank and inherits the policy (as do the frames inside
# it), so no recorded handler, `javascript:` URL or srcdoc script ever runs, even
# where canvas replay makes rrweb give that iframe `allow-scripts`. Nothing is
# fetched: recorded images, fonts and media show only when inlined (data:, blob:).
CSP_DIRECTIVES = (
    "default-src 'none'",
    "script-src {scripts}",
    "style-src 'unsafe-inline'",  # the page's <style>, rrweb's and recorded styles
    "img-src data: blob:",
    "font-src data:",
    "media-src data: blob:",
    "connect-src 'none'",
    "frame-src 'none'",  # the replay iframes are about:blank: not a navigation
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
)
# Inside a JSON <script> element, these bytes could end it or start markup; their
# JSON escapes mean the same (they occur only inside strings in JSON).
_JSON_ESCAPES = ((b"&", b"\\u0026"), (b"<", b"\\u003c"), (b">", b"\\u003e"))


def segment_id(number: int) -> str:
    """The element id of a window's events in the page (its segment's url is
    `#` and this)."""
    return f"replayhub-segment-{number}"


def offline_filename(recording: Recording) -> str:
    return f"replayhub-{recording.code}.html"


def offline_html(recording: Recording) -> Iterator[bytes]:
    """The HTML page of `recording`, a piece at a time (UTF-8 bytes)."""
    numbers = {w: n for n, w in enumerate(recording.window_ids(), 1)}
    timeline = recording_timeline(
        recording=recording,
        segment_url=lambda window_id: "#" + segment_id(numbers[window_id]),
    )
    if timeline["person"]:
        timeline["person"]["recordings_url"] = ""  # the admin is not there offline
    scripts = dict(zip(("rrweb_js", "watch_js"), map(_script, SCRIPTS), strict=True))
    context = {
        "recording": recording,
        "timeline": timeline,
        "exported": now(),
        "csp": offline_csp(scripts.values()),
        "css": _inlined(STYLES),
    }
    yield render_to_string("recordings/offline.html", context).encode()
    for window_id, pieces in responses.windows_json(recording=recording):
        element = segment_id(numbers[window_id])
        yield f'<script id="{element}" type="application/json">'.encode()
        for piece in pieces:
            yield json_escaped(piece)
        yield b"</script>\n"
    yield render_to_string("recordings/offline_end.html", scripts).encode()


def offline_csp(scripts: Iterable[str]) -> str:
    """The page's policy: of scripts, only `scripts` (the inline scripts' texts)
    run, by their hashes.

    >>> offline_csp(["alert(1)"]).split("; ")[1]
    "script-src 'sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI='"
    """
    hashes = " ".join(f"'sha256-{_sha256(text)}'" for text in scripts)
    return "; ".join(CSP_DIRECTIVES).format(scripts=hashes)


def _sha256(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def offline_response(recording: Recording) -> HttpResponseBase:
    """The page as a download; a 503 when blob storage fails before it starts.

    The first window's first blob is read before answering (as the export does);
    a blob that fails later cuts the download short.
    """
    pieces = offline_html(recording)
    first: list[bytes] = []
    try:
        for piece in pieces:
            first.append(piece)
            if len(first) == 3:  # the page's head, a segment's tag, its first bytes
                break
    except BlobMissing as exc:
        return responses.data_missing(recording, exc)
    except StorageError:
        return responses.storage_unavailable()
    response = StreamingHttpResponse(
        itertools.chain(first, pieces), content_type="text/html; charset=utf-8"
    )
    name = offline_filename(recording)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def json_escaped(piece: bytes) -> bytes:
    r"""JSON bytes made safe inside a `<script>` element.

    >>> json_escaped(b'["</script>"]')
    b'["\\u003c/script\\u003e"]'
    """
    for raw, escaped in _JSON_ESCAPES:
        piece = piece.replace(raw, escaped)
    return piece


def _static_text(name: str) -> str:
    found = finders.find(name)
    if not isinstance(found, str):
        raise FileNotFoundError(f"static file {name} is missing")
    return Path(found).read_text(encoding="utf-8")


def _script(name: str) -> SafeString:
    # "</script" would end the element early; "<\/script" is the same in JS text.
    text = re.sub(r"</(script)", r"<\\/\1", _static_text(name), flags=re.IGNORECASE)
    return mark_safe(text)  # noqa: S308 - our own static files, made inert above


def _inlined(names: tuple[str, ...]) -> SafeString:
    text = "\n".join(_static_text(name) for name in names)
    return mark_safe(text.replace("</", "<\\/"))  # noqa: S308 - our own static files
