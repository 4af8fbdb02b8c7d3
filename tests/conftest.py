"""Shared fixtures. With SITEWATCH_NO_SKIP=1 (set by .ci/run) every skip is a failure, so a
component missing on CI (real data, a system package) cannot pass unnoticed."""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path

import pytest

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
