"""Markers: the moments of a recording worth showing on its timeline or querying."""

from __future__ import annotations

from django.db import models

from recordings.models.recording import Recording


class MarkerQuerySet(models.QuerySet["Marker"]):
    def of_kind(self, *kinds: str) -> MarkerQuerySet:
        return self.filter(kind__in=kinds)

    def in_time_order(self) -> MarkerQuerySet:
        return self.order_by("timestamp", "pk")


class Marker(models.Model):
    """One moment of a recording: a rage click, an error, a page change...

    Computed from the recording (recordings/ingest/signal_scan.py) and replaced whole
    each time its signals are; deleted with the recording.
    """

    class Kind(models.TextChoices):
        CUSTOM_EVENT = "custom_event", "custom event"
        EXCEPTION = "exception", "exception"
        CONSOLE_ERROR = "console_error", "console error"
        NETWORK_ERROR = "network_error", "network error"
        RAGE_CLICK = "rage_click", "rage click"
        DEAD_CLICK = "dead_click", "dead click"
        MOUSE_THRASH = "mouse_thrash", "mouse thrashing"
        U_TURN = "u_turn", "U-turn"
        ERROR_CLICK = "error_click", "error click"
        PAGE = "page_change", "page change"

    recording = models.ForeignKey(
        Recording, on_delete=models.CASCADE, related_name="markers"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    timestamp = models.DateTimeField()
    offset_ms = models.PositiveBigIntegerField(
        help_text="Milliseconds from the recording's start."
    )
    window_id = models.CharField(max_length=200, blank=True)
    label = models.CharField(max_length=200, blank=True)
    details = models.JSONField(default=dict, blank=True)

    objects = MarkerQuerySet.as_manager()

    class Meta:
        indexes = [
            # "A marker of kind K in this recording between t and t + N s": the
            # filter language's follow-up terms and the timeline's markers by kind.
            models.Index(
                fields=("recording", "kind", "timestamp"),
                name="recordings_marker_kind_ts_idx",
            ),
            # Recordings with a marker of kind K (joined from the recording list).
            models.Index(
                fields=("kind", "recording"), name="recordings_marker_kind_rec_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.offset_ms / 1000:.1f} s"
