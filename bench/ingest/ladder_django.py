"""Rung `django` of bench/ingest/ceiling.py: `inrow`'s work inside ReplayHub's stack.

Run as ReplayHub is (gunicorn replayhub.wsgi, the Procfile's flags) with
DJANGO_SETTINGS_MODULE=bench.ingest.ladder_django: ReplayHub's settings, middleware and
database connection handling, and one DRF view on `/s/` with the capture
endpoints' policy (no authentication, ReplayHub's body parser). The view does
only what rung `inrow` does: parse, firewall, encode, one committed
INSERT ... ON CONFLICT DO NOTHING per batch of a row holding the bytes. No
admission, ledger, recording row or reads.

So this rung is what the framework alone costs on top of `inrow`: no server
that keeps capture on Django and DRF and does `inrow`'s work can beat it.
"""

from __future__ import annotations

from replayhub.settings import *  # noqa: F403 - ReplayHub's settings, one changed

ROOT_URLCONF = "bench.ingest.ladder_django_urls"
