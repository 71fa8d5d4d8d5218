"""Playlists and share links: `<entity>_<verb>` functions (house style 5).

A playlist holds its pinned recordings and, when it has a saved filter, every
recording of its project the filter finds, in the filter's order.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef, Q
from django.utils.timezone import now

from playlists import access
from playlists.models import (
    Playlist,
    PlaylistPin,
    PlaylistVisit,
    ShareLink,
    ShareLinkView,
    hash_share_token,
    new_share_token,
)
from privacy.policy import privacy_for
from recordings.ingest.storable import clean_text
from recordings.models import Project, Recording, RecordingQuerySet
from recordings.search.compiler import ORDERINGS, document_q
from recordings.search.language import FilterInvalid, parse_document
from recordings.search.language.document import (
    Commented,
    Document,
    Group,
    InPlaylist,
    Node,
    Not,
    Viewed,
)

DEFAULT_SHARE_DAYS = 7
# The state of a link whose playlist depends on who looks ("viewed by me") once its
# creator is deleted, suspended or can no longer see the playlist.
CREATOR_LOST_ACCESS = "creator lost access"


# --- playlists ----------------------------------------------------------------------


def playlist_document(data: Any) -> Document:
    """A playlist's saved filter, checked: valid, and not built on playlists
    (a saved filter naming a playlist could name itself)."""
    document = parse_document(data)
    if document.where is not None and _has_term(document.where, _names_a_playlist):
        raise ValidationError(
            "A playlist's filter cannot use the in_playlist term; pin the "
            "recordings instead."
        )
    return document


def playlist_depends_on_person(playlist: Playlist) -> bool:
    """Whether what the playlist holds depends on who looks: its filter says "me"
    (viewed by me, commented by me) or names a playlist (which some cannot see)."""
    if not playlist.filter:
        return False
    where = parse_document(playlist.filter).where
    return where is not None and _has_term(where, _personal)


def _has_term(node: Node, test: Callable[[Node], bool]) -> bool:
    if isinstance(node, Group):
        return any(_has_term(child, test) for child in node.nodes)
    if isinstance(node, Not):
        return _has_term(node.node, test)
    return test(node)


def _names_a_playlist(term: Node) -> bool:
    return isinstance(term, InPlaylist)


def _personal(term: Node) -> bool:
    if isinstance(term, Commented):
        return term.by_me
    return isinstance(term, Viewed | InPlaylist)


@transaction.atomic
def playlist_create(
    *,
    project: Project,
    owner: User,
    name: str,
    description: str = "",
    filter: dict[str, Any] | None = None,  # noqa: A002 - the document's own name
) -> Playlist:
    if filter is not None:
        try:
            playlist_document(filter)
        except FilterInvalid as exc:
            raise ValidationError(str(exc)) from exc
    playlist = Playlist(
        project=project, owner=owner, name=name, description=description, filter=filter
    )
    playlist.full_clean()
    playlist.save()
    return playlist


@transaction.atomic
def playlist_update(*, playlist: Playlist, **changes: Any) -> Playlist:
    """Change the playlist's name, description or filter (checked as on create)."""
    if changes.get("filter") is not None:
        playlist_document(changes["filter"])
    for field, value in changes.items():
        setattr(playlist, field, value)
    playlist.updated = now()
    playlist.full_clean()
    playlist.save()
    return playlist


def playlist_recordings(
    *, playlist: Playlist, user: User | None, at: dt.datetime | None = None
) -> RecordingQuerySet:
    """The playlist's recordings, pinned or found, in its filter's order."""
    order = "newest"
    if playlist.filter:
        order = parse_document(playlist.filter).order
    found = Recording.objects.filter(playlist_q(playlist, user, at or now()))
    return found.order_by(*ORDERINGS[order])


def playlist_q(playlist: Playlist, user: Any, at: dt.datetime) -> Q:
    """Recordings the playlist holds (for a query on Recording)."""
    pinned = Q(
        Exists(PlaylistPin.objects.filter(playlist=playlist, recording=OuterRef("pk")))
    )
    if not playlist.filter:
        return pinned
    document = parse_document(playlist.filter)
    found = Q(project_id=playlist.project_id) & document_q(document.where, at, user)
    return pinned | found


@dataclasses.dataclass(frozen=True, slots=True)
class PlaylistCounts:
    total: int
    new: int  # added or found since the user last opened the playlist


def playlists_counts(
    *, playlists: Iterable[Playlist], user: User
) -> dict[int, PlaylistCounts]:
    """Each playlist's number of recordings and how many are new to `user`: two
    queries for the whole page (the user's visits, one aggregate over recordings)."""
    playlists = list(playlists)
    if not playlists:
        return {}
    visits = dict(
        PlaylistVisit.objects.filter(user=user, playlist__in=playlists).values_list(
            "playlist_id", "last_opened"
        )
    )
    at = now()
    aggregates = {}
    for playlist in playlists:
        holds = playlist_q(playlist, user, at)
        aggregates[f"t{playlist.pk}"] = Count("pk", filter=holds)
        since = visits.get(playlist.pk)
        new = holds if since is None else holds & _added_since(playlist, since)
        aggregates[f"n{playlist.pk}"] = Count("pk", filter=new)
    projects = {playlist.project_id for playlist in playlists}
    counts = Recording.objects.filter(project_id__in=projects).aggregate(**aggregates)
    return {
        p.pk: PlaylistCounts(counts[f"t{p.pk}"], counts[f"n{p.pk}"]) for p in playlists
    }


def _added_since(playlist: Playlist, since: dt.datetime) -> Q:
    pinned_since = PlaylistPin.objects.filter(
        playlist=playlist, recording=OuterRef("pk"), created__gt=since
    )
    return Q(created__gt=since) | Q(Exists(pinned_since))


