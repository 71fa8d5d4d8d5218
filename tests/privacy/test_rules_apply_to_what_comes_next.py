"""A recording rule applies to what comes next; deleting the past is explicit.

Saving "do not record people whose email_domain = replayhub.test" refuses that
person's next batches, and deletes none of what they recorded before, nor takes
it out of a playlist. The privacy settings page has a separate action that
counts those recordings (legal holds kept), asks, deletes exactly those and is
audited.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from playlists.services import playlist_create, playlist_pin
from privacy.models import PrivacyAuditEntry, PrivacySettings
from privacy.policy import privacy_for
from privacy.services import privacy_settings_update
from recordings.models import Recording, SessionLedger
from recordings.services.compaction import recording_compact
from recordings.services.storage import recording_events
from tests.access import rrweb_events
from tests.base import ReplayTestCase
from tests.capture import FIXTURE_TOKEN, captured, decoded, send_rrweb
from tests.finding import make_recording

RULES = [{"property": "email_domain", "value": "replayhub.test"}]
PAGE = "admin:privacy_privacysettings_delete_excluded"


class RulesCase(ReplayTestCase):
    """A recording of a person made before any rule, pinned to a playlist."""

    def setUp(self) -> None:
        super().setUp()
        self.project.token = FIXTURE_TOKEN
        self.project.save()
        first = "04-s-gzip-fullsnapshot"
        self.assertEqual(captured(first).send(self.client).status_code, 200)
        self.distinct_id = decoded(first)[0]["properties"]["distinct_id"]
        self.recording = Recording.objects.get()
        self.playlist = playlist_create(
            project=self.project, owner=self.alice, name="Curated"
        )
        playlist_pin(playlist=self.playlist, recordings=[self.recording], user=None)

    def save_rules(self, **rules: Any) -> None:
        """Change the rules as the admin's form does (audited)."""
        privacy = privacy_for(self.project)
        before = {name: getattr(privacy, name) for name in rules}
        for name, value in rules.items():
            setattr(privacy, name, value)
        privacy_settings_update(settings=privacy, actor=self.alice, before=before)

    def identify(self, properties: dict[str, Any]) -> None:
        event = {
            "event": "$set",
            "uuid": "set-1",
            "timestamp": "2026-11-22T09:44:30Z",
            "properties": {"distinct_id": self.distinct_id, "$set": properties},
        }
        body = {"api_key": FIXTURE_TOKEN, "batch": [event]}
        response = self.client.post(
            "/i/v0/e/", data=body, content_type="application/json"
        )
        self.assertEqual(response.status_code, 200)

    def deletions(self) -> list[dict[str, Any]]:
        entries = PrivacyAuditEntry.objects.filter(project=self.project)
        return [
            entry.changes[name][1]
            for entry in entries
            for name in entry.changes
            if name.startswith("delete")
        ]


class RuleSavedLaterTests(RulesCase):
    def test_it_refuses_the_next_batches_and_deletes_nothing_recorded(self) -> None:
        self.save_rules(excluded_people=RULES)
        self.identify({"email_domain": "replayhub.test"})
        self.assertTrue(Recording.objects.filter(pk=self.recording.pk).exists())
        response = captured("05-s-gzip-incremental-console-network").send(self.client)
        self.assertEqual(response.status_code, 403)
        self.assertEqual(response.json()["error"], "excluded_person")
        recording_compact(recording=self.recording)
        self.assertTrue(Recording.objects.filter(pk=self.recording.pk).exists())
        self.assertEqual(self.playlist.pins.count(), 1)
        self.assertTrue(recording_events(recording=self.recording))
        ledger = SessionLedger.objects.get()
        self.assertEqual(ledger.refusals["excluded_person"], 2)  # the batches only
        self.assertEqual(self.deletions(), [])

    def test_a_minimum_duration_saved_later_applies_to_later_sessions(self) -> None:
        self.save_rules(minimum_duration_ms=10_000_000)
        later = "later-session"
        send_rrweb(self.client, FIXTURE_TOKEN, "later-1", rrweb_events("signup"), later)
        for recording in Recording.objects.all():
            recording_compact(recording=recording)
        left = Recording.objects.values_list("session_id", flat=True)
        self.assertEqual(list(left), [self.recording.session_id])
        self.assertEqual(self.playlist.pins.count(), 1)


class DeleteExcludedPeopleTests(RulesCase):
    def setUp(self) -> None:
        super().setUp()
        self.save_rules(excluded_people=RULES)
        self.identify({"email_domain": "replayhub.test"})
        self.held = make_recording(self.project, "held", legal_hold=True)
        self.held.distinct_id = self.distinct_id
        self.held.save()
        self.other = make_recording(self.project, "someone-else")
        privacy = PrivacySettings.objects.get(project=self.project)
        self.url = reverse(PAGE, args=[privacy.pk])
        self.client.force_login(self.alice)

    def left(self) -> set[str]:
        return set(Recording.objects.values_list("session_id", flat=True))

    def test_the_settings_page_links_to_it(self) -> None:
        privacy = PrivacySettings.objects.get(project=self.project)
        change = reverse("admin:privacy_privacysettings_change", args=[privacy.pk])
        self.assertContains(self.client.get(change), self.url)

    def test_it_counts_asks_and_deletes_exactly_those_audited(self) -> None:
        page = self.client.get(self.url)
        found = page.context["found"]
        self.assertEqual((found.matched, found.held, found.to_delete), (2, 1, 1))
        self.assertContains(page, "Yes, delete 1 recording")
        self.assertEqual(len(self.left()), 3)  # asking deletes nothing
        response = self.client.post(self.url, {"fingerprint": found.fingerprint})
        self.assertEqual(response.status_code, 302)
        self.assertEqual(self.left(), {"held", "someone-else"})
        (audit,) = self.deletions()
        self.assertEqual(audit["deleted"], 1)
        self.assertEqual(audit["recordings"], [str(self.recording.code)])
        self.assertEqual(audit["kept_on_legal_hold"], 1)
        self.assertEqual(audit["rules"], RULES)
        entry = PrivacyAuditEntry.objects.get(changes__has_key="delete_excluded_people")
        self.assertEqual(entry.actor, self.alice)

    def test_a_set_changed_since_the_page_deletes_nothing(self) -> None:
        page = self.client.get(self.url)
        self.other.distinct_id = self.distinct_id
        self.other.save()
        response = self.client.post(
            self.url, {"fingerprint": page.context["found"].fingerprint}
        )
        self.assertContains(response, "Nothing was deleted")
        self.assertEqual(response.context["found"].to_delete, 2)
        self.assertEqual(len(self.left()), 3)
        self.assertEqual(self.deletions(), [])

    def test_viewers_and_outsiders_may_not(self) -> None:
        refused = (302, 403, 404)  # 302: the admin's login, for a non-staff user
        for user in (self.bob, self.charlie):
            with self.subTest(user.username):
                self.client.force_login(user)
                self.assertIn(self.client.get(self.url).status_code, refused)
                posted = self.client.post(self.url, {"fingerprint": "x"})
                self.assertIn(posted.status_code, refused)
        self.assertEqual(len(self.left()), 3)
