"""Per-project privacy: what the SDK is told to mask, what the server enforces."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.timezone import now

from privacy.scrub.regex import compile_regex
from recordings.models import DEFAULT_RETENTION_DAYS, Project

DEFAULT_MASK_SELECTORS = ".ph-mask, [data-ph-mask]"
DEFAULT_BLOCK_SELECTORS = ".ph-no-capture, [data-ph-no-capture]"
DEFAULT_UNMASK_SELECTORS = ".ph-no-mask"


def split_lines(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip()]


def split_selectors(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def validate_regex_lines(value: str) -> None:
    """Every line compiles with RE2, the engine capture runs it with."""
    for line in split_lines(value):
        try:
            compile_regex(line)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class PrivacySettings(models.Model):
    """A project's masking and recording rules.

    Served to posthog-js in the remote config so the browser obeys, and enforced
    again on the server before anything is written, whatever the client sent.
    """

    project = models.OneToOneField(
        Project, on_delete=models.CASCADE, related_name="privacy"
    )
    # Masking
    mask_all_inputs = models.BooleanField(default=True)
    mask_all_text = models.BooleanField(default=False)
    mask_selectors = models.TextField(
        default=DEFAULT_MASK_SELECTORS,
        blank=True,
        help_text="CSS selectors, comma-separated: text and inputs inside are masked.",
    )
    block_selectors = models.TextField(
        default=DEFAULT_BLOCK_SELECTORS,
        blank=True,
        help_text="CSS selectors, comma-separated: elements removed with their "
        "subtree.",
    )
    unmask_selectors = models.TextField(
        default=DEFAULT_UNMASK_SELECTORS,
        blank=True,
        help_text="CSS selectors exempt from mask-all-text and mask-all-inputs.",
    )
    scrub_card_numbers = models.BooleanField(
        default=True, help_text="Remove Luhn-valid card numbers from everything stored."
    )
    scrub_patterns = models.TextField(
        blank=True,
        validators=[validate_regex_lines],
        help_text="Regular expressions, one per line, redacted from everything stored.",
    )
    record_cross_origin_iframes = models.BooleanField(default=False)
    console_log_capture = models.BooleanField(default=True)
    network_timing_capture = models.BooleanField(default=True)
    network_record_headers = models.BooleanField(default=False)
    network_record_body = models.BooleanField(default=False)
    store_ip_addresses = models.BooleanField(default=False)
    respect_do_not_track = models.BooleanField(
        default=True,
        help_text="Refuse batches from browsers that send DNT: 1 or Sec-GPC: 1.",
    )
    # Recording rules
    sample_rate = models.DecimalField(
        max_digits=4,
        decimal_places=3,
        default=1,
        validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text="Share of sessions recorded, 0 to 1.",
    )
    minimum_duration_ms = models.PositiveIntegerField(
        default=0, help_text="Sessions shorter than this are not kept."
    )
    linked_flag = models.CharField(
        max_length=200, blank=True, help_text="Record only when this flag is on."
    )
    url_triggers = models.TextField(
        blank=True,
        validators=[validate_regex_lines],
        help_text="Start recording on URLs matching one of these regexes (one a line).",
    )
    url_blocklist = models.TextField(
        blank=True,
        validators=[validate_regex_lines],
        help_text="Never record URLs matching one of these regexes (one a line).",
    )
    # Retention
    retention_days = models.PositiveIntegerField(
        default=DEFAULT_RETENTION_DAYS,
        validators=[MinValueValidator(1), MaxValueValidator(3650)],
        help_text="Recordings, their analytics events and ledger rows are deleted "
        "this many days after the session's last batch, unless on legal hold.",
    )
    # Share links
    share_links_allowed = models.BooleanField(
        default=True,
        help_text="Editors may make read-only public links to recordings and "
        "playlists. Off: no link can be made, and existing ones stop working.",
    )
    share_link_max_days = models.PositiveIntegerField(
        default=30,
        validators=[MinValueValidator(1), MaxValueValidator(365)],
        help_text="The longest a share link may stay valid (its default is 7 days).",
    )
    excluded_people = models.JSONField(
        default=list,
        blank=True,
        help_text="Do not record people with these properties, e.g. "
        '[{"property": "email_domain", "value": "example.com"}].',
    )
    updated = models.DateTimeField(default=now)

    class Meta:
        verbose_name = "privacy settings"
        verbose_name_plural = "privacy settings"

    def __str__(self) -> str:
        return f"Privacy of {self.project}"

    def clean(self) -> None:
        # The same parser the firewall uses: what the admin saves, capture can apply.
        from privacy.scrub import MaskRules, compile_rules

        try:
            compile_rules(
                MaskRules(
                    mask_selectors=tuple(split_selectors(self.mask_selectors)),
                    block_selectors=tuple(split_selectors(self.block_selectors)),
                    unmask_selectors=tuple(split_selectors(self.unmask_selectors)),
                    extra_patterns=tuple(split_lines(self.scrub_patterns)),
                )
            )
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class PrivacyAuditEntry(models.Model):
    """Who changed a project's privacy settings, when, and what (old -> new); also
    what compliance work did (redaction, retention, legal holds), in counts and
    recording codes only: never personal data."""

    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="privacy_audit"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    actor_name = models.CharField(max_length=150, blank=True)
    changes = models.JSONField(help_text="Field -> [old, new].")
    created = models.DateTimeField(default=now, editable=False)

    class Meta:
        verbose_name_plural = "privacy audit entries"
        indexes = [
            # The audit list of one project, newest first.
            models.Index(fields=("project", "-created"), name="privacy_audit_proj_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_name or 'system'} changed {', '.join(self.changes)}"


class ErasureRequest(models.Model):
    """A data subject's erasure (GDPR Art. 17) in one project, and its receipt.

    The distinct ids are kept only while the erasure is pending, so a crashed run
    can resume; once done, the request holds counts, and the tombstones hold
    hashes that refuse the person's late batches.
    """

    class Status(models.TextChoices):
        DRY_RUN = "dry_run", "dry run (nothing deleted)"
        PENDING = "pending", "pending"
        DONE = "done", "done"

    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="erasures"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    requested_by_name = models.CharField(max_length=150, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices)
    subjects = models.PositiveIntegerField(
        default=0, help_text="Distinct ids named in the request."
    )
    pending_distinct_ids = models.JSONField(
        default=list,
        blank=True,
        help_text="The ids to erase, kept only until the erasure is done.",
    )
    receipt = models.JSONField(
        default=dict, blank=True, help_text="What was deleted, in counts."
    )
    created = models.DateTimeField(default=now, editable=False)
    completed = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created",)

    def __str__(self) -> str:
        return f"Erasure #{self.pk} in {self.project} ({self.get_status_display()})"


class Tombstone(models.Model):
    """A person erased from a project: capture refuses their batches from now on.

    Holds a hash of the distinct id salted with the project's code, not the id.
    """

    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="tombstones"
    )
    subject_hash = models.CharField(max_length=64)
    erasure = models.ForeignKey(
        ErasureRequest, on_delete=models.SET_NULL, null=True, blank=True
    )
    created = models.DateTimeField(default=now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=("project", "subject_hash"), name="privacy_tombstone_uniq"
            ),
        ]

    def __str__(self) -> str:
        return f"Tombstone {self.subject_hash[:12]}… in {self.project}"
