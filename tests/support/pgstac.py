"""A real STAC API for tests: a throw-away PostgreSQL + PostGIS + pgstac cluster served by
stac-fastapi-pgstac under uvicorn, all bound to 127.0.0.1 on free ports.

    with PgstacServer() as api:
        api.load([collection_dict], [item_dict, ...])
        pystac_client.Client.open(api.url).search(query={"eo:cloud_cover": {"lt": 50}})

Needs Debian's PostgreSQL 15 server (``/usr/lib/postgresql/15/bin``, or ``SITEWATCH_PG_BIN``),
PostGIS (apt ``postgresql-15-postgis-3``) and the Python packages ``pypgstac[psycopg]``,
``stac-fastapi-pgstac`` and ``uvicorn``; :func:`missing_requirements` names what is absent.
The test process itself imports none of them: postgres, the migration, the loads and the API
each run as a subprocess.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

PG_BIN = Path(os.environ.get("SITEWATCH_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_PROGRAMS = ("initdb", "pg_ctl", "postgres", "psql")
PG_EXTENSIONS = ("postgis", "btree_gist")
PY_MODULES = {
    "pypgstac": "pypgstac[psycopg]",
    "psycopg": "pypgstac[psycopg]",
    "stac_fastapi.pgstac": "stac-fastapi-pgstac",
    "uvicorn": "uvicorn",
}
DBNAME = "stac"
# eo:cloud_cover as a number: without property_wrapper to_float pgstac compares and sorts the
# JSON text, so "100" < "50".
QUERYABLES = {
    "eo:cloud_cover": {
        "definition": {"type": "number", "minimum": 0, "maximum": 100, "title": "Cloud cover"},
        "wrapper": "to_float",
    },
}
_LOAD_SCRIPT = """
import sys
from pypgstac.db import PgstacDB
from pypgstac.load import Loader, Methods
dsn, collections, items = sys.argv[1:4]
with PgstacDB(dsn=dsn) as db:
    loader = Loader(db=db)
    if collections:
        loader.load_collections(collections, Methods.upsert)
    if items:
        loader.load_items(items, Methods.upsert)
"""
# The API under uvicorn, plus a watchdog: if the test process dies without stop() (a killed
# xdist worker), it stops postgres (SIGINT: fast shutdown, by its PID), removes the work
# directory and ends itself, so nothing outlives the test run.
_API_SCRIPT = """
import os, shutil, signal, sys, threading, time
import uvicorn
port, pg_pid, workdir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
parent = os.getppid()
def watch():
    while os.getppid() == parent:
        time.sleep(1.0)
    try:
        os.kill(pg_pid, signal.SIGINT)
        for _ in range(150):
            os.kill(pg_pid, 0)
            time.sleep(0.1)
    except OSError:
        pass
    shutil.rmtree(workdir, ignore_errors=True)
    os.kill(os.getpid(), signal.SIGTERM)
