from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django.urls import reverse

from privacy.models import PrivacyAuditEntry, PrivacySettings
from privacy.policy import privacy_for
from privacy.scrub import REDACTED
from recordings.capture import sdk_config
from recordings.models import Recording
from tests.base import ReplayTestCase
from tests.capture import FIXTURE_TOKEN, captured, send_rrweb


class RemoteConfigFromPrivacyTests(ReplayTestCase):
    def test_defaults_mask_inputs_and_keep_network_payloads_off(self) -> None:
        recording = sdk_config.remote_config(self.project)["sessionRecording"]
        self.assertEqual(
            recording["masking"],
            {
                "maskAllInputs": True,
                "maskTextSelector": ".ph-mask, [data-ph-mask]",
                "blockSelector": ".ph-no-capture, [data-ph-no-capture]",
            },
        )
        self.assertEqual(
            recording["networkPayloadCapture"],
            {"recordHeaders": False, "recordBody": False},
        )
        self.assertIsNone(recording["sampleRate"])
        self.assertEqual(recording["urlBlocklist"], [])

    def test_the_projects_rules_reach_the_sdk(self) -> None:
        privacy = privacy_for(self.project)
        privacy.mask_all_text = True
        privacy.mask_all_inputs = False
        privacy.console_log_capture = False
        privacy.sample_rate = Decimal("0.25")
        privacy.minimum_duration_ms = 3000
        privacy.linked_flag = "record-me"
        privacy.url_blocklist = "/checkout\n^https://admin\\."
        privacy.url_triggers = "/onboarding"
        privacy.save()
        config = self.client.get(f"/array/{self.project.token}/config").json()
        recording = config["sessionRecording"]
        self.assertEqual(recording["masking"]["maskTextSelector"], "*")
        self.assertIs(recording["masking"]["maskAllInputs"], False)
        self.assertIs(recording["consoleLogRecordingEnabled"], False)
        self.assertEqual(recording["sampleRate"], "0.250")
        self.assertEqual(recording["minimumDurationMilliseconds"], 3000)
        self.assertEqual(recording["linkedFlag"], "record-me")
        self.assertEqual(
            recording["urlBlocklist"],
            [
                {"url": "/checkout", "matching": "regex"},
                {"url": "^https://admin\\.", "matching": "regex"},
            ],
        )
        self.assertEqual(
            recording["urlTriggers"], [{"url": "/onboarding", "matching": "regex"}]
        )

    def test_a_sample_rate_of_zero_is_sent_as_zero(self) -> None:
        PrivacySettings.objects.create(project=self.project, sample_rate=0)
        recording = sdk_config.remote_config(self.project)["sessionRecording"]
        self.assertEqual(recording["sampleRate"], "0.000")


class PrivacyAuditTests(ReplayTestCase):
    def change_url(self) -> str:
        settings = privacy_for(self.project)
        return reverse("admin:privacy_privacysettings_change", args=[settings.pk])

    def form_data(self, **overrides: object) -> dict[str, object]:
        settings = privacy_for(self.project)
        data: dict[str, object] = {
            "mask_all_inputs": "on",
            "mask_selectors": settings.mask_selectors,
            "block_selectors": settings.block_selectors,
            "unmask_selectors": settings.unmask_selectors,
            "scrub_card_numbers": "on",
            "scrub_patterns": "",
            "console_log_capture": "on",
            "network_timing_capture": "on",
            "respect_do_not_track": "on",
            "sample_rate": "1",
            "minimum_duration_ms": "0",
            "linked_flag": "",
            "url_triggers": "",
            "url_blocklist": "",
            "excluded_people": "[]",
            "retention_days": "30",
            "share_links_allowed": "on",
            "share_link_max_days": "30",
        }
        data.update(overrides)
        return {k: v for k, v in data.items() if v is not None}

    def test_a_change_in_the_admin_is_audited_with_who_and_what(self) -> None:
        self.client.force_login(self.alice)
        response = self.client.post(
            self.change_url(),
            self.form_data(
                mask_all_text="on",
                sample_rate="0.5",
                console_log_capture=None,
                retention_days="90",
            ),
        )
        self.assertEqual(response.status_code, 302, response.content[:2000])
        entry = PrivacyAuditEntry.objects.get()
        self.assertEqual(entry.actor, self.alice)
        self.assertEqual(entry.actor_name, "alice")
        self.assertEqual(
            entry.changes,
            {
                "mask_all_text": [False, True],
                "console_log_capture": [True, False],
                "sample_rate": ["1.000", "0.5"],
                "retention_days": [30, 90],
            },
        )

    def test_saving_without_changes_writes_no_entry(self) -> None:
        self.client.force_login(self.alice)
        self.client.post(self.change_url(), self.form_data())
        self.assertEqual([e.changes for e in PrivacyAuditEntry.objects.all()], [])

    def test_a_bad_pattern_is_refused_with_a_message(self) -> None:
        self.client.force_login(self.alice)
        response = self.client.post(
            self.change_url(), self.form_data(scrub_patterns="(unclosed")
        )
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "is not a valid regular expression")
        self.assertFalse(PrivacyAuditEntry.objects.exists())

    def test_a_pattern_re2_cannot_run_is_refused_saying_why(self) -> None:
        self.client.force_login(self.alice)
        for field in ("scrub_patterns", "url_blocklist", "url_triggers"):
            with self.subTest(field):
                response = self.client.post(
                    self.change_url(), self.form_data(**{field: r"/(?!public)\w+"})
                )
                self.assertEqual(response.status_code, 200)
                self.assertContains(response, "cannot be run by RE2")
                self.assertContains(response, "no lookahead or lookbehind")
        self.assertFalse(PrivacyAuditEntry.objects.exists())

    def test_a_selector_the_firewall_cannot_apply_is_refused(self) -> None:
        self.client.force_login(self.alice)
        response = self.client.post(
            self.change_url(), self.form_data(block_selectors=".ok, div > .child")
        )
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "block selectors")
        self.assertFalse(PrivacyAuditEntry.objects.exists())

    def test_nobody_can_edit_the_audit_trail(self) -> None:
        self.client.force_login(self.alice)
        self.client.post(self.change_url(), self.form_data(mask_all_text="on"))
        entry = PrivacyAuditEntry.objects.get()
        url = reverse("admin:privacy_privacyauditentry_delete", args=[entry.pk])
        self.assertEqual(self.client.post(url, {"post": "yes"}).status_code, 403)
        self.assertTrue(PrivacyAuditEntry.objects.exists())


