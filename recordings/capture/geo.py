"""The country a capture request comes from, never its address.

From a header a trusted proxy in front sets (REPLAYHUB_COUNTRY_HEADER, e.g.
Cloudflare's `CF-IPCountry`), or else from an offline IP database in MaxMind's
format (REPLAYHUB_GEOIP_DATABASE, e.g. GeoLite2-Country.mmdb) read with MaxMind's
reader. Neither configured: no country. The address is looked up and forgotten.
"""

from __future__ import annotations

import functools
import logging
import re
from typing import Any

import maxminddb
from django.conf import settings

logger = logging.getLogger(__name__)

_ISO_CODE = re.compile(r"[A-Z]{2}")
# Cloudflare's "unknown" and "Tor" codes: no country.
_NOT_COUNTRIES = frozenset({"XX", "T1"})


def country_code(value: object) -> str:
    """An ISO 3166-1 alpha-2 code, or "" for anything else.

    >>> country_code(" de ")
    'DE'
    >>> country_code("XX"), country_code("Germany"), country_code(None)
    ('', '', '')
    """
    if not isinstance(value, str):
        return ""
    code = value.strip().upper()
    if not _ISO_CODE.fullmatch(code) or code in _NOT_COUNTRIES:
        return ""
    return code


def request_country(headers: Any, ip: str) -> str:
    """The request's country: the trusted header's, else the IP database's."""
    header = settings.REPLAYHUB_COUNTRY_HEADER
    if header:
        return country_code(headers.get(header))
    database = settings.REPLAYHUB_GEOIP_DATABASE
    if database and ip:
        return _country_of_ip(database, ip)
    return ""


def _country_of_ip(database: str, ip: str) -> str:
    reader = _reader(database)
    if reader is None:
        return ""
    try:
        record = reader.get(ip)
    except ValueError:
        return ""  # not an address
    if not isinstance(record, dict):
        return ""
    for field in ("country", "registered_country"):
        found = record.get(field)
        if isinstance(found, dict) and (code := country_code(found.get("iso_code"))):
            return code
    return ""


@functools.cache
def _reader(path: str) -> maxminddb.Reader | None:
    """The database, opened once per process; None (logged once) if unusable."""
    try:
        return maxminddb.open_database(path)
    except (OSError, maxminddb.InvalidDatabaseError) as exc:
        logger.error(
            "REPLAYHUB_GEOIP_DATABASE %s cannot be read (%s): recordings get no "
            "country until it is fixed and the server restarted",
            path,
            exc,
        )
        return None
