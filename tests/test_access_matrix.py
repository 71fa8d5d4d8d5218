"""The access matrix: every principal × every route × own project vs another project.

Routes are discovered by walking the URLconf (admin and API router included), never
listed by hand: a route with no rule below fails `test_every_route_has_a_rule`, so a
new endpoint cannot ship without someone deciding who may use it. The rules are the
product's promise, written independently of the code under test; `Principal.holds`
is the oracle. Every response is also searched for the other tenant's markers.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from axes.models import AccessAttempt
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Model
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils.timezone import now

from playlists import services as playlists
from playlists.models import Playlist, PlaylistPin, ShareLink
from privacy.models import ErasureRequest, PrivacyAuditEntry, PrivacySettings
from recordings import access
from recordings.models import (
    ApiKey,
    Comment,
    Event,
    Person,
    Project,
    Recording,
    RecordingTag,
    SessionLedger,
    Tag,
)
from recordings.services.curation import recordings_tag, tag_get_or_create
from recordings.services.purge import recordings_purge_set
from tests.access import Principal, Tenant, make_principals, make_tenant
from tests.base import ReplayTestCase

if TYPE_CHECKING:  # the test client's response type exists only in the stubs
    from django.test.client import _MonkeyPatchedWSGIResponse as TestResponse

# What a rule may need besides a project permission codename.
PUBLIC = "public"  # anyone, by design; covered by the capture and SDK tests
# Anyone ReplayHub lets in at all, by session or usable key: an active superuser or
# role holder, staff status or not. Pages that show no project data; lists, scoped.
MEMBER = "member"
SUPERUSER = "superuser"
NOBODY = "nobody"  # nobody, superusers included
# Django's old-style object URL (admin/<app>/<model>/<id>/): a bare redirect to the
# change page, which the matrix checks; it reads nothing itself.
REDIRECT = "redirect"


@dataclass(frozen=True)
class Rule:
    need: str
    target: str | None = None  # model label of the object the route is about
    any_project: bool = False  # a list: allowed when held on any project


def _model_rules(view: str, change: str, add: str, delete: str) -> dict[str, Rule]:
    return {
        "changelist": Rule(view, any_project=True),
        "add": Rule(add, any_project=True),
        "change": Rule(view),  # a read-only page for who may view but not change
        "delete": Rule(delete),
        "history": Rule(view),
    }


VIEW, VIEW_REC = access.VIEW_PROJECT, access.VIEW_RECORDINGS
DELETE_REC = access.DELETE_RECORDINGS
CURATE, ADMIN = access.CURATE, access.CHANGE_PROJECT
INGESTED = _model_rules(VIEW_REC, NOBODY, NOBODY, DELETE_REC)
ADMIN_MODEL_RULES: dict[str, dict[str, Rule]] = {
    "recordings.project": {
        **_model_rules(VIEW, access.CHANGE_PROJECT, SUPERUSER, SUPERUSER),
        "members": Rule(access.MANAGE_MEMBERS),
    },
    "recordings.recording": {
        **INGESTED,
        "play": Rule(VIEW_REC),
        "snapshots": Rule(VIEW_REC),
        # The player's timeline document and its offline HTML file: as the player.
        "timeline": Rule(VIEW_REC),
        "offline": Rule(VIEW_REC),
        # The filter builder's event names; deleting what the list's filter finds.
        "event_names": Rule(VIEW_REC, any_project=True),
        "delete_matching": Rule(DELETE_REC, any_project=True),
        # The player's forms (POST only; the write matrix): viewers comment,
        # editors tag; share links are made by editors.
        "comments": Rule(VIEW_REC),
        "tags": Rule(VIEW_REC),
        "share_link": Rule(CURATE),
    },
    # A project's tag vocabulary: everyone on it reads it, editors manage it.
    "recordings.tag": _model_rules(VIEW_REC, CURATE, CURATE, CURATE),
    # The matrix's playlists belong to nobody and are shared with nobody: only the
    # project's admins see them (tests/playlists/test_playlist_admin.py has the
    # owners and the shares). Any member may open the (scoped) list.
    "playlists.playlist": {
        "changelist": Rule(VIEW_REC, any_project=True),
        "add": Rule(CURATE, any_project=True),
        "change": Rule(ADMIN),
        "delete": Rule(ADMIN),
        "history": Rule(ADMIN),
        "share_link": Rule(ADMIN),
    },
    # Share links: read by the project's members, revoked by editors, made on the
    # player's and the playlist's pages, never deleted (their view log stays).
    "playlists.sharelink": _model_rules(VIEW_REC, NOBODY, NOBODY, NOBODY),
    "recordings.event": INGESTED,
    "recordings.sessionledger": INGESTED,
    "recordings.person": INGESTED,
    "privacy.privacysettings": {
        **_model_rules(VIEW, access.MANAGE_PRIVACY, access.MANAGE_PRIVACY, NOBODY),
        # Deleting what excluded people recorded: the project's admins (who both
        # manage its privacy and delete its recordings).
        "delete_excluded": Rule(access.MANAGE_PRIVACY),
    },
    "privacy.privacyauditentry": _model_rules(
        access.MANAGE_PRIVACY, NOBODY, NOBODY, NOBODY
    ),
    # Erasure receipts: whoever may delete the project's recordings; never edited.
    "privacy.erasurerequest": _model_rules(DELETE_REC, NOBODY, DELETE_REC, NOBODY),
    # Keys belong to people, not projects: each user sees only their own. No session
    # principal here owns one, so another user's key is for superusers only.
    "recordings.apikey": {
        "changelist": Rule(MEMBER),
        "add": Rule(MEMBER),
        "change": Rule(SUPERUSER, target="recordings.apikey"),
        "delete": Rule(SUPERUSER, target="recordings.apikey"),
        "history": Rule(SUPERUSER, target="recordings.apikey"),
    },
    "auth.user": {
        **_model_rules(SUPERUSER, SUPERUSER, SUPERUSER, SUPERUSER),
        "password_change": Rule(SUPERUSER, target="auth.user"),
    },
    "auth.group": _model_rules(SUPERUSER, SUPERUSER, SUPERUSER, SUPERUSER),
    # Sign-in lockouts (django-axes): superusers unlock people by deleting them.
    "axes.accessattempt": _model_rules(SUPERUSER, SUPERUSER, NOBODY, SUPERUSER),
}

OTHER_RULES: dict[str, Rule] = {
    "admin:index": Rule(MEMBER),
    "admin:app_list": Rule(MEMBER),  # checked per app below
    "admin:password_change": Rule(MEMBER),
    "admin:password_change_done": Rule(MEMBER),
    "admin:jsi18n": Rule(MEMBER),
    "admin:login": Rule(PUBLIC),
    "admin:logout": Rule(PUBLIC),
    # Autocomplete lists the target admin's own (scoped) queryset; no model has a
    # "view on site" URL (Django's redirect there checks no permission).
    "admin:autocomplete": Rule(VIEW, any_project=True),
    "admin:view_on_site": Rule(NOBODY),
    "admin/(?P<url>.*)$": Rule(MEMBER),  # the admin's catch-all: redirects or 404
    "health": Rule(PUBLIC),  # replayhub's own readiness check
    "": Rule(PUBLIC),  # / redirects to the admin
    # Capture and the SDK: public by design, the token only lets a browser send.
    **{
        f"recordings:{name}": Rule(PUBLIC)
        for name in (
            "config-js",
            "config-json",
            "flags",
            "decide",
            "posthog-asset-versioned",
            "posthog-asset",
            "snapshots",
            "events",
            "events-v0",
            "events-batch",
            "ingest-rrweb",
            "demo",
            "api-schema",
            "api-docs",
        )
    },
    # The management API.
    "recordings:project-list": Rule(MEMBER),
    "recordings:project-detail": Rule(VIEW, "recordings.project"),
    "recordings:recording-list": Rule(MEMBER),
    "recordings:recording-detail": Rule(VIEW_REC, "recordings.recording"),
    "recordings:recording-snapshots": Rule(VIEW_REC, "recordings.recording"),
    "recordings:recording-export": Rule(VIEW_REC, "recordings.recording"),
    "recordings:recording-markers": Rule(VIEW_REC, "recordings.recording"),
    # POST only (a GET is 405): each lists what the list does, per the caller's
    # projects; the delete is in the write matrix, the search in test_filter_api.
    "recordings:recording-search": Rule(MEMBER),
    "recordings:recording-delete-matching": Rule(MEMBER),
    # Comments and tags: viewers read and comment, editors tag.
    "recordings:recording-comment-list": Rule(VIEW_REC, "recordings.recording"),
    "recordings:recording-tag-list": Rule(VIEW_REC, "recordings.recording"),
    "recordings:comment-detail": Rule(VIEW_REC, "recordings.comment"),
    "recordings:project-tag-list": Rule(VIEW_REC, "recordings.project"),
    # Playlists: the matrix's playlist has no owner and is shared with nobody, so
    # only the project's admins see it (tests/playlists covers owners and sharing).
    "playlists:playlist-list": Rule(MEMBER),
    "playlists:playlist-detail": Rule(access.CHANGE_PROJECT, "playlists.playlist"),
    "playlists:playlist-recordings": Rule(access.CHANGE_PROJECT, "playlists.playlist"),
    # Share links, listed to who curates; the public pages have their own tests
    # (tests/playlists/test_share_pages.py).
    "playlists:share-link-list": Rule(MEMBER),
    "playlists:share-link-detail": Rule(access.CURATE, "playlists.sharelink"),
    "playlists:share": Rule(PUBLIC),
    "playlists:share-events": Rule(PUBLIC),
    "playlists:share-recording-events": Rule(PUBLIC),
    # Writes only (a GET is 405): in the write matrix.
    **{
        name: Rule(MEMBER)
        for name in (
            "recordings:recording-tag-detail",
            "playlists:playlist-pin",
            "playlists:playlist-unpin",
            "playlists:playlist-share",
            "playlists:share-link-revoke",
            "playlists:recording-share-link-list",
        )
    },
}
POST_ONLY = (
    "recordings:recording-search",
    "recordings:recording-delete-matching",
    "recordings:recording-tag-detail",
    "playlists:playlist-pin",
    "playlists:playlist-unpin",
    "playlists:playlist-share",
    "playlists:share-link-revoke",
    "playlists:recording-share-link-list",
    "admin:recordings_recording_comments",
    "admin:recordings_recording_tags",
)

# What a list shows of a tenant once the principal may see it.
LIST_CODENAME = {
    "recordings:project-list": VIEW,
    "recordings:recording-list": VIEW_REC,
    # Viewers see only playlists shared with them; admins all of the project's.
    "admin:playlists_playlist_changelist": ADMIN,
}


@dataclass(frozen=True)
class Route:
    name: str
    kwargs: tuple[str, ...]


def discover_routes() -> list[Route]:
    def walk(patterns: list[Any], namespace: str, prefix: str) -> Iterator[Route]:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                ns = (
                    f"{namespace}{pattern.namespace}:"
                    if pattern.namespace
                    else namespace
                )
                yield from walk(pattern.url_patterns, ns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                name = (
                    f"{namespace}{pattern.name}"
                    if pattern.name
                    else prefix + str(pattern.pattern)
                )
                yield Route(name, tuple(pattern.pattern.regex.groupindex))

    return list(walk(get_resolver().url_patterns, "", ""))


def rule_for(route: Route) -> Rule | None:
    if route.name in OTHER_RULES:
        return OTHER_RULES[route.name]
    if route.name.startswith("admin/") and route.name.endswith("<path:object_id>/"):
        return Rule(REDIRECT)
    for model in admin.site._registry:
        label = model._meta.label_lower
        prefix = f"admin:{model._meta.app_label}_{model._meta.model_name}_"
        if route.name.startswith(prefix):
            rule = ADMIN_MODEL_RULES.get(label, {}).get(route.name[len(prefix) :])
            if rule is None:
                return None
            if "object_id" in route.kwargs and rule.target is None:
                return Rule(rule.need, label, rule.any_project)
            return rule
    return None


DENIED_STATUSES = {302, 401, 403, 404, 405}


class MatrixTestCase(ReplayTestCase):
    """Two tenants, every principal, and the oracle that says who may do what.

    The own tenant is alice's project (bob her viewer); the other is nobody's among
    the principals, so that charlie stays the outsider with no role at all.
    """

    project_name = "zqalpha project"

    def setUp(self) -> None:
        super().setUp()
        self.own = make_tenant(self.client, "zqalpha", self.project)
        self.other = make_tenant(self.client, "zqomega")
        self.people = make_principals(self, self.other.project)
        for tenant in (self.own, self.other):
            _curate(tenant)

    def allows(
        self, principal: Principal, rule: Rule, project: Project | None, api: bool
    ) -> bool:
        user = principal.user
        if rule.need == NOBODY or user is None or not user.is_active:
            return False
        # A key works for the API only (the admin does not know it), and only while
        # it is neither revoked nor expired.
        key = principal.key
        if key is not None and (not api or key.revoked or not key.is_usable(now())):
            return False
        # One rule for the admin and the API (recordings.access.may_use_replayhub).
        if not principal.may_use_replayhub:
            return False
        if rule.need == MEMBER:
            return True
        if rule.need == SUPERUSER:
            return principal.superuser
        projects = [project] if project else [self.own.project, self.other.project]
        return any(principal.holds(rule.need, p, self.own.project) for p in projects)

    def sees_app(self, principal: Principal, app_label: str) -> bool:
        for label, rules in ADMIN_MODEL_RULES.items():
            if label.startswith(f"{app_label}.") and self.allows(
                principal, rules["changelist"], None, api=False
            ):
                return True
        return False

    def target(self, label: str, tenant: Tenant) -> Model:
        project = tenant.project
        by_label: dict[str, Any] = {
            "recordings.project": lambda: project,
            "recordings.recording": lambda: tenant.recording,
            "recordings.event": lambda: Event.objects.get(project=project),
            "recordings.sessionledger": lambda: SessionLedger.objects.get(
                project=project
            ),
            "recordings.person": lambda: Person.objects.get(project=project),
            "privacy.privacysettings": lambda: PrivacySettings.objects.get(
                project=project
            ),
            "privacy.privacyauditentry": lambda: PrivacyAuditEntry.objects.filter(
                project=project
            ).first(),
            "privacy.erasurerequest": lambda: ErasureRequest.objects.get(
                project=project
            ),
            "recordings.tag": lambda: Tag.objects.get(project=project),
            # Not project data: the same object serves as "own" and "other".
            "recordings.apikey": lambda: ApiKey.objects.get(name="viewer key key"),
            "auth.user": lambda: self.charlie,
            "auth.group": lambda: Group.objects.get(name="editors"),
            "axes.accessattempt": lambda: AccessAttempt.objects.get_or_create(
                username="locked-out", ip_address="192.0.2.1", failures_since_start=5
            )[0],
            "recordings.comment": lambda: Comment.objects.get(
                recording__project=project
            ),
            "playlists.playlist": lambda: Playlist.objects.get(
                project=project, name=f"{tenant.marker} playlist"
            ),
            "playlists.sharelink": lambda: ShareLink.objects.get(
                project=project, recording__isnull=False
            ),
        }
        obj: Model = by_label[label]()
        assert obj is not None, label
        return obj

    @staticmethod
    def lookup(obj: Model, kwarg: str) -> str:
        if kwarg in ("object_id", "id", "pk"):
            return str(obj.code if isinstance(obj, Recording) else obj.pk)
        if kwarg in ("code", "recording_code", "project_code"):
            return str(obj.code)  # type: ignore[attr-defined]
        raise AssertionError(f"no value for URL argument {kwarg!r}")


def _curate(tenant: Tenant) -> None:
    """What people add to a tenant: a comment, a tag, two playlists (one with a
    pin), a share link; each named with the tenant's marker."""
    recording, marker = tenant.recording, tenant.marker
    Comment.objects.create(
        recording=recording, author=None, text=f"{marker} comment", offset_ms=0
    )
    tag = tag_get_or_create(project=tenant.project, name=f"{marker}-tag")
    recordings_tag(recordings=[recording], tag=tag, user=None)
    for name in ("playlist", "pinned"):
        Playlist.objects.create(project=tenant.project, name=f"{marker} {name}")
    pinned = Playlist.objects.get(name=f"{marker} pinned")
    playlists.playlist_pin(playlist=pinned, recordings=[recording], user=None)
    root = User.objects.get(username="root")
    playlists.share_link_create(target=recording, user=root)


