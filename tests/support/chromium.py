"""A headless Chromium started by a test and driven over the DevTools protocol (CDP).

Only the standard library: a minimal RFC 6455 websocket client (text frames, masking,
fragmentation, ping) is enough for CDP on loopback, so the tests need no websocket package.

    with Chromium.start(tmp_path) as browser:
        page = browser.new_page()
        page.navigate(path.as_uri())
        page.evaluate("document.title")
        png = page.screenshot()
        page.errors()  # console.error calls, Log errors, uncaught exceptions

The browser runs in its own process group (``start_new_session``); ``close`` ends that group
only, by its id: never any other chromium on the machine.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

DEBIAN_CHROMIUM = Path("/usr/bin/chromium")
MISSING_REASON = "Debian package chromium not installed: make test installs it as root"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--remote-debugging-port=0",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--window-size=1280,1600",
)
_LISTENING = re.compile(r"DevTools listening on (ws://\S+)")
# Guards against a hung browser; they fail the test, they are not measurements.
START_TIMEOUT_S = 60.0
CALL_TIMEOUT_S = 60.0
_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def find_chromium() -> Path | None:
    """Debian's ``/usr/bin/chromium``, else ``chromium`` on PATH, else None."""
    if DEBIAN_CHROMIUM.is_file() and os.access(DEBIAN_CHROMIUM, os.X_OK):
        return DEBIAN_CHROMIUM
    found = shutil.which("chromium")
    return Path(found) if found else None


class CDPError(RuntimeError):
    """A DevTools call answered with an error, or the browser went away."""


class WebSocket:
    """A blocking websocket client for one ``ws://`` URL: text messages in and out."""

    def __init__(self, url: str, timeout: float = CALL_TIMEOUT_S) -> None:
        parts = urlsplit(url)
        if parts.scheme != "ws" or parts.hostname is None or parts.port is None:
            raise ValueError(f"expected ws://host:port/path, got {url!r}")
        self._sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
        self._buffer = b""
        key = base64.b64encode(secrets.token_bytes(16)).decode("ascii")
        request = (
            f"GET {parts.path or '/'} HTTP/1.1\r\n"
            f"Host: {parts.hostname}:{parts.port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self._sock.sendall(request.encode("ascii"))
        head = self._read_until(b"\r\n\r\n").decode("latin-1")
        expected = base64.b64encode(hashlib.sha1((key + _WS_GUID).encode()).digest()).decode()
        if not head.startswith("HTTP/1.1 101") or expected not in head:
            raise CDPError(f"websocket handshake with {url} failed: {head.splitlines()[:1]}")

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self._buffer:
            self._fill()
        head, _, self._buffer = self._buffer.partition(marker)
        return head

    def _fill(self) -> None:
        chunk = self._sock.recv(1 << 16)
        if not chunk:
            raise CDPError("the browser closed the DevTools connection")
        self._buffer += chunk

    def _read_exact(self, n: int) -> bytes:
        while len(self._buffer) < n:
            self._fill()
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        header = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = secrets.token_bytes(4)  # clients must mask every frame (RFC 6455 5.3)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self._sock.sendall(header + mask + masked)

    def send_text(self, text: str) -> None:
        self._send_frame(0x1, text.encode("utf-8"))

    def receive_text(self) -> str:
        """The next whole text message; answers pings, raises on close."""
        parts: list[bytes] = []
        while True:
            first, second = self._read_exact(2)
            fin, opcode = first & 0x80, first & 0x0F
            n = second & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", self._read_exact(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", self._read_exact(8))
            mask = self._read_exact(4) if second & 0x80 else b""
            payload = self._read_exact(n)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode == 0x9:  # ping
                self._send_frame(0xA, payload)
                continue
            if opcode == 0xA:  # pong
                continue
            if opcode == 0x8:
                raise CDPError("the browser closed the DevTools connection")
            parts.append(payload)
            if fin:
                return b"".join(parts).decode("utf-8")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._send_frame(0x8, b"")
        self._sock.close()


@dataclass
class Connection:
    """CDP over one websocket: numbered calls, and the events that arrive meanwhile."""

    ws: WebSocket
    events: list[dict[str, Any]] = field(default_factory=list)
    _next_id: int = 0

    def call(
        self, method: str, params: dict[str, Any] | None = None, session_id: str | None = None
    ) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session_id is not None:
            message["sessionId"] = session_id
        self.ws.send_text(json.dumps(message))
        while True:
            reply = json.loads(self.ws.receive_text())
            if reply.get("id") != self._next_id:
                self.events.append(reply)
                continue
            if "error" in reply:
                raise CDPError(f"{method}: {reply['error']}")
            result: dict[str, Any] = reply.get("result", {})
            return result

    def wait_event(self, method: str, session_id: str | None = None) -> dict[str, Any]:
        """The first event ``method`` (of ``session_id``) received so far or next."""
        seen = 0
        while True:
            for event in self.events[seen:]:
                if event.get("method") == method and event.get("sessionId") == session_id:
                    return event
            seen = len(self.events)
            self.events.append(json.loads(self.ws.receive_text()))


