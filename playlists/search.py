"""The filter language's `in_playlist` term, compiled for recordings.search.compiler."""

from __future__ import annotations

from django.db.models import Q

from playlists.access import playlists_visible_to
from playlists.services import playlist_q
from recordings.search.compiler import MATCHES_NOTHING, Compiler
from recordings.search.language.document import InPlaylist


def compile_in_playlist(compiler: Compiler, term: InPlaylist) -> Q:
    """Recordings the playlist holds; nothing for a playlist the asker cannot see
    (or that does not exist), so a filter never reveals another's playlist."""
    visible = playlists_visible_to(compiler.user) if compiler.user else None
    playlist = None if visible is None else visible.filter(code=term.playlist).first()
    if playlist is None:
        return MATCHES_NOTHING
    return playlist_q(playlist, compiler.user, compiler.now)
