"""The one gate for every outbound URL a tenant can point us at (webhooks, custom S3 endpoints).

A URL a user supplies must not turn the platform into a proxy into its own network (SSRF):
- https only; plain http only with the development switch REPORTS_ALLOW_INSECURE_OUTBOUND=1,
  which also lets tests reach their receivers on loopback (and nothing else private);
- the host, whatever form it is written in, must resolve only to globally routable unicast
  addresses: no loopback, private (RFC 1918, ULA), link-local (169.254.0.0/16 with the cloud
  metadata address, fe80::/10), multicast, reserved, unspecified, shared (CGNAT 100.64.0.0/10),
  nor an IPv6 form that embeds one of those (IPv4-mapped, 6to4, NAT64, Teredo);
- IPv4 written as one number, in octal or in hex (`2130706433`, `0x7f.1`, `0177.0.0.1`) is
  refused outright: resolvers disagree on what it means, so no check of it can be trusted;
- the check runs at registration, at enqueue and again at send time (DNS can change), and the
  send connects to the address that was checked (`Target.address`), so no second lookup can
  swap it between check and connect. Redirects are never followed (see webhook.post).

`resolve` is the one DNS lookup; tests replace it to play a hostile DNS server.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import urllib.parse
from dataclasses import dataclass

from orchestration.errors import Invalid

INSECURE_ENV = "REPORTS_ALLOW_INSECURE_OUTBOUND"
DEFAULT_PORTS = {"https": 443, "http": 80}

# Ranges Python's ipaddress flags do not all name (CGNAT is neither private nor global in 3.11).
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Something that looks like an IPv4 literal but is not four plain decimal octets.
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?$", re.IGNORECASE)
_DOTTED_QUAD = re.compile(r"^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$")


class OutboundRefused(Invalid):
    """An outbound URL the platform will not call; the message says why and what to use instead."""


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (`address`, the checked IP) and what to call it (`host`,
    for the Host header and TLS SNI and certificate check)."""

    url: str
    scheme: str
    host: str
    port: int
    address: str
    path: str  # path and query, as sent in the request line


def insecure_allowed() -> bool:
    return os.environ.get(INSECURE_ENV, "").strip().lower() in ("1", "true", "yes")


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to now (the one DNS lookup of outbound calls)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip.sixtofour:
        return ip.sixtofour
    if ip.teredo:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_problem(address: str, *, allow_loopback: bool = False) -> str | None:
    """Why an address may not be called (None: it may)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_v4(ip)
        if inner is not None:
            problem = address_problem(str(inner), allow_loopback=allow_loopback)
            return f"{problem} (embedded in {ip})" if problem else None
    if ip.is_loopback:
        return None if allow_loopback else "loopback"
    for name, flag in (("unspecified", ip.is_unspecified), ("link-local (incl. cloud metadata)", ip.is_link_local),
                       ("multicast", ip.is_multicast), ("shared address space (CGNAT)", ip in _SHARED),
                       ("reserved", ip.is_reserved), ("private", ip.is_private),
                       ("not globally routable", not ip.is_global)):
        if flag:
            return name
    return None


def _parse(url: str) -> tuple[urllib.parse.SplitResult, str, int]:
    try:
        parts = urllib.parse.urlsplit((url or "").strip())
        port = parts.port
    except ValueError as exc:
        raise OutboundRefused(f"not a valid URL {url!r}: {exc}") from None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").rstrip(".")
    if scheme not in DEFAULT_PORTS:
        raise OutboundRefused(f"outbound URLs must be https://, not {url!r}")
    if scheme == "http" and not insecure_allowed():
        raise OutboundRefused(f"outbound URLs must be https: {url!r} is plain http "
                              f"(allowed only for local development with {INSECURE_ENV}=1)")
    if not host:
        raise OutboundRefused(f"no host in {url!r}")
    if parts.username or parts.password:
        raise OutboundRefused(f"credentials in an outbound URL are refused: {parts.hostname} would see them in every log")
    if ":" not in host and _NUMERIC_HOST.match(host) and not _DOTTED_QUAD.match(host):
        raise OutboundRefused(f"host {host!r} is a numeric IPv4 form (decimal, octal or hex) that resolvers read "
                              "differently; write the address as four decimal numbers, or use a name")
    return parts, host, port or DEFAULT_PORTS[scheme]


def check(url: str) -> Target:
    """The URL checked now: its host resolved, every address it resolves to allowed; the
    Target to connect to. Raises OutboundRefused (a clear one-line reason) otherwise, and
    OSError-derived socket.gaierror when the name does not resolve."""
    parts, host, port = _parse(url)
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    addresses = [str(literal)] if literal is not None else resolve(host, port)
    if not addresses:
        raise socket.gaierror(f"{host} resolves to no address")
    allow_loopback = insecure_allowed()
    for address in addresses:  # every answer: a hostile DNS may mix a public and a private one
        problem = address_problem(address, allow_loopback=allow_loopback)
        if problem:
            shown = host if literal is not None else f"{host} (resolves to {address})"
            raise OutboundRefused(f"outbound URL {url!r} refused: {shown} is a {problem} address; "
                                  "only public internet addresses may be called")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(url=url, scheme=parts.scheme.lower(), host=host, port=port, address=addresses[0], path=path)


def check_now(url: str) -> Target:
    """check() for registration and enqueue: a name that does not resolve is refused too, with
    a message to act on (register it once its DNS is in place)."""
    try:
        return check(url)
    except OSError as exc:
        raise OutboundRefused(f"outbound URL {url!r} refused: its host does not resolve ({exc}); "
                              "register it once its DNS is in place") from None
