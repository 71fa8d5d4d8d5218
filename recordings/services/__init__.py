"""Work that crosses models or touches blob storage, as `<entity>_<verb>` functions.

A package (house style 1) with the same public names as the module it grew from:
capture (ingest), storage (playback, purge, orphans), compaction (and the recording
rules applied then), people (analytics events and persons) and the ingest ledger.
Submodules import each other one way only: capture and people use the ledger,
compaction uses storage and the ledger, people uses compaction.
"""

from __future__ import annotations

from recordings.services.capture import (
    IngestResult,
    ms_to_datetime,
    recording_ingest_batches,
)
from recordings.services.compaction import (
    recording_compact,
    recording_discard,
    recordings_to_compact,
)
from recordings.services.ledger import (
    CaptureHealth,
    ledger_record_refusal,
    project_capture_health,
)
from recordings.services.people import events_ingest, person_is_excluded
from recordings.services.storage import (
    BlobRewrite,
    RecordingOnHold,
    orphan_blobs_delete,
    recording_events,
    recording_purge,
    recording_rewrite_blobs,
    recording_window_blob,
    recordings_hold,
)
from recordings.services.usage import (
    Usage,
    project_cap_enforce,
    project_usage,
    projects_cap_enforce,
)

__all__ = [
    "BlobRewrite",
    "CaptureHealth",
    "IngestResult",
    "RecordingOnHold",
    "Usage",
    "events_ingest",
    "ledger_record_refusal",
    "ms_to_datetime",
    "orphan_blobs_delete",
    "person_is_excluded",
    "project_cap_enforce",
    "project_capture_health",
    "project_usage",
    "projects_cap_enforce",
    "recording_compact",
    "recording_discard",
    "recording_events",
    "recording_ingest_batches",
    "recording_purge",
    "recording_rewrite_blobs",
    "recording_window_blob",
    "recordings_hold",
    "recordings_to_compact",
]
