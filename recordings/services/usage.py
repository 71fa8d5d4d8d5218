"""Billing caps: recorded minutes per project per calendar month, and the shutoff.

A project's usage is the duration of the recordings that started (by the server's
clock) in the current UTC month. At its cap the project is marked over it: capture
refuses its batches for good (4xx: the SDK does not retry) and its remote config
tells the SDK to stop recording. The mark goes when a new month starts or the cap
is raised, at the next check: every few minutes (beat) and on saving the project.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

from django.db.models import Q, Sum

from recordings.models import Project, Recording

logger = logging.getLogger(__name__)

MS_PER_MINUTE = 60_000


@dataclasses.dataclass(frozen=True, slots=True)
class Usage:
    period_start: dt.datetime
    minutes: float
    cap: int | None

    @property
    def over(self) -> bool:
        return self.cap is not None and self.minutes >= self.cap

    def describe(self) -> str:
        if self.cap is None:
            return f"{self.minutes:,.1f} recorded minutes this month (no cap)"
        share = self.minutes / self.cap if self.cap else 1.0
        return (
            f"{self.minutes:,.1f} of {self.cap:,} recorded minutes this month "
            f"({share:.0%})"
        )


def month_start(now: dt.datetime) -> dt.datetime:
    """The first instant of `now`'s calendar month, in UTC."""
    utc = now.astimezone(dt.UTC)
    return utc.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def project_usage(*, project: Project, now: dt.datetime) -> Usage:
    start = month_start(now)
    recordings = Recording.objects.filter(project=project, created__gte=start)
    total_ms = recordings.aggregate(total=Sum("duration_ms"))["total"] or 0
    return Usage(start, total_ms / MS_PER_MINUTE, project.monthly_minutes_cap)


def project_cap_enforce(*, project: Project, now: dt.datetime) -> Usage:
    """Mark the project over its cap, or lift the mark; return its usage."""
    usage = project_usage(project=project, now=now)
    if usage.over and project.over_cap_since is None:
        project.over_cap_since = now
        logger.warning(
            "%s reached its cap: %s; capture stops", project, usage.describe()
        )
    elif not usage.over and project.over_cap_since is not None:
        project.over_cap_since = None
        logger.info(
            "%s is under its cap again: %s; capture resumes", project, usage.describe()
        )
    else:
        return usage
    # Only this field: the rest of the row may be being edited meanwhile.
    Project.objects.filter(pk=project.pk).update(over_cap_since=project.over_cap_since)
    return usage


@dataclasses.dataclass(frozen=True, slots=True)
class CapCheck:
    """What one check decided for a project: its usage, and capture on or off."""

    project: Project
    usage: Usage
    was_over: bool

    @property
    def over(self) -> bool:
        return self.project.over_cap_since is not None

    @property
    def changed(self) -> bool:
        return self.over != self.was_over

    def describe(self) -> str:
        decision = {
            (False, False): "capture goes on",
            (False, True): "capture stops",
            (True, False): "capture resumes",
            (True, True): "capture stays stopped",
        }[self.was_over, self.over]
        return f"{self.project}: {self.usage.describe()}; {decision}"


def projects_cap_check(*, now: dt.datetime) -> list[CapCheck]:
    """Check every project with a cap (or still marked over one): what was decided."""
    projects = Project.objects.filter(
        Q(monthly_minutes_cap__isnull=False) | Q(over_cap_since__isnull=False)
    ).order_by("name", "pk")
    checks = []
    for project in projects:
        was_over = project.over_cap_since is not None
        usage = project_cap_enforce(project=project, now=now)
        checks.append(CapCheck(project, usage, was_over))
    return checks


def projects_cap_enforce(*, now: dt.datetime) -> int:
    """Check every project with a cap (or still marked over one); return how many
    changed state."""
    return sum(check.changed for check in projects_cap_check(now=now))
