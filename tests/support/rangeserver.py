"""A counting HTTP file server with byte ranges and injectable faults, run as a subprocess.

Run it as ``python tests/support/rangeserver.py --root DIR --port-file FILE``: it binds 127.0.0.1
on a free port, writes the port to FILE and serves the files under DIR (GET and HEAD, single
``Range: bytes=a-b`` / ``a-`` / ``-n`` requests answered 206, 416 when unsatisfiable, 404 for a
missing file). Every request is counted; the control endpoints below are not:

- ``GET /__stats``: ``{"requests": [...], "total_bytes": int, "per_path": {path: {...}}}``
- ``POST /__reset``: clears the counts (not the faults)
- ``POST /__faults`` with JSON ``{"seed", "error_rate", "stall_rate", "stall_seconds",
  "truncate_rate", "fail_paths", "match"}``; an empty object clears the faults

It is a separate process on purpose: GDAL's HTTP reads in the test process release the GIL, but a
server thread in that same process would still compete with the test for it, and a test that
blocks in GDAL would then starve its own server. Only the standard library is used.

:class:`RangeServer` starts, queries and stops it from a test.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

CHUNK = 64 * 1024
_RANGE_RE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)
FAULT_KEYS = {
    "seed",
    "error_rate",
    "stall_rate",
    "stall_seconds",
    "truncate_rate",
    "fail_paths",
    "match",
}


# --------------------------------------------------------------------------------------------
# The server (runs in the subprocess)
# --------------------------------------------------------------------------------------------


def parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """The inclusive byte span ``(first, last)`` a Range header asks for in a file of ``size``.

    Returns None when there is no usable Range header (absent, another unit, malformed or a
    multi-range list, all of which RFC 9110 lets a server ignore and answer 200), and the string
    ``"unsatisfiable"`` when the range lies outside the file (answer 416).
    """
    if header is None:
        return None
    m = _RANGE_RE.match(header)
    if m is None:
        return None
    first_s, last_s = m.groups()
    if first_s == "" and last_s == "":
        return None
    if first_s == "":  # suffix range: the last n bytes
        n = int(last_s)
        if n == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - n), size - 1
    first = int(first_s)
    last = int(last_s) if last_s != "" else size - 1
    if first >= size or first > last:
        return "unsatisfiable"
    return first, min(last, size - 1)


class Faults:
    """Fault settings; each faultable request draws from ``Random(f"{seed}:{n}")``, where n counts
    the requests the faults apply to since they were set, so a sequential client sees the same
    faults on every run."""

    def __init__(self, spec: dict[str, Any] | None = None) -> None:
        spec = dict(spec or {})
        unknown = set(spec) - FAULT_KEYS
        if unknown:
            raise ValueError(
                f"unknown fault settings {sorted(unknown)}; known: {sorted(FAULT_KEYS)}"
            )
        self.seed = int(spec.get("seed", 0))
        self.error_rate = _rate(spec, "error_rate")
        self.stall_rate = _rate(spec, "stall_rate")
        self.stall_seconds = float(spec.get("stall_seconds", 0.0))
        self.truncate_rate = _rate(spec, "truncate_rate")
        self.fail_paths = re.compile(spec["fail_paths"]) if spec.get("fail_paths") else None
        self.match = re.compile(spec["match"]) if spec.get("match") else None
        self.counter = 0
        self.spec = spec

    def draw(self, path: str) -> tuple[bool, float, bool]:
        """(answer 503, seconds to stall first, truncate the body) for one request; the caller
        holds the server's lock."""
        if self.fail_paths is not None and self.fail_paths.search(path):
            return True, 0.0, False
        if self.match is not None and not self.match.search(path):
            return False, 0.0, False
        if not (self.error_rate or self.stall_rate or self.truncate_rate):
            return False, 0.0, False
        rng = random.Random(f"{self.seed}:{self.counter}")
        self.counter += 1
        stall = self.stall_seconds if rng.random() < self.stall_rate else 0.0
        error = rng.random() < self.error_rate
        truncate = rng.random() < self.truncate_rate
        return error, stall, truncate and not error


def _rate(spec: dict[str, Any], key: str) -> float:
    value = float(spec.get(key, 0.0))
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{key} must lie in [0, 1], got {value}")
    return value


