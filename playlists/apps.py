from __future__ import annotations

from django.apps import AppConfig


class PlaylistsConfig(AppConfig):
    name = "playlists"
    verbose_name = "Playlists"

    def ready(self) -> None:
        # The filter language's `in_playlist` term: recordings never import this
        # app, so it lends the compiler its meaning of "in a playlist".
        from playlists.search import compile_in_playlist
        from recordings.search.compiler import EXTENSIONS
        from recordings.search.language.document import InPlaylist

        EXTENSIONS[InPlaylist] = compile_in_playlist
