"""Fixtures of the alerting tests: a real webhook receiver on localhost and a clean rule cache."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from alerting.services import engine


@pytest.fixture(autouse=True)
def _fresh_rule_cache():
    engine.clear_cache()
    yield
    engine.clear_cache()


class WebhookReceiver:
    """Answers according to `behaviour` ("ok", "500", "sleep"), verifying the HMAC of each body."""

    def __init__(self, secret: str = "s3cret"):
        self.secret = secret
        self.behaviour: list[str] = []  # consumed one per request; "ok" when empty
        self.requests: list[dict] = []
        self.sleep_seconds = 2.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server API)
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                signature = self.headers.get("X-Watchpost-Signature", "")
                expected = "sha256=" + hmac.new(receiver.secret.encode(), body, hashlib.sha256).hexdigest()
                receiver.requests.append(
                    {
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": json.loads(body or b"{}"),
                        "signature_ok": hmac.compare_digest(signature, expected),
                        "signature": signature,
                    }
                )
                action = receiver.behaviour.pop(0) if receiver.behaviour else "ok"
                if action == "sleep":
                    time.sleep(receiver.sleep_seconds)
                    action = "ok"
                code = 500 if action == "500" else 200
                payload = b'{"ok": true}' if code == 200 else b"boom"
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hook"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook_receiver():
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


@pytest.fixture
def fast_webhooks(settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.5
    return settings
