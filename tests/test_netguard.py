"""The private-network guard: the address check, the connecting backend, and refusals end to end.

Only loopback is ever connected to: the other ranges are checked by unit tests of the address
check, and the per-hop tests resolve made-up names to loopback through an injected resolver.
"""

from __future__ import annotations

import asyncio
import ipaddress
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import httpcore
import httpx
import pytest

from monitor.config import Defaults, FeedConfig, load_settings
from monitor.errors import ConfigErrors
from monitor.fetch import Fetcher
from monitor.netguard import AddressRefused, GuardedBackend, GuardedTransport, IPAddress, is_forbidden
from monitor.types import FetchResult, FetchStatus, Validators
from tests.test_fetch_limits import FEED_BODY, Conn, Hostile, answer, head

HINT = "set allow_private_networks = true to allow intranet feeds"


def ip(text: str) -> IPAddress:
    return ipaddress.ip_address(text)


def teredo(server: str, client: str) -> str:
    """The Teredo address (2001::/32) of a client behind a Teredo server; the client is stored
    inverted, as RFC 4380 has it."""
    value = (0x20010000 << 96) | (int(ip(server)) << 64) | (~int(ip(client)) & 0xFFFFFFFF)
    return str(ipaddress.IPv6Address(value))


# The address check


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("10.0.0.1", "a private address"),
        ("10.255.255.255", "a private address"),
        ("172.16.0.1", "a private address"),
        ("172.31.255.254", "a private address"),
        ("192.168.1.1", "a private address"),
        ("169.254.0.1", "a link-local address"),
        ("169.254.169.254", "a link-local address (the cloud metadata service)"),
        ("100.64.0.1", "a shared (carrier-grade NAT) address"),
        ("100.127.255.254", "a shared (carrier-grade NAT) address"),
        ("127.0.0.1", "a loopback address"),
        ("127.0.0.2", "a loopback address"),
        ("127.255.255.254", "a loopback address"),
        ("0.0.0.0", "an unspecified address"),
        ("0.1.2.3", "an unspecified address"),
        ("224.0.0.1", "a multicast address"),
        ("239.255.255.250", "a multicast address"),
        ("255.255.255.255", "the broadcast address"),
        ("240.0.0.1", "a reserved address"),
        ("198.18.0.1", "a benchmarking address"),
        ("198.19.255.254", "a benchmarking address"),
        ("192.0.2.1", "a documentation address"),
        ("203.0.113.9", "a documentation address"),
        ("192.0.0.8", "a reserved (IETF protocol) address"),
        ("::1", "a loopback address"),
        ("::", "an unspecified address"),
        ("fc00::1", "a unique-local address"),
        ("fd12:3456:789a::1", "a unique-local address"),
        ("fe80::1", "a link-local address"),
        ("fe80::1%1", "a link-local address"),
        ("febf::1", "a link-local address"),
        ("fec0::1", "a site-local address"),
        ("ff02::1", "a multicast address"),
        ("2001:db8::1", "a documentation address"),
        ("100::1", "a reserved (discard-only) address"),
        ("64:ff9b:1::a00:1", "a private address (local-use NAT64)"),
        ("::127.0.0.1", "a reserved address"),  # IPv4-compatible, deprecated
        ("4000::1", "a reserved address"),  # outside 2000::/3
        ("::ffff:10.0.0.1", "a private address (the IPv4-mapped form of 10.0.0.1)"),
        ("::ffff:127.0.0.1", "a loopback address (the IPv4-mapped form of 127.0.0.1)"),
        (
            "::ffff:169.254.169.254",
            "a link-local address (the cloud metadata service) (the IPv4-mapped form of 169.254.169.254)",
        ),
        ("64:ff9b::a00:1", "a private address (the NAT64 form of 10.0.0.1)"),
        ("64:ff9b::7f00:1", "a loopback address (the NAT64 form of 127.0.0.1)"),
        ("2002:a00:1::1", "a private address (the 6to4 form of 10.0.0.1)"),
        (
            "2002:a9fe:a9fe::",
            "a link-local address (the cloud metadata service) (the 6to4 form of 169.254.169.254)",
        ),
        (teredo("65.54.227.120", "127.0.0.1"), "a loopback address (the Teredo form of 127.0.0.1)"),
    ],
)
def test_forbidden_addresses_say_why(address, reason):
    """Every non-public range is refused, naming what it is; IPv6 forms of IPv4 by what they carry."""
    assert is_forbidden(ip(address)) == reason


