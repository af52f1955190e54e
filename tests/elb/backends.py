"""Real HTTP/1.1 backends on loopback for the data-plane tests (stdlib ``http.server``).

Each backend answers with JSON naming itself and echoing what it received, so a test can see
which target served a request and which headers the proxy added. Paths:
``/slow?s=<seconds>`` sleeps first; ``/status/<code>`` answers that code; ``/stream?mb=<n>``
streams n MiB chunked; ``/drip?s=<seconds>`` sends a chunk, pauses, sends
another; ``POST /upload`` counts the body's bytes while reading it in pieces.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

MIB = 1024 * 1024


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server: Backend

    def log_message(self, *_args) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections += 1
            self.server.sockets.add(self.connection)

    def finish(self) -> None:
        super().finish()
        with self.server.lock:
            self.server.sockets.discard(self.connection)

    def _json(self, code: int, doc: dict) -> None:
        body = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _echo(self, extra: dict | None = None) -> dict:
        with self.server.lock:
            self.server.requests += 1
        return {"backend": self.server.name, "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()}, **(extra or {})}

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path == "/slow":
            with self.server.lock:
                self.server.in_flight += 1
            time.sleep(float(query["s"][0]))
            with self.server.lock:
                self.server.in_flight -= 1
        if url.path.startswith("/status/"):
            return self._json(int(url.path.rsplit("/", 1)[1]), self._echo())
        if url.path == "/stream":
            return self._stream(int(query["mb"][0]))
        if url.path == "/drip":
            return self._drip(float(query["s"][0]))
        self._json(200, self._echo())

    def _stream(self, mib: int) -> None:
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        block = b"x" * MIB
        for _ in range(mib):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(block), block))
        self.wfile.write(b"0\r\n\r\n")

    def _drip(self, pause: float) -> None:
        """Two chunks with a pause between: a proxy that buffers delays the first."""
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.write(b"5\r\nfirst\r\n")
        self.wfile.flush()
        time.sleep(pause)
        self.wfile.write(b"6\r\nsecond\r\n0\r\n\r\n")

    def do_POST(self) -> None:
        total = 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while (size := int(self.rfile.readline().split(b";")[0], 16)) > 0:
                total += len(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
        else:
            left = int(self.headers.get("Content-Length", "0"))
            while left:
                piece = self.rfile.read(min(left, MIB))
                total += len(piece)
                left -= len(piece)
        self._json(200, self._echo({"received": total}))


class Backend(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, name: str):
        super().__init__(("127.0.0.1", 0), Handler)
        self.name = name
        self.lock = threading.Lock()
        self.connections = self.requests = self.in_flight = 0
        self.sockets: set[socket.socket] = set()
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.server_address[1]

    def start(self) -> Backend:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop as a killed process would: listening socket and open connections closed."""
        self.shutdown()
        self.server_close()
        with self.lock:
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)
