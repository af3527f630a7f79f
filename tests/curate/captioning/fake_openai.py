"""A small OpenAI-compatible chat server for failure-path tests (normal, slow, malformed, flaky).

The real server (`vllm serve`) is exercised in the vllm environment; this one can misbehave on
demand, which a real server cannot be made to do reliably.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _QuietServer(ThreadingHTTPServer):
    """A client that gave up (a timeout test) makes the late reply hit a closed socket; the default
    handler prints that traceback to whatever sys.stderr is at the time, possibly another test's
    captured CLI output, so it is kept instead."""

    errors: list[str] = []

    def handle_error(self, request, client_address) -> None:
        import sys
        self.errors.append(repr(sys.exc_info()[1]))


class FakeOpenAI:
    def __init__(self, mode: str = "normal", delay: float = 0.0, fail_first: int = 0,
                 slow: dict[str, float] | None = None) -> None:
        """`slow`: extra seconds for requests whose user text contains the key."""
        self.mode, self.delay, self.fail_first, self.slow = mode, delay, fail_first, slow or {}
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(body)
                outer.headers.append(dict(self.headers))
                if outer.delay:
                    time.sleep(outer.delay)
                user = body["messages"][-1]["content"]
                user = user if isinstance(user, str) else user[-1]["text"]
                for key, seconds in outer.slow.items():
                    if key in user:
                        time.sleep(seconds)
                if outer.mode == "echo_credentials":  # a server that prints what it was sent, every way it can
                    import base64
                    import urllib.parse

                    header = self.headers.get("Authorization") or ""
                    token = header.split(" ", 1)[-1]
                    user, _, password = base64.b64decode(token).decode("utf-8").partition(":")
                    quoted = urllib.parse.quote(password, safe="")
                    self.send_response(403, f"bad credentials: user={user} pass={quoted}; got Basic {token}")
                    self.end_headers()
                    echo = (f"403 bad credentials: user={user} pass={password}; got Basic {token}; as sent: {quoted}; "
                            f"as JSON: {json.dumps({'pass': password})}; headers: {dict(self.headers)}")
                    self.wfile.write(echo.encode("utf-8"))
                    return
                if outer.mode == "echo_auth":  # a misconfigured proxy that echoes the request headers
                    self.send_response(500, f"upstream said: Authorization: {self.headers.get('Authorization')}")
                    self.end_headers()
                    self.wfile.write(f"error for key {self.headers.get('Authorization')}".encode())
                    return
                if outer.fail_first > 0:
                    outer.fail_first -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                if outer.mode == "malformed":
                    payload = b"{not json"
                else:
                    tags = user.split("Tags:")[-1].strip() if "Tags:" in user else "music"
                    text = f"A calm piece of {tags} with gentle piano and soft strings."
                    if outer.mode == "instructions":
                        text = "Generate " + text
                    payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
