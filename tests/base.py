"""Shared test scaffolding: personas with a project, and blob storage in a temp dir."""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path
from typing import Any

import orjson
from django.contrib.auth.models import User
from django.test import TestCase, override_settings

from recordings.models import Project


def temp_blob_storage(location: Path) -> dict[str, Any]:
    return {
        "BACKEND": "recordings.blobs.AtomicFileSystemStorage",
        "OPTIONS": {"location": str(location), "allow_overwrite": True},
    }


class ReplayTestCase(TestCase):
    """alice owns the project (superuser), charlie is a logged-in outsider."""

    project: Project
    alice: User
    charlie: User

    def setUp(self) -> None:
        super().setUp()
        self.blob_dir = Path(self.enterContext(tempfile.TemporaryDirectory()))
        from django.conf import settings

        storages = {**settings.STORAGES, "recordings": temp_blob_storage(self.blob_dir)}
        self.enterContext(override_settings(STORAGES=storages))
        self.project = Project.objects.create(name="Alice's shop")
        self.alice = User.objects.create_superuser("alice", "alice@example.org", "pw")
        self.charlie = User.objects.create_user("charlie", "charlie@example.org", "pw")

    def stored_blobs(self) -> list[Path]:
        return sorted(p for p in self.blob_dir.rglob("*") if p.is_file())

    def stored_events(self) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        for path in self.stored_blobs():
            events.extend(orjson.loads(gzip.decompress(path.read_bytes())))
        return events
