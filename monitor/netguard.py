"""Refusing feeds that lead into private networks.

A feed URL, or any redirect it answers with, could point the daemon at the machine it runs on,
at the intranet around it or at a cloud metadata service (169.254.169.254), and the response would
then be parsed and possibly shown in an alert. So the addresses a feed may reach are checked here:

- `is_forbidden` says whether one IP address is off limits, and why.
- `GuardedBackend` is the httpcore network backend that resolves a host name itself, checks every
  address it gets, and connects to an allowed address by number. The check therefore happens
  after DNS resolution, at connect time, for every connection httpx opens, which means for every
  redirect hop; and since the socket goes to the address that was checked, a DNS answer that
  changes between the check and the connection (DNS rebinding) has no window to do so.
- `GuardedTransport` is an httpx transport whose connections go through that backend.

`allow_private_networks = true` in `[defaults]` turns the guard off, for intranet feeds.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable

import httpcore
import httpx

from monitor.errors import MonitorError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Resolves (host, port) to the addresses to try, in order; injectable so tests need no DNS.
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]
# The policy: the reason an address is refused (a noun phrase, "a loopback address"), or None.
Check = Callable[[IPAddress], str | None]

_HINT = "set allow_private_networks = true to allow intranet feeds"

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

# The IANA special-purpose IPv4 ranges a feed has no business in. Order matters where ranges nest:
# the first match names the reason.
_FORBIDDEN_V4: tuple[tuple[ipaddress.IPv4Network, str], ...] = (
    # On Linux a connection to 0.0.0.0 reaches this host, like loopback.
    (_V4("0.0.0.0/8"), "an unspecified address"),
    (_V4("127.0.0.0/8"), "a loopback address"),
    (_V4("10.0.0.0/8"), "a private address"),
    (_V4("172.16.0.0/12"), "a private address"),
    (_V4("192.168.0.0/16"), "a private address"),
    (_V4("100.64.0.0/10"), "a shared (carrier-grade NAT) address"),
    (_V4("169.254.169.254/32"), "a link-local address (the cloud metadata service)"),
    (_V4("169.254.0.0/16"), "a link-local address"),
    (_V4("192.0.0.0/24"), "a reserved (IETF protocol) address"),
    (_V4("192.0.2.0/24"), "a documentation address"),
    (_V4("198.51.100.0/24"), "a documentation address"),
    (_V4("203.0.113.0/24"), "a documentation address"),
    (_V4("198.18.0.0/15"), "a benchmarking address"),
    (_V4("192.88.99.0/24"), "a reserved (6to4 relay) address"),
    (_V4("224.0.0.0/4"), "a multicast address"),
    (_V4("255.255.255.255/32"), "the broadcast address"),
    (_V4("240.0.0.0/4"), "a reserved address"),
)

_FORBIDDEN_V6: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (_V6("::/128"), "an unspecified address"),
    (_V6("::1/128"), "a loopback address"),
    (_V6("64:ff9b:1::/48"), "a private address (local-use NAT64)"),
    (_V6("fc00::/7"), "a unique-local address"),
    (_V6("fe80::/10"), "a link-local address"),
    (_V6("fec0::/10"), "a site-local address"),
    (_V6("ff00::/8"), "a multicast address"),
    (_V6("100::/64"), "a reserved (discard-only) address"),
    (_V6("2001:2::/48"), "a benchmarking address"),
    (_V6("2001:db8::/32"), "a documentation address"),
    (_V6("3fff::/20"), "a documentation address"),
    (_V6("2001:10::/28"), "a reserved (ORCHID) address"),
    (_V6("2001:20::/28"), "a reserved (ORCHID) address"),
    (_V6("5f00::/16"), "a reserved (segment routing) address"),
)

_IPV4_MAPPED = _V6("::ffff:0:0/96")
_NAT64 = _V6("64:ff9b::/96")
# Only 2000::/3 holds public unicast addresses; everything outside it that is not listed above
# (IPv4-compatible ::a.b.c.d, the rest of ::/8, unassigned space) is reserved.
_GLOBAL_UNICAST = _V6("2000::/3")


def is_forbidden(ip: IPAddress) -> str | None:
    """Why a feed may not connect to `ip` (such as "a private address"), or None when it may.

    IPv6 forms that carry an IPv4 address (IPv4-mapped ::ffff:a.b.c.d, NAT64 64:ff9b::a.b.c.d,
    6to4 2002::/16 and Teredo 2001::/32) are judged by the IPv4 address they lead to.
    """
    if isinstance(ip, ipaddress.IPv4Address):
        for network, reason in _FORBIDDEN_V4:
            if ip in network:
                return reason
        return None
    embedded, form = _embedded_ipv4(ip)
    if embedded is not None:
        inner = is_forbidden(embedded)
        return f"{inner} ({form} of {embedded})" if inner else None
    for v6network, reason in _FORBIDDEN_V6:
        if ip in v6network:
            return reason
    if ip not in _GLOBAL_UNICAST:
        return "a reserved address"
    return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address | None, str]:
    """The IPv4 address an IPv6 address stands for, and the name of the form, if it is one."""
    if ip in _IPV4_MAPPED:
        return ip.ipv4_mapped, "the IPv4-mapped form"
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "the NAT64 form"
    if ip.sixtofour is not None:
        return ip.sixtofour, "the 6to4 form"
    if ip.teredo is not None:
        return ip.teredo[1], "the Teredo form"  # (server, client): the client is where it leads
    return None, ""


class AddressRefused(MonitorError):
    """A feed (or a redirect it sent) leads to an address the private-network guard refuses."""

    def __init__(self, host: str, address: IPAddress, reason: str) -> None:
        self.host = host
        self.address = address
        self.reason = reason
        super().__init__(self.describe())

    def describe(self, *, redirected: bool = False) -> str:
        """The message; `redirected` says the host was reached by a redirect, not configured."""
        try:
            literal = ipaddress.ip_address(self.host.strip("[]")) == self.address
        except ValueError:
            literal = False  # a name, not a number
        what = (
            f"{self.host} is {self.reason}"
            if literal
            else f"{self.host} resolves to {self.address}, {self.reason}"
        )
        via = " (reached by a redirect)" if redirected else ""
        return f"refused: {what}{via}; {_HINT}"


async def resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses `host` resolves to, in the resolver's order of preference, without repeats."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that refuses to connect to forbidden addresses.

    httpcore asks it for a TCP connection to (host, port). It resolves the host, drops the
    addresses `check` refuses, and connects to the first allowed address that answers, by
    number, so nothing is resolved twice. TLS is unaffected: httpcore starts it afterwards on
    the returned stream with the original host name for SNI and certificate verification.
    """

    def __init__(
        self,
        check: Check = is_forbidden,
        resolver: Resolver = resolve,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._check = check
        self._resolve = resolver
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        # The connect timeout covers resolution and every attempt together, as it does in httpcore.
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            async with asyncio.timeout(timeout):
                addresses = await self._resolve(host, port)
        except TimeoutError as e:
            raise httpcore.ConnectTimeout(f"resolving {host} took longer than {timeout:g}s") from e
        except OSError as e:
            raise httpcore.ConnectError(f"cannot resolve {host}: {e}") from e
        if not addresses:
            raise httpcore.ConnectError(f"cannot resolve {host}: no address")
        allowed = [a for a in addresses if self._check(a) is None]
        if not allowed:
            first = addresses[0]
            raise AddressRefused(host, first, self._check(first) or "refused")
        *others, last = allowed
        for address in others:
            try:
                return await self._connect(address, port, deadline, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout):
                continue  # the next address of the host may answer
        return await self._connect(last, port, deadline, local_address, socket_options)

    async def _connect(
        self,
        address: IPAddress,
        port: int,
        deadline: float | None,
        local_address: str | None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None,
    ) -> httpcore.AsyncNetworkStream:
        remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        # By number: the inner backend has nothing left to resolve.
        return await self._inner.connect_tcp(
            str(address), port, timeout=remaining, local_address=local_address, socket_options=socket_options
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        # Feeds are fetched over TCP only: a Unix socket is always local.
        raise httpcore.ConnectError(f"refused: {path} is a Unix socket; {_HINT}")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, with its connection pool built on a `GuardedBackend`.

    No proxy is used: through a proxy the proxy would resolve the name, and the guard could not
    see the address. TLS is verified against the feed's host name with `verify`, by default
    httpx's own context (certifi, or SSL_CERT_FILE/SSL_CERT_DIR).
    """

    def __init__(
        self,
        *,
        limits: httpx.Limits,
        check: Check = is_forbidden,
        resolver: Resolver = resolve,
        verify: ssl.SSLContext | None = None,
    ) -> None:
        verify = verify or httpx.create_ssl_context()
        super().__init__(limits=limits, verify=verify)  # with its own, it would load the CAs again
        # httpx offers no parameter for the network backend, so the pool it just built is replaced
        # by an identical one on the guarded backend. Fail closed if httpx ever renames it.
        if not isinstance(getattr(self, "_pool", None), httpcore.AsyncConnectionPool):
            raise MonitorError(
                "the installed httpx keeps no connection pool monitor can guard against private "
                "networks; install the httpx version pyproject.toml names, or set "
                "allow_private_networks = true"
            )
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=verify,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(check, resolver),
        )
