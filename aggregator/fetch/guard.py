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
from collections.abc import Sequence

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Ranges that ipaddress does not flag as private but that are not the public internet.
_ALSO_BLOCKED = tuple(
    ipaddress.ip_network(n)
    for n in ("0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "198.18.0.0/15", "64:ff9b::/96")
)


class BlockedAddressError(Exception):
    """The host resolved only to addresses the guard refuses."""


class UnresolvableHostError(OSError):
    """The host name has no address."""


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


class AddressGuard:
    """Resolves a host itself and connects only to an address it allows."""

    def __init__(self, allowed: Sequence[IPNetwork] = ()) -> None:
        self.allowed = tuple(allowed)

    def reason_to_refuse(self, address: IPAddress) -> str | None:
        if any(address in network for network in self.allowed):
            return None
        return refusal_reason(address)

    def connect(
        self,
        host: str,
        port: int,
        timeout: float | None,
        socket_options: Sequence[tuple[int, int, int | bytes]] = (),
    ) -> socket.socket:
        """A socket connected to the first allowed address of ``host`` that answers.

        Raises BlockedAddressError when every address is refused, OSError (timeouts
        included) when none of the allowed ones could be reached."""
        refused = []
        last_error: OSError | None = None
        for family, address in self._resolve(host, port):
            reason = self.reason_to_refuse(address)
            if reason is not None:
                refused.append(f"{address} is {reason}")
                continue
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                for option in socket_options:
                    sock.setsockopt(*option)
                sock.settimeout(timeout)
                sock.connect((str(address), port))
                return sock
            except OSError as exc:
                sock.close()
                last_error = exc
        if last_error is not None:
            raise last_error
        raise BlockedAddressError(
            f"refused to connect to {host}: {'; '.join(refused)} "
            "(list the range in polling.allow_networks to allow it)"
        )

    @staticmethod
    def _resolve(host: str, port: int) -> list[tuple[socket.AddressFamily, IPAddress]]:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise UnresolvableHostError(f"cannot resolve {host}: {exc}") from exc
        found: list[tuple[socket.AddressFamily, IPAddress]] = []
        for family, _type, _proto, _name, sockaddr in infos:
            address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            if all(address != seen for _, seen in found):
                found.append((family, address))
        return found
