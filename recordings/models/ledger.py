"""The ingest ledger: what capture did with each session's batches."""

from __future__ import annotations

from django.db import models
from django.utils.timezone import now

from recordings.models.project import Project


class SessionLedger(models.Model):
    """What capture did with one session's batches, kept even when nothing was stored.

    It answers "why is this recording missing?": batches accepted, retries dropped as
    duplicates, batches refused and why, and whether a full snapshot ever arrived.
    """

    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="ledger"
    )
    session_id = models.CharField(max_length=200)
    distinct_id = models.CharField(max_length=200, blank=True)
    lib_version = models.CharField(max_length=50, blank=True)
    first_seen = models.DateTimeField(default=now)
    last_seen = models.DateTimeField(default=now)
    batches_accepted = models.PositiveIntegerField(default=0)
    batches_duplicate = models.PositiveIntegerField(default=0)
    batches_refused = models.PositiveIntegerField(default=0)
    events_accepted = models.PositiveIntegerField(default=0)
    refusals = models.JSONField(default=dict, help_text="Refusal reason -> count.")
    last_refusal = models.CharField(max_length=100, blank=True)
    events_dropped = models.JSONField(
        default=dict,
        help_text="Events of a type or incremental source ReplayHub does not know "
        '(a newer SDK), not stored: kind ("type 9", "source 17") -> count.',
    )
    has_full_snapshot = models.BooleanField(default=False)
    clock_skew_ms = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="Milliseconds added to this session's event times to correct the "
        "device's clock (received time minus the client's sent_at); 0 when it was "
        "right.",
    )
    scrub_state = models.JSONField(
        default=dict,
        help_text="Per window: node ids the privacy firewall must keep masking or "
        "blocking in later batches.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=("project", "session_id"),
                name="recordings_ledger_project_session_uniq",
            ),
        ]
        indexes = [
            # "Why is this person's recording missing?": lookup by distinct id.
            models.Index(
                fields=("project", "distinct_id"), name="recordings_ledger_distinct_idx"
            ),
            # The missing-recordings rate per SDK version reads recent sessions.
            models.Index(
                fields=("project", "-last_seen"), name="recordings_ledger_seen_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.session_id} ({self.project})"

    def verdict(self) -> str:
        """One line saying what happened to this session's data."""
        if self.batches_accepted == 0 and self.batches_refused:
            return f"nothing stored: every batch was refused ({self.last_refusal})"
        if self.batches_accepted and not self.has_full_snapshot:
            return "stored, but no full snapshot arrived: cannot be replayed"
        if self.batches_refused:
            return f"stored, but {self.batches_refused} batch(es) refused"
        if self.events_dropped:
            dropped = sum(self.events_dropped.values())
            return f"stored, but {dropped} event(s) of unknown kinds dropped"
        return "stored"
