"""HTTP probing: one request per new connection, a bounded client loop, reload polling.

All traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field

HOST = "127.0.0.1"
OUTCOMES = ("ok", "refused", "reset", "timeout", "error")


@dataclass(frozen=True)
class Reply:
    """One request: its outcome (one of OUTCOMES), latency in seconds and body (when ok)."""

    outcome: str
    latency: float
    body: str = ""
    started: float = 0.0
    detail: str = ""


def request_bytes(path: str = "/") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()


def http_get(port: int, timeout: float, path: str = "/") -> Reply:
    """GET ``path`` on a new connection; never raises for network trouble."""
    start = time.monotonic()
    deadline = start + timeout
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            sock.sendall(request_bytes(path))
            raw = b""
            expected: int | None = None  # the whole response's length, once the head is in
            while expected is None or len(raw) < expected:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                sock.settimeout(remaining)
                data = sock.recv(65536)
                if not data:
                    break
                raw += data
                if expected is None and b"\r\n\r\n" in raw:
                    expected = _response_length(raw)
    except ConnectionRefusedError:
        return Reply("refused", time.monotonic() - start, started=start)
    except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError):
        return Reply("reset", time.monotonic() - start, started=start)
    except TimeoutError:
        return Reply("timeout", time.monotonic() - start, started=start)
    except OSError as exc:
        return Reply("error", time.monotonic() - start, started=start, detail=str(exc))
    latency = time.monotonic() - start
    if not raw:
        # The server accepted and closed without answering: what a client sees as a reset.
        return Reply("reset", latency, started=start, detail="closed without a response")
    head, _, body = raw.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].split()
    if len(status) < 2 or status[1] != b"200":
        return Reply("error", latency, started=start, detail=head[:80].decode(errors="replace"))
    return Reply("ok", latency, body.decode(errors="replace"), started=start)


def _response_length(raw: bytes) -> int | None:
    """Head plus Content-Length, so a reply is complete without waiting for the server's FIN."""
    head, _, _ = raw.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return len(head) + 4 + int(value.strip())
    return None


@dataclass
class LoopResult:
    replies: list[Reply] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for reply in self.replies if reply.outcome == outcome)

    @property
    def failed(self) -> int:
        return sum(1 for reply in self.replies if reply.outcome != "ok")

    def ok_latencies(self) -> list[float]:
        return [reply.latency for reply in self.replies if reply.outcome == "ok"]


class ClientLoop:
    """A background client: a new connection per request, paced, bounded in count and time."""

    def __init__(
        self, port: int, *, interval: float, timeout: float, max_requests: int, max_seconds: float, path: str = "/"
    ) -> None:
        self.port = port
        self.path = path
        self.interval = interval
        self.timeout = timeout
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.result = LoopResult()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="client-loop", daemon=True)

    def _run(self) -> None:
        end = time.monotonic() + self.max_seconds
        next_start = time.monotonic()
        while not self._stop.is_set() and len(self.result.replies) < self.max_requests:
            now = time.monotonic()
            if now >= end:
                break
            if next_start > now:
                if self._stop.wait(next_start - now):
                    break
            next_start = time.monotonic() + self.interval
            self.result.replies.append(http_get(self.port, self.timeout, self.path))

    def start(self) -> ClientLoop:
        self._thread.start()
        return self

    def stop(self) -> LoopResult:
        self._stop.set()
        self._thread.join(self.timeout + 5)
        return self.result

    def wait(self) -> LoopResult:
        """Run to the count bound (or time bound)."""
        self._thread.join(self.max_seconds + self.timeout + 5)
        return self.result


def run_loop(port: int, *, requests: int, interval: float, timeout: float, path: str = "/") -> LoopResult:
    """A foreground loop of ``requests`` requests (used for idle latency)."""
    loop = ClientLoop(
        port, interval=interval, timeout=timeout, max_requests=requests,
        max_seconds=requests * (interval + timeout) + 5, path=path,
    )
    return loop.start().wait()


def wait_for_body(port: int, expected: str, *, deadline: float, pause: float = 0.002, path: str = "/",
                  within: bool = False) -> Reply | None:
    """Poll until a response with ``expected`` as body (``within``: in the body) arrives; None
    at the deadline.

    The returned reply's ``started + latency`` is when that first response arrived.
    """
    while time.monotonic() < deadline:
        reply = http_get(port, timeout=max(0.05, min(5.0, deadline - time.monotonic())), path=path)
        if reply.outcome == "ok" and (expected in reply.body if within else reply.body == expected):
            return reply
        time.sleep(pause)
    return None
