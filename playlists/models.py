"""Playlists: saved filters and pinned recordings (not built yet; see the issues)."""
