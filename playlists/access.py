"""Who sees and who curates a playlist.

On top of the project role: a project viewer sees the playlists shared with them
(guardian's `view_playlist` on the playlist, for them or a group of theirs);
editors create playlists and curate their own and those shared with them for
editing (`change_playlist`); project admins see and curate all of the project's.
The admin and the API ask these same functions.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, User
from django.db.models import Q, QuerySet
from guardian.shortcuts import assign_perm, get_objects_for_user, remove_perm

from playlists.models import Playlist, ShareLink
from recordings import access
from recordings.models import Project, Recording

VIEW = "playlists.view_playlist"
CHANGE = "playlists.change_playlist"
AnyUser = access.AnyUser


def playlists_visible_to(user: AnyUser) -> QuerySet[Playlist]:
    if not isinstance(user, User) or not user.is_active:
        return Playlist.objects.none()
    watchable = access.projects_for(user, access.VIEW_RECORDINGS)
    administered = access.projects_for(user, access.CHANGE_PROJECT)
    shared = get_objects_for_user(user, VIEW, klass=Playlist, accept_global_perms=False)
    return Playlist.objects.filter(project__in=watchable).filter(
        Q(owner=user) | Q(pk__in=shared.values("pk")) | Q(project__in=administered)
    )


def may_create(user: AnyUser, project: Project) -> bool:
    return access.can(user, access.CURATE, project)


def may_curate(user: AnyUser, playlist: Playlist) -> bool:
    """Rename, change the filter, pin and unpin, share."""
    if not isinstance(user, User) or not access.can(
        user, access.CURATE, playlist.project
    ):
        return False
    if playlist.owner_id == user.pk or access.can(
        user, access.CHANGE_PROJECT, playlist.project
    ):
        return True
    return user.has_perm(CHANGE, playlist)


def may_share(user: AnyUser, target: Recording | Playlist) -> bool:
    """Make a public link: to a recording, who curates its project; to a playlist,
    who may curate that playlist (seeing it, even as an editor, is not enough)."""
    if isinstance(target, Playlist):
        return may_curate(user, target)
    return access.can(user, access.CURATE, target.project)


def share_links_visible_to(
    user: AnyUser, links: QuerySet[ShareLink]
) -> QuerySet[ShareLink]:
    """`links` narrowed to those of recordings (the caller scopes their projects)
    and of playlists `user` sees: a link and its view log are its target's."""
    playlists = playlists_visible_to(user).values("pk")
    return links.filter(Q(playlist__isnull=True) | Q(playlist__in=playlists))


def may_delete(user: AnyUser, playlist: Playlist) -> bool:
    if not isinstance(user, User):
        return False
    if access.can(user, access.CHANGE_PROJECT, playlist.project):
        return True
    return playlist.owner_id == user.pk and access.can(
        user, access.CURATE, playlist.project
    )


def playlist_share(
    *, playlist: Playlist, principal: User | Group, can_edit: bool = False
) -> None:
    """Let a user or group see the playlist (and curate it, with `can_edit`)."""
    assign_perm(VIEW, principal, playlist)
    if can_edit:
        assign_perm(CHANGE, principal, playlist)
    else:
        remove_perm(CHANGE, principal, playlist)


def playlist_unshare(*, playlist: Playlist, principal: User | Group) -> None:
    remove_perm(VIEW, principal, playlist)
    remove_perm(CHANGE, principal, playlist)
