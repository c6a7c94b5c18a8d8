"""A minimal browser for tests against a real web server: cookies, CSRF, login, timings (stdlib only)."""

from __future__ import annotations

import http.cookiejar
import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Reply:
    status: int  # 0: no answer at all (connection refused, timeout)
    body: bytes
    url: str
    seconds: float
    error: str = ""

    def json(self):
        return json.loads(self.body)


class Browser:
    def __init__(self, base_url: str, timeout: float = 10):
        self.base = base_url.rstrip("/")
        self.timeout = timeout
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.jar if c.name == name), None)

    def request(self, method: str, path: str, data: bytes | None = None, headers: dict | None = None) -> Reply:
        url = self.base + path
        req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
        t0 = time.monotonic()
        try:
            with self.opener.open(req, timeout=self.timeout) as resp:
                return Reply(resp.status, resp.read(), resp.geturl(), time.monotonic() - t0)
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, exc.read(), url, time.monotonic() - t0)
        except (urllib.error.URLError, OSError) as exc:
            return Reply(0, b"", url, time.monotonic() - t0, error=str(exc))

    def get(self, path: str, headers: dict | None = None) -> Reply:
        return self.request("GET", path, headers=headers)

    def post_form(self, path: str, fields: dict) -> Reply:
        fields = {"csrfmiddlewaretoken": self.cookie("csrftoken") or "", **fields}
        body = urllib.parse.urlencode(fields).encode()
        return self.request("POST", path, body, {"Content-Type": "application/x-www-form-urlencoded"})

    def post_json(self, path: str, payload) -> Reply:
        headers = {"Content-Type": "application/json", "X-CSRFToken": self.cookie("csrftoken") or ""}
        return self.request("POST", path, json.dumps(payload).encode(), headers)

    def login(self, username: str, password: str) -> None:
        self.get("/login/")
        reply = self.post_form("/login/", {"username": username, "password": password})
        if reply.status != 200 or self.cookie("sessionid") is None:
            raise RuntimeError(f"login failed: {reply.status} {reply.error} {reply.body[:300]!r}")

    def wait_up(self, path: str = "/healthz", timeout: float = 60) -> Reply:
        deadline = time.monotonic() + timeout
        while True:
            reply = self.get(path)
            if reply.status == 200:
                return reply
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.base}{path} answered {reply.status} {reply.error} for {timeout} s")
            time.sleep(0.2)
