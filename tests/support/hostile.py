"""Raw-socket HTTP for tests that send what HTTP clients will not (raw bytes in headers, a
body never finished), and a password-guessing load to run in a process of its own:

    python -m tests.support.hostile PORT SOURCE_ADDRESS CONNECTIONS STATUS_FILE

opens CONNECTIONS keep-alive connections from SOURCE_ADDRESS (any 127.x.y.z is the loopback
on Linux) and sends wrong HTTP Basic passwords on each as fast as the server answers; it
writes how many answers of each status it got to STATUS_FILE (JSON) every 0.1 s (status 0:
connections the server closed), and stops when its standard input closes or after ten
minutes.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import selectors
import socket
import sys
import time
from collections import Counter

MAX_RUN = 600.0


def read_response(sock: socket.socket, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """Read one HTTP/1.1 response (status, lower-case headers, body by Content-Length).

    :raises ConnectionError: the server closed before the head was complete.
    :raises TimeoutError: nothing more came for ``timeout`` seconds.
    """
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a full response head: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body[:length]


def exchange(port: int, request: bytes, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """Send ``request`` as is on a new connection and read the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        return read_response(sock, timeout)


def closed_by_peer(sock: socket.socket) -> bool:
    """Whether the server has closed ``sock`` (looks for at most 50 ms)."""
    sock.settimeout(0.05)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def _guess() -> bytes:
    credentials = base64.b64encode(f"admin:{secrets.token_hex(8)}".encode()).decode()
    return (
        "GET /scheduler/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Basic {credentials}\r\n\r\n"
    ).encode()


def _answers(data: bytes) -> tuple[list[int], bytes]:
    """Split the complete responses off ``data``: their statuses, and what is left."""
    statuses = []
    while (end := data.find(b"\r\n\r\n")) >= 0:
        lines = data[:end].decode("latin-1").split("\r\n")
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if len(data) < end + 4 + length:
            break
        statuses.append(int(lines[0].split()[1]))
        data = data[end + 4 + length :]
    return statuses, data


def main(port: int, source: str, connections: int, status_file: str) -> None:
    """Send wrong passwords on ``connections`` connections at once, from one thread (so that
    the load costs the machine little besides what it costs the server)."""
    counts: Counter[int] = Counter()
    selector = selectors.DefaultSelector()
    pending: dict[socket.socket, bytes] = {}

    def connect() -> None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
        sock.sendall(_guess())
        sock.setblocking(False)
        pending[sock] = b""
        selector.register(sock, selectors.EVENT_READ)

    for _ in range(connections):
        connect()
    selector.register(sys.stdin, selectors.EVENT_READ)  # closed: stop
    deadline = time.monotonic() + MAX_RUN
    written = 0.0
    while time.monotonic() < deadline:
        for key, _ in selector.select(0.1):
            if key.fileobj is sys.stdin:
                return
            sock = key.fileobj
            try:
                data = sock.recv(65536)
                statuses, pending[sock] = _answers(pending[sock] + data)
                counts.update(statuses)
                for _ in statuses:
                    sock.sendall(_guess())
            except OSError:
                data = b""
            if not data:  # closed by the server: open another
                selector.unregister(sock)
                del pending[sock]
                sock.close()
                counts[0] += 1
                connect()
        if time.monotonic() - written >= 0.1:
            written = time.monotonic()
            with open(f"{status_file}.tmp", "w") as out:
                json.dump({str(k): v for k, v in counts.items()}, out)
            os.replace(f"{status_file}.tmp", status_file)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4])
