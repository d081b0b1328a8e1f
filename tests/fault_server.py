"""A small OpenAI-compatible HTTP server for fault tests only (the happy path always uses real vLLM):
each test gives it a handler that decides, per request, what goes wrong."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable


class Reply:
    def __init__(self, status: int = 200, body: dict | bytes | None = None, headers: dict | None = None,
                 drip_s: float = 0.0):
        self.status, self.headers, self.drip_s = status, headers or {}, drip_s
        self.data = body if isinstance(body, bytes) else json.dumps(body or {}).encode()


def completion(text: str | None = "ok", index: int = 0) -> dict:
    return {"index": index, "text": text, "finish_reason": "stop"}


class Seen:
    """A request as the server saw it: n counts the requests so far (from 0)."""

    def __init__(self, path: str, body: dict, n: int, headers: dict, at: float):
        self.path, self.body, self.n, self.headers, self.at = path, body, n, headers, at


class FaultServer:
    """`handle(Seen) -> Reply` decides what each request gets."""

    def __init__(self, handle: Callable[[Seen], Reply]):
        self.handle, self.count, self.requests = handle, 0, []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                self._reply({})

            def do_POST(self):
                self._reply(json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}"))

            def _reply(self, body):
                seen = Seen(self.path, body, server.count, dict(self.headers), time.time())
                server.count += 1
                server.requests.append(seen)
                r = server.handle(seen)
                self.send_response(r.status)
                for k, v in r.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(r.data)))
                self.end_headers()
                try:
                    if r.drip_s:
                        for i in range(len(r.data)):
                            self.wfile.write(r.data[i:i + 1])
                            self.wfile.flush()
                            time.sleep(r.drip_s)
                    else:
                        self.wfile.write(r.data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}/v1"

    def __enter__(self) -> "FaultServer":
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