@pytest.mark.parametrize(
    "address",
    [
        "93.184.216.34",
        "8.8.8.8",
        "1.1.1.1",
        "2606:2800:220:1::",
        "2001:4860:4860::8888",
        # Just outside the forbidden ranges:
        "9.255.255.255",
        "11.0.0.0",
        "172.15.255.255",
        "172.32.0.0",
        "192.167.255.255",
        "192.169.0.0",
        "100.63.255.255",
        "100.128.0.0",
        "169.253.255.255",
        "169.255.0.0",
        "198.17.255.255",
        "198.20.0.0",
        "126.255.255.255",
        "128.0.0.0",
        "223.255.255.255",
        # IPv6 forms of a public IPv4 address lead to it, and are as public:
        "::ffff:93.184.216.34",
        "64:ff9b::5db8:d822",
        "2002:5db8:d822::1",
        teredo("65.54.227.120", "93.184.216.34"),
    ],
)
def test_public_addresses_are_allowed(address):
    """Public addresses, including the ones at the edges of forbidden ranges, pass."""
    assert is_forbidden(ip(address)) is None


def test_the_refusal_message_names_host_address_reason_and_fix():
    """A refused name says what it resolved to, why that is refused and which key allows it."""
    error = AddressRefused("feeds.example", ip("10.0.0.5"), "a private address")
    assert str(error) == f"refused: feeds.example resolves to 10.0.0.5, a private address; {HINT}"
    literal = AddressRefused("127.0.0.1", ip("127.0.0.1"), "a loopback address")
    assert (
        literal.describe(redirected=True)
        == f"refused: 127.0.0.1 is a loopback address (reached by a redirect); {HINT}"
    )


# The backend, with a fake resolver and a fake inner backend: nothing touches the network.


class Recorder(httpcore.AsyncNetworkBackend):
    """An inner backend that records where it was asked to connect; `failing` addresses refuse."""

    def __init__(self, failing: Iterable[str] = ()) -> None:
        self.calls: list[tuple[str, int, float | None]] = []
        self.failing = set(failing)

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.calls.append((host, port, timeout))
        if host in self.failing:
            raise httpcore.ConnectError(f"{host} refused the connection")
        return httpcore.AsyncMockStream([])

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def resolver(table: dict[str, list[str]], calls: list[str] | None = None):
    async def resolve(host: str, port: int) -> list[IPAddress]:
        if calls is not None:
            calls.append(host)
        try:
            return [ip(host)]
        except ValueError:
            pass
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [ip(a) for a in table[host]]

    return resolve


def connect(backend: GuardedBackend, host: str, timeout: float | None = 5) -> httpcore.AsyncNetworkStream:
    return asyncio.run(backend.connect_tcp(host, 443, timeout=timeout))


def test_the_backend_connects_to_the_checked_number_and_resolves_once():
    """The inner backend is given the address that was checked, never the name: no second lookup
    can return something else (DNS rebinding)."""
    inner, lookups = Recorder(), []
    backend = GuardedBackend(resolver=resolver({"feeds.test": ["93.184.216.34"]}, lookups), inner=inner)
    connect(backend, "feeds.test")
    assert lookups == ["feeds.test"]
    assert [(host, port) for host, port, _ in inner.calls] == [("93.184.216.34", 443)]


def test_the_backend_refuses_before_connecting():
    """A name resolving only to forbidden addresses is refused with no connection attempt."""
    inner = Recorder()
    backend = GuardedBackend(resolver=resolver({"feeds.test": ["10.0.0.5", "fd00::5"]}), inner=inner)
    with pytest.raises(AddressRefused) as refused:
        connect(backend, "feeds.test")
    assert str(refused.value) == f"refused: feeds.test resolves to 10.0.0.5, a private address; {HINT}"
    assert inner.calls == []


