"""Which webhook URLs may be registered, and which addresses a delivery may connect to (SSRF).

A URL must be absolute ``http``/``https`` (``https`` only with ``WEBHOOK_REQUIRE_HTTPS``), with a
host, without credentials, and every address its host resolves to must be public: not private,
loopback, link-local, multicast, reserved, unspecified or otherwise non-global (IPv4-mapped,
6to4 and Teredo IPv6 addresses are judged by the IPv4 address inside). ``WEBHOOK_ALLOW_PRIVATE_URLS``
lifts the address rule (tests and local demos run their receivers on loopback).

The address rule is applied twice: when the endpoint is registered (:func:`check_url`, a 400
naming ``url``) and on every connection a delivery makes (:class:`PublicOnlyResolver`, used by the
worker's HTTP session), because a name may resolve to a public address at registration and to an
internal one later (DNS rebinding). Deliveries never follow redirects (see the worker).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any
from urllib.parse import SplitResult, urlsplit

from aiohttp.abc import ResolveResult
from aiohttp.resolver import ThreadedResolver

from shared.errors import ErrorCode, ProblemError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeAddress(OSError):
    """A delivery's host resolved only to addresses it may not connect to."""


def address_allowed(address: Address) -> bool:
    """Whether a delivery may connect to ``address`` (a public unicast address)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else None)
        if embedded is not None:
            return address_allowed(embedded)
    return address.is_global and not (address.is_multicast or address.is_reserved or address.is_unspecified)


def _invalid(detail: str) -> ProblemError:
    return ProblemError(ErrorCode.INVALID_REQUEST, detail, field="url")


def parse_url(url: str, require_https: bool) -> SplitResult:
    """The URL's parts, or a 400 naming ``url`` when it is not an absolute http(s) URL we may use."""
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise _invalid("url must not contain whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError when out of range or not a number
    except ValueError:
        raise _invalid("url is not a valid URL") from None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise _invalid("url must be an absolute http or https URL")
    if require_https and parts.scheme != "https":
        raise _invalid("url must be https")
    if parts.username is not None or parts.password is not None:
        raise _invalid("url must not contain credentials")
    if port == 0:
        raise _invalid("url has an invalid port")
    return parts


def literal_address(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


async def resolve(host: str, port: int) -> list[Address]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


async def check_url(url: str, *, require_https: bool, allow_private: bool) -> None:
    """400 ``invalid_request`` (field ``url``) unless deliveries to ``url`` are allowed."""
    parts = parse_url(url, require_https)
    if allow_private:
        return
    host = parts.hostname or ""
    literal = literal_address(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            async with asyncio.timeout(5):
                addresses = await resolve(host, parts.port or (443 if parts.scheme == "https" else 80))
        except (OSError, TimeoutError, UnicodeError):
            raise _invalid(f"url host {host!r} does not resolve") from None
    refused = [str(a) for a in addresses if not address_allowed(a)]
    if refused or not addresses:
        raise _invalid(f"url resolves to a private, loopback, link-local or reserved address ({', '.join(refused)})")


class PublicOnlyResolver(ThreadedResolver):
    """The worker's resolver: answers only public addresses, so a connection never reaches another.

    aiohttp does not resolve IP literals: the worker checks those itself before connecting.
    """

    async def resolve(self, host: str, port: int = 0, family: Any = socket.AF_INET) -> list[ResolveResult]:
        results = await super().resolve(host, port, family)
        allowed = [r for r in results if address_allowed(ipaddress.ip_address(r["host"].split("%", 1)[0]))]
        if not allowed:
            raise UnsafeAddress(f"{host} resolves only to addresses deliveries may not reach")
        return allowed
