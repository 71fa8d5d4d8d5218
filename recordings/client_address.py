"""Who sent a request: the client's address, as capture, share pages and the
admin's sign-in lockout read it (one rule for all of them)."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    """The sender's address: REMOTE_ADDR, or the first X-Forwarded-For entry when
    REPLAYHUB_TRUST_X_FORWARDED_FOR says a proxy in front sets that header."""
    candidates = [request.META.get("REMOTE_ADDR", "")]
    if settings.REPLAYHUB_TRUST_X_FORWARDED_FOR:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        candidates.insert(0, forwarded.split(",")[0])
    for candidate in candidates:
        try:
            return str(ipaddress.ip_address(candidate.strip()))
        except ValueError:
            continue  # empty, or not an address: never store what a client made up
    return ""