class State:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.faults = Faults()

    def record(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.requests.append(entry)

    def stats(self) -> dict[str, Any]:
        with self.lock:
            requests = [dict(r) for r in self.requests]
        per_path: dict[str, dict[str, int]] = {}
        for r in requests:
            p = per_path.setdefault(r["path"], {"requests": 0, "bytes": 0})
            p["requests"] += 1
            p["bytes"] += r["bytes"]
        return {
            "requests": requests,
            "total_bytes": sum(r["bytes"] for r in requests),
            "per_path": per_path,
        }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "rangeserver/1"
    # headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm and the
    # client's delayed ACK add ~40 ms to every keep-alive request
    disable_nagle_algorithm = True
    state: State  # set on the subclass made by serve()

    def log_message(self, format: str, *args: Any) -> None:  # quiet: stats are the log
        pass

    # ---- control endpoints ------------------------------------------------------------------

    def _control(self, path: str) -> bool:
        if not path.startswith("/__"):
            return False
        if self.command == "GET" and path == "/__stats":
            self._json(200, self.state.stats())
        elif self.command == "POST" and path == "/__reset":
            self._read_body()
            with self.state.lock:
                self.state.requests.clear()
            self._json(200, {"ok": True})
        elif self.command == "POST" and path == "/__faults":
            try:
                spec = json.loads(self._read_body() or b"{}")
                faults = Faults(spec)
            except (ValueError, TypeError, re.error) as exc:
                self._json(400, {"error": str(exc)})
                return True
            with self.state.lock:
                self.state.faults = faults
            self._json(200, {"ok": True, "faults": spec})
        elif self.command == "GET" and path == "/__faults":
            with self.state.lock:
                spec = self.state.faults.spec
            self._json(200, spec)
        else:
            return False
        return True

    def _read_body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _json(self, status: int, obj: Any) -> None:
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    # ---- files ------------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_POST(self) -> None:
        path = unquote(urlsplit(self.path).path)
        if not self._control(path):
            self._read_body()
            self._plain(405, "method not allowed", path, record=True)

    def _resolve(self, path: str) -> Path | None:
        target = (self.state.root / path.lstrip("/")).resolve()
        if not target.is_relative_to(self.state.root) or not target.is_file():
            return None
        return target

    def _plain(
        self,
        status: int,
        text: str,
        path: str,
        *,
        record: bool,
        head: bool = False,
        extra: dict[str, str] | None = None,
        fault: str | None = None,
    ) -> None:
        body = b"" if head else text.encode()
        if record:  # before answering: a client that has its answer finds it in the stats
            self._record(path, status, len(body), fault)
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(text.encode())))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _record(self, path: str, status: int, nbytes: int, fault: str | None) -> dict[str, Any]:
        entry = {
            "method": self.command,
            "path": path,
            "range": self.headers.get("Range"),
            "status": status,
            "bytes": nbytes,
            "fault": fault,
            "time": time.time(),
        }
        self.state.record(entry)
        return entry

    def _serve(self, *, head: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        if not head and self._control(path):
            return
        with self.state.lock:
            error, stall, truncate = self.state.faults.draw(path)
        if stall:
            time.sleep(stall)
        fault = "stall" if stall else None
        if error:
            self._plain(503, "injected fault", path, record=True, head=head, fault="error")
            return
        target = self._resolve(path)
        if target is None:
            self._plain(404, "not found", path, record=True, head=head, fault=fault)
            return
        size = target.stat().st_size
        span = parse_range(self.headers.get("Range"), size)
        if span == "unsatisfiable":
            extra = {"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"}
            self._plain(416, "range not satisfiable", path, record=True, head=head, extra=extra)
            return
        if span is None:
            status, first, last = 200, 0, size - 1
        else:
            assert isinstance(span, tuple)
            status, (first, last) = 206, span
        length = last - first + 1
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Last-Modified", self.date_time_string(int(target.stat().st_mtime)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        if truncate and not head:
            self.send_header("Connection", "close")
            self.close_connection = True
            fault = "truncate"
        # counted before the answer goes out (a client that has read its body must find the
        # request in /__stats); corrected below if the client hangs up early
        to_send = 0 if head else (length // 2 if truncate else length)
        entry = self._record(path, status, to_send, fault)
        self.end_headers()
        sent = 0
        try:
            with target.open("rb") as f:
                f.seek(first)
                while sent < to_send:
                    chunk = f.read(min(CHUNK, to_send - sent))
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    sent += len(chunk)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            fault = fault or "client-closed"
        if sent != to_send or entry["fault"] != fault:
            with self.state.lock:
                entry["bytes"], entry["fault"] = sent, fault


def serve(root: Path, port_file: Path, port: int = 0) -> None:
    if not root.is_dir():
        raise SystemExit(f"--root {root} is not a directory")
    handler = type("BoundHandler", (Handler,), {"state": State(root)})
    httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
    httpd.daemon_threads = True
    tmp = port_file.with_name(port_file.name + ".tmp")
    tmp.write_text(str(httpd.server_address[1]))
    os.replace(tmp, port_file)  # atomic: a reader never sees a half-written port

    parent = os.getppid()

    def orphan_watch() -> None:  # the test process died without stopping us: stop too
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=orphan_watch, daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        httpd.serve_forever(poll_interval=0.2)
    finally:
        httpd.server_close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, required=True, help="directory to serve")
    ap.add_argument("--port-file", type=Path, required=True, help="file to write the port to")
    ap.add_argument("--port", type=int, default=0, help="port to bind (default: a free one)")
    args = ap.parse_args(argv)
    serve(args.root, args.port_file, args.port)


# --------------------------------------------------------------------------------------------
# The wrapper (runs in the test process)
# --------------------------------------------------------------------------------------------

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class RangeServer:
    """The range server as a subprocess serving ``root``::

    with RangeServer(tmp_path) as srv:
        rasterio.open(f"/vsicurl/{srv.url}/x.tif")
        srv.stats()["per_path"]["/x.tif"]["bytes"]
    """

    def __init__(self, root: Path, *, startup_timeout: float = 10.0) -> None:
        self.root = Path(root)
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.port: int | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.log_path: Path | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("RangeServer is not started")
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RangeServer:
        if self.proc is not None:
            return self
        self._tmp = tempfile.TemporaryDirectory(prefix="rangeserver-")
        port_file = Path(self._tmp.name) / "port"
        self.log_path = Path(self._tmp.name) / "server.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--root",
                    str(self.root),
                    "--port-file",
                    str(port_file),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + self.startup_timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._fail(f"exited with code {self.proc.returncode}")
            if self.port is None and port_file.exists():
                self.port = int(port_file.read_text())
            if self.port is not None:
                try:
                    self._call("GET", "/__stats", timeout=2.0)
                    return self
                except OSError as exc:
                    last_error = exc
            time.sleep(0.05)
        self._fail(f"did not answer within {self.startup_timeout} s (last error: {last_error})")
        raise AssertionError("unreachable")

    def _fail(self, what: str) -> None:
        log = self.log_path.read_text(errors="replace")[-4000:] if self.log_path else ""
        self.stop()
        raise RuntimeError(f"range server {what}; its output:\n{log}")

    def _call(self, method: str, path: str, body: Any = None, timeout: float = 10.0) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with _NO_PROXY.open(req, timeout=timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise ValueError(f"{method} {path} answered {exc.code}: {detail}") from None

    def stats(self) -> dict[str, Any]:
        """``{"requests": [{method, path, range, status, bytes, fault, time}], "total_bytes",
        "per_path": {path: {"requests", "bytes"}}}`` since the start or the last reset."""
        result: dict[str, Any] = self._call("GET", "/__stats")
        return result

    def reset(self) -> None:
        self._call("POST", "/__reset", {})

    def set_faults(
        self,
        *,
        seed: int = 0,
        error_rate: float = 0.0,
        stall_rate: float = 0.0,
        stall_seconds: float = 0.0,
        truncate_rate: float = 0.0,
        fail_paths: str | None = None,
        match: str | None = None,
    ) -> None:
        """Replace the fault settings (and restart the fault draw counter)."""
        spec: dict[str, Any] = {
            "seed": seed,
            "error_rate": error_rate,
            "stall_rate": stall_rate,
            "stall_seconds": stall_seconds,
            "truncate_rate": truncate_rate,
        }
        if fail_paths is not None:
            spec["fail_paths"] = fail_paths
        if match is not None:
            spec["match"] = match
        self._call("POST", "/__faults", spec)

    def clear_faults(self) -> None:
        self._call("POST", "/__faults", {})

    def stop(self, timeout: float = 5.0) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()  # by PID: Popen signals only the process it started
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> RangeServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


if __name__ == "__main__":
    main()
