"""WSGI entry point (gunicorn replayhub.wsgi)."""

from __future__ import annotations

import ctypes
import os

from django.core.wsgi import get_wsgi_application

# mallopt(3)'s M_MMAP_THRESHOLD, and glibc's default for it: blocks of this size or
# more get their own mapping, handed back to the system as soon as they are freed.
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 128 * 1024


def fix_malloc_mmap_threshold() -> bool:
    """Keep glibc's mmap threshold at its default, so that a web worker gives the
    memory of big requests back (issue 24; docs/benchmarks/memory.md).

    By default glibc raises the threshold to the size of each mapped block freed,
    up to 32 MiB, and the heap trim threshold to twice that. After a few big
    capture requests every block under 32 MiB comes from the heaps of the worker's
    threads instead, and each heap keeps up to 64 MiB free for good: a worker grew
    by ~180 MiB that it never used again. Setting the threshold turns that off.
    An operator's MALLOC_MMAP_THRESHOLD_ is left as it is; no-op off glibc.
    """
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or not _is_glibc():
        return False
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def _is_glibc() -> bool:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION") is not None
    except (ValueError, OSError):
        return False


fix_malloc_mmap_threshold()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "replayhub.settings")

application = get_wsgi_application()
