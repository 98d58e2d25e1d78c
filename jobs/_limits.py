"""What a job function may touch: the file roots, the service's own files, the networks.

The service builds a ``JobLimits`` from its settings and installs it at start-up, in every
process that runs jobs (process-pool children build their app, and install it, too). Job
functions read it when their arguments are checked: by the service when a job is created
(it validates the arguments against the functions' annotations, which call in here) and by
the functions themselves when they run, since the limits may have changed in between.
Until something installs limits, a job may touch no file and reach public addresses only.

This module is private (its name starts with ``_``): nothing in it may be scheduled.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass, field

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Addresses of cloud instance-metadata services that are routable (or could be routed) like
# ordinary addresses: Azure's wire server, Alibaba's metadata service, AWS's IPv6 endpoint
# (169.254.169.254 itself is link-local, refused as such).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "168.63.129.16", "100.100.100.200", "fd00:ec2::254")
)
# IPv6 prefixes that carry an IPv4 address in their last 32 bits (NAT64).
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))

NO_ROOTS = "jobs may touch no file: no job file roots are configured (SCHEDULER_JOB_FILE_ROOTS)"
OUTSIDE = "outside the job file roots (SCHEDULER_JOB_FILE_ROOTS)"
PROTECTED = "one of the service's own files (instance folder, settings, databases), never a job's"
NOT_REACHABLE = (
    "the host resolves to an address jobs may not reach (loopback, private, link-local, "
    "shared, multicast, reserved or cloud metadata); SCHEDULER_JOB_HTTP_ALLOWED_NETWORKS "
    "lists networks that jobs may reach all the same"
)


def _within(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or lies below it (both real, absolute paths)."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _real(path: str) -> str:
    return os.path.realpath(os.path.abspath(path))


@dataclass(frozen=True)
class JobLimits:
    """The folders file jobs may use, the paths they may never touch, and the networks an
    HTTP job may reach although they are not public (CIDR strings)."""

    file_roots: tuple[str, ...] = ()
    protected: tuple[str, ...] = ()
    networks: tuple[str, ...] = ()
    _networks: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Real paths once: a root that is a symlink counts as its target.
        object.__setattr__(self, "file_roots", tuple(_real(r) for r in self.file_roots))
        object.__setattr__(self, "protected", tuple(_real(p) for p in self.protected))
        parsed = tuple(ipaddress.ip_network(n, strict=False) for n in self.networks)
        object.__setattr__(self, "_networks", parsed)

    def install(self) -> None:
        """Make these the limits every job function of this process checks against."""
        global _installed
        _installed = self

    @staticmethod
    def current() -> JobLimits:
        """Return the limits installed in this process (none: no file, public addresses)."""
        return _installed

    def resolve_path(self, path: str) -> str:
        """Return the real path of ``path`` (a relative one lies in the first root) if a job
        may use it; symlinks and ``..`` are resolved first, so neither can lead out.

        :raises ValueError: no roots, outside every root, or one of the service's files.
        """
        if not self.file_roots:
            raise ValueError(NO_ROOTS)
        real = _real(os.path.join(self.file_roots[0], path))  # join keeps an absolute path
        root = self.root_of(real)
        if root is None:
            raise ValueError(OUTSIDE)
        if self.is_protected(real, root):
            raise ValueError(PROTECTED)
        return real

    def root_of(self, real: str) -> str | None:
        """Return the first root that holds the real path ``real``, if any."""
        return next((r for r in self.file_roots if _within(real, r)), None)

    def is_protected(self, real: str, root: str) -> bool:
        """Whether ``real`` (inside ``root``) is one of the service's own files. A root that
        lies inside a protected folder (the default, <instance>/job-files) is the jobs'."""
        return any(
            _within(real, p) and not (_within(root, p) and root != p) for p in self.protected
        )

    def address_allowed(self, address: IPAddress) -> bool:
        """Whether a job may connect to ``address``: a public one that is no metadata
        service's, or one inside the allowed networks."""
        if any(address in network for network in self._networks):
            return True
        for inner in _embedded_ipv4(address):
            if not self.address_allowed(inner):
                return False
        return address.is_global and not address.is_multicast and address not in METADATA_ADDRESSES

    def check_host(self, host: str, port: int, *, unresolved_ok: bool) -> list[tuple]:
        """Resolve ``host`` and return its ``getaddrinfo`` entries if a job may reach every
        one of its addresses.

        :raises ValueError: one of them is refused, or (unless ``unresolved_ok``, then an
            empty list is returned) the name does not resolve.
        """
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            if unresolved_ok:
                return []
            raise ValueError("the host name does not resolve") from None
        for info in infos:
            if not self.address_allowed(ipaddress.ip_address(info[4][0])):
                raise ValueError(NOT_REACHABLE)
        return infos


def _embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address leads to (mapped, 6to4, Teredo, NAT64)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    inner = [address.ipv4_mapped, address.sixtofour, *(address.teredo or ())]
    if any(address in network for network in _NAT64):
        inner.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return [a for a in inner if a is not None]


_installed = JobLimits()
