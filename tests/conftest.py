"""Shared fixtures. With SITEWATCH_NO_SKIP=1 (set by .ci/run) every skip is a failure, so a
component missing on CI (real data, a system package) cannot pass unnoticed."""

from __future__ import annotations

import os
from collections.abc import Callable, Generator
from pathlib import Path

import pytest
from support.pgstac import PgstacServer, missing_requirements
from support.rangeserver import RangeServer

ROOT = Path(__file__).resolve().parents[1]
REAL_DATA = ROOT.parent / "shared" / "real-data"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None]:
    outcome = yield
    report = outcome.get_result()
    if (
        os.environ.get("SITEWATCH_NO_SKIP") == "1"
        and report.skipped
        and not hasattr(report, "wasxfail")
    ):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"skipped, but SITEWATCH_NO_SKIP=1 forbids skips: {reason}"


@pytest.fixture(scope="session")
def real_data() -> Path:
    """../shared/real-data, or a skip naming what is missing."""
    if not REAL_DATA.is_dir():
        pytest.skip(f"real data folder {REAL_DATA} is absent (it ships beside the project only)")
    return REAL_DATA


# ---- real test servers (tests/support): a counting range server and a pgstac STAC API ----------


@pytest.fixture(scope="session")
def pgstac_api() -> Generator[PgstacServer]:
    """A started PostgreSQL + pgstac + stac-fastapi-pgstac server (``.url``, ``.load()``), one per
    session and xdist worker; it is shared, so each test module loads its own collection ids.
    Skips naming what is missing when the postgres binaries, PostGIS or the Python packages
    are absent (a failure under SITEWATCH_NO_SKIP=1)."""
    missing = missing_requirements()
    if missing:
        pytest.skip("the pgstac test API cannot start: missing " + "; ".join(missing))
    server = PgstacServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def range_server() -> Generator[Callable[[Path], RangeServer]]:
    """A factory: ``range_server(directory)`` starts a RangeServer subprocess serving that
    directory and returns it (``.url``, ``.stats()``, ``.set_faults()``...); all are stopped at
    teardown."""
    started: list[RangeServer] = []

    def start(root: Path) -> RangeServer:
        server = RangeServer(root).start()
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()