class AccessMatrixTests(MatrixTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.routes = discover_routes()

    def test_every_route_has_a_rule(self) -> None:
        missing = [r.name for r in self.routes if rule_for(r) is None]
        self.assertEqual(
            missing,
            [],
            "routes with no access rule: decide who may use them, check it in the "
            "view, and add the rule to tests/test_access_matrix.py",
        )
        # The walk really reaches the admin, the API and custom admin views.
        names = {r.name for r in self.routes}
        for expected in (
            "admin:recordings_recording_play",
            "admin:recordings_project_members",
            "recordings:recording-export",
            "admin:privacy_privacysettings_change",
        ):
            self.assertIn(expected, names)

    def test_reads(self) -> None:
        checked = 0
        for principal in self.people:
            headers = principal.login(self.client)
            for route in self.routes:
                rule = rule_for(route)
                assert rule is not None
                for url, expected, shows in self.cases(principal, route, rule):
                    with self.subTest(principal=principal.name, url=url):
                        response = self.client.get(url, headers=headers)
                        self.assert_outcome(response, expected)
                        self.assert_no_leak(principal, response, url)
                        if expected and shows is not None:
                            self.assertIn(shows.marker, response.getvalue().decode())
                        checked += 1
        self.assertGreater(checked, 500)

    def cases(
        self, principal: Principal, route: Route, rule: Rule
    ) -> Iterator[tuple[str, bool, Tenant | None]]:
        """(url, allowed?, tenant whose marker an allowed response must show)."""
        if rule.need in (PUBLIC, REDIRECT) or "url" in route.kwargs:
            return  # public routes have their own tests; the catch-all has no page
        if route.name in POST_ONLY:
            return
        if route.name == "admin:app_list":
            for app_label in ("recordings", "privacy", "auth"):
                url = reverse(route.name, kwargs={"app_label": app_label})
                yield url, self.sees_app(principal, app_label), None
            return
        if route.name == "admin:autocomplete":
            query = "?app_label=recordings&model_name=recording&field_name=project"
            allowed = self.allows(principal, Rule(VIEW), None, api=False)
            yield reverse(route.name) + query, allowed, None
            return
        if route.name == "admin:view_on_site":
            for tenant in (self.own, self.other):
                args = [_content_type_id(Recording), tenant.recording.pk]
                yield reverse(route.name, args=args), False, None
            return
        api = route.name.startswith(("recordings:", "playlists:"))
        if rule.target is None:
            allowed = self.allows(principal, rule, None, api)
            shows = None
            if route.name in LIST_CODENAME or rule.any_project:
                codename = LIST_CODENAME.get(route.name, rule.need)
                if codename in access.ROLE_PERMISSIONS[access.Role.ADMIN] and (
                    principal.holds(codename, self.own.project, self.own.project)
                ):
                    shows = self.own
            yield reverse(route.name), allowed, shows
            return
        for tenant in (self.own, self.other):
            obj = self.target(rule.target, tenant)
            kwargs = {name: self.lookup(obj, name) for name in route.kwargs}
            yield (
                reverse(route.name, kwargs=kwargs),
                self.allows(principal, rule, tenant.project, api),
                None,
            )

    def assert_outcome(self, response: TestResponse, allowed: bool) -> None:
        status = response.status_code
        if allowed:
            self.assertEqual(status, 200, f"{response.request['PATH_INFO']} refused")
            return
        self.assertIn(
            status, DENIED_STATUSES, f"{response.request['PATH_INFO']} allowed"
        )
        if status == 302:
            # Denials redirect to the login page or the admin index, never onwards.
            location = response["Location"].split("?")[0]
            self.assertTrue(location.startswith(("/admin/login/", "/admin/")), location)
            self.assertNotIn("/change/", location)

    def assert_no_leak(
        self, principal: Principal, response: TestResponse, url: str
    ) -> None:
        # The request's own URL (echoed in a login redirect's ?next=) is not a leak.
        body = response.getvalue().decode(errors="replace") + str(response.headers)
        body = body.replace(url, "")
        for tenant in (self.own, self.other):
            if principal.holds(VIEW, tenant.project, self.own.project):
                continue
            for marker in tenant.markers:
                self.assertNotIn(
                    marker, body, f"{tenant.marker}'s data leaked to {principal.name}"
                )


def _content_type_id(model: type[Model]) -> int:
    return ContentType.objects.get_for_model(model).pk


class _Rollback(Exception):
    pass


@dataclass(frozen=True)
class Write:
    """A state-changing request and how to tell whether it took effect."""

    what: str
    need: str
    api: bool
    method: str
    url: str
    data: dict[str, Any]
    took_effect: Any  # () -> bool, evaluated inside the same transaction
    content_type: str | None = None  # a JSON body; default: a form


class AccessWriteMatrixTests(MatrixTestCase):
    """Every principal × every write × own vs other project: done iff allowed."""

    def writes(self, tenant: Tenant) -> Iterator[Write]:
        project, recording = tenant.project, tenant.recording
        for label in ("recording", "event", "sessionledger", "person"):
            obj = self.target(f"recordings.{label}", tenant)
            model = type(obj)
            object_id = self.lookup(obj, "object_id")
            yield Write(
                f"admin delete {label}",
                DELETE_REC,
                False,
                "post",
                reverse(f"admin:recordings_{label}_delete", args=[object_id]),
                {"post": "yes"},
                lambda m=model, pk=obj.pk: not m.objects.filter(pk=pk).exists(),
            )
        yield Write(
            "admin bulk delete recordings",
            DELETE_REC,
            False,
            "post",
            reverse("admin:recordings_recording_changelist"),
            {
                "action": "delete_selected",
                "_selected_action": [recording.pk],
                "post": "yes",
            },
            lambda: not Recording.objects.filter(pk=recording.pk).exists(),
        )
        one = {"term": "session_id", "in": [recording.session_id]}
        # The confirmation carries the fingerprint of the set its page counted.
        counted = recordings_purge_set(
            recordings=Recording.objects.filter(pk=recording.pk)
        )
        yield Write(
            "admin delete everything matching a filter",
            DELETE_REC,
            False,
            "post",
            reverse("admin:recordings_recording_delete_matching")
            + "?"
            + urlencode({"filter": json.dumps({"version": 1, "where": one})}),
            {"fingerprint": counted.fingerprint},
            lambda: not Recording.objects.filter(pk=recording.pk).exists(),
        )
        yield Write(
            "admin place a legal hold",
            DELETE_REC,
            False,
            "post",
            reverse("admin:recordings_recording_changelist"),
            {"action": "place_legal_hold", "_selected_action": [recording.pk]},
            lambda: Recording.objects.filter(pk=recording.pk, legal_hold=True).exists(),
        )
        yield Write(
            "admin delete project",
            SUPERUSER,
            False,
            "post",
            reverse("admin:recordings_project_delete", args=[project.pk]),
            {"post": "yes"},
            lambda: not Project.objects.filter(pk=project.pk).exists(),
        )
        yield Write(
            "admin change project",
            access.CHANGE_PROJECT,
            False,
            "post",
            reverse("admin:recordings_project_change", args=[project.pk]),
            {"name": "renamed", "recording_enabled": "on", "ingest_rate_limit": ""},
            lambda: Project.objects.filter(pk=project.pk, name="renamed").exists(),
        )
        yield Write(
            "admin change privacy settings",
            access.MANAGE_PRIVACY,
            False,
            "post",
            reverse(
                "admin:privacy_privacysettings_change",
                args=[PrivacySettings.objects.get(project=project).pk],
            ),
            self.privacy_form_data(project, mask_all_text="on"),
            lambda: PrivacySettings.objects.get(project=project).mask_all_text,
        )
        # bob, already on the own project (the form names no one else to a
        # project admin; tests/recordings/test_project_roles.py checks that).
        yield Write(
            "admin give a role",
            access.MANAGE_MEMBERS,
            False,
            "post",
            reverse("admin:recordings_project_members", args=[project.pk]),
            {"kind": "user", "name": "bob", "role": "editor"},
            lambda: access.role_of(self.bob, project) == access.Role.EDITOR,
        )
        only_this = {"term": "session_id", "in": [recording.session_id]}
        yield Write(
            "API delete by filter",
            DELETE_REC,
            True,
            "post",
            reverse("recordings:recording-delete-matching"),
            {"filter": {"version": 1, "where": only_this}, "dry_run": False},
            lambda: not Recording.objects.filter(pk=recording.pk).exists(),
            content_type="application/json",
        )
        yield from self.api_curation_writes(tenant)
        yield from self.admin_curation_writes(tenant)
        yield Write(
            "API delete recording",
            DELETE_REC,
            True,
            "delete",
            reverse("recordings:recording-detail", args=[recording.code]),
            {},
            lambda: not Recording.objects.filter(pk=recording.pk).exists(),
        )

    def api_curation_writes(self, tenant: Tenant) -> Iterator[Write]:
        project, recording, marker = tenant.project, tenant.recording, tenant.marker
        on_recording = f"/api/v1/recordings/{recording.code}"
        comment = Comment.objects.get(recording=recording)
        playlist = Playlist.objects.get(name=f"{marker} playlist")
        pinned = Playlist.objects.get(name=f"{marker} pinned")
        link = ShareLink.objects.get(recording=recording)
        json = "application/json"
        rows: list[tuple[str, str, str, str, dict[str, Any], Any]] = [
            (
                "API comment",
                access.COMMENT,
                "post",
                f"{on_recording}/comments/",
                {"text": "matrix", "offset_ms": 0},
                lambda: Comment.objects.filter(text="matrix").exists(),
            ),
            (
                "API edit a comment (nobody's own here)",
                NOBODY,
                "patch",
                f"/api/v1/comments/{comment.pk}/",
                {"text": "matrix"},
                lambda: Comment.objects.filter(text="matrix").exists(),
            ),
            (
                "API delete another's comment",
                access.CHANGE_PROJECT,
                "delete",
                f"/api/v1/comments/{comment.pk}/",
                {},
                lambda: not Comment.objects.filter(pk=comment.pk).exists(),
            ),
            (
                "API tag",
                access.CURATE,
                "post",
                f"{on_recording}/tags/",
                {"name": "matrix"},
                lambda: RecordingTag.objects.filter(tag__name="matrix").exists(),
            ),
            (
                "API untag",
                access.CURATE,
                "delete",
                f"{on_recording}/tags/{marker}-tag/",
                {},
                lambda: not RecordingTag.objects.filter(recording=recording).exists(),
            ),
            (
                "API create a playlist",
                access.CURATE,
                "post",
                "/api/v1/playlists/",
                {"project": str(project.code), "name": "matrix"},
                lambda: Playlist.objects.filter(name="matrix").exists(),
            ),
            (
                "API rename a playlist",
                access.CHANGE_PROJECT,
                "patch",
                f"/api/v1/playlists/{playlist.code}/",
                {"name": "matrix"},
                lambda: Playlist.objects.filter(name="matrix").exists(),
            ),
            (
                "API delete a playlist",
                access.CHANGE_PROJECT,
                "delete",
                f"/api/v1/playlists/{playlist.code}/",
                {},
                lambda: not Playlist.objects.filter(pk=playlist.pk).exists(),
            ),
            (
                "API pin",
                access.CHANGE_PROJECT,
                "post",
                f"/api/v1/playlists/{playlist.code}/pins/",
                {"recordings": [str(recording.code)]},
                lambda: PlaylistPin.objects.filter(playlist=playlist).exists(),
            ),
            (
                "API unpin",
                access.CHANGE_PROJECT,
                "delete",
                f"/api/v1/playlists/{pinned.code}/pins/{recording.code}/",
                {},
                lambda: not PlaylistPin.objects.filter(playlist=pinned).exists(),
            ),
            (
                "API share a playlist",
                access.CHANGE_PROJECT,
                "post",
                f"/api/v1/playlists/{playlist.code}/share-links/",
                {"days": 1},
                lambda: ShareLink.objects.filter(playlist=playlist).exists(),
            ),
            (
                "API share a recording",
                access.CURATE,
                "post",
                f"{on_recording}/share-links/",
                {"days": 1},
                lambda: ShareLink.objects.filter(recording=recording).count() == 2,
            ),
            (
                "API revoke a share link",
                access.CURATE,
                "post",
                f"/api/v1/share-links/{link.pk}/revoke/",
                {},
                lambda: ShareLink.objects.filter(
                    pk=link.pk, revoked_at__isnull=False
                ).exists(),
            ),
        ]
        for what, need, method, url, data, took_effect in rows:
            yield Write(what, need, True, method, url, data, took_effect, json)

    def admin_curation_writes(self, tenant: Tenant) -> Iterator[Write]:
        project, recording = tenant.project, tenant.recording
        code = recording.code
        playlist = Playlist.objects.get(
            project=project, name=f"{tenant.marker} playlist"
        )
        link = ShareLink.objects.get(project=project)
        changelist = reverse("admin:recordings_recording_changelist")
        selected = {"_selected_action": [recording.pk], "apply": "1"}
        yield Write(
            "admin comment on a recording",
            access.COMMENT,
            False,
            "post",
            reverse("admin:recordings_recording_comments", args=[code]),
            {"op": "add", "text": "matrix comment", "offset_ms": "0"},
            lambda: Comment.objects.filter(
                recording=recording, text="matrix comment"
            ).exists(),
        )
        yield Write(
            "admin tag a recording on its page",
            CURATE,
            False,
            "post",
            reverse("admin:recordings_recording_tags", args=[code]),
            {"name": "matrix"},
            lambda: RecordingTag.objects.filter(
                recording=recording, tag__name="matrix"
            ).exists(),
        )
        yield Write(
            "admin tag selected recordings",
            CURATE,
            False,
            "post",
            changelist,
            {"action": "tag_selected", "tag_name": "matrix", **selected},
            lambda: RecordingTag.objects.filter(
                recording=recording, tag__name="matrix"
            ).exists(),
        )
        yield Write(
            "admin add selected recordings to a new playlist",
            CURATE,
            False,
            "post",
            changelist,
            {"action": "add_to_playlist", "new_name": "matrix list", **selected},
            lambda: PlaylistPin.objects.filter(
                recording=recording, playlist__name="matrix list"
            ).exists(),
        )
        yield Write(
            "admin create a playlist",
            CURATE,
            False,
            "post",
            reverse("admin:playlists_playlist_add"),
            {"name": "matrix made", "project": project.pk, "description": ""},
            lambda: Playlist.objects.filter(
                project=project, name="matrix made"
            ).exists(),
        )
        yield Write(
            "admin rename a playlist",
            ADMIN,
            False,
            "post",
            reverse("admin:playlists_playlist_change", args=[playlist.pk]),
            {"name": "matrix renamed", "description": ""},
            lambda: Playlist.objects.filter(
                pk=playlist.pk, name="matrix renamed"
            ).exists(),
        )
        yield Write(
            "admin delete a playlist",
            ADMIN,
            False,
            "post",
            reverse("admin:playlists_playlist_delete", args=[playlist.pk]),
            {"post": "yes"},
            lambda: not Playlist.objects.filter(pk=playlist.pk).exists(),
        )
        yield Write(
            "admin make a share link",
            CURATE,
            False,
            "post",
            reverse("admin:recordings_recording_share_link", args=[code]),
            {"days": "3"},
            lambda: ShareLink.objects.filter(project=project).count() == 2,
        )
        # The matrix's playlist has no owner and no shares: only its project's
        # admins may curate it, so only they make links to it (as in the API).
        yield Write(
            "admin share a playlist",
            ADMIN,
            False,
            "post",
            reverse("admin:playlists_playlist_share_link", args=[playlist.pk]),
            {"days": "3"},
            lambda: ShareLink.objects.filter(playlist=playlist).exists(),
        )
        yield Write(
            "admin revoke a share link",
            CURATE,
            False,
            "post",
            reverse("admin:playlists_sharelink_changelist"),
            {"action": "revoke_selected", "_selected_action": [link.pk]},
            lambda: ShareLink.objects.filter(
                pk=link.pk, revoked_at__isnull=False
            ).exists(),
        )
        yield Write(
            "admin add a tag to the vocabulary",
            CURATE,
            False,
            "post",
            reverse("admin:recordings_tag_add"),
            {"project": project.pk, "name": "matrix word", "colour": "#123456"},
            lambda: Tag.objects.filter(project=project, name="matrix word").exists(),
        )

    def privacy_form_data(self, project: Project, **changes: str) -> dict[str, Any]:
        """The change form as a superuser sees it, resubmitted with `changes`."""
        root = User.objects.get(username="root")
        self.client.force_login(root)
        settings = PrivacySettings.objects.get(project=project)
        url = reverse("admin:privacy_privacysettings_change", args=[settings.pk])
        form = self.client.get(url).context["adminform"].form
        data: dict[str, Any] = {}
        for name, field in form.fields.items():
            value = form.initial.get(name, field.initial)
            if isinstance(value, bool):
                if value:
                    data[name] = "on"
            elif value is not None:
                data[name] = value
        self.client.logout()
        return data | changes

    def test_writes(self) -> None:
        checked = 0
        writes = [(t, w) for t in (self.own, self.other) for w in self.writes(t)]
        for principal in self.people:
            for tenant, write in writes:
                allowed = self.allows(
                    principal, Rule(write.need), tenant.project, write.api
                ) and (not write.api or principal.may_write())
                with self.subTest(principal=principal.name, write=write.what):
                    self.assert_write(principal, write, allowed)
                    checked += 1
        self.assertGreater(checked, 250)

    def assert_write(self, principal: Principal, write: Write, allowed: bool) -> None:
        try:
            with transaction.atomic():
                headers = principal.login(self.client)
                send = getattr(self.client, write.method)
                if write.method == "delete":
                    response = send(write.url, headers=headers)
                elif write.content_type:
                    response = send(
                        write.url,
                        write.data,
                        content_type=write.content_type,
                        headers=headers,
                    )
                else:
                    response = send(write.url, write.data, headers=headers)
                self.assertEqual(
                    bool(write.took_effect()),
                    allowed,
                    f"{write.what}: status {response.status_code}",
                )
                if not allowed:
                    self.assertIn(response.status_code, DENIED_STATUSES | {200})
                raise _Rollback
        except _Rollback:
            pass


class PlaylistShareLinkMatrixTests(MatrixTestCase):
    """A link to a playlist, and its view log, show only to who sees the playlist:
    in the admin's list and page as in the API. The matrix's playlists have no owner
    and no shares, so that is their project's admins (and superusers)."""

    def setUp(self) -> None:
        super().setUp()
        root = User.objects.get(username="root")
        self.links: dict[str, ShareLink] = {}
        for tenant in (self.own, self.other):
            playlist = Playlist.objects.get(name=f"{tenant.marker} playlist")
            link, token = playlists.share_link_create(target=playlist, user=root)
            playlists.share_link_open(
                token=token, user_agent=self.agent(tenant), ip_address=None
            )
            self.links[tenant.marker] = link

    @staticmethod
    def agent(tenant: Tenant) -> str:
        return f"{tenant.marker}-share-viewer"

    def test_playlist_links_and_their_view_logs(self) -> None:
        checked = 0
        for principal in self.people:
            headers = principal.login(self.client)
            for tenant in (self.own, self.other):
                with self.subTest(principal=principal.name, tenant=tenant.marker):
                    self.assert_admin(principal, tenant, headers)
                    self.assert_api(principal, tenant, headers)
                    checked += 1
        self.assertGreater(checked, 20)

    def assert_admin(
        self, principal: Principal, tenant: Tenant, headers: dict[str, str]
    ) -> None:
        sees = self.allows(principal, Rule(ADMIN), tenant.project, api=False)
        listed = self.client.get(
            reverse("admin:playlists_sharelink_changelist"), headers=headers
        )
        self.assertIs(f"{tenant.marker} playlist" in listed.content.decode(), sees)
        link = self.links[tenant.marker]
        url = reverse("admin:playlists_sharelink_change", args=[link.pk])
        page = self.client.get(url, headers=headers)
        self.assert_status(page, sees)
        self.assertIs(self.agent(tenant) in page.content.decode(), sees)

    def assert_api(
        self, principal: Principal, tenant: Tenant, headers: dict[str, str]
    ) -> None:
        sees = self.allows(principal, Rule(ADMIN), tenant.project, api=True)
        listed = self.client.get("/api/v1/share-links/", headers=headers)
        rows = listed.json()["results"] if listed.status_code == 200 else []
        link = self.links[tenant.marker]
        self.assertIs(link.pk in {row["id"] for row in rows}, sees)
        detail = self.client.get(f"/api/v1/share-links/{link.pk}/", headers=headers)
        self.assert_status(detail, sees)

    def assert_status(self, response: TestResponse, allowed: bool) -> None:
        if allowed:
            self.assertEqual(response.status_code, 200)
        else:
            self.assertIn(response.status_code, DENIED_STATUSES)


class ExportActionMatrixTests(MatrixTestCase):
    """The recording list's "Export selected" action (a POST to the list, so not a
    route of its own): a zip only of recordings the principal may play."""

    def test_export_selected(self) -> None:
        checked = 0
        for principal in self.people:
            for tenant in (self.own, self.other):
                allowed = self.allows(principal, Rule(VIEW_REC), tenant.project, False)
                with self.subTest(principal=principal.name, tenant=tenant.marker):
                    self.assert_export(principal, tenant, allowed)
                    checked += 1
        self.assertGreater(checked, 10)

    def assert_export(
        self, principal: Principal, tenant: Tenant, allowed: bool
    ) -> None:
        headers = principal.login(self.client)
        response = self.client.post(
            reverse("admin:recordings_recording_changelist"),
            {
                "action": "export_selected",
                "_selected_action": [tenant.recording.pk],
                "format": "json",
                "apply": "1",
            },
            headers=headers,
        )
        zipped = response.get("Content-Type") == "application/zip"
        self.assertEqual(zipped, allowed, f"status {response.status_code}")
        body = response.getvalue()
        if zipped:
            with zipfile.ZipFile(io.BytesIO(body)) as archive:
                body = b"".join(archive.read(name) for name in archive.namelist())
            self.assertIn(tenant.marker, body.decode())
        else:
            self.assertIn(response.status_code, DENIED_STATUSES)
        for other in (self.own, self.other):
            if principal.holds(VIEW_REC, other.project, self.own.project):
                continue
            for marker in other.markers:
                self.assertNotIn(marker, body.decode(errors="replace"))