threading.Thread(target=watch, daemon=True).start()
uvicorn.run(
    "stac_fastapi.pgstac.app:create_app", factory=True, host="127.0.0.1", port=port,
    log_level="info", access_log=False,
)
"""
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class PgstacStartError(RuntimeError):
    """The cluster or the API did not come up; the message holds the tails of their logs."""


def _pg_sharedir(pg_bin: Path) -> Path:
    pg_config = pg_bin / "pg_config"
    if pg_config.exists():
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [str(pg_config), "--sharedir"], capture_output=True, text=True, timeout=10
            )
            if out.returncode == 0 and out.stdout.strip():
                return Path(out.stdout.strip())
    return Path("/usr/share/postgresql") / pg_bin.parent.name


def missing_requirements(pg_bin: Path = PG_BIN) -> list[str]:
    """What :class:`PgstacServer` needs and this machine lacks, each with how to get it."""
    missing: list[str] = []
    absent = [p for p in PG_PROGRAMS if not (pg_bin / p).exists()]
    if absent:
        missing.append(
            f"PostgreSQL server programs {absent} in {pg_bin} "
            "(apt-get install postgresql-15, or set SITEWATCH_PG_BIN)"
        )
    else:
        ext_dir = _pg_sharedir(pg_bin) / "extension"
        for ext in PG_EXTENSIONS:
            if not (ext_dir / f"{ext}.control").exists():
                pkg = "postgresql-15-postgis-3" if ext == "postgis" else "postgresql-contrib"
                missing.append(f"PostgreSQL extension {ext} ({ext_dir}; apt-get install {pkg})")
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            missing.append("a 'postgres' user to run the cluster as (running as root)")
    for module, package in PY_MODULES.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError:
            found = False
        if not found:
            missing.append(f"Python module {module} (pip install '{package}')")
    return missing


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path | None, n: int = 3000) -> str:
    if path is None or not path.exists():
        return "(no log)"
    text = path.read_text(errors="replace")
    return text[-n:] if text.strip() else "(empty)"


def _http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with _NO_PROXY.open(url, timeout=timeout) as resp:
            resp.read()
            return bool(resp.status == 200)
    except (OSError, urllib.error.URLError):
        return False


class PgstacServer:
    """PostgreSQL + pgstac + stac-fastapi-pgstac, started by :meth:`start` (or ``with``).

    Attributes once started: ``url`` (the API root, ``http://127.0.0.1:PORT``), ``dsn`` (the
    database, user postgres, trust authentication), ``pg_port``, ``api_port``, ``workdir``,
    ``pg_log``, ``api_log`` and ``startup_seconds`` (with ``timings`` per step).
    """

    def __init__(
        self,
        *,
        pg_bin: Path = PG_BIN,
        startup_timeout: float = 60.0,
        api_env: dict[str, str] | None = None,
    ) -> None:
        self.pg_bin = Path(pg_bin)
        self.startup_timeout = startup_timeout
        self.api_env = dict(api_env or {})
        self.workdir: Path | None = None
        self.pg_port: int | None = None
        self.api_port: int | None = None
        self.pg_pid: int | None = None
        self.api_proc: subprocess.Popen[bytes] | None = None
        self.pg_log: Path | None = None
        self.api_log: Path | None = None
        self.cmd_log: Path | None = None
        self.startup_seconds: float | None = None
        self.timings: dict[str, float] = {}
        self._loads = 0

    # ---- public ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self.api_port is None:
            raise RuntimeError("PgstacServer is not started")
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def dsn(self) -> str:
        if self.pg_port is None:
            raise RuntimeError("PgstacServer is not started")
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}/{DBNAME}"

    def start(self) -> PgstacServer:
        if self.workdir is not None:
            return self
        missing = missing_requirements(self.pg_bin)
        if missing:
            raise PgstacStartError("cannot start pgstac: missing " + "; ".join(missing))
        t0 = time.monotonic()
        atexit.register(self.stop)
        try:
            self._make_workdir()
            self._step("initdb", self._initdb)
            self._step("postgres", self._start_postgres)
            self._step("database", self._create_database)
            self._step("migrate", self._migrate)
            self._step("queryables", self._configure)
            self._step("api", self._start_api)
        except BaseException as exc:
            report = self._report()
            self.stop()
            if isinstance(exc, PgstacStartError):
                raise PgstacStartError(f"{exc}\n{report}") from None
            if isinstance(exc, Exception):
                raise PgstacStartError(f"pgstac start failed: {exc!r}\n{report}") from exc
            raise
        self.startup_seconds = time.monotonic() - t0
        return self

    def load(self, collections: Sequence[dict[str, Any]], items: Sequence[dict[str, Any]]) -> None:
        """Upsert STAC collections, then items (dicts; each item names its ``collection``), from
        ndjson files with pypgstac's Loader (what ``pypgstac load collections|items --method
        upsert`` runs), in one subprocess."""
        if self.workdir is None:
            raise RuntimeError("PgstacServer is not started")
        self._loads += 1
        paths = []
        for table, records in (("collections", collections), ("items", items)):
            path = self.workdir / f"load-{self._loads}-{table}.ndjson"
            path.write_text("".join(json.dumps(r) + "\n" for r in records))
            paths.append(str(path) if records else "")
        self._run(
            [sys.executable, "-c", _LOAD_SCRIPT, self.dsn, *paths],
            what=f"pypgstac load of {len(collections)} collections and {len(items)} items",
        )

    def sql(self, statement: str) -> str:
        """Run SQL in the pgstac database with psql; returns its unaligned output."""
        return self._psql(statement, db=DBNAME)

    def stop(self) -> None:
        """Stop the API (SIGTERM, then SIGKILL), then postgres (``pg_ctl stop -m fast``, then
        SIGKILL of its postmaster PID), then remove the work directory. Safe to call twice."""
        proc, self.api_proc = self.api_proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        if self.pg_pid is not None and self.workdir is not None:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                subprocess.run(
                    self._as_pg(
                        [
                            str(self.pg_bin / "pg_ctl"),
                            "stop",
                            "-D",
                            str(self._data),
                            "-m",
                            "fast",
                            "-w",
                            "-t",
                            "20",
                        ]
                    ),
                    cwd=self.workdir,
                    capture_output=True,
                    timeout=30,
                )
            if _alive(self.pg_pid):
                with contextlib.suppress(OSError):
                    os.kill(self.pg_pid, signal.SIGKILL)
            self.pg_pid = None
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
        self.api_port = self.pg_port = None
        atexit.unregister(self.stop)

    def __enter__(self) -> PgstacServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---- steps ----------------------------------------------------------------------------

    def _step(self, name: str, fn: Any) -> None:
        t = time.monotonic()
        fn()
        self.timings[name] = round(time.monotonic() - t, 3)

    @property
    def _data(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "data"

    @property
    def _sockdir(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "sock"

    def _make_workdir(self) -> None:
        # mkdtemp, not pytest's tmp_path: when we are root the cluster runs as postgres, which
        # must own its directories and reach them (pytest's 0700 root-owned tree it cannot).
        self.workdir = Path(tempfile.mkdtemp(prefix="sitewatch-pgstac-"))
        self._sockdir.mkdir()
        self.pg_log = self.workdir / "postgres.log"
        self.api_log = self.workdir / "api.log"
        self.cmd_log = self.workdir / "commands.log"
        if os.geteuid() == 0:
            import pwd

            pw = pwd.getpwnam("postgres")
            for p in (self.workdir, self._sockdir):
                os.chown(p, pw.pw_uid, pw.pw_gid)

    def _as_pg(self, cmd: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd

    def _env(self) -> dict[str, str]:
        # no inherited PG* settings (PGSERVICE, PGSSLMODE, ...) may redirect our clients
        return {k: v for k, v in os.environ.items() if not k.startswith("PG")}

    def _run(self, cmd: list[str], *, what: str, timeout: float | None = None) -> str:
        assert self.workdir is not None
        assert self.cmd_log is not None
        try:
            out = subprocess.run(
                cmd,
                cwd=self.workdir,
                env=self._env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout or self.startup_timeout,
            )
        except subprocess.TimeoutExpired as exc:
            raise PgstacStartError(f"{what} took over {exc.timeout} s") from None
        with self.cmd_log.open("a") as log:
            log.write(f"$ {shlex.join(cmd)}\n{out.stdout}{out.stderr}[exit {out.returncode}]\n")
        if out.returncode != 0:
            raise PgstacStartError(
                f"{what} failed with exit code {out.returncode}:\n{out.stdout[-2000:]}"
                f"{out.stderr[-3000:]}"
            )
        return out.stdout

    def _initdb(self) -> None:
        self._run(
            self._as_pg(
                [
                    str(self.pg_bin / "initdb"),
                    "-D",
                    str(self._data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--no-sync",
                    "--no-locale",
                    "--encoding=UTF8",
                ]
            ),
            what="initdb",
        )

    def _start_postgres(self) -> None:
        assert self.pg_log is not None
        last: Exception | None = None
        for _attempt in range(3):  # a free port can be taken between probe and bind: retry
            port = free_port()
            opts = (
                f"-c listen_addresses=127.0.0.1 -p {port} -k {shlex.quote(str(self._sockdir))}"
                " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
                " -c max_connections=40"
            )
            try:
                self._run(
                    self._as_pg(
                        [
                            str(self.pg_bin / "pg_ctl"),
                            "start",
                            "-D",
                            str(self._data),
                            "-l",
                            str(self.pg_log),
                            "-w",
                            "-t",
                            "30",
                            "-o",
                            opts,
                        ]
                    ),
                    what="pg_ctl start",
                )
            except PgstacStartError as exc:
                last = exc
                if "already in use" in _tail(self.pg_log):
                    continue
                raise PgstacStartError(f"{exc}\npostgres log:\n{_tail(self.pg_log)}") from None
            self.pg_port = port
            self.pg_pid = int((self._data / "postmaster.pid").read_text().split()[0])
            return
        raise PgstacStartError(f"postgres could not bind a free port: {last}")

    def _psql(self, sql: str, *, db: str) -> str:
        assert self.pg_port is not None
        return self._run(
            [
                str(self.pg_bin / "psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.pg_port),
                "-U",
                "postgres",
                "-d",
                db,
                "-c",
                sql,
            ],
            what=f"psql {sql[:60]!r}",
        )

    def _create_database(self) -> None:
        self._psql(f"CREATE DATABASE {DBNAME}", db="postgres")
        self._psql(
            "CREATE EXTENSION postgis; CREATE EXTENSION btree_gist; "
            # pgstac's functions resolve names through the search path: without it every
            # search fails
            f"ALTER DATABASE {DBNAME} SET search_path TO pgstac, public;",
            db=DBNAME,
        )

    def _pypgstac(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "pypgstac.pypgstac", *args]

    def _migrate(self) -> None:
        self._run(self._pypgstac("migrate", "--dsn", self.dsn), what="pypgstac migrate")

    def _configure(self) -> None:
        statements = []
        for name, q in QUERYABLES.items():
            definition = json.dumps(q["definition"]).replace("'", "''")
            statements.append(
                f"DELETE FROM pgstac.queryables WHERE name = '{name}';"
                " INSERT INTO pgstac.queryables (name, definition, property_wrapper)"
                f" VALUES ('{name}', '{definition}'::jsonb, '{q['wrapper']}');"
            )
        # context on: searches report numberMatched, so pystac-client's matched() works
        statements.append(
            "INSERT INTO pgstac.pgstac_settings (name, value) VALUES ('context', 'on')"
            " ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value;"
        )
        self.sql("\n".join(statements))

    def _start_api(self) -> None:
        assert self.workdir is not None
        assert self.api_log is not None
        code = None
        for _attempt in range(3):
            port = free_port()
            env = self._env()
            env.update(
                PGUSER="postgres",
                PGPASSWORD="unused-trust-auth",
                PGHOST="127.0.0.1",
                PGPORT=str(self.pg_port),
                PGDATABASE=DBNAME,
                DB_MIN_CONN_SIZE="1",
                DB_MAX_CONN_SIZE="5",
                STAC_FASTAPI_TITLE="sitewatch test STAC API",
                STAC_FASTAPI_DESCRIPTION="pgstac for the sitewatch tests",
                STAC_FASTAPI_LANDING_ID="sitewatch-test",
                STAC_FASTAPI_VERSION="test",
            )
            env.update(self.api_env)
            with self.api_log.open("ab") as log:
                self.api_proc = subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        _API_SCRIPT,
                        str(port),
                        str(self.pg_pid),
                        str(self.workdir),
                    ],
                    cwd=self.workdir,  # no stray .env is read from the caller's directory
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            self.api_port = port
            deadline = time.monotonic() + self.startup_timeout
            while time.monotonic() < deadline:
                if self.api_proc.poll() is not None:
                    break
                if _http_ok(self.url + "/") and _http_ok(self.url + "/conformance"):
                    return
                time.sleep(0.1)
            else:
                raise PgstacStartError(
                    f"the STAC API did not answer / and /conformance within "
                    f"{self.startup_timeout} s"
                )
            code = self.api_proc.returncode
            self.api_proc = None
            self.api_port = None
            if "address already in use" not in _tail(self.api_log).lower():
                break
        raise PgstacStartError(f"the STAC API exited at start-up with code {code} (see its log)")

    def _report(self) -> str:
        return (
            f"--- postgres log ({self.pg_log}):\n{_tail(self.pg_log)}\n"
            f"--- API log ({self.api_log}):\n{_tail(self.api_log)}\n"
            f"--- commands ({self.cmd_log}):\n{_tail(self.cmd_log)}"
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sample_records(
    collection_id: str = "test-coll",
    specs: Iterable[tuple[str, float, str, list[float]]] = (),
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A collection and items ``(id, eo:cloud_cover, datetime, bbox)`` as STAC dicts."""
    items = []
    boxes = []
    for item_id, cloud, dt, bbox in specs:
        w, s, e, n = bbox
        boxes.append(bbox)
        items.append(
            {
                "type": "Feature",
                "stac_version": "1.0.0",
                "stac_extensions": [],
                "id": item_id,
                "collection": collection_id,
                "bbox": bbox,
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]],
                },
                "properties": {"datetime": dt, "eo:cloud_cover": cloud},
                "links": [],
                "assets": {},
            }
        )
    extent = (
        [
            min(b[0] for b in boxes),
            min(b[1] for b in boxes),
            max(b[2] for b in boxes),
            max(b[3] for b in boxes),
        ]
        if boxes
        else [-180.0, -90.0, 180.0, 90.0]
    )
    collection = {
        "type": "Collection",
        "stac_version": "1.0.0",
        "stac_extensions": [],
        "id": collection_id,
        "description": f"test collection {collection_id}",
        "license": "proprietary",
        "extent": {
            "spatial": {"bbox": [extent]},
            "temporal": {"interval": [[None, None]]},
        },
        "links": [],
    }
    return [collection], items
