"""Playlists and share links in the admin, and what they add to the recordings'."""

from __future__ import annotations

from playlists.admin import playlist, recording, sharelink

__all__ = ["playlist", "recording", "sharelink"]