def test_the_backend_skips_forbidden_addresses_of_a_mixed_answer():
    """A name with public and private addresses is reached on the public ones only."""
    inner = Recorder()
    table = {"feeds.test": ["10.0.0.5", "93.184.216.34", "127.0.0.1"]}
    connect(GuardedBackend(resolver=resolver(table), inner=inner), "feeds.test")
    assert [host for host, _, _ in inner.calls] == ["93.184.216.34"]


def test_the_backend_tries_the_next_allowed_address_when_one_fails():
    """Like a normal connect, a host's second address is tried when the first does not answer."""
    inner = Recorder(failing=["2606:2800:220:1::"])
    table = {"feeds.test": ["2606:2800:220:1::", "93.184.216.34"]}
    connect(GuardedBackend(resolver=resolver(table), inner=inner), "feeds.test")
    assert [host for host, _, _ in inner.calls] == ["2606:2800:220:1::", "93.184.216.34"]


def test_the_backend_reports_the_last_connect_error():
    """When every allowed address fails, the connect error stays a connect error."""
    inner = Recorder(failing=["93.184.216.34"])
    backend = GuardedBackend(resolver=resolver({"feeds.test": ["93.184.216.34"]}), inner=inner)
    with pytest.raises(httpcore.ConnectError, match="refused the connection"):
        connect(backend, "feeds.test")


def test_an_unknown_name_is_a_connect_error():
    """A name that does not resolve fails like any connection failure, naming the host."""
    backend = GuardedBackend(resolver=resolver({}), inner=Recorder())
    with pytest.raises(httpcore.ConnectError, match=r"cannot resolve nowhere\.test"):
        connect(backend, "nowhere.test")


def test_a_slow_resolver_is_a_connect_timeout():
    """Resolution counts against the connect timeout."""

    async def slow(host: str, port: int) -> list[IPAddress]:
        await asyncio.sleep(10)
        return [ip("93.184.216.34")]

    inner = Recorder()
    with pytest.raises(httpcore.ConnectTimeout, match=r"resolving feeds\.test took longer than 0\.1s"):
        connect(GuardedBackend(resolver=slow, inner=inner), "feeds.test", timeout=0.1)
    assert inner.calls == []


def test_a_unix_socket_is_refused():
    """The guarded backend never opens a Unix socket."""
    with pytest.raises(httpcore.ConnectError, match="Unix socket"):
        asyncio.run(GuardedBackend(inner=Recorder()).connect_unix_socket("/run/docker.sock"))


def test_a_custom_check_decides():
    """The policy is injectable: here everything but one address is refused."""
    only = ip("93.184.216.34")
    backend = GuardedBackend(
        check=lambda a: None if a == only else "not on the list",
        resolver=resolver({"feeds.test": ["93.184.216.35"]}),
        inner=Recorder(),
    )
    with pytest.raises(AddressRefused, match=r"93\.184\.216\.35, not on the list"):
        connect(backend, "feeds.test")


# End to end through the Fetcher, against real loopback servers


@pytest.fixture
def servers() -> Iterator[list[Hostile]]:
    started: list[Hostile] = []
    yield started
    for server in started:
        server.stop()


def serve(servers: list[Hostile], host: str = "127.0.0.1", behave=None) -> Hostile:
    try:
        server = Hostile(behave or answer(FEED_BODY, Content_Type="application/rss+xml"), host)
    except OSError as e:
        pytest.skip(f"cannot listen on {host}: {e}")
    servers.append(server.start())
    return server


