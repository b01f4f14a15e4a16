"""Which addresses a webhook may reach (SPEC section 11): no private, loopback,
link-local, multicast or reserved address unless the deployment allows it.

The host is resolved and *every* address it resolves to is checked, at creation and
again at each delivery (a name may resolve elsewhere later: DNS rebinding); the sender
then connects to an address that was checked, never resolving the name a second time.

``WEBHOOKS_ALLOW_PRIVATE`` (on: any address, and plain http) or
``WEBHOOKS_ALLOWED_NETWORKS`` (CIDRs allowed although private, e.g. ``10.1.0.0/16``).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.translation import gettext as _

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressRefused(Exception):
    """The URL may not be called; the message says why (shown to the admin)."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # path and query, as sent in the request line
    addresses: tuple[str, ...]  # every address the host resolved to, all allowed


def _allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [
        ipaddress.ip_network(cidr.strip(), strict=False)
        for cidr in settings.WEBHOOKS_ALLOWED_NETWORKS
        if cidr.strip()
    ]


def is_public(address: Address) -> bool:
    """A globally routable unicast address (not private, loopback, link-local,
    multicast, reserved, unspecified or shared address space)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return is_public(address.ipv4_mapped)
    return address.is_global and not (
        address.is_multicast
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
        or address.is_private
    )


def check_address(address: Address) -> None:
    if settings.WEBHOOKS_ALLOW_PRIVATE or is_public(address):
        return
    if any(address in network for network in _allowed_networks()):
        return
    raise AddressRefused(
        _("%(address)s is a private, loopback or reserved address; webhooks may not call it.")
        % {"address": address}
    )


def check_scheme(scheme: str) -> None:
    if scheme == "https":
        return
    if scheme == "http" and (settings.DEBUG or settings.WEBHOOKS_ALLOW_PRIVATE):
        return
    raise AddressRefused(_("Use an https URL."))


def resolve(url: str) -> Target:
    """Parse, resolve and check ``url``; every address must be allowed."""
    parts = urlsplit(url)
    scheme = (parts.scheme or "").lower()
    check_scheme(scheme)
    host = parts.hostname
    if not host:
        raise AddressRefused(_("The URL has no host."))
    if parts.username or parts.password:
        raise AddressRefused(_("Credentials in the URL are not allowed."))
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as error:
        raise AddressRefused(_("The URL's port is not valid.")) from error
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise AddressRefused(_("The host %(host)s does not resolve.") % {"host": host}) from error
    addresses: list[str] = []
    for info in infos:
        # Drop an IPv6 zone ("fe80::1%eth0") before parsing: the address decides.
        text = str(info[4][0]).split("%", 1)[0]
        address = ipaddress.ip_address(text)
        check_address(address)
        if text not in addresses:
            addresses.append(text)
    if not addresses:
        raise AddressRefused(_("The host %(host)s does not resolve.") % {"host": host})
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme=scheme, host=host, port=port, path=path, addresses=tuple(addresses))