@dataclass
class Page:
    """A tab, attached with a flat session: Runtime, Log and Page domains enabled."""

    connection: Connection
    session_id: str

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.connection.call(method, params, self.session_id)

    def navigate(self, url: str) -> None:
        """Load ``url`` and return after its load event (images included)."""
        reply = self.call("Page.navigate", {"url": url})
        if reply.get("errorText"):
            raise CDPError(f"navigating to {url}: {reply['errorText']}")
        self.connection.wait_event("Page.loadEventFired", self.session_id)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (promises awaited); raises on an exception."""
        reply = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in reply:
            raise CDPError(f"{expression!r} raised {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def screenshot(self) -> bytes:
        """The viewport as PNG bytes."""
        return base64.b64decode(self.call("Page.captureScreenshot", {"format": "png"})["data"])

    def errors(self) -> list[str]:
        """console.error/assert calls, Log entries of level error and uncaught exceptions
        received so far on this page."""
        found = []
        for event in self.connection.events:
            if event.get("sessionId") != self.session_id:
                continue
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                args = [a.get("value", a.get("description")) for a in params.get("args", [])]
                found.append(f"console.{params['type']}: {args}")
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                entry = params["entry"]
                found.append(
                    f"log {entry.get('source')}: {entry.get('text')} {entry.get('url', '')}"
                )
            elif method == "Runtime.exceptionThrown":
                found.append(f"exception: {params['exceptionDetails']}")
        return found


class Chromium:
    """A started headless Chromium (``start``), stopped by ``close`` or the ``with`` block."""

    def __init__(
        self, process: subprocess.Popen[bytes], ws_url: str, drain: threading.Thread
    ) -> None:
        self.process = process
        self.ws_url = ws_url
        self.stderr_lines: list[str] = []
        self._drain = drain
        self.connection = Connection(WebSocket(ws_url))

    @classmethod
    def start(cls, profile_dir: Path, executable: Path | None = None) -> Chromium:
        """Start chromium with a fresh profile in ``profile_dir``; raises ``FileNotFoundError``
        when there is no chromium (callers skip with ``MISSING_REASON``)."""
        exe = executable or find_chromium()
        if exe is None:
            raise FileNotFoundError(MISSING_REASON)
        process = subprocess.Popen(
            [str(exe), *FLAGS, f"--user-data-dir={profile_dir}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: close() ends exactly that
        )
        lines: list[str] = []
        found = threading.Event()
        url: list[str] = []

        def drain() -> None:  # keeps reading so chromium never blocks on a full pipe
            assert process.stderr is not None
            for raw in process.stderr:
                line = raw.decode("utf-8", "replace").rstrip()
                lines.append(line)
                match = _LISTENING.search(line)
                if match and not found.is_set():
                    url.append(match.group(1))
                    found.set()
            found.set()  # stderr closed: chromium exited

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        try:
            if not found.wait(START_TIMEOUT_S) or not url:
                raise CDPError(
                    f"chromium did not print its DevTools URL (exit code {process.poll()}): "
                    + "\n".join(lines[-20:])
                )
            browser = cls(process, url[0], reader)
        except BaseException:
            _stop_group(process)
            _close_stderr(process, reader)
            raise
        browser.stderr_lines = lines
        return browser

    def new_page(self) -> Page:
        target = self.connection.call("Target.createTarget", {"url": "about:blank"})
        session = self.connection.call(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        page = Page(self.connection, session["sessionId"])
        for domain in ("Runtime", "Log", "Page"):
            page.call(f"{domain}.enable")
        return page

    def close(self) -> None:
        with contextlib.suppress(OSError, CDPError):
            self.connection.ws.close()
        _stop_group(self.process)
        _close_stderr(self.process, self._drain)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """End the process group chromium leads (its renderers, GPU and zygote processes)."""
    for sig, wait_s in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(wait_s)
            break
        except subprocess.TimeoutExpired:
            continue
    # The group's other members may outlive the leader briefly; SIGKILL what is left of it.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _close_stderr(process: subprocess.Popen[bytes], reader: threading.Thread) -> None:
    reader.join(10.0)  # the group is gone, so the pipe is at its end
    if process.stderr is not None:
        process.stderr.close()


@contextlib.contextmanager
def chromium_page(profile_dir: Path) -> Iterator[Page]:
    """A page of a freshly started chromium, closed (process group ended) on exit."""
    browser = Chromium.start(profile_dir)
    try:
        yield browser.new_page()
    finally:
        browser.close()
