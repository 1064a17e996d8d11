"""`faxbridge healthcheck`: is the bridge reachable the way its clients reach it?

Docker's HEALTHCHECK runs inside the container, so probing 127.0.0.1 says nothing about what
Postfix or a scanner outside sees: a config that listens on 127.0.0.1 answers there and nowhere
else. This check refuses a loopback `listen` outright and otherwise connects to the
container's own non-loopback address, expecting the SMTP greeting (220) and `/healthz` (200).
"""

from __future__ import annotations

import fcntl
import http.client
import ipaddress
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

from bridge.config import Config, split_host_port

_SIOCGIFADDR = 0x8915  # Linux ioctl: the IPv4 address of one interface
_WILDCARDS_V4 = {"0.0.0.0", "*", ""}
_WILDCARDS_V6 = {"::"}


class Unhealthy(Exception):
    """One sentence saying what is unreachable and why."""


@dataclass(frozen=True)
class Target:
    key: str  # `smtp.listen`
    listen: str  # `0.0.0.0:2525` as configured
    host: str  # the address probed
    port: int

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def own_addresses() -> list[str]:
    """This host's (container's) non-loopback addresses, IPv4 first, no link-local ones."""
    found: list[str] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _, name in socket.if_nameindex():
            try:
                packed = fcntl.ioctl(
                    sock.fileno(), _SIOCGIFADDR, struct.pack("256s", name.encode()[:15])
                )
            except OSError:
                continue  # no IPv4 address on this interface
            found.append(socket.inet_ntoa(packed[20:24]))
    try:  # Linux lists IPv6 addresses here: hex address, index, prefix, scope, flags, name
        lines = Path("/proc/net/if_inet6").read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        hex_address = line.split()[0]
        found.append(str(ipaddress.IPv6Address(bytes.fromhex(hex_address))))
    if not found:  # not Linux: what the host name resolves to
        try:
            infos = socket.getaddrinfo(socket.gethostname(), None, type=socket.SOCK_STREAM)
        except OSError:
            infos = []
        found = [str(info[4][0]) for info in infos]
    usable = []
    for text in found:
        address = ipaddress.ip_address(text)
        if not (address.is_loopback or address.is_link_local or address.is_unspecified):
            if text not in usable:
                usable.append(text)
    return usable


def target(key: str, listen: str) -> Target:
    """Where a client from outside would connect for `key`, or Unhealthy saying why none can."""
    host, port = split_host_port(listen)
    if host in _WILDCARDS_V4 or host in _WILDCARDS_V6:
        addresses = own_addresses()
        if host in _WILDCARDS_V4:
            addresses = [a for a in addresses if ipaddress.ip_address(a).version == 4]
        if not addresses:
            raise Unhealthy(
                f"{key} is {listen}, but this container has no non-loopback address: "
                "nothing outside it can connect"
            )
        return Target(key, listen, addresses[0], port)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise Unhealthy(f"{key} is {listen}, and {host} does not resolve: {exc}") from exc
    resolved = [str(info[4][0]) for info in infos]
    outside = [a for a in resolved if not ipaddress.ip_address(a).is_loopback]
    if not outside:
        raise Unhealthy(
            f"{key} is {listen}, a loopback address: nothing outside this container can "
            f"reach it; listen on 0.0.0.0:{port} instead"
        )
    return Target(key, listen, outside[0], port)


def smtp_greeting(where: Target, timeout_s: float) -> str:
    """The 220 greeting's last line; QUIT is sent so no session is left open."""
    try:
        with socket.create_connection((where.host, where.port), timeout=timeout_s) as sock:
            reader = sock.makefile("rb")
            while True:
                line = reader.readline(1024).decode("ascii", "replace").rstrip("\r\n")
                if line[3:4] != "-":
                    break
            sock.sendall(b"QUIT\r\n")
            reader.readline(1024)
    except TimeoutError as exc:
        raise Unhealthy(
            f"SMTP at {where.address} ({where.key} {where.listen}) did not answer within "
            f"{timeout_s:g} s"
        ) from exc
    except OSError as exc:
        raise Unhealthy(
            f"SMTP at {where.address} ({where.key} {where.listen}) cannot be reached: "
            f"{exc.strerror or exc}"
        ) from exc
    if not line.startswith("220"):
        raise Unhealthy(
            f"SMTP at {where.address} ({where.key} {where.listen}) answered "
            f"{line or 'nothing'!r}, not 220"
        )
    return line


def healthz_status(where: Target, timeout_s: float) -> int:
    url = f"http://{where.address}/healthz"
    connection = http.client.HTTPConnection(where.host, where.port, timeout=timeout_s)
    try:
        connection.request("GET", "/healthz")
        status = connection.getresponse().status
    except TimeoutError as exc:
        raise Unhealthy(
            f"HTTP {url} ({where.key} {where.listen}) did not answer within {timeout_s:g} s"
        ) from exc
    except (OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise Unhealthy(
            f"HTTP {url} ({where.key} {where.listen}) cannot be reached: {reason}"
        ) from exc
    finally:
        connection.close()
    if status != 200:
        raise Unhealthy(f"HTTP {url} ({where.key} {where.listen}) answered {status}, not 200")
    return status


def check(config: Config, timeout_s: float) -> str:
    """One line saying what answered; Unhealthy (one line too) when something did not."""
    smtp = target("smtp.listen", config.smtp.listen)
    http = target("http.listen", config.http.listen)
    greeting = smtp_greeting(smtp, timeout_s)
    healthz_status(http, timeout_s)
    return (
        f"healthy: SMTP {smtp.address} answered {greeting[:60]!r}, HTTP {http.address}/healthz 200"
    )
