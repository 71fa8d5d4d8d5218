"""Recordings (one session each) and the chunks that hold their data."""

from __future__ import annotations

import datetime as dt
import uuid

from django.db import models
from django.urls import reverse
from django.utils.timezone import now

from recordings.models.project import Project

# A stretch this long with no data inside a recording is worth a warning. posthog-js
# flushes every few seconds while anything happens on the page; a page where nothing
# happens sends nothing until the recorder declares itself idle, after 5 minutes by
# default. Once a recording is compacted its gaps are measured per window with the
# idle markers taken out (recordings.ingest.playability); before that, between
# batches, idle or not.
GAP_WARNING_MS = 5 * 60 * 1000
# How long a project keeps a session's data unless its privacy settings say otherwise.
DEFAULT_RETENTION_DAYS = 30
# One rrweb event this big (a giant full snapshot, an inlined video frame) makes the
# player stall or the tab run out of memory.
OVERSIZED_EVENT_BYTES = 5 * 1024 * 1024
# A live chunk whose bytes are in its own row is read through this key, where the
# others have a blob's: readers take both alike (recordings/services/storage.py).
LIVE_KEY_PREFIX = "row:"


def live_key(chunk_id: int) -> str:
    """The key of a chunk whose bytes are in its row.

    >>> live_key(42)
    'row:42'
    """
    return f"{LIVE_KEY_PREFIX}{chunk_id}"


# Columns a list of recordings leaves unread (RecordingQuerySet.for_list).
LIST_DEFERRED = ("urls", "feature_flags", "user_agent")
# The signals (recordings/ingest/signal_scan.py) a recording keeps as columns of the
# same name: written by services/recording_signals.py, listed by the API
# (serializers.SIGNAL_FIELDS, with the signals kept otherwise).
SIGNAL_COLUMNS = (
    "rage_click_count",
    "dead_click_count",
    "mouse_thrash_count",
    "u_turn_count",
    "error_click_count",
    "active_ms",
    "mouse_activity_count",
    "scroll_count",
    "console_log_count",
    "console_warn_count",
    "network_request_count",
    "network_4xx_count",
    "network_5xx_count",
    "slowest_request_ms",
    "page_count",
    "window_count",
)


class RecordingQuerySet(models.QuerySet["Recording"]):
    def for_project(self, project: Project) -> RecordingQuerySet:
        return self.filter(project=project)

    def needs_compaction(self, idle_since: dt.datetime) -> RecordingQuerySet:
        """Recordings with loose chunks and no batch since `idle_since`."""
        return self.filter(compacted=False, last_batch_at__lt=idle_since)

    def with_lost_data(self, lost: bool = True) -> RecordingQuerySet:
        """Recordings whose compaction found changes to elements never recorded."""
        return self.filter(lost_changes__gt=0) if lost else self.filter(lost_changes=0)

    def for_list(self) -> RecordingQuerySet:
        """Without the columns no list shows and that cost the most to load: the
        page list (long JSON for long sessions), the flags and the User-Agent."""
        return self.defer(*LIST_DEFERRED)

    def newest_first(self) -> RecordingQuerySet:
        return self.order_by("-started_at")