def fetch(url: str, defaults: Defaults | None = None, transport: httpx.AsyncBaseTransport | None = None):
    async def run() -> FetchResult:
        async with Fetcher(defaults or Defaults(), transport) as fetcher:
            return await fetcher.fetch(FeedConfig(name="intranet", url=url), Validators())

    return asyncio.run(run())


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.parametrize(
    ("listen", "host", "message"),
    [
        ("127.0.0.1", "127.0.0.1", "127.0.0.1 is a loopback address"),
        ("127.0.0.2", "127.0.0.2", "127.0.0.2 is a loopback address"),
        ("127.0.0.1", "localhost", "localhost resolves to 127.0.0.1, a loopback address"),
        ("127.0.0.1", "LocalHost", "localhost resolves to 127.0.0.1, a loopback address"),
        # On Linux these two would reach the loopback server, were they not refused.
        ("127.0.0.1", "0.0.0.0", "0.0.0.0 is an unspecified address"),
        (
            "127.0.0.1",
            "[::ffff:127.0.0.1]",
            "::ffff:127.0.0.1 is a loopback address (the IPv4-mapped form of 127.0.0.1)",
        ),
        pytest.param(
            "::1",
            "[::1]",
            "::1 is a loopback address",
            marks=pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback"),
        ),
    ],
)
def test_loopback_feeds_are_refused_without_a_connection(servers, listen, host, message):
    """By default a feed on this machine is refused before any connection; allowed, it works."""
    server = serve(servers, listen)
    url = server.url(host=host)
    refused = fetch(url)
    assert refused.status is FetchStatus.FAILED
    if host == "localhost" and "::1" in (refused.error or ""):
        message = "localhost resolves to ::1, a loopback address"  # the resolver preferred IPv6
    assert refused.error == f"refused: {message}; {HINT}"
    assert server.connections == 0
    # The same feed with the guard off: the server is there, so the refusal above was the guard's.
    if host != "0.0.0.0" or sys.platform == "linux":  # where 0.0.0.0 means this host
        allowed = fetch(url, Defaults(allow_private_networks=True))
        assert (allowed.status, allowed.body) == (FetchStatus.OK, FEED_BODY)
        assert server.connections >= 1


def test_proxies_from_the_environment_are_not_used(servers, monkeypatch):
    """HTTP_PROXY and friends are ignored, guarded or not: a proxy would resolve names out of the
    guard's sight."""
    proxy = serve(servers, behave=lambda conn: conn.hold())
    feed = serve(servers)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, proxy.url(path=""))
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    refused = fetch(feed.url())
    assert (refused.error or "").startswith("refused: 127.0.0.1 is a loopback address")
    allowed = fetch(feed.url(), Defaults(allow_private_networks=True))
    assert (allowed.status, allowed.body) == (FetchStatus.OK, FEED_BODY)
    assert proxy.connections == 0


# Every redirect hop is checked. No public host is reachable in tests, so a made-up name resolves
# to 127.0.0.1, which this test's policy allows; every other loopback address stays refused.

ALLOWED = ip("127.0.0.1")


def only_127_0_0_1(address: IPAddress) -> str | None:
    return None if address == ALLOWED else is_forbidden(address)


def guarded(table: dict[str, list[str]]) -> GuardedTransport:
    return GuardedTransport(limits=httpx.Limits(), check=only_127_0_0_1, resolver=resolver(table))


def redirect_to(location: str):
    def behave(conn: Conn) -> None:
        if conn.read_request() is not None:
            conn.send(head("302 Found", Location=location, Content_Length=0))

    return behave


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("127.0.0.2", "127.0.0.2 is a loopback address (reached by a redirect)"),
        ("intranet.test", "intranet.test resolves to 127.0.0.2, a loopback address (reached by a redirect)"),
    ],
)
def test_a_redirect_into_a_private_network_is_refused(servers, target, message):
    """feeds.test (allowed) redirects to an address the guard refuses: the hop is refused and the
    second server never sees a connection."""
    inside = serve(servers, "127.0.0.2")
    entry = serve(servers, behave=redirect_to(inside.url(host=target)))
    table = {"feeds.test": ["127.0.0.1"], "intranet.test": ["127.0.0.2"]}
    result = fetch(entry.url(host="feeds.test"), transport=guarded(table))
    assert result.status is FetchStatus.FAILED
    assert result.error == f"refused: {message}; {HINT}"
    assert entry.requests == ["GET /feed.xml HTTP/1.1"]
    assert inside.connections == 0


