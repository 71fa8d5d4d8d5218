"""The admin is ReplayHub's product surface: projects, recordings, the player.

Every model admin here is project-scoped (see `scoped.py`): a member sees and touches
only the rows of projects where a role gives them the permission. Who may sign in at
all is `access.may_use_replayhub` (see `recordings/admin_site.py`); people are
superusers' business (`user.py`).
"""

from __future__ import annotations

from recordings.admin import apikey, ingested, project, recording, tag, user

__all__ = ["apikey", "ingested", "project", "recording", "tag", "user"]
