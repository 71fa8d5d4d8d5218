"""Work that crosses models or touches blob storage, as `<entity>_<verb>` functions.

A package (house style 1) with the same public names as the module it grew from:
capture (ingest), admission (whether capture takes a request, and the refusal),
storage (playback, purge, blob rewrites, legal holds, orphans), segments (a
recording's windows as time slices a player fetches one by one), signals (what
happened in a recording, and its markers), compaction (and the recording rules
applied then), people (analytics events and persons) and the ingest ledger.
Submodules import each other one way only: capture and people use the ledger,
signals uses storage, compaction uses storage, segments, signals, people and
the ledger (segments uses none), admission uses people and the ledger,
transfer (imports and export audits) uses capture, compaction and curation;
purge (deleting a set someone confirmed) uses storage.
"""

from __future__ import annotations

from recordings.services.admission import (
    Admitted,
    Refusal,
    capture_admit,
    events_not_erased,
)
from recordings.services.capture import (
    ClientInfo,
    IngestResult,
    ms_to_datetime,
    recording_ingest_batches,
)
from recordings.services.compaction import (
    recording_compact,
    recording_compact_windows,
    recording_discard,
    recordings_to_compact,
)
from recordings.services.curation import (
    comment_create,
    comment_edit,
    recording_untag,
    recording_view_record,
    recordings_tag,
    tag_get_or_create,
)
from recordings.services.ledger import (
    CaptureHealth,
    ledger_record_refusal,
    project_capture_health,
)
from recordings.services.people import events_ingest, person_is_excluded
from recordings.services.purge import (
    PurgeReport,
    PurgeSet,
    recordings_purge,
    recordings_purge_set,
)
from recordings.services.segments import (
    NoSuchSegment,
    SegmentInfo,
    StoredSegment,
    WindowSegments,
    recording_segment_read,
    recording_segment_version,
    recording_segments,
)
from recordings.services.signals import (
    recording_signals_update,
    recordings_signals_behind,
)
from recordings.services.storage import (
    BlobRewrite,
    RecordingOnHold,
    events_by_key,
    orphan_blobs_delete,
    recording_data_missing,
    recording_events,
    recording_purge,
    recording_rewrite_blobs,
    recording_window_blob,
    recordings_hold,
)
from recordings.services.transfer import (
    ImportRefused,
    recording_import,
    recordings_export_audit,
)
from recordings.services.usage import (
    CapCheck,
    Usage,
    project_cap_enforce,
    project_usage,
    projects_cap_check,
    projects_cap_enforce,
)

__all__ = [
    "Admitted",
    "BlobRewrite",
    "CapCheck",
    "CaptureHealth",
    "ClientInfo",
    "ImportRefused",
    "IngestResult",
    "NoSuchSegment",
    "SegmentInfo",
    "StoredSegment",
    "WindowSegments",
    "recording_segment_read",
    "recording_segment_version",
    "recording_segments",
    "PurgeReport",
    "PurgeSet",
    "RecordingOnHold",
    "Refusal",
    "Usage",
    "capture_admit",
    "comment_create",
    "comment_edit",
    "recording_untag",
    "recording_view_record",
    "recordings_tag",
    "tag_get_or_create",
    "events_ingest",
    "events_not_erased",
    "ledger_record_refusal",
    "ms_to_datetime",
    "orphan_blobs_delete",
    "person_is_excluded",
    "project_cap_enforce",
    "project_capture_health",
    "project_usage",
    "projects_cap_check",
    "projects_cap_enforce",
    "recording_compact",
    "recording_compact_windows",
    "recording_discard",
    "events_by_key",
    "recording_data_missing",
    "recording_events",
    "recording_signals_update",
    "recordings_signals_behind",
    "recording_ingest_batches",
    "recording_purge",
    "recordings_purge",
    "recordings_purge_set",
    "recording_rewrite_blobs",
    "recording_window_blob",
    "recordings_hold",
    "recording_import",
    "recordings_export_audit",
    "recordings_to_compact",
]
