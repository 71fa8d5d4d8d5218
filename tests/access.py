"""Tenants and people for access-control tests: two projects, every kind of principal.

Each tenant's data carries a marker string (in its name, session id, person, event,
token and privacy audit) so a test can say "this response holds nothing of that
project" by looking for the marker.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils.timezone import now

from privacy.erasure import erasure_request
from privacy.policy import privacy_for
from privacy.services import privacy_settings_update
from recordings import access
from recordings.access import Role
from recordings.models import ApiKey, Event, Person, Project, Recording
from recordings.services.api_keys import api_key_create, api_key_revoke
from recordings.services.projects import role_grant
from tests.base import ReplayTestCase
from tests.fixtures import fixtures_dir


@dataclass
class Tenant:
    project: Project
    recording: Recording
    marker: str

    @property
    def markers(self) -> list[str]:
        # Not the recording's code: a principal types it into URLs, and the admin
        # echoes it back ("… with ID … doesn't exist"); its data carries the marker.
        return [self.marker, self.project.token]


def rrweb_events(name: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = json.loads(
        (fixtures_dir() / "rrweb" / f"{name}.json").read_text()
    )
    return events


def make_tenant(client: Client, marker: str, project: Project | None = None) -> Tenant:
    """`project` (by default a new one) with a real recording and one of each row.

    The marker should be in the project's name too ("zqalpha project"), so that a
    leaked name is caught like any other of its data.
    """
    if project is None:
        project = Project.objects.create(name=f"{marker} project")
    body = {
        "token": project.token,
        "session_id": f"{marker}-session",
        "window_id": f"{marker}-window",
        "distinct_id": f"{marker}-person",
        "events": rrweb_events("signup"),
    }
    response = client.post(
        "/api/v1/ingest/rrweb/", json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 200, response.content
    Event.objects.create(
        project=project,
        uuid=f"{marker}-event-uuid",
        name=f"{marker}-event",
        distinct_id=f"{marker}-person",
        session_id=f"{marker}-session",
        timestamp=now(),
    )
    Person.objects.create(project=project, distinct_id=f"{marker}-person")
    settings = privacy_for(project)
    before = {"scrub_patterns": settings.scrub_patterns}
    settings.scrub_patterns = f"{marker}-pattern"
    privacy_settings_update(settings=settings, actor=None, before=before)
    erasure_request(
        project=project, distinct_ids=[f"{marker}-nobody"], actor=None, dry_run=True
    )
    return Tenant(project, Recording.objects.get(project=project), marker)


@dataclass
class Principal:
    """Someone making requests: a session user, an API key, or nobody."""

    name: str
    user: User | None = None
    superuser: bool = False
    role: Role | None = None  # on the own project; never on the other
    key: ApiKey | None = None
    secret: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def uses_session(self) -> bool:
        return self.user is not None and self.key is None

    def login(self, client: Client) -> dict[str, str]:
        """Log the client in (session principals); return headers to send."""
        client.logout()
        if self.uses_session:
            assert self.user is not None
            client.force_login(self.user)
        if self.secret:
            return {"Authorization": f"Bearer {self.secret}"}
        return {}

    @property
    def may_use_replayhub(self) -> bool:
        """Let in at all: active, and a superuser or holding a role (staff or not)."""
        if self.user is None or not self.user.is_active:
            return False
        return self.superuser or self.role is not None

    def holds(self, codename: str, project: Project, own: Project) -> bool:
        """What the product promises this principal may do (the matrix's oracle)."""
        if not self.may_use_replayhub:
            return False
        if self.key is not None:
            if self.key.revoked or not self.key.is_usable(now()):
                return False
            if not self.key.projects.filter(pk=project.pk).exists():
                return False
        if self.superuser:
            return True
        return (
            self.role is not None
            and project == own
            and codename in access.ROLE_PERMISSIONS[self.role]
        )

    def may_write(self) -> bool:
        return self.key is None or self.key.access == ApiKey.Access.WRITE


def _user(name: str, *, superuser: bool = False, staff: bool = True) -> User:
    if superuser:
        return User.objects.create_superuser(name, f"{name}@example.org", "pw")
    return User.objects.create_user(name, f"{name}@example.org", "pw", is_staff=staff)


def _key(
    principal: Principal, projects: list[Project], access_: str = "read"
) -> Principal:
    assert principal.user is not None
    key = ApiKey(user=principal.user, name=f"{principal.name} key", access=access_)
    principal.secret = api_key_create(key=key, projects=projects)
    principal.key = key
    return principal


def _staffed(user: User) -> User:
    # Staff status opens nothing: ReplayHub lets people in by role.
    user.is_staff = True
    user.save()
    return user


def make_principals(case: ReplayTestCase, other: Project) -> list[Principal]:
    """Every kind of caller the product knows, each with its role on `own` only.

    `own` is alice's project (`case.project`); nobody but superusers may reach
    `other`. The personas are the core; the other callers are kinds no persona can
    be without ceasing to be one (see `_extra_principals`).
    """
    return [
        Principal("anonymous"),
        *_persona_principals(case),
        *_extra_principals(case),
        *_key_principals(case.project, other),
    ]


def _persona_principals(case: ReplayTestCase) -> list[Principal]:
    # charlie holds no role anywhere, not even on a project of his own: he is the
    # caller whom the product lets in nowhere. bob and charlie get the staff status
    # the users they replace had ("viewer-user", "norole"): it must open nothing.
    return [
        Principal("charlie (outsider, staff, no role)", _staffed(case.charlie)),
        Principal("alice (admin, no staff status)", case.alice, role=Role.ADMIN),
        Principal("bob (viewer, staff)", _staffed(case.bob), role=Role.VIEWER),
    ]


def _extra_principals(case: ReplayTestCase) -> list[Principal]:
    """Callers no persona can stand for: alice's other teammates, and a superuser."""
    # A second admin and an editor with staff status, a role held through a group,
    # a removed role, a suspended admin.
    own = case.project
    staffed_admin = case.make_teammate("admin-user", Role.ADMIN, is_staff=True)
    editor = case.make_teammate("editor-user", Role.EDITOR, is_staff=True)
    group = Group.objects.create(name="editors")
    role_grant(project=own, principal=group, role=Role.EDITOR)
    member = _user("group-member", staff=False)
    member.groups.add(group)
    former = case.make_teammate("former-admin", Role.ADMIN, is_staff=True)
    role_grant(project=own, principal=former, role=None)
    ex_admin = case.make_teammate("ex-admin", Role.ADMIN, is_staff=True)
    ex_admin.is_active = False
    ex_admin.save()
    return [
        Principal("admin (user, staff)", staffed_admin, role=Role.ADMIN),
        Principal("editor (user)", editor, role=Role.EDITOR),
        Principal("editor (group)", member, role=Role.EDITOR),
        Principal("former admin (role removed)", former),
        Principal("inactive admin", ex_admin, role=Role.ADMIN),
        Principal("superuser", case.make_root(), True),
    ]


def _key_principals(own: Project, other: Project) -> list[Principal]:
    def admin_user(name: str) -> User:
        user = _user(name)
        role_grant(project=own, principal=user, role=Role.ADMIN)
        return user

    viewer = _user("key-viewer")
    role_grant(project=own, principal=viewer, role=Role.VIEWER)
    revoked = _key(
        Principal("revoked key", admin_user("key-revoked"), role=Role.ADMIN),
        [own],
        "write",
    )
    assert revoked.key is not None
    api_key_revoke(key=revoked.key)
    expired = _key(
        Principal("expired key", admin_user("key-expired"), role=Role.ADMIN),
        [own],
        "write",
    )
    assert expired.key is not None
    expired.key.expires = now() - dt.timedelta(minutes=1)
    expired.key.save()
    # Keys that worked until their user lost the last role, or was suspended.
    former_user = admin_user("key-former")
    former = _key(Principal("former admin's key", former_user), [own], "write")
    role_grant(project=own, principal=former_user, role=None)
    suspended = _key(
        Principal(
            "suspended admin's key", admin_user("key-suspended"), role=Role.ADMIN
        ),
        [own],
        "write",
    )
    assert suspended.user is not None
    suspended.user.is_active = False
    suspended.user.save()
    root = _user("key-root", superuser=True)
    return [
        former,
        suspended,
        _key(Principal("viewer key", viewer, role=Role.VIEWER), [own]),
        _key(
            Principal("admin key (read)", admin_user("key-admin-r"), role=Role.ADMIN),
            [own],
        ),
        _key(
            Principal("admin key (write)", admin_user("key-admin-w"), role=Role.ADMIN),
            [own],
            "write",
        ),
        revoked,
        expired,
        # A superuser's key reaches only the projects it was given.
        _key(Principal("superuser key (own only)", root, True), [own], "write"),
    ]
