"""Periodic jobs' run-once locks, and what their last runs did."""

from __future__ import annotations

from django.db import models


class JobLock(models.Model):
    """One periodic job (a Celery task name): who runs it now, and its last runs.

    Held while a run is in progress, so that a second start of the same job (two
    schedulers, or a run that outlasted its period) skips instead of running it
    again; it lapses at `expires_at` if its holder died without letting go.
    recordings/services/jobs.py takes and gives it back.
    """

    class Outcome(models.TextChoices):
        DONE = "done"
        FAILED = "failed"

    name = models.CharField(max_length=200, help_text="The job's Celery task name.")
    holder = models.CharField(
        max_length=200,
        blank=True,
        help_text="The process running the job now (host, pid); empty when none is.",
    )
    acquired_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the holder's lock lapses even if it never let go (its "
        "process died): acquired_at plus the job's time limit.",
    )
    finished_at = models.DateTimeField(null=True, blank=True)
    last_outcome = models.CharField(max_length=10, choices=Outcome.choices, blank=True)
    skipped = models.PositiveIntegerField(
        default=0, help_text="Starts that found the job running and skipped."
    )
    last_skipped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=("name",), name="recordings_joblock_name_uniq"
            ),
        ]

    def __str__(self) -> str:
        return self.name
