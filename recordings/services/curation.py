"""Tags, comments and views: what people add to recordings.

Permissions are the callers' to check with recordings.access (viewers comment,
editors tag, people edit their own comments, project admins delete any); these
functions do the writes.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils.timezone import now

from recordings.models import (
    Comment,
    Project,
    Recording,
    RecordingTag,
    RecordingView,
    Tag,
)


def tag_get_or_create(*, project: Project, name: str, colour: str = "") -> Tag:
    """The project's tag of that name, made when new (names are trimmed)."""
    name = " ".join(name.split())
    tag = Tag.objects.filter(project=project, name__iexact=name).first()
    if tag is not None:
        return tag
    tag = Tag(project=project, name=name, **({"colour": colour} if colour else {}))
    tag.full_clean()
    try:
        with transaction.atomic():
            tag.save()
    except IntegrityError:  # made by someone else meanwhile
        return Tag.objects.get(project=project, name=name)
    return tag


def recordings_tag(
    *, recordings: Iterable[Recording], tag: Tag, user: User | None
) -> int:
    """Put `tag` on the recordings of its project; returns how many got it new."""
    rows = [
        RecordingTag(recording=recording, tag=tag, tagged_by=user)
        for recording in recordings
        if recording.project_id == tag.project_id
    ]
    before = RecordingTag.objects.filter(tag=tag).count()
    RecordingTag.objects.bulk_create(rows, ignore_conflicts=True)
    return RecordingTag.objects.filter(tag=tag).count() - before


def recording_untag(*, recording: Recording, tag: Tag) -> bool:
    deleted, _ = RecordingTag.objects.filter(recording=recording, tag=tag).delete()
    return bool(deleted)


def comment_create(
    *,
    recording: Recording,
    author: User,
    text: str,
    offset_ms: int,
    window_id: str = "",
) -> Comment:
    """A comment at a moment of the recording (clamped to its duration)."""
    comment = Comment(
        recording=recording,
        author=author,
        text=text.strip(),
        offset_ms=max(0, min(int(offset_ms), recording.duration_ms)),
        window_id=window_id,
    )
    comment.full_clean()
    comment.save()
    return comment


def comment_edit(*, comment: Comment, text: str) -> Comment:
    comment.text = text.strip()
    comment.edited = now()
    comment.full_clean()
    comment.save(update_fields=["text", "edited"])
    return comment


def recording_view_record(*, recording: Recording, user: User) -> RecordingView:
    """Note that `user` opened the recording: first time, last time, how often."""
    at = now()
    view, created = RecordingView.objects.get_or_create(
        recording=recording, user=user, defaults={"first_viewed": at, "last_viewed": at}
    )
    if not created:
        RecordingView.objects.filter(pk=view.pk).update(
            last_viewed=at, count=F("count") + 1
        )
    return view
