"""Projects (the tenant), their recordings, and the chunks that hold the data."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils.timezone import now
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase


def new_capture_token() -> str:
    # posthog-js shows tokens with a "phc_" prefix; keeping it makes ours look familiar
    # and greppable. 32 url-safe bytes: unguessable, yet public by design (see Project).
    return "phc_" + secrets.token_urlsafe(32)


class ProjectQuerySet(models.QuerySet["Project"]):
    def for_token(self, token: str) -> ProjectQuerySet:
        """The project of a capture token, if any; none for a token no project can
        hold, without asking the database: PostgreSQL refuses a NUL in a query
        (an error, not "no such row"), and a longer token cannot match."""
        max_length = self.model._meta.get_field("token").max_length or 0
        if "\x00" in token or len(token) > max_length:
            return self.none()
        return self.filter(token=token)


class Project(models.Model):
    """A tenant: one site or app whose recordings are kept together.

    The capture token is public (it ships in web pages). It only lets a browser send
    data to this project; it never grants a read.
    """

    name = models.CharField(max_length=200)
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    token = models.CharField(
        max_length=64, unique=True, default=new_capture_token, editable=False
    )
    recording_enabled = models.BooleanField(
        default=True,
        help_text="When off, the SDK is told not to record and batches are refused.",
    )
    ingest_rate_limit = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Batches per minute this project may send; empty for the "
        "server default (REPLAYHUB_INGEST_RATE_PER_MINUTE).",
    )
    monthly_minutes_cap = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Recorded minutes a calendar month (UTC) may hold; at the cap the "
        "SDK is told to stop and batches are refused until the month ends or the "
        "cap is raised. Empty for no cap.",
    )
    over_cap_since = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="When the project reached its cap this month; empty while under.",
    )
    created = models.DateTimeField(default=now, editable=False)
    is_demo = models.BooleanField(
        "demo project",
        default=False,
        help_text="The project the public demo page (/demo/) records into, showing "
        "its name and capture token to anyone. At most one; superusers only.",
    )

    objects = ProjectQuerySet.as_manager()

    class Meta:
        ordering = ("name",)
        constraints = [
            # The demo page records into one project, named by this flag alone.
            models.UniqueConstraint(
                fields=["is_demo"],
                condition=models.Q(is_demo=True),
                name="recordings_project_one_demo_uniq",
                violation_error_message="Another project is the demo project already.",
            ),
        ]
        # Held per project through guardian (see recordings/access.py for the roles
        # that bundle them); change_project covers the name, switches and token.
        permissions = [
            ("view_recordings", "Can watch the project's recordings"),
            ("comment_recordings", "Can comment on the project's recordings"),
            ("curate_recordings", "Can curate playlists and tag recordings"),
            ("manage_privacy", "Can change privacy settings and recording rules"),
            ("delete_recordings", "Can delete the project's recordings"),
            ("manage_members", "Can give people roles on the project"),
        ]

    def __str__(self) -> str:
        return self.name


# guardian's direct foreign-key tables: faster than its generic ones, and deleting a
# project cascades its permissions (no orphaned rows pointing at a reused pk).
class ProjectUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Project, on_delete=models.CASCADE)


class ProjectGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Project, on_delete=models.CASCADE)


API_KEY_PREFIX = "rhk_"


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    # Keys are 32 random bytes, so a plain SHA-256 is enough: there is nothing to
    # brute-force that a slow hash would protect (unlike a password).
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeyQuerySet(models.QuerySet["ApiKey"]):
    def usable(self, at: dt.datetime) -> ApiKeyQuerySet:
        return self.filter(revoked__isnull=True).exclude(expires__lte=at)


class ApiKey(models.Model):
    """A personal key for the management API, limited to chosen projects.

    It acts for its user, never beyond: a request may do what the user's role allows,
    on the key's projects only, and only reads when the key is read-only. Only a hash
    is stored; the key is shown once, when it is created.
    """

    class Access(models.TextChoices):
        READ = "read", "Read only"
        WRITE = "write", "Read and write"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100, help_text="What the key is for.")
    projects = models.ManyToManyField(
        Project, related_name="api_keys", help_text="The only projects it can reach."
    )
    access = models.CharField(max_length=10, choices=Access, default=Access.READ)
    prefix = models.CharField(
        max_length=16, editable=False, help_text="The key's first characters."
    )
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created = models.DateTimeField(default=now, editable=False)
    expires = models.DateTimeField(null=True, blank=True)
    last_used = models.DateTimeField(null=True, blank=True, editable=False)
    revoked = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def is_usable(self, at: dt.datetime) -> bool:
        return self.revoked is None and (self.expires is None or self.expires > at)


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


class RecordingQuerySet(models.QuerySet["Recording"]):
    def for_project(self, project: Project) -> RecordingQuerySet:
        return self.filter(project=project)

    def needs_compaction(self, idle_since: dt.datetime) -> RecordingQuerySet:
        """Recordings with loose chunks and no batch since `idle_since`."""
        return self.filter(compacted=False, last_batch_at__lt=idle_since)

    def with_lost_data(self, lost: bool = True) -> RecordingQuerySet:
        """Recordings whose compaction found changes to elements never recorded."""
        return self.filter(lost_changes__gt=0) if lost else self.filter(lost_changes=0)

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
        default=0, help_text="Bytes in blob storage (compressed)."
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
            # The compaction sweeper: idle recordings that still have loose chunks.
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

    def problems(self) -> list[str]:
        """Why this recording may not play well, worst first (empty when fine)."""
        found = []
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
        """The compacted windows' longest unexplained gap; before that, the live one."""
        checked = [
            check.get("longest_gap_ms", 0)
            for check in self.window_checks.values()
            if isinstance(check, dict)
        ]
        return max(checked) if checked else self.max_gap_ms

    def window_ids(self) -> list[str]:
        """Windows (tabs) of this recording, in the order they started."""
        rows = self.chunks.values_list("window_id", flat=True).order_by(
            "first_timestamp", "created"
        )
        return list(dict.fromkeys(rows))