class DoNotTrackTests(ReplayTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.project.token = FIXTURE_TOKEN
        self.project.save()

    def test_a_browser_sending_dnt_is_not_recorded(self) -> None:
        request = captured("04-s-gzip-fullsnapshot")
        for header in ("DNT", "Sec-GPC"):
            with self.subTest(header):
                response = self.client.post(
                    "/s/",
                    data=request.body,
                    content_type="text/plain",
                    headers={header: "1"},
                )
                self.assertEqual(response.status_code, 403)
                self.assertEqual(response.json()["error"], "do_not_track")
        self.assertFalse(Recording.objects.exists())
        self.assertEqual(self.stored_blobs(), [])

    def test_a_project_may_choose_to_ignore_dnt(self) -> None:
        PrivacySettings.objects.create(project=self.project, respect_do_not_track=False)
        request = captured("04-s-gzip-fullsnapshot")
        response = self.client.post(
            "/s/", data=request.body, content_type="text/plain", headers={"DNT": "1"}
        )
        self.assertEqual(response.status_code, 200)


class AdminPatternsAtCaptureTests(ReplayTestCase):
    """Admins' regexes run by RE2 on every batch; rows saved before that still work."""

    T0 = 1_790_000_000_000

    def page(self, href: str, title: str, text: str) -> list[dict[str, Any]]:
        body = {
            "type": 2,
            "id": 3,
            "tagName": "p",
            "attributes": {"title": title},
            "childNodes": [{"type": 3, "id": 4, "textContent": text}],
        }
        snapshot = {"node": {"type": 0, "id": 1, "childNodes": [body]}}
        return [
            {"type": 4, "timestamp": self.T0, "data": {"href": href}},
            {"type": 2, "timestamp": self.T0 + 1, "data": snapshot},
        ]

    def saved(self, **fields: str) -> None:
        # As a row saved before patterns ran on RE2: no validation on the way in.
        privacy_for(self.project)
        PrivacySettings.objects.filter(project=self.project).update(**fields)

    def test_a_pattern_that_would_backtrack_does_not_stall_capture(self) -> None:
        # Under Python's `re` these would take time exponential in the "a"s.
        self.saved(scrub_patterns="(a+)+$", url_blocklist="(a+)+$")
        almost = "a" * 100_000 + "!"
        send_rrweb(
            self.client,
            self.project.token,
            "b1",
            self.page(f"https://shop.test/{almost}", almost, almost + " aaa"),
        )
        stored = json.dumps(self.stored_events())
        self.assertIn(almost, stored)
        self.assertIn(REDACTED, stored)  # "aaa" at the end of the text matched

    def test_a_saved_scrub_pattern_re2_cannot_run_masks_everything(self) -> None:
        self.saved(scrub_patterns="(?<=ref )\\d+\nACME-\\d{4}")
        with self.assertLogs("privacy.policy", "ERROR") as logs:
            send_rrweb(
                self.client,
                self.project.token,
                "b1",
                self.page("https://shop.test/", "ref ACME-1234", "ref 98765"),
            )
        self.assertIn("cannot be run by RE2", logs.output[0])
        stored = json.dumps(self.stored_events())
        self.assertNotIn("98765", stored)  # all text masked, as the fallback says
        self.assertIn(f"ref {REDACTED}", stored)  # the pattern that runs still does
        self.assertEqual(Recording.objects.count(), 1)

    def test_a_saved_blocklist_line_re2_cannot_run_blocks_every_page(self) -> None:
        self.saved(url_blocklist="/(?!public)private-b")
        with self.assertLogs("privacy.policy", "ERROR"):
            send_rrweb(
                self.client,
                self.project.token,
                "b1",
                self.page("https://shop.test/public", "t", "text"),
            )
        self.assertEqual(self.stored_events(), [])
