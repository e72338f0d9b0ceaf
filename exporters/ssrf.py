"""Outgoing webhook safety: refuse targets on loopback, private, link-local, CGNAT or metadata addresses.

The check runs on the addresses a host name resolves to, inside aiohttp's resolver, so the
address connected to is the address checked (no second lookup an attacker's DNS could
answer differently). IP-literal hosts never reach a resolver, so `check_url` checks them
first, including the numeric spellings getaddrinfo accepts (2130706433, 0177.0.0.1, 0x7f.1).
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver
from aiohttp.resolver import DefaultResolver

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_BLOCKED = [ipaddress.ip_network(net) for net in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4",
    "::/128", "::1/128", "64:ff9b::/96", "fc00::/7", "fe80::/10", "ff00::/8",
)]
_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


class RefusedTarget(Exception):
    """A notifier URL whose address is not allowed; the message never holds the URL's path or query."""


def refusal(address: IPAddress) -> str | None:
    """Why this address may not be a webhook target, or None when it may."""
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            address = mapped  # ::ffff:127.0.0.1 is 127.0.0.1 (is_loopback ignored that before 3.13)
    if address in _METADATA:
        return "cloud metadata address"
    for net in _BLOCKED:
        if address.version == net.version and address in net:
            return f"address in {net} (loopback, private, link-local, CGNAT or reserved)"
    if not address.is_global:
        return "not a public address"
    return None


def literal_address(host: str) -> IPAddress | None:
    """The address a host written as a number means, in every spelling the resolver would accept."""
    bare = host.strip("[]")
    try:
        return ipaddress.ip_address(bare.split("%", 1)[0])
    except ValueError:
        pass
    try:
        # inet_aton takes the historical forms: 2130706433, 0177.0.0.1, 0x7f.1, 127.1.
        return ipaddress.IPv4Address(socket.inet_aton(bare))
    except OSError:
        return None


def host_of(url: str) -> str:
    host = urlsplit(url).hostname
    if not host:
        raise RefusedTarget("the URL has no host")
    return host.lower()


def check_url(url: str, allow_hosts: tuple[str, ...]) -> None:
    """Refuse what can be refused from the URL alone: scheme and IP-literal hosts."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise RefusedTarget("only http and https targets are allowed")
    host = host_of(url)
    if host in allow_hosts:
        return
    address = literal_address(host)
    if address is not None:
        reason = refusal(address)
        if reason is not None:
            raise RefusedTarget(f"host {host}: {reason}; allow it with allow_hosts if intended")


class GuardedResolver(AbstractResolver):
    """Resolves with the default resolver, then refuses the lookup if any address is not allowed."""

    def __init__(self, allow_hosts: tuple[str, ...], inner: AbstractResolver | None = None) -> None:
        self.allow_hosts = allow_hosts
        self.inner = inner if inner is not None else DefaultResolver()

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[dict[str, Any]]:
        results = await self.inner.resolve(host, port, family)
        if host.lower() in self.allow_hosts:
            return results
        for result in results:
            reason = refusal(ipaddress.ip_address(result["host"]))
            if reason is not None:
                # Every address must pass: a name resolving to one public and one private
                # address could otherwise be steered to the private one.
                raise RefusedTarget(f"host {host}: resolves to a refused address ({reason})")
        return results

    async def close(self) -> None:
        await self.inner.close()
