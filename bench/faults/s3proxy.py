"""An HTTP proxy in front of an S3 endpoint (the tests' moto server) that answers some requests
itself with S3's server errors: ``500 InternalError``, ``503 SlowDown`` (throttling) and
``503 ServiceUnavailable``, in turn. Everything else is passed through unchanged.

Which requests fail is the :class:`Faults` schedule: every ``every``-th request while ``budget``
failures remain, and every request during an outage (:meth:`FlakyS3Proxy.outage`)."""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

__all__ = ["Faults", "FlakyS3Proxy"]

#: (status, S3 error code, message) served in turn.
ERRORS = (
    (500, "InternalError", "We encountered an internal error. Please try again."),
    (503, "SlowDown", "Please reduce your request rate."),
    (503, "ServiceUnavailable", "Service is unable to handle request."),
)
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "expect", "proxy-connection", "upgrade"}


@dataclass
class Faults:
    """The schedule: fail every ``every``-th request until ``budget`` failures were served, and
    every request until ``outage_until`` (a ``time.monotonic()`` instant), which the
    ``outage_at``-th request sets ``outage_seconds`` ahead."""

    every: int = 3
    budget: int = 0
    outage_until: float = 0.0
    #: The request that starts an outage of ``outage_seconds`` (0: none).
    outage_at: int = 0
    outage_seconds: float = 0.0
    requests: int = 0
    served: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next(self) -> tuple[int, str, str] | None:
        """The error to answer the next request with, or None to pass it through."""
        with self.lock:
            self.requests += 1
            if self.requests == self.outage_at:
                self.outage_until = time.monotonic() + self.outage_seconds
            fail = time.monotonic() < self.outage_until
            if not fail and self.budget > 0 and self.requests % self.every == 0:
                self.budget -= 1
                fail = True
            if not fail:
                return None
            error = ERRORS[sum(self.served.values()) % len(ERRORS)]
            self.served[error[1]] += 1
            return error


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        return

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _forward(self) -> None:
        body = self._body()
        error = self.server.faults.next()
        if error is not None:
            status, code, message = error
            payload = (
                b""
                if self.command == "HEAD"
                else (
                    f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
                    f"<Message>{message}</Message><RequestId>flaky-proxy</RequestId></Error>"
                ).encode()
            )
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        upstream = http.client.HTTPConnection(self.server.upstream_host, self.server.upstream_port, timeout=120)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                headers["Content-Length"] = str(len(body))
            upstream.request(self.command, self.path, body=body or None, headers=headers)
            response = upstream.getresponse()
            data = response.read()
            self.send_response(response.status, response.reason)
            for name, value in response.getheaders():
                if name.lower() in _HOP_BY_HOP or (name.lower() == "content-length" and self.command != "HEAD"):
                    continue
                self.send_header(name, value)
            if self.command != "HEAD":
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        finally:
            upstream.close()

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    faults: Faults
    upstream_host: str
    upstream_port: int


class FlakyS3Proxy:
    """``with FlakyS3Proxy(upstream) as proxy:`` an endpoint (``proxy.url``) that passes requests to
    ``upstream`` except those :attr:`faults` fails."""

    def __init__(self, upstream: str, faults: Faults | None = None) -> None:
        parts = urlsplit(upstream)
        self.faults = faults or Faults()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.faults = self.faults
        self._server.upstream_host = parts.hostname or "127.0.0.1"
        self._server.upstream_port = parts.port or 80
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="flaky-s3-proxy", daemon=True)

    def schedule(self, faults: Faults) -> None:
        """Fail requests from now on as ``faults`` says (its count of requests starts now)."""
        self.faults = self._server.faults = faults

    def __enter__(self) -> FlakyS3Proxy:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
