"""The real dashboard as a subprocess, and a small HTTP client over real sockets.

``bassi-schedd web --port 0`` binds a free port and prints its login URL; ``WebProc`` reads it
from that line, so tests never race for a port.
"""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support import CLI, base_env

START_LINE = re.compile(r"open (http://[^/\s]+:(\d+)/)\?token=(\S+)")


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


@dataclass
class WebProc:
    proc: subprocess.Popen[bytes]
    out: Path
    url: str = ""
    port: int = 0
    token: str = ""
    extra_headers: dict[str, str] = field(default_factory=dict)

    def output(self) -> str:
        return self.out.read_text(errors="replace")

    def wait_started(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = START_LINE.search(self.output())
            if m:
                self.url, self.port, self.token = m.group(1), int(m.group(2)), m.group(3)
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"web exited {self.proc.returncode}:\n{self.output()}")
            time.sleep(0.05)
        raise AssertionError(f"web did not print its URL within {timeout}s:\n{self.output()}")

    def connection(self, timeout: float = 30.0) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        *,
        auth: bool = True,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> Reply:
        h = {"Host": f"127.0.0.1:{self.port}"}
        if auth:
            h["Authorization"] = f"Bearer {self.token}"
        h.update(headers or {})
        conn = self.connection()
        try:
            conn.request(method, path, body=body, headers=h)
            resp = conn.getresponse()
            return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        finally:
            conn.close()

    def get(self, path: str, **kw: Any) -> Reply:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Reply:
        return self.request("POST", path, **kw)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.proc.wait(timeout=30)


def start_web(home: Path, out: Path, *args: str, env: dict[str, str] | None = None) -> WebProc:
    """Start ``bassi-schedd web --port 0 ARGS`` on ``home``; the caller waits or reads its exit."""
    with out.open("wb") as f:
        proc = subprocess.Popen(
            [*CLI, "web", "--port", "0", *args],
            env={**base_env(home), **(env or {})},
            stdout=f,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    return WebProc(proc, out)


class SSEReader:
    """Reads server-sent events from an open response, one event at a time."""

    def __init__(self, resp: http.client.HTTPResponse):
        self.resp = resp

    def next_event(self) -> dict[str, str]:
        """The next event's fields (``data`` lines joined by newlines); comments skipped."""
        event: dict[str, str] = {}
        data: list[str] = []
        while True:
            raw = self.resp.readline()
            if not raw:
                raise EOFError("the stream ended")
            line = raw.decode("utf-8").rstrip("\n")
            if line == "":
                if data or event:
                    if data:
                        event["data"] = "\n".join(data)
                    return event
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            else:
                event[name] = value
