"""SSRF guard: no connection to a loopback, private, link-local or multicast address.

The check happens where the connection is made, on the address the name resolved to,
for every hop of a redirect chain: a feed URL (or a redirect, or a DNS answer) that
points inside the operator's network is refused before any byte is sent. Spellings
such as ``http://2130706433/`` or ``http://0177.0.0.1/`` resolve to 127.0.0.1 and are
refused like it. ``polling.allow_networks`` lets chosen ranges through.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Sequence
from typing import Any

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Ranges that ipaddress does not flag as private but that are not the public internet.
_ALSO_BLOCKED = tuple(
    ipaddress.ip_network(n)
    for n in ("0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "198.18.0.0/15", "64:ff9b::/96")
)


class BlockedAddressError(httpcore.ConnectError):
    """The host resolved only to addresses the guard refuses."""


def refusal_reason(address: IPAddress) -> str | None:
    """Why the guard refuses ``address`` (e.g. "a loopback address"), or None."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return refusal_reason(embedded)
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_private or any(address in network for network in _ALSO_BLOCKED):
        return "a private address"
    if address.is_reserved:
        return "a reserved address"
    return None


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address.teredo is not None:
            return address.teredo[1]
    return None


class GuardedBackend(httpcore.SyncBackend):
    """Resolves the name itself and connects only to an address the guard allows."""

    def __init__(self, allowed: Sequence[IPNetwork]) -> None:
        self.allowed = tuple(allowed)

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = self._resolve(host, port)
        refused = []
        last_error: Exception | None = None
        for address in addresses:
            reason = self.reason_to_refuse(address)
            if reason is not None:
                refused.append(f"{address} is {reason}")
                continue
            try:
                return super().connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                last_error = exc
        if last_error is not None:
            raise last_error
        raise BlockedAddressError(
            f"refused to connect to {host}: {'; '.join(refused)} "
            "(list the range in polling.allow_networks to allow it)"
        )

    def reason_to_refuse(self, address: IPAddress) -> str | None:
        if any(address in network for network in self.allowed):
            return None
        return refusal_reason(address)

    def _resolve(self, host: str, port: int) -> list[IPAddress]:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        found: list[IPAddress] = []
        for _family, _type, _proto, _name, sockaddr in infos:
            address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            if address not in found:
                found.append(address)
        return found


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport, connecting through ``GuardedBackend``."""

    def __init__(self, allowed: Sequence[IPNetwork], *, max_connections: int = 100) -> None:
        super().__init__()
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=30.0,
            network_backend=GuardedBackend(allowed),
        )
