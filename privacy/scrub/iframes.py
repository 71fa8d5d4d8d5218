"""Origins: which iframes show another site's document."""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin, urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
# A frame with one of these URLs (or none) shows a document of the page's origin.
_INHERITING_URLS = ("about:", "javascript:")


def url_origin(url: str) -> str:
    """The origin of an absolute URL, as scheme://host[:port]; "" if it has none.

    >>> url_origin("HTTPS://Shop.Test:443/cart?id=7"), url_origin("http://a.test:8080/")
    ('https://shop.test', 'http://a.test:8080')
    >>> url_origin("blob:https://shop.test/0f3c"), url_origin("data:text/html,hi")
    ('https://shop.test', '')
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:  # a port that is no number, a bracket left open
        return ""
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme == "blob":  # a blob: URL has the origin of the page that made it
        return url_origin(parts.path)
    if not scheme or not host:
        return ""
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def is_cross_origin_frame(attributes: dict[str, Any], page_origin: str) -> bool:
    """Whether an iframe with these attributes shows another origin's document.

    >>> page = "https://shop.test"
    >>> is_cross_origin_frame({"rr_src": "https://pay.test/card"}, page)
    True
    >>> is_cross_origin_frame({"src": "/help", "sandbox": "allow-same-origin"}, page)
    False
    """
    sandbox = attributes.get("sandbox")
    if isinstance(sandbox, str) and "allow-same-origin" not in sandbox.lower().split():
        return True  # an opaque origin, foreign to every other
    if isinstance(attributes.get("srcdoc"), str):
        return False
    url = next(
        (
            value.strip()
            for name in ("src", "rr_src")
            if isinstance(value := attributes.get(name), str) and value.strip()
        ),
        "",
    )
    if not url or url.lower().startswith(_INHERITING_URLS):
        return False
    if not page_origin:
        return True  # cannot tell: fail closed
    try:
        absolute = urljoin(page_origin + "/", url)
    except ValueError:  # an unclosed IPv6 bracket: no origin at all
        return True
    return url_origin(absolute) != page_origin
