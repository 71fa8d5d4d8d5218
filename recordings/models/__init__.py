"""Projects (the tenant), their recordings, and the chunks that hold the data.

A package (house style 1) with the same public names as the module it grew from,
one module per area: project (and guardian's tables), apikey, recording (and its
chunks), people (analytics events and persons), ledger, marker and curation
(tags, comments, views), and jobs (periodic jobs' locks). Django finds the models
through the imports below; each module imports only project (marker and curation
also recording), never another sibling.
"""

from __future__ import annotations

from recordings.models.apikey import (
    API_KEY_PREFIX,
    ApiKey,
    ApiKeyQuerySet,
    hash_api_key,
    new_api_key,
)
from recordings.models.curation import Comment, RecordingTag, RecordingView, Tag
from recordings.models.jobs import JobLock
from recordings.models.ledger import SessionLedger
from recordings.models.marker import Marker, MarkerQuerySet
from recordings.models.people import Event, Person
from recordings.models.project import (
    Project,
    ProjectGroupObjectPermission,
    ProjectQuerySet,
    ProjectUserObjectPermission,
    new_capture_token,
)
from recordings.models.ratelimit import IngestRateWindow
from recordings.models.recording import (
    DEFAULT_RETENTION_DAYS,
    GAP_WARNING_MS,
    LIVE_KEY_PREFIX,
    OVERSIZED_EVENT_BYTES,
    Recording,
    RecordingQuerySet,
    SnapshotChunk,
    WindowBlob,
    live_key,
)

__all__ = [
    "API_KEY_PREFIX",
    "DEFAULT_RETENTION_DAYS",
    "GAP_WARNING_MS",
    "LIVE_KEY_PREFIX",
    "Marker",
    "MarkerQuerySet",
    "OVERSIZED_EVENT_BYTES",
    "ApiKey",
    "ApiKeyQuerySet",
    "Comment",
    "RecordingTag",
    "RecordingView",
    "Tag",
    "Event",
    "JobLock",
    "IngestRateWindow",
    "Person",
    "Project",
    "ProjectGroupObjectPermission",
    "ProjectQuerySet",
    "ProjectUserObjectPermission",
    "Recording",
    "RecordingQuerySet",
    "SessionLedger",
    "SnapshotChunk",
    "WindowBlob",
    "live_key",
    "hash_api_key",
    "new_api_key",
    "new_capture_token",
]
