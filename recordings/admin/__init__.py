"""The admin is ReplayHub's product surface: projects, recordings, the player.

Every model admin here is project-scoped (see `scoped.py`): a staff user sees and
touches only the rows of projects where a role gives them the permission.
"""

from __future__ import annotations

from recordings.admin import apikey, ingested, project, recording

__all__ = ["apikey", "ingested", "project", "recording"]
