"""How ReplayHub's Celery tasks retry, and how a task loads the row it works on.

One retry policy for every task that reads or writes the database or blob storage:
their transient errors (StorageError, DatabaseError) retry with an exponential,
jittered backoff (`retrying_task`; a task may wait longer or try more often). A
task is queued with a row's id, never the row (`for_row`): a row deleted since is
nothing to do, and a retry loads it afresh.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from celery import shared_task
from django.db import DatabaseError, models

from recordings.blobs import StorageError

TRANSIENT_ERRORS = (StorageError, DatabaseError)
BACKOFF_SECONDS = 30
MAX_RETRIES = 5

M = TypeVar("M", bound=models.Model)


def retrying_task(
    *, backoff: int = BACKOFF_SECONDS, max_retries: int = MAX_RETRIES
) -> Callable[[Callable[..., Any]], Any]:
    """`shared_task` with the retry policy (its name is the function's, as always)."""
    return shared_task(
        ignore_result=True,
        autoretry_for=TRANSIENT_ERRORS,
        retry_backoff=backoff,
        retry_jitter=True,
        max_retries=max_retries,
    )


def for_row(
    model: type[M],
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Turn `work(row, ...)` into a task taking the row's id (`<row>_id`, ...).

    The task keeps the signature callers and Celery's argument check see: the
    first parameter named `<name>_id`, the others as `work` has them.
    """

    def decorate(work: Callable[..., None]) -> Callable[..., None]:
        signature = inspect.signature(work)
        first, *rest = signature.parameters.values()
        pk_name = f"{first.name}_id"
        by_id = signature.replace(
            parameters=[first.replace(name=pk_name, annotation="int"), *rest]
        )

        @functools.wraps(work)
        def task(*args: Any, **kwargs: Any) -> None:
            arguments = by_id.bind(*args, **kwargs).arguments
            row = model._default_manager.filter(pk=arguments.pop(pk_name)).first()
            if row is not None:  # else deleted since it was queued: nothing to do
                work(row, **arguments)

        task.__signature__ = by_id  # type: ignore[attr-defined]
        return task

    return decorate
