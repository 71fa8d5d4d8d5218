"""gunicorn settings the Procfile's `web:` line reads (`-c gunicorn.conf.py`).

The access log keeps no client address unless the operator asks for it
(REPLAYHUB_ACCESS_LOG_IPS=true): projects store IP addresses only when their
privacy settings say so, and a log line outlives an erasure. It also leaves out
what else a request carries about a person: query strings (an admin's search for
an email, a filter naming a distinct id), the Referer (a recorded page's URL) and
the User-Agent. Kept: time, method, path, protocol, status, bytes, duration.
"""

from __future__ import annotations

import os

_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"", "0", "false", "no", "off"}


def _flag(name: str) -> bool:
    # As replayhub/settings.py's envbool: a typo stops the server rather than
    # silently logging (or not logging) addresses.
    value = os.environ.get(name, "").strip().lower()
    if value not in _TRUE | _FALSE:
        raise SystemExit(f"{name}={value!r} is not a boolean (use true or false)")
    return value in _TRUE


def _access_log_line(*, ips: bool, forwarded_for: bool) -> str:
    """The access log line; with `ips`, the peer's address first, and the
    X-Forwarded-For a trusted proxy set when ReplayHub believes that header."""
    line = '%(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms'
    if not ips:
        return line
    if forwarded_for:
        return f'%(h)s "%({{x-forwarded-for}}i)s" {line}'
    return f"%(h)s {line}"


access_log_format = _access_log_line(
    ips=_flag("REPLAYHUB_ACCESS_LOG_IPS"),
    forwarded_for=_flag("REPLAYHUB_TRUST_X_FORWARDED_FOR"),
)
