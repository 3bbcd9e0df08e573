"""Which Host names a review server answers: the guard against DNS rebinding, for every mount.

A web page on ``evil.example`` can make its own name resolve to 127.0.0.1 (DNS rebinding); the
browser then sends the reviewer's requests to the local review server with ``Host: evil.example``
and a matching Origin, so origin checks alone pass. While a server listens on loopback only, it
therefore answers only requests addressed to a loopback name. The standalone server and the
routes mounted on ComfyUI's PromptServer use this same rule.
"""

from __future__ import annotations

import ipaddress

from aiohttp import web

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def allowed_hosts(host: str) -> set[str] | None:
    """Host names requests may address; None (anything) when serving on all or a public interface."""
    if host in ("0.0.0.0", "::", ""):
        return None
    try:
        if not ipaddress.ip_address(host).is_loopback:
            return {host.lower()}
    except ValueError:
        if host.lower() != "localhost":
            return {host.lower()}
    return set(LOOPBACK_NAMES) | {host.lower()}


def allowed_for_listen(listen: str) -> set[str] | None:
    """``allowed_hosts`` over ComfyUI's ``--listen`` value (comma-separated addresses)."""
    names: set[str] = set()
    for address in (part.strip() for part in listen.split(",")):
        allowed = allowed_hosts(address)
        if allowed is None:
            return None
        names |= allowed
    return names


def check_host(request: web.Request, allowed: set[str] | None) -> None:
    """Refuse (403) a request whose Host header is not one of ``allowed``."""
    if allowed is None:
        return
    name = (request.url.host or "").strip("[]").lower()
    if name not in allowed:
        raise web.HTTPForbidden(text=f"this review server answers only {', '.join(sorted(allowed))}")
