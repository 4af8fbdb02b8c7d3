"""SIGKILL at ten points spread over the stages of a small synthetic run (issue 6).

Each run is ``python -m pipeline.cli -q run CONFIG --out OUT`` started through a wrapper (written
into the test's folder) that patches one stage function to write a marker file and sleep when
it is reached; the test then SIGKILLs the driver. After the kill: no partial file under a final
name in OUT (OUT is absent, or still the previous complete run, every file matching the
manifest), no process left of the killed run (its children, found in /proc before the kill,
are gone), and the resumed run (the same command, no wrapper) gives outputs byte-identical to
an uninterrupted run (GeoJSON, CSV and the manifest's ``outputs`` hashes).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from test_run import TABLES, small_config
from test_transactions import assert_manifest_consistent, children_of, snapshot, wait_gone

from pipeline.export.transaction import pid_alive

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]

# The wrapper: patch one stage to signal (a marker file holding the PID that reached it) and
# sleep, then run the CLI exactly as `python -m pipeline.cli ARGS`.
WRAPPER = r"""
import os, runpy, sys, time

point, nth, marker = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sys.argv = ["sitewatch", *sys.argv[4:]]
calls = [0]


def reached():
    calls[0] += 1  # per process: each worker counts its own calls
    if calls[0] < nth:
        return
    try:
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
    except FileExistsError:
        pass
    time.sleep(3600)


def wrap(owner, name, after=False):
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        if not after:
            reached()
        result = original(*args, **kwargs)
        if after:
            reached()
        return result

    setattr(owner, name, wrapper)


import pipeline.export.run_outputs as run_outputs
import pipeline.export.transaction as transaction
import pipeline.recipe as recipe
import pipeline.sources.catalog as catalog
import pipeline.sources.read as read
import pipeline.tasks as tasks

if point == "search":
    wrap(catalog.StaticCatalogSource, "search")
elif point == "read":
    wrap(read, "read_scene")
elif point == "recipe":
    wrap(tasks, "site_year")
elif point == "composite":
    wrap(recipe, "median_composite")
elif point == "resume-record":
    wrap(tasks, "atomic_write_text")  # the .npz is written, its .json (the commit) not yet
elif point == "rasters":
    wrap(run_outputs, "write_cog", after=True)
elif point == "geojson":
    wrap(run_outputs, "write_feature_collection")
elif point == "manifest":
    wrap(run_outputs, "write_manifest", after=True)
elif point == "swap":
    # the two-rename swap (kernels without RENAME_EXCHANGE): killed between its renames
    transaction._exchange = lambda a, b: False
    real_rename = os.rename

    def rename(src, dst, *args, **kwargs):
        real_rename(src, dst, *args, **kwargs)
        if ".old-" in os.fspath(dst):
            reached()

    os.rename = rename
else:
    raise SystemExit(f"unknown point {point}")
runpy.run_module("pipeline.cli", run_name="__main__", alter_sys=True)
"""


@dataclass(frozen=True)
class Point:
    stage: str
    nth: int  # signal at the nth call (per process)
    workers: int
    rerun: bool  # OUT already holds a complete (previous) run


POINTS = [
    pytest.param(Point("search", 2, 1, False), id="search-2nd-year"),
    pytest.param(Point("read", 4, 1, False), id="read-4th-scene"),
    pytest.param(Point("read", 3, 2, False), id="read-3rd-scene-2-workers"),
    pytest.param(Point("composite", 1, 2, False), id="composite-2-workers"),
    pytest.param(Point("recipe", 2, 1, False), id="recipe-2nd-site-year"),
    pytest.param(Point("resume-record", 2, 1, True), id="resume-file-half-stored-rerun"),
    pytest.param(Point("rasters", 3, 1, True), id="export-after-3-rasters-rerun"),
    pytest.param(Point("geojson", 2, 2, False), id="export-geojson-2-workers"),
    pytest.param(Point("manifest", 1, 1, True), id="manifest-written-rerun"),
    pytest.param(Point("swap", 1, 1, True), id="swap-between-renames-rerun"),
]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small config (1 site, 2021-2022, rasters on) with its scenario built."""
    tmp = tmp_path_factory.mktemp("kill")
    config = small_config(tmp, tmp / "cache")
    data = yaml.safe_load(config.read_text())
    data["write_rasters"] = True
    config.write_text(yaml.safe_dump(data))
    return config


def cli(config: Path, out: Path, *extra: str) -> list[str]:
    return ["-q", "run", str(config), "--out", str(out), *extra]


def run_cli(argv: list[str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *argv],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done


@pytest.fixture(scope="module")
def reference(base: Path) -> Path:
    """An uninterrupted run."""
    out = base.parent / "reference"
    run_cli(cli(base, out))
    return out


@pytest.fixture(scope="module")
def previous(base: Path, reference: Path) -> Path:
    """A complete run of 2022 only: what OUT holds before a rerun (distinct from the new run)."""
    out = base.parent / "previous"
    run_cli(cli(base, out, "--years", "2022"))
    return out


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        kids = children_of(todo.pop())
        found += kids
        todo += kids
    return found


def wait_for(marker: Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if marker.exists() and marker.read_text():
            return
        if proc.poll() is not None:
            _out, err = proc.communicate()
            raise AssertionError(f"the run ended ({proc.returncode}) before the point: {err}")
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("the point was not reached in 120 s")


@pytest.mark.parametrize("point", POINTS)
def test_kill_and_resume(
    point: Point, base: Path, reference: Path, previous: Path, tmp_path: Path
) -> None:
    wrapper = tmp_path / "wrapper.py"
    wrapper.write_text(WRAPPER)
    marker = tmp_path / "reached"
    out = tmp_path / "out"
    before: dict[str, str] | None = None
    if point.rerun:
        shutil.copytree(previous, out)
        before = snapshot(out)
    argv = cli(base, out, "--workers", str(point.workers))
    proc = subprocess.Popen(
        [sys.executable, str(wrapper), point.stage, str(point.nth), str(marker), *argv],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for(marker, proc)
        family = descendants(proc.pid)
        if point.workers > 1 and point.stage in ("read", "composite"):
            assert family, "no worker process found"  # killed while the workers were busy
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    # no process of the killed run is left
    survivors = wait_gone(family, 10.0)
    for pid in survivors:  # do not leak them into the rest of the suite
        os.kill(pid, signal.SIGKILL)
    assert survivors == [], f"processes outlived the killed run: {survivors}"
    assert children_of(proc.pid) == []
    assert not pid_alive(proc.pid)

    # nothing partial under a final name: OUT is absent or the previous complete run
    if before is None:
        assert not out.exists(), sorted(p.name for p in out.rglob("*"))
    elif out.exists():
        assert snapshot(out) == before
        assert_manifest_consistent(out)
    else:  # killed between the two renames of the swap: the previous run is beside OUT
        assert point.stage == "swap"
        (old,) = tmp_path.glob("out.old-*")
        assert snapshot(old) == before
        assert_manifest_consistent(old)
    work = tmp_path / "out.work"
    for record in work.glob("*.json"):
        json.loads(record.read_text())  # resume records are whole or absent

    # the resumed run (same command, no wrapper) equals an uninterrupted one
    run_cli(argv)
    for name in TABLES:
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name
    assert_manifest_consistent(out)
    outputs = json.loads((out / "manifest.json").read_text())["outputs"]
    assert outputs == json.loads((reference / "manifest.json").read_text())["outputs"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("out")) == ["out"]