def playlist_visit(*, playlist: Playlist, user: User) -> None:
    """Note that `user` opened the playlist now: "new" counts from here."""
    PlaylistVisit.objects.update_or_create(
        playlist=playlist, user=user, defaults={"last_opened": now()}
    )


def playlist_pin(
    *,
    playlist: Playlist,
    recordings: Iterable[Recording],
    user: User | None,
    note: str = "",
) -> int:
    """Pin recordings of the playlist's project; returns how many were new."""
    rows = [
        PlaylistPin(playlist=playlist, recording=recording, pinned_by=user, note=note)
        for recording in recordings
        if recording.project_id == playlist.project_id
    ]
    before = playlist.pins.count()
    PlaylistPin.objects.bulk_create(rows, ignore_conflicts=True)
    Playlist.objects.filter(pk=playlist.pk).update(updated=now())
    return playlist.pins.count() - before


def playlist_unpin(*, playlist: Playlist, recording: Recording) -> bool:
    deleted, _ = PlaylistPin.objects.filter(
        playlist=playlist, recording=recording
    ).delete()
    return bool(deleted)


def playlist_neighbours(
    *, playlist: Playlist, recording: Recording, user: User | None
) -> tuple[Recording | None, Recording | None]:
    """The recordings before and after `recording` in the playlist's order."""
    codes = list(
        playlist_recordings(playlist=playlist, user=user).values_list("pk", flat=True)[
            :10_000
        ]
    )
    if recording.pk not in codes:
        return None, None
    at = codes.index(recording.pk)
    before = codes[at - 1] if at > 0 else None
    after = codes[at + 1] if at + 1 < len(codes) else None
    found = Recording.objects.in_bulk([pk for pk in (before, after) if pk])
    return found.get(before or 0), found.get(after or 0)


_USER_AGENT = ShareLinkView._meta.get_field("user_agent")


# --- share links --------------------------------------------------------------------


class ShareLinkGone(Exception):
    """A share link that no longer opens: expired, revoked, used up or forbidden."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def share_link_create(
    *,
    target: Recording | Playlist,
    user: User,
    days: int = DEFAULT_SHARE_DAYS,
    max_views: int | None = None,
) -> tuple[ShareLink, str]:
    """A new link and its token (shown once; only its hash is kept)."""
    privacy = privacy_for(target.project)
    if not privacy.share_links_allowed:
        raise ValidationError("This project's privacy settings forbid share links.")
    if not 1 <= days <= privacy.share_link_max_days:
        raise ValidationError(
            {
                "days": f"A share link lasts from 1 to "
                f"{privacy.share_link_max_days} days here."
            }
        )
    token = new_share_token()
    link = ShareLink(
        project=target.project,
        recording=target if isinstance(target, Recording) else None,
        playlist=target if isinstance(target, Playlist) else None,
        token_hash=hash_share_token(token),
        token_prefix=token[:12],
        created_by=user,
        expires_at=now() + dt.timedelta(days=days),
        max_views=max_views,
    )
    link.full_clean()  # max_views within its bounds, whichever surface sent it
    link.save()
    return link, token


def share_link_revoke(*, link: ShareLink) -> None:
    if link.revoked_at is None:
        link.revoked_at = now()
        link.save(update_fields=["revoked_at"])


def share_link_state(link: ShareLink) -> str:
    """ "ok", or why the link no longer opens."""
    if link.revoked_at is not None:
        return "revoked"
    if link.expires_at <= now():
        return "expired"
    if link.max_views is not None and link.view_count >= link.max_views:
        return "used up"
    privacy = privacy_for(link.project)
    if not privacy.share_links_allowed:
        return "forbidden by the project"
    if not _creator_may_show(link):
        return CREATOR_LOST_ACCESS
    return "ok"


def _creator_may_show(link: ShareLink) -> bool:
    """A link shows its playlist as its creator sees it: when that depends on who
    looks, only while the creator still sees the playlist. Without them, "me" would
    be no one, and "not viewed by me" every recording of the project."""
    if link.playlist is None or not playlist_depends_on_person(link.playlist):
        return True
    creator = link.created_by
    visible = access.playlists_visible_to(creator) if creator else None
    return visible is not None and visible.filter(pk=link.playlist.pk).exists()


def share_link_recordings(*, link: ShareLink) -> RecordingQuerySet:
    """What a playlist's link lists: the playlist as its creator sees it now ("me"
    in its filter is the creator); nothing when the creator may no longer show it."""
    assert link.playlist is not None
    if not _creator_may_show(link):
        return Recording.objects.none()
    return playlist_recordings(playlist=link.playlist, user=link.created_by)


@transaction.atomic
def share_link_open(
    *, token: str, user_agent: str, ip_address: str | None
) -> ShareLink:
    """The link of `token`, with this view logged and counted; raises
    ShareLink.DoesNotExist for no such link, ShareLinkGone for one that no longer
    opens. The IP address is kept only if the project stores IP addresses."""
    link = (
        ShareLink.objects.select_for_update()
        .select_related("project")
        .get(token_hash=hash_share_token(token))
    )
    state = share_link_state(link)
    if state != "ok":
        raise ShareLinkGone(state)
    privacy = privacy_for(link.project)
    ShareLinkView.objects.create(
        link=link,
        user_agent=clean_text(user_agent[: _USER_AGENT.max_length or 0]),
        ip_address=ip_address if privacy.store_ip_addresses else None,
    )
    ShareLink.objects.filter(pk=link.pk).update(view_count=F("view_count") + 1)
    link.view_count += 1
    return link
