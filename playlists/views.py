"""The public share pages: /share/<token>/, no login.

Opening the page is the one view logged and counted (share_link_open); the page
hands the player a ticket, so that its events requests, and moving between a
playlist's recordings or a recording's windows, log nothing more, and keep
working when that view was the link's last allowed one. Without a ticket, an
events request needs a link that still opens. The pages show the recordings and
nothing else of the project: no person, no other recordings, no admin links.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.core import signing
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotFound
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse

from playlists import services
from playlists.models import ShareLink, hash_share_token
from recordings.client_address import client_ip
from recordings.models import Recording
from recordings.playback import responses

# As the admin's player page (recordings.admin.recording.PLAYER_CSP): only our own
# script files run, and the replay iframe inherits it; nobody may frame the page.
SHARE_CSP = (
    "script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
# A ticket lets the page's own requests go on for this long after the view.
TICKET_MAX_AGE = 6 * 60 * 60
_SALT = "playlists.share-ticket"
# A playlist's page lists this many of its recordings at most.
PLAYLIST_PAGE_MAX = 200


def _private(response: HttpResponse) -> HttpResponse:
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "no-store"
    response["Content-Security-Policy"] = SHARE_CSP
    return response


def private_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The share pages' headers on every answer, a 404 included (unknown token)."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        try:
            response = view(request, *args, **kwargs)
        except Http404:
            response = HttpResponseNotFound("Not found.", content_type="text/plain")
        return _private(response)

    return wrapped


def _ticket(link: ShareLink) -> str:
    return signing.TimestampSigner(salt=_SALT).sign(str(link.pk))


def _has_ticket(request: HttpRequest, link: ShareLink) -> bool:
    try:
        value = signing.TimestampSigner(salt=_SALT).unsign(
            request.GET.get("t", ""), max_age=TICKET_MAX_AGE
        )
    except signing.BadSignature:
        return False
    return value == str(link.pk)


def _link(token: str) -> ShareLink:
    return get_object_or_404(
        ShareLink.objects.select_related("project", "recording", "playlist"),
        token_hash=hash_share_token(token),
    )


def _gone(request: HttpRequest, reason: str) -> HttpResponse:
    return TemplateResponse(
        request, "playlists/share_gone.html", {"reason": reason}, status=410
    )


def _usable(request: HttpRequest, link: ShareLink) -> str:
    """ "ok" when the page's own request may go on (no view logged), else why not."""
    state = services.share_link_state(link)
    if state == "used up" and _has_ticket(request, link):
        return "ok"  # the view that used it up is still being watched
    return state


@private_page
def share_page(request: HttpRequest, token: str) -> HttpResponse:
    """The shared recording or playlist, playing; 410 when the link is gone."""
    link = _link(token)
    if not _has_ticket(request, link) or _usable(request, link) != "ok":
        try:
            link = services.share_link_open(
                token=token,
                user_agent=request.headers.get("User-Agent", ""),
                ip_address=client_ip(request) or None,
            )
        except services.ShareLinkGone as gone:
            return _gone(request, gone.reason)
    ticket = _ticket(link)
    recording, recordings = _shown(request, link)
    windows = recording.window_ids() if recording else []
    window = request.GET.get("window") or (windows[0] if windows else "")
    if window and window not in windows:
        raise Http404("no such window")
    context = {
        "link": link,
        "playlist": link.playlist,
        "recording": recording,
        "recordings": recordings,
        "windows": windows,
        "window": window,
        "ticket": ticket,
        "events_url": _events_url(link, token, recording, ticket),
    }
    return TemplateResponse(request, "playlists/share.html", context)


def _shown(
    request: HttpRequest, link: ShareLink
) -> tuple[Recording | None, list[Recording]]:
    """The recording to play and, for a playlist, the recordings it lists."""
    if link.recording is not None:
        return link.recording, []
    assert link.playlist is not None
    found = services.share_link_recordings(link=link)
    recordings = list(found[:PLAYLIST_PAGE_MAX])
    wanted = request.GET.get("recording")
    if wanted is None:
        return (recordings[0] if recordings else None), recordings
    for recording in recordings:
        if str(recording.code) == wanted:
            return recording, recordings
    raise Http404("the playlist does not hold this recording")


def _events_url(
    link: ShareLink, token: str, recording: Recording | None, ticket: str
) -> str:
    if recording is None:
        return ""
    if link.recording is not None:
        url = reverse("playlists:share-events", args=[token])
    else:
        url = reverse("playlists:share-recording-events", args=[token, recording.code])
    return f"{url}?t={ticket}"


@private_page
def share_events(request: HttpRequest, token: str) -> HttpResponse:
    """The shared recording's events, for the page's player: no view logged."""
    link = _link(token)
    if link.recording is None:
        raise Http404("a playlist's link: ask for one of its recordings")
    return _events(request, link, link.recording)


@private_page
def share_recording_events(request: HttpRequest, token: str, code: str) -> HttpResponse:
    """One recording of the shared playlist, for the page's player."""
    link = _link(token)
    if link.playlist is None:
        raise Http404("not a playlist's link")
    found = services.share_link_recordings(link=link)
    recording = get_object_or_404(found, code=code)
    return _events(request, link, recording)


def _events(
    request: HttpRequest, link: ShareLink, recording: Recording
) -> HttpResponse:
    state = _usable(request, link)
    if state != "ok":
        return HttpResponse(f"This link is {state}.", status=410)
    return responses.events_response(
        recording=recording,
        window_id=request.GET.get("window") or None,
        as_stored="gzip" in request.headers.get("Accept-Encoding", "").lower(),
    )
