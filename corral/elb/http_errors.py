"""The responses an ALB itself generates: its error pages and the ``Server: awselb/2.0`` header.

ALB answers errors of its own (no target, target unreachable, timeouts, malformed requests)
with a small nginx-style HTML page (ALB load-balancer-troubleshooting shows them); clients and
tests recognise them by the status line and that body.
"""

from __future__ import annotations

SERVER = "awselb/2.0"

TITLES = {
    400: "400 Bad Request",
    404: "404 Not Found",
    413: "413 Request Entity Too Large",
    431: "400 Bad Request",  # ALB answers oversized headers with a plain 400
    500: "500 Internal Server Error",
    502: "502 Bad Gateway",
    503: "503 Service Temporarily Unavailable",
    504: "504 Gateway Time-out",
}


def page(status: int) -> bytes:
    title = TITLES.get(status, f"{status} Error")
    return (f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
            f"<center><h1>{title}</h1></center>\r\n</body>\r\n</html>\r\n").encode()


def headers(status: int, body: bytes, *, close: bool = False,
            content_type: str = "text/html") -> list[tuple[str, str]]:
    out = [("Server", SERVER), ("Content-Type", content_type),
           ("Content-Length", str(len(body)))]
    return out + [("Connection", "close")] if close else out


def raw_response(status: int) -> bytes:
    """A complete error response as bytes, for when the HTTP state machine cannot send one
    (the request was malformed): the connection closes after it."""
    body = page(status)
    reason = TITLES.get(status, "Error").split(" ", 1)[1]
    head = "".join(f"{k}: {v}\r\n" for k, v in headers(status, body, close=True))
    return f"HTTP/1.1 {400 if status == 431 else status} {reason}\r\n{head}\r\n".encode() + body
