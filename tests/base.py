"""Shared test scaffolding: personas with a project, and blob storage in a temp dir."""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import orjson
from django.contrib.auth.models import User
from django.test import TestCase, override_settings

from recordings import access
from recordings.models import Project, SnapshotChunk
from recordings.services.projects import role_grant


def temp_blob_storage(location: Path) -> dict[str, Any]:
    return {
        "BACKEND": "recordings.blobs.AtomicFileSystemStorage",
        "OPTIONS": {"location": str(location), "allow_overwrite": True},
    }


class ReplayTestCase(TestCase):
    """The three personas (house style 13) around one project.

    alice owns the project (its admin role, not a superuser), bob is her teammate
    (viewer), charlie is an active outsider with no role on it. A test that needs
    superuser powers (the user admin, every project) asks for `make_root()`.
    """

    project_name: ClassVar[str] = "Alice's shop"
    project: Project
    alice: User
    bob: User
    charlie: User

    def setUp(self) -> None:
        super().setUp()
        self.blob_dir = Path(self.enterContext(tempfile.TemporaryDirectory()))
        from django.conf import settings

        storages = {**settings.STORAGES, "recordings": temp_blob_storage(self.blob_dir)}
        self.enterContext(override_settings(STORAGES=storages))
        self.project = Project.objects.create(name=self.project_name)
        self.alice = User.objects.create_user("alice", "alice@example.org", "pw")
        self.bob = User.objects.create_user("bob", "bob@example.org", "pw")
        self.charlie = User.objects.create_user("charlie", "charlie@example.org", "pw")
        self.grant_personas(self.project)

    def make_project(self, name: str, **fields: Any) -> Project:
        """Another project of alice's, bob on it as her viewer (charlie still out)."""
        project = Project.objects.create(name=name, **fields)
        self.grant_personas(project)
        return project

    def grant_personas(self, project: Project) -> None:
        grant = role_grant
        grant(project=project, principal=self.alice, role=access.Role.ADMIN)
        grant(project=project, principal=self.bob, role=access.Role.VIEWER)

    def make_charlies_project(self, name: str) -> Project:
        """charlie's own project: he is its admin, alice and bob are not on it."""
        project = Project.objects.create(name=name)
        role_grant(project=project, principal=self.charlie, role=access.Role.ADMIN)
        return project

    def make_teammate(self, username: str, role: access.Role, **fields: Any) -> User:
        """Another of alice's teammates, holding `role` on her project."""
        user = User.objects.create_user(
            username, f"{username}@example.org", "pw", **fields
        )
        role_grant(project=self.project, principal=user, role=role)
        return user

    def make_root(self) -> User:
        """A superuser, for what only superusers may do (user admin, every project)."""
        return User.objects.create_superuser("root", "root@example.org", "pw")

    def take_storage_down(self) -> None:
        """Local blob storage as an unmounted disk: its folder gone (a blob missing
        from storage that is there is another matter: 410, not 503)."""
        moved = self.blob_dir.with_name(self.blob_dir.name + "-unmounted")
        self.blob_dir.rename(moved)
        self.addCleanup(moved.rename, self.blob_dir)

    def stored_blobs(self) -> list[Path]:
        """The blob files in storage (compacted windows, batches too big for rows)."""
        return sorted(p for p in self.blob_dir.rglob("*") if p.is_file())

    def stored_rows(self) -> list[bytes]:
        """The gzip bytes live chunks hold in their rows, oldest first."""
        rows = SnapshotChunk.objects.filter(data__isnull=False).order_by("pk")
        return [bytes(d) for d in rows.values_list("data", flat=True) if d is not None]

    def stored_data(self) -> list[bytes]:
        """Everything stored of the recordings' events: live rows, then blobs."""
        return self.stored_rows() + [p.read_bytes() for p in self.stored_blobs()]

    def chunk_events(self, chunk: SnapshotChunk) -> list[dict[str, Any]]:
        """The events stored for a chunk: its row's bytes, or the blob it is in."""
        data = SnapshotChunk.objects.values_list("data", flat=True).get(pk=chunk.pk)
        if data is None:
            data = (self.blob_dir / chunk.data_key).read_bytes()
        events: list[dict[str, Any]] = orjson.loads(gzip.decompress(data))
        return events

    def stored_events(self) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        for data in self.stored_data():
            events.extend(orjson.loads(gzip.decompress(data)))
        return events