class Recording(models.Model):
    """One session (posthog's `$session_id`), possibly over several windows."""

    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="recordings"
    )
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    session_id = models.CharField(max_length=200)
    distinct_id = models.CharField(max_length=200, blank=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField()
    duration_ms = models.PositiveBigIntegerField(default=0)
    click_count = models.PositiveIntegerField(default=0)
    keypress_count = models.PositiveIntegerField(default=0)
    console_error_count = models.PositiveIntegerField(default=0)
    first_url = models.CharField(max_length=2048, blank=True)
    has_full_snapshot = models.BooleanField(default=False)
    size_bytes = models.PositiveBigIntegerField(
        default=0,
        help_text="Compressed bytes stored: live chunks (in the database or "
        "their blobs), then the compacted window blobs.",
    )
    event_count = models.PositiveIntegerField(default=0)
    lib = models.CharField(max_length=50, blank=True, help_text="Sending SDK.")
    lib_version = models.CharField(max_length=50, blank=True)
    max_gap_ms = models.PositiveBigIntegerField(
        default=0,
        help_text="Longest stretch between batches with no data, while live.",
    )
    lost_changes = models.PositiveIntegerField(
        default=0,
        help_text="Page changes that refer to elements never recorded: batches in "
        "between were lost (found at compaction).",
    )
    window_checks = models.JSONField(
        default=dict,
        blank=True,
        help_text="Per window, from its last compaction: lost changes and the "
        "longest gap the client did not declare idle.",
    )
    checked_gap_ms = models.PositiveBigIntegerField(
        default=0,
        help_text="The compacted windows' longest gap the client did not declare "
        "idle (their window checks); 0 before the first compaction.",
    )
    largest_event_bytes = models.PositiveIntegerField(
        default=0,
        help_text="Size of the biggest single event in JSON bytes (exact above "
        "5 MiB; below, an upper bound).",
    )
    last_batch_at = models.DateTimeField(
        default=now, help_text="When the newest batch arrived (server clock)."
    )
    compacted = models.BooleanField(
        default=False,
        help_text="Every chunk is merged into one blob per window (one read to play).",
    )
    legal_hold = models.BooleanField(
        default=False,
        help_text="Kept past the project's retention and cannot be deleted until "
        "the hold is lifted.",
    )
    # What happened in the recording (recordings/ingest/signal_scan.py), computed from
    # its windows in order at compaction, every few minutes while it is live, and
    # by `manage.py recompute_signals`.
    rage_click_count = models.PositiveIntegerField(default=0)
    dead_click_count = models.PositiveIntegerField(default=0)
    mouse_thrash_count = models.PositiveIntegerField(default=0)
    u_turn_count = models.PositiveIntegerField(default=0)
    error_click_count = models.PositiveIntegerField(default=0)
    active_ms = models.PositiveBigIntegerField(
        default=0, help_text="Time with user input (5-second activity windows)."
    )
    mouse_activity_count = models.PositiveIntegerField(default=0)
    scroll_count = models.PositiveIntegerField(default=0)
    console_log_count = models.PositiveIntegerField(default=0)
    console_warn_count = models.PositiveIntegerField(default=0)
    network_request_count = models.PositiveIntegerField(default=0)
    network_4xx_count = models.PositiveIntegerField(default=0)
    network_5xx_count = models.PositiveIntegerField(default=0)
    slowest_request_ms = models.PositiveIntegerField(default=0)
    slowest_request_url = models.CharField(max_length=2048, blank=True)
    page_count = models.PositiveIntegerField(default=0)
    window_count = models.PositiveIntegerField(default=0)
    last_url = models.CharField(max_length=2048, blank=True)
    urls = models.JSONField(
        default=list,
        blank=True,
        help_text="Pages visited in order: [{url, timestamp_ms, window_id}].",
    )
    feature_flags = models.JSONField(
        null=True,
        blank=True,
        editable=False,
        help_text="The session's feature flags, {flag: {value as JSON: true}}, "
        "from its analytics events (recordings/ingest/flags.py); null until the "
        "signals are computed.",
    )
    browser = models.CharField(max_length=100, blank=True)
    browser_version = models.CharField(max_length=50, blank=True)
    os = models.CharField(max_length=100, blank=True)
    device_type = models.CharField(max_length=20, blank=True)
    viewport_width = models.PositiveIntegerField(null=True, blank=True)
    viewport_height = models.PositiveIntegerField(null=True, blank=True)
    country = models.CharField(
        max_length=2,
        blank=True,
        help_text="ISO 3166 code, from the operator's proxy header or IP database "
        "at capture (the IP itself is never stored).",
    )
    user_agent = models.CharField(
        max_length=512,
        blank=True,
        help_text="The browser's User-Agent as first captured (plain rrweb clients "
        "send no browser properties).",
    )
    signals_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the signals and markers were last computed.",
    )
    data_missing_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When playback first found one of its blobs missing from storage "
        "(deleted, or not restored with the database): it cannot be played whole.",
    )
    created = models.DateTimeField(default=now, editable=False)

    objects = RecordingQuerySet.as_manager()

    class Meta:
        ordering = ("-started_at",)
        constraints = [
            models.UniqueConstraint(
                fields=("project", "session_id"),
                name="recordings_recording_project_session_uniq",
            ),
        ]
        indexes = [
            # The admin list and the API list a project's recordings newest first.
            models.Index(
                fields=("project", "-started_at"),
                name="recordings_rec_proj_start_idx",
            ),
            # Looking a person up by distinct id ("show me this user's sessions").
            models.Index(
                fields=("project", "distinct_id"),
                name="recordings_rec_distinct_idx",
            ),
            # The compaction sweeper: idle recordings that still have loose chunks;
            # the signals sweeper: live recordings whose signals are behind.
            models.Index(
                fields=("last_batch_at",),
                condition=models.Q(compacted=False),
                name="recordings_rec_compact_idx",
            ),
            # Billing: the recorded minutes of a project's recordings this month.
            models.Index(
                fields=("project", "created"), name="recordings_rec_usage_idx"
            ),
            # Retention: a project's recordings whose last batch is past its period.
            models.Index(
                fields=("project", "last_batch_at"), name="recordings_rec_expiry_idx"
            ),
            # Every index of this table costs capture an entry per batch (its
            # update of last_batch_at is not HOT): the filter language (issue 13)
            # adds only the two below (bench/query/million.py,
            # docs/benchmarks/query.md).
            # The filter language's "longest" order and its duration range.
            models.Index(
                fields=("project", "duration_ms"), name="recordings_rec_duration_idx"
            ),
            # Its "most errors" order under a console-error condition: partial, so
            # the recordings without errors (most) cost capture nothing here.
            models.Index(
                fields=("project", "console_error_count"),
                condition=models.Q(console_error_count__gt=0),
                name="recordings_rec_errors_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.session_id} ({self.project})"

    # Deliberately not get_absolute_url: Django's "view on site" redirect
    # (/admin/r/<content type>/<pk>/) follows that without any permission check,
    # which would tell any staff user another project's recording codes.
    def player_url(self) -> str:
        return reverse("admin:recordings_recording_play", args=[self.code])

    @property
    def duration(self) -> dt.timedelta:
        return dt.timedelta(milliseconds=self.duration_ms)

    @property
    def inactive_ms(self) -> int:
        return max(self.duration_ms - self.active_ms, 0)

    def problems(self) -> list[str]:
        """Why this recording may not play well, worst first (empty when fine)."""
        found = []
        if self.data_missing_at is not None:
            found.append("data missing: some of its data is gone from storage")
        if not self.has_full_snapshot:
            found.append("no full snapshot: cannot be replayed")
        if self.largest_event_bytes >= OVERSIZED_EVENT_BYTES:
            mib = self.largest_event_bytes / 2**20
            found.append(f"oversized events: one is {mib:.0f} MiB")
        if self.lost_changes:
            found.append(
                f"data lost: {self.lost_changes} page change(s) refer to elements "
                "never recorded"
            )
        gap_ms = self.longest_gap_ms
        if gap_ms >= GAP_WARNING_MS:
            found.append(f"a {gap_ms // 60_000}-minute gap with no data")
        return found

    def expires_at(self) -> dt.datetime | None:
        """When retention deletes this recording; None while on legal hold."""
        if self.legal_hold:
            return None
        privacy = getattr(self.project, "privacy", None)  # absent: the default
        days = privacy.retention_days if privacy is not None else DEFAULT_RETENTION_DAYS
        return self.last_batch_at + dt.timedelta(days=days)

    @property
    def longest_gap_ms(self) -> int:
        """The compacted windows' longest unexplained gap; before that, the live one.

        The filter language's `gap` problem asks the same (search/compiler.py)."""
        return self.checked_gap_ms if self.window_checks else self.max_gap_ms

    def window_ids(self) -> list[str]:
        """Windows (tabs) of this recording, in the order they started."""
        rows = self.chunks.values_list("window_id", flat=True).order_by(
            "first_timestamp", "created"
        )
        return list(dict.fromkeys(rows))


class SnapshotChunkManager(models.Manager["SnapshotChunk"]):
    def get_queryset(self) -> models.QuerySet[SnapshotChunk]:
        # A live chunk's bytes are read only by the services that need them
        # (playback, compaction, redaction); every other query (the admin, counts,
        # retention) leaves them in the table.
        return super().get_queryset().defer("data")


class SnapshotChunk(models.Model):
    """One stored batch of rrweb events, with its gzip bytes while it is live.

    Capture commits a batch's compressed bytes in its row (`data`), in the same
    statement as the rest of the batch, so a 200 means one committed row. A batch
    too big for a row goes to blob storage instead (`blob_key`). Compaction moves
    a window's chunks into one blob (`compacted_into`) and empties `data`; the row
    stays, small, so that a retry after compaction is still recognised.

    `batch_id` is the client's idempotency key (the `$snapshot` uuid for posthog-js),
    so a retried batch finds its chunk and is not stored again.
    """

    recording = models.ForeignKey(
        Recording, on_delete=models.CASCADE, related_name="chunks"
    )
    batch_id = models.CharField(max_length=100)
    window_id = models.CharField(max_length=200, blank=True)
    data = models.BinaryField(
        null=True,
        editable=False,
        help_text="The batch's events (gzip JSON) while the chunk is live and in "
        "the database; empty once compacted, or when the batch went to blob storage.",
    )
    blob_key = models.CharField(
        max_length=512,
        blank=True,
        help_text="The chunk's own blob in storage (a batch too big for the "
        "database); empty when its bytes are in `data`.",
    )
    compacted_into = models.CharField(
        max_length=512,
        blank=True,
        help_text="The window blob that now holds this chunk's events (its own blob "
        "is gone); empty while the chunk is loose.",
    )
    size_bytes = models.PositiveIntegerField(
        help_text="Compressed bytes as captured (in `data` or its own blob)."
    )
    event_count = models.PositiveIntegerField()
    first_timestamp = models.DateTimeField()
    last_timestamp = models.DateTimeField()
    created = models.DateTimeField(default=now, editable=False)

    objects = SnapshotChunkManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=("recording", "batch_id"),
                name="recordings_chunk_recording_batch_uniq",
            ),
        ]
        indexes = [
            # Playback reads a recording's chunks in time order.
            models.Index(
                fields=("recording", "first_timestamp"),
                name="recordings_chunk_rec_ts_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.recording.session_id} · {self.batch_id}"

    @property
    def data_key(self) -> str:
        """Where this chunk's events are now: a blob's key, or `live_key` while
        its bytes are in its row."""
        return self.compacted_into or self.blob_key or live_key(self.pk)


class WindowBlob(models.Model):
    """Where each segment (time slice) of a compacted window's blob lies in it.

    Compaction writes it with the blob (blobs.encode_segmented), in the same
    commit that points the window's chunks at it; redaction rewrites both. A
    window compacted before segments has none and is served whole, as one segment.
    """

    recording = models.ForeignKey(
        Recording, on_delete=models.CASCADE, related_name="window_blobs"
    )
    window_id = models.CharField(max_length=200, blank=True)
    key = models.CharField(max_length=512, help_text="The window blob's key.")
    segments = models.JSONField(
        default=list,
        help_text="Per segment, in time order: [offset, length, first_ms, last_ms, "
        "events, raw, crc] (blobs.Segment).",
    )
    created = models.DateTimeField(default=now, editable=False)

    class Meta:
        constraints = [
            # Playback finds a window blob's segments by its key.
            models.UniqueConstraint(
                fields=("key",), name="recordings_windowblob_key_uniq"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.key} ({len(self.segments)} segment(s))"
