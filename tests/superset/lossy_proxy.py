"""Test helper: an HTTP proxy in front of a real Superset that can lose answers (the request still lands).

Every request is forwarded as it came (headers, cookies, body); for those `lose` picks, the
upstream answer is read and thrown away and the client's connection is closed with no answer
at all, as when a load balancer or the network drops it after the server did the work.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host"}


class LossyProxy:
    def __init__(self, upstream: str, lose: Callable[[str, str], bool]) -> None:
        self.upstream = upstream.rstrip("/")
        self.lose = lose
        self.lost: list[str] = []
        self._client = httpx.Client(timeout=120, follow_redirects=False)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet
                return

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP]
                answer = proxy._client.request(self.command, proxy.upstream + self.path, headers=headers, content=body)
                if proxy.lose(self.command, self.path.split("?", 1)[0]):
                    proxy.lost.append(f"{self.command} {self.path}")
                    self.close_connection = True
                    return  # the work is done upstream; the client never hears of it
                self.send_response(answer.status_code)
                for key, value in answer.headers.multi_items():
                    if key.lower() not in HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    @contextmanager
    def running(self) -> Iterator[LossyProxy]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            self._client.close()