def test_an_allowed_redirect_is_followed_through_the_guard(servers):
    """The guard does not get in the way of a redirect to an allowed address."""
    target = serve(servers)
    entry = serve(servers, behave=redirect_to(target.url(host="mirror.test")))
    table = {"feeds.test": ["127.0.0.1"], "mirror.test": ["127.0.0.1"]}
    result = fetch(entry.url(host="feeds.test"), transport=guarded(table))
    assert (result.status, result.body) == (FetchStatus.OK, FEED_BODY)
    assert target.requests == ["GET /feed.xml HTTP/1.1"]


# TLS through the guard: TCP goes to the checked number, TLS still uses the host name.


def certificate(tmp_path: Path, name: str) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", f"/CN={name}"),
            *("-addext", f"subjectAltName=DNS:{name}"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


class TlsServer:
    """One-request-per-connection HTTPS on 127.0.0.1; records the SNI names clients sent."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.names: list[str | None] = []
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        context.sni_callback = lambda sock, name, ctx: self.names.append(name)  # type: ignore[assignment,func-returns-value]
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = int(self._listener.getsockname()[1])
        self._context = context
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                raw, _ = self._listener.accept()
            except TimeoutError:
                continue
            raw.settimeout(5)
            try:
                with self._context.wrap_socket(raw, server_side=True) as tls:
                    tls.recv(65536)
                    tls.sendall(head(Content_Length=len(FEED_BODY), Connection="close") + FEED_BODY)
            except (OSError, ssl.SSLError):
                raw.close()  # the client refused our certificate: expected in one test

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()


@pytest.mark.parametrize(("served", "ok"), [("feeds.test", True), ("other.test", False)])
def test_tls_is_verified_against_the_host_name(tmp_path, served, ok):
    """The connection goes to 127.0.0.1 by number, yet SNI carries feeds.test and the certificate
    must be for feeds.test: one for another name is rejected."""
    cert, key = certificate(tmp_path, served)
    trust = ssl.create_default_context(cafile=str(cert))
    server = TlsServer(cert, key)
    try:
        transport = GuardedTransport(
            limits=httpx.Limits(),
            check=only_127_0_0_1,
            resolver=resolver({"feeds.test": ["127.0.0.1"]}),
            verify=trust,
        )
        result = fetch(f"https://feeds.test:{server.port}/feed.xml", transport=transport)
    finally:
        server.stop()
    assert server.names == ["feeds.test"]
    if ok:
        assert (result.status, result.body) == (FetchStatus.OK, FEED_BODY)
    else:
        assert result.status is FetchStatus.FAILED
        assert "CERTIFICATE_VERIFY_FAILED" in (result.error or "")


def test_a_refusal_is_a_failed_result_from_check_feed_too(servers):
    """`monitor feeds add` checks a candidate with the default, guarded fetcher."""
    from datetime import UTC, datetime

    from monitor.feed_config import check_feed

    server = serve(servers)

    async def run():
        async with Fetcher(Defaults()) as fetcher:
            return await check_feed(fetcher, server.url(), datetime.now(UTC))

    check = asyncio.run(run())
    assert check.error == f"refused: 127.0.0.1 is a loopback address; {HINT}"
    assert server.connections == 0


# The setting


@pytest.mark.parametrize(("line", "allowed"), [("", False), ("allow_private_networks = true", True)])
def test_allow_private_networks_is_off_unless_set(tmp_path, line, allowed):
    """The guard is on by default; `allow_private_networks = true` turns it off."""
    path = tmp_path / "config.toml"
    path.write_text(f"[defaults]\n{line}\n", encoding="utf-8")
    assert load_settings(path, env={}).defaults.allow_private_networks is allowed


def test_allow_private_networks_must_be_a_boolean(tmp_path):
    """A quoted "true" is an error naming the key, not a silent yes or no."""
    path = tmp_path / "config.toml"
    path.write_text('[defaults]\nallow_private_networks = "true"\n', encoding="utf-8")
    with pytest.raises(ConfigErrors) as errors:
        load_settings(path, env={})
    assert str(errors.value) == (
        f"{path}: defaults.allow_private_networks: expected true or false, got a string"
    )