class SnapshotChunk(models.Model):
    """One stored batch of rrweb events: a blob in storage, described here.

    `batch_id` is the client's idempotency key (the `$snapshot` uuid for posthog-js),
    so a retried batch finds its chunk and is not stored again.
    """

    recording = models.ForeignKey(
        Recording, on_delete=models.CASCADE, related_name="chunks"
    )
    batch_id = models.CharField(max_length=100)
    window_id = models.CharField(max_length=200, blank=True)
    blob_key = models.CharField(max_length=512)
    compacted_into = models.CharField(
        max_length=512,
        blank=True,
        help_text="The window blob that now holds this chunk's events (its own blob "
        "is gone); empty while the chunk is loose.",
    )
    size_bytes = models.PositiveIntegerField(help_text="Compressed bytes in storage.")
    event_count = models.PositiveIntegerField()
    first_timestamp = models.DateTimeField()
    last_timestamp = models.DateTimeField()
    created = models.DateTimeField(default=now, editable=False)

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
        """Where this chunk's events are now."""
        return self.compacted_into or self.blob_key


class Event(models.Model):
    """An analytics event posthog-js sent to /e/ (pageviews, clicks, exceptions...).

    Kept for timeline markers and filtering; linked to a recording by session id
    rather than a foreign key, because events often arrive before the first snapshot.
    """

    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="events"
    )
    uuid = models.CharField(max_length=100)
    name = models.CharField(max_length=400)
    distinct_id = models.CharField(max_length=200, blank=True)
    session_id = models.CharField(max_length=200, blank=True)
    timestamp = models.DateTimeField()
    properties = models.JSONField(default=dict)
    created = models.DateTimeField(default=now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=("project", "uuid"), name="recordings_event_project_uuid_uniq"
            ),
        ]
        indexes = [
            # Timeline markers: a recording's events in time order.
            models.Index(
                fields=("project", "session_id", "timestamp"),
                name="recordings_event_session_idx",
            ),
            # Retention: a project's events received before its period began.
            models.Index(
                fields=("project", "created"), name="recordings_event_expiry_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} @ {self.timestamp:%Y-%m-%d %H:%M:%S}"


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


class Person(models.Model):
    """Someone a project's SDK identified: distinct id and person properties."""

    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="people"
    )
    distinct_id = models.CharField(max_length=200)
    properties = models.JSONField(default=dict)
    anon_distinct_ids = models.JSONField(
        default=list, help_text="Anonymous ids this person had before identify()."
    )
    created = models.DateTimeField(default=now, editable=False)
    updated = models.DateTimeField(default=now)

    class Meta:
        verbose_name_plural = "people"
        constraints = [
            models.UniqueConstraint(
                fields=("project", "distinct_id"),
                name="recordings_person_project_distinct_uniq",
            ),
        ]

    def __str__(self) -> str:
        return self.distinct_id
