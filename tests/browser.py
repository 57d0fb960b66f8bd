"""A minimal DevTools-protocol client for the system's headless Chromium, over ``--remote-debugging-pipe``.

The pipe carries NUL-separated JSON messages on file descriptors 3 (to the browser) and 4 (from it), so
nothing is needed beyond the standard library and Debian's ``chromium`` package: no browser download, no
websocket client. ``load`` opens a page, waits for its load event and returns what the page requested,
what the console and the security checks (Content-Security-Policy) logged, and the value of a
JavaScript expression evaluated in the rendered page.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CANDIDATES = ("chromium", "chromium-browser")
FLAGS = (
    "--headless",
    "--no-sandbox",  # CI containers run as root, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-extensions",
    "--disable-sync",
    "--mute-audio",
    "--disable-dev-shm-usage",  # a container's small /dev/shm must not crash the renderer
    "--hide-scrollbars",
    "--remote-debugging-pipe",
)


LAUNCHER = """
import fcntl, os, sys
high = [fcntl.fcntl(int(fd), fcntl.F_DUPFD, 10) for fd in sys.argv[1:3]]
os.dup2(high[0], 3)
os.dup2(high[1], 4)
os.execv(sys.argv[3], sys.argv[3:])
"""


def chromium() -> str | None:
    """The system Chromium, or None."""
    return next((path for name in CANDIDATES if (path := shutil.which(name))), None)


@dataclass
class Loaded:
    """What one page did: every request it made, what it logged, and the evaluated expression's value."""

    url: str
    requests: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    value: Any = None


class Browser:
    """One headless Chromium; use as a context manager."""

    def __init__(self, executable: str, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self.profile = tempfile.TemporaryDirectory(prefix="backprop-chromium-")
        to_child, self._to_browser = os.pipe()
        self._from_browser, from_child = os.pipe()
        # A small launcher puts the pipes on the protocol's descriptors 3 and 4 and becomes the browser:
        # no Python code runs between fork and exec in this (threaded) process.
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                LAUNCHER,
                str(to_child),
                str(from_child),
                executable,
                *FLAGS,
                f"--user-data-dir={self.profile.name}",
                "about:blank",
            ],
            pass_fds=(to_child, from_child),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_child)
        os.close(from_child)
        self._buffer = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError, EOFError, TimeoutError, RuntimeError):
            self.call("Browser.close")
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)
        self.profile.cleanup()

    def _message(self) -> dict[str, Any]:
        end = time.monotonic() + self.timeout
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._from_browser], [], [], max(0.0, end - time.monotonic()))
            if not ready:
                raise TimeoutError("Chromium did not answer")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise EOFError("Chromium closed the pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> Any:
        """Send one command and wait for its answer; events that arrive meanwhile are kept."""
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            answer = self._message()
            if answer.get("id") == self._id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            self.events.append(answer)

    def wait_for(self, method: str, session: str) -> None:
        while not any(e.get("method") == method and e.get("sessionId") == session for e in self.events):
            self.events.append(self._message())

    def load(self, page: Path, expression: str = "null", scripts: bool = True) -> Loaded:
        """Open ``page`` in a new tab, wait for it to load, evaluate ``expression`` (awaiting a promise)."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Network", "Runtime", "Log"):
            self.call(f"{domain}.enable", None, session)
        if not scripts:
            self.call("Emulation.setScriptExecutionDisabled", {"value": True}, session)
        url = page.resolve().as_uri()
        self.events.clear()
        self.call("Page.navigate", {"url": url}, session)
        self.wait_for("Page.loadEventFired", session)
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session,
        )
        loaded = Loaded(url, value=result.get("result", {}).get("value"))
        for event in (e for e in self.events if e.get("sessionId") == session):
            params = event.get("params", {})
            if event["method"] == "Network.requestWillBeSent":
                loaded.requests.append(params["request"]["url"])
            elif event["method"] == "Log.entryAdded":
                loaded.log.append(f"{params['entry']['source']}: {params['entry']['text']}")
            elif event["method"] == "Runtime.consoleAPICalled":
                loaded.log.append(f"console.{params['type']}: {params.get('args')}")
            elif event["method"] == "Runtime.exceptionThrown":
                loaded.exceptions.append(json.dumps(params.get("exceptionDetails")))
        self.call("Target.closeTarget", {"targetId": target})
        return loaded
