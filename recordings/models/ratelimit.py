"""Ingest rate windows: batches a project sent per minute, counted in the database.

Used by the rate limit (recordings/capture/throttles.py) when there is no Redis: the web
processes of the embedded default share no memory, but they share the database.
"""

from __future__ import annotations

from django.db import connection, models

from recordings.models.project import Project


class IngestRateWindowManager(models.Manager["IngestRateWindow"]):
    def hit(self, *, project_id: int, minute: int) -> int:
        """Count one batch in the project's minute; return the minute's count so far.

        One statement, atomic in every process at once: an upsert that adds 1 and
        returns the sum (SQLite 3.35+ and PostgreSQL). A new minute's first batch
        also deletes the project's earlier minutes.
        """
        table = connection.ops.quote_name(self.model._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (project_id, minute, batches) VALUES (%s, %s, 1) "
                "ON CONFLICT (project_id, minute) "
                f"DO UPDATE SET batches = {table}.batches + 1 RETURNING batches",
                [project_id, minute],
            )
            (count,) = cursor.fetchone() or (0,)
        if count == 1:
            self.filter(project_id=project_id, minute__lt=minute).delete()
        return int(count)


class IngestRateWindow(models.Model):
    """How many batches a project sent in one minute (the rate limit's window)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    minute = models.BigIntegerField(help_text="Minutes since the Unix epoch.")
    batches = models.PositiveIntegerField(default=0)

    objects = IngestRateWindowManager()

    class Meta:
        constraints = [
            # The upsert's conflict target: one row per project and minute.
            models.UniqueConstraint(
                fields=("project", "minute"),
                name="recordings_ingestratewindow_project_minute_uniq",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project_id} @ {self.minute}: {self.batches}"
