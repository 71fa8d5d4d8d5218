"""The recording list's "Export selected" action: a zip of one file per recording.

Whoever may view (play) every selected recording may export them, as the player
checks it, recording by recording. Exporting recordings on legal hold is noted
in their projects' privacy audit log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import NamedTuple

from django.contrib import messages
from django.contrib.admin import ModelAdmin, helpers
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.template.response import TemplateResponse
from django.utils import timezone

from recordings.blobs import BlobMissing, StorageError
from recordings.models import Recording
from recordings.playback import archives, responses
from recordings.playback.offline import offline_html
from recordings.playback.transfer import recordings_export_audit
from recordings.serializers import RecordingExportSerializer
from recordings.services.storage import recording_data_missing

logger = logging.getLogger(__name__)


class ExportFormat(NamedTuple):
    label: str
    suffix: str
    pieces: Callable[[Recording], Iterable[bytes]]


def _json_pieces(recording: Recording) -> Iterable[bytes]:
    meta = RecordingExportSerializer(recording).data
    return responses.export_chunks(recording=recording, meta=meta)


# The formats the action offers, by the value its page posts. A format is one
# entry: its label, its files' suffix, and what writes one recording's file.
FORMATS: dict[str, ExportFormat] = {
    "json": ExportFormat("JSON: events, markers and metadata", "json", _json_pieces),
    "html": ExportFormat(
        "HTML: a page that replays it offline, opened from disk", "html", offline_html
    ),
}


def export_selected(
    model_admin: ModelAdmin[Recording],
    request: HttpRequest,
    queryset: QuerySet[Recording],
) -> HttpResponseBase | None:
    """A page to pick the format, then the zip of the selected recordings."""
    recordings = list(queryset.select_related("project").order_by("started_at"))
    if not all(model_admin.has_view_permission(request, r) for r in recordings):
        raise PermissionDenied
    if not recordings:  # none of the selected rows is one the user sees
        model_admin.message_user(request, "No recordings to export.", messages.WARNING)
        return None
    chosen = FORMATS.get(request.POST.get("format", ""))
    if request.POST.get("apply") and chosen is not None:
        return _zip_response(model_admin, request, recordings, chosen)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": "Export the selected recordings",
        "recordings": recordings,
        "formats": {name: f.label for name, f in FORMATS.items()},
        "held": sum(r.legal_hold for r in recordings),
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "select_across": request.POST.get("select_across", "0"),
        "action": "export_selected",
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(
        request, "admin/recordings/recording/export_selected.html", context
    )


def _zip_response(
    model_admin: ModelAdmin[Recording],
    request: HttpRequest,
    recordings: list[Recording],
    chosen: ExportFormat,
) -> HttpResponseBase | None:
    files = (
        (f"{recording.code}.{chosen.suffix}", chosen.pieces(recording))
        for recording in recordings
    )
    stream = archives.zip_stream(files)
    try:
        # The first file's first blob is read before answering, so that storage
        # that is down is a message rather than a broken download.
        first = next(stream)
    except BlobMissing as exc:
        recording_data_missing(missing=exc)
        model_admin.message_user(
            request,
            "Some of the selected recordings' data is missing from storage (the "
            "list marks them): export the others.",
            messages.ERROR,
        )
        return None
    except StorageError:
        model_admin.message_user(
            request, "Could not read the recordings' blobs: try again.", messages.ERROR
        )
        return None
    user = request.user if isinstance(request.user, User) else None
    recordings_export_audit(
        recordings=recordings,
        actor=user,
        file_format=chosen.suffix,
        via="admin",
    )
    response = StreamingHttpResponse(
        _chained(first, stream), content_type="application/zip"
    )
    name = f"replayhub-export-{timezone.now():%Y%m%d-%H%M%S}.zip"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _chained(first: bytes, rest: Iterable[bytes]) -> Iterable[bytes]:
    yield first
    try:
        yield from rest
    except StorageError:
        # Too late for a message: the download ends early, a broken zip.
        logger.exception("export of selected recordings cut short")
        raise
